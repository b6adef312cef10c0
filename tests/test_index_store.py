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
    store.add_vectors(
        np.arange(first_id, first_id + len(texts)),
        np.eye(4, dtype=np.float32)[np.arange(len(texts)) % 4],
    )
    return _pending(document_id, first_id, texts)


def test_create_checkpoint_reopen(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가", "나", "다"]))
    store.close()
    reopened = IndexStore.open(tmp_path / "idx")
    assert reopened.count() == 3
    assert reopened.metadata.counts() == (1, 3)
    assert reopened.manifest["generation"] == 1
    assert [p.name for p in (tmp_path / "idx").glob("segment.*")] == ["segment.000001.faiss"]
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
    assert (tmp_path / "idx" / "segment.000002.faiss").exists()
    reader = IndexStore.open(tmp_path / "idx")
    assert reader.count() == 2 and reader.metadata.counts() == (1, 2)
    reader.close()
    writer = IndexStore.open(tmp_path / "idx", writable=True)
    assert not (tmp_path / "idx" / "segment.000002.faiss").exists()
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
    assert store.metadata.counts() == (0, 0) and store.count() == 0
    assert store.metadata.next_ids() == (1, 3)  # sentence ids are never reused


def _rows(document_id: int, first_id: int, texts: list[str]) -> tuple[dict, list[dict], np.ndarray]:
    pending = _pending(document_id, first_id, texts)
    return pending.documents[0], pending.sentences, np.eye(4, dtype=np.float32)[np.arange(len(texts)) % 4]


def test_rows_written_as_a_run_goes_are_invisible_until_the_checkpoint(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가", "나"]))
    document, sentences, vectors = _rows(2, 3, ["다", "라", "마"])
    store.add_document(document)
    store.add_sentences(sentences, vectors)
    # Written into the writer's open transaction, not committed: a reader sees the last checkpoint.
    reader = IndexStore.open(tmp_path / "idx")
    assert reader.metadata.counts() == (1, 2) and reader.count() == 2
    store.checkpoint()
    # The reader notices the new generation on its next read, without reopening.
    assert reader.counts() == (2, 5) and reader.count() == 5 and reader.manifest["generation"] == 2
    assert not reader.refresh()
    reader.close()
    store.close()


def test_closing_a_writer_before_its_checkpoint_discards_its_rows(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가"]))
    document, sentences, vectors = _rows(2, 2, ["나", "다"])
    store.add_document(document)
    store.add_sentences(sentences, vectors)
    assert store.remove_documents([1]) == 1
    store.close()
    reopened = IndexStore.open(tmp_path / "idx")
    assert reopened.metadata.counts() == (1, 1) and reopened.count() == 1
    reopened.close()


def test_a_writer_whose_checkpoint_failed_refuses_to_go_on(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    pending = _add(store, 1, 1, ["가", "나"])
    pending.sentences.pop()
    with pytest.raises(KosearchError, match="refusing to commit"):
        store.checkpoint(pending)
    with pytest.raises(KosearchError, match="checkpoint of .* failed"):
        store.checkpoint()
    store.close()


def test_a_reader_of_an_index_made_before_pages_does_not_migrate_it(tmp_path):
    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가", "나"]))
    store.metadata.db.execute("alter table sentences drop column page")  # as such an index was made
    store.close()
    reader = IndexStore.open(tmp_path / "idx")
    assert reader.metadata.sentences_by_id([1])[1].page is None
    assert "page" not in reader.metadata.db["sentences"].columns_dict
    reader.close()
    writer = IndexStore.open(tmp_path / "idx", writable=True)  # the writer adds the column
    assert "page" in writer.metadata.db["sentences"].columns_dict
    assert writer.metadata.sentences_by_id([2])[2].page is None
    writer.close()


def test_a_closed_writer_leaves_planner_statistics_so_a_document_filter_reads_documents_first(tmp_path):
    """Without ANALYZE, SQLite answers ``sentences join documents where <document filter>`` by scanning every
    sentence (125 ms for a 1% path filter at 1.23M sentences, 4 ms with statistics)."""
    import sqlite3

    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    first = 1
    for document in range(1, 41):
        texts = [f"문장 {document}-{i}" for i in range(25)]
        pending = _add(store, document, first, texts)
        store.checkpoint(pending)
        first += len(texts)
    database = tmp_path / "idx" / "metadata.sqlite"
    query = (
        "select s.id from sentences s join documents d on d.id = s.document_id where d.path GLOB ?"
    )

    def plan() -> str:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return " | ".join(row[3] for row in connection.execute("explain query plan " + query, ["doc1?.txt"]))

    assert "SCAN s" in plan(), "no statistics yet: the planner scans the sentences"
    store.close()
    assert plan().startswith("SEARCH d") and "SCAN s" not in plan(), plan()
    reader = IndexStore.open(tmp_path / "idx")
    ids = reader.allowed_ids("d.path GLOB ?", ["doc1?.txt"])
    assert sorted(ids.tolist()) == [i for d in range(10, 20) for i in range(1 + (d - 1) * 25, 1 + d * 25)]
    reader.close()


def test_compacting_an_already_compact_index_still_leaves_statistics(tmp_path):
    """compact() with nothing to merge leaves its write transaction open; closing must still write them."""
    import sqlite3

    store = IndexStore.create(tmp_path / "idx", MANIFEST)
    store.checkpoint(_add(store, 1, 1, ["가", "나", "다"]))
    store.compact()
    store.close()
    database = tmp_path / "idx" / "metadata.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("drop table sqlite_stat1")
    writer = IndexStore.open(tmp_path / "idx", writable=True)
    writer.compact()  # one segment, nothing deleted: nothing to merge
    writer.close()
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}
    assert "sqlite_stat1" in tables
