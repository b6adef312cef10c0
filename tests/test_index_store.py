"""The on-disk protocol: a checkpoint either happens completely or not at all."""

from __future__ import annotations

import numpy as np
import pytest

from kosearch.errors import IndexExistsError, IndexNotFoundError, KosearchError
from kosearch.store import IndexStore, PendingChanges

MANIFEST = {"model": "test/model", "fingerprint": "abc123", "dimension": 4, "prompts": {}}


def _pending(document_id: int, first_sentence_id: int, texts: list[str]) -> PendingChanges:
    return PendingChanges(
        documents=[
            {
                "id": document_id,
                "root": "/docs",
                "path": f"doc{document_id}.txt",
                "sha256": "x",
                "size": 1,
                "encoding": "utf-8",
                "format": "txt",
                "sentences": len(texts),
                "indexed_at": "now",
            }
        ],
        sentences=[
            {"id": first_sentence_id + i, "document_id": document_id, "position": i, "text": t,
             "line": i + 1, "start": 0, "end": len(t)}
            for i, t in enumerate(texts)
        ],
        removed_documents=[],
    )


def _add(store: IndexStore, document_id: int, first_id: int, texts: list[str]) -> PendingChanges:
    store.vectors.add(
        np.arange(first_id, first_id + len(texts)),
        np.eye(4, dtype=np.float32)[np.arange(len(texts)) % 4],
    )
    return _pending(document_id, first_id, texts)


def test_create_checkpoint_reopen(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가", "나", "다"]))
    store.close()
    reopened = IndexStore.open(tmp_path / "idx")
    assert reopened.vectors.count() == 3
    assert reopened.metadata.counts() == (1, 3)
    assert reopened.manifest["generation"] == 1
    assert [p.name for p in (tmp_path / "idx").glob("vectors.*")] == ["vectors.000001.faiss"]
    assert reopened.metadata.sentences_by_id([2])[2].text == "나"


def test_failed_commit_leaves_previous_state(tmp_path, monkeypatch):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가", "나"]))
    pending = _add(store, 2, 3, ["다", "라"])

    def die(*args, **kwargs):
        raise RuntimeError("killed between the vectors file and the commit")

    monkeypatch.setattr(store.metadata, "set_manifest", die)
    with pytest.raises(RuntimeError):
        store.checkpoint(pending)
    store.close()
    # The new generation's file was written but never committed: the old state is what opens,
    # and the next writer removes the orphan.
    assert (tmp_path / "idx" / "vectors.000002.faiss").exists()
    reader = IndexStore.open(tmp_path / "idx")
    assert reader.vectors.count() == 2 and reader.metadata.counts() == (1, 2)
    reader.close()
    writer = IndexStore.open(tmp_path / "idx", writable=True)
    assert not (tmp_path / "idx" / "vectors.000002.faiss").exists()
    writer.close()


def test_inconsistent_index_is_detected(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가"]))
    store.metadata.db.execute("delete from sentences")
    store.metadata.db.conn.commit()
    store.close()
    with pytest.raises(KosearchError, match="inconsistent"):
        IndexStore.open(tmp_path / "idx")


def test_checkpoint_refuses_mismatched_rows(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    pending = _add(store, 1, 1, ["가", "나"])
    pending.sentences.pop()
    with pytest.raises(KosearchError, match="refusing to commit"):
        store.checkpoint(pending)
    assert store.metadata.counts() == (0, 0)


def test_one_writer_at_a_time(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    with pytest.raises(KosearchError, match="another kosearch process"):
        IndexStore.open(tmp_path / "idx", writable=True)
    reader = IndexStore.open(tmp_path / "idx")  # readers never wait
    with pytest.raises(KosearchError, match="read-only"):
        reader.checkpoint(PendingChanges.empty())
    reader.close()
    store.close()
    IndexStore.open(tmp_path / "idx", writable=True).close()


def test_create_refuses_existing_and_open_refuses_missing(tmp_path):
    IndexStore.create(tmp_path / "idx", MANIFEST).close()
    with pytest.raises(IndexExistsError):
        IndexStore.create(tmp_path / "idx", MANIFEST)
    with pytest.raises(IndexNotFoundError, match="kosearch index"):
        IndexStore.open(tmp_path / "nothing")


def test_removed_documents_leave_with_their_vectors(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가", "나"]))
    store.remove_vectors(store.metadata.sentence_ids_of([1]))
    store.checkpoint(PendingChanges([], [], [1]))
    assert store.metadata.counts() == (0, 0) and store.vectors.count() == 0
    assert store.metadata.next_ids() == (1, 3)  # sentence ids are never reused
