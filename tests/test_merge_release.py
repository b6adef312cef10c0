"""An indexing run frees its encoder and Kiwi before a tier merge inside the run (issue 7, peak RSS).

The store calls ``checkpoint``'s ``before_merge`` after the checkpoint's commit and before the first
merge of vectors; the ingest loop then holds its reader thread, releases the model and Kiwi, and
both load again on next use. These tests check the order of those steps, that the results of a run
do not depend on the release, that a failure there leaves the last commit, and the reader gate.
The memory it saves is measured in ``bench/bench_build_memory.py`` (docs/benchmarks.md, section g).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import kosearch
from kosearch.documents import split
from kosearch.ingest import ReaderGate, _prefetch
from kosearch.search.morphemes import MorphemeAnalyzer
from kosearch.store import index_store
from kosearch.store.index_store import IndexStore
from kosearch.store.segments import SEGMENTS_PER_TIER
from kosearch_testing import HashingEncoder, write_numbered_documents

CHECKPOINT = 5
"""Sentences per checkpoint in these runs: ten checkpoints fill a tier, so a merge runs inside the run."""


@pytest.fixture(autouse=True)
def release_before_any_merge(monkeypatch):
    """These runs merge 50 vectors; the store frees memory before merges of 46 MB and more only
    (``RELEASE_BEFORE_MERGE_BYTES``), so the tests of the release lower that size to nothing."""
    monkeypatch.setattr(index_store, "RELEASE_BEFORE_MERGE_BYTES", 0)


class ReleasingEncoder(HashingEncoder):
    """A stub encoder with ``release``: it records what the store held at each release and refuses to
    encode while released-and-not-reloaded is not how it is used (it reloads on the next encode)."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = True
        self.releases: list[int] = []
        self.reloads = 0
        self.store: IndexStore | None = None

    def release(self) -> None:
        self.releases.append(len(self.store.segment_entries()) if self.store is not None else -1)
        self.loaded = False

    def encode_documents(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        if not self.loaded:
            self.loaded = True
            self.reloads += 1
        return super().encode_documents(texts, batch_size, show_progress_bar)


def _state(folder: Path) -> tuple:
    """Everything a search sees: rows, vector ids and vectors, and the answers to a few queries."""
    with kosearch.Index.open(folder, model=HashingEncoder()) as index:
        store = index.store
        rows = sorted((unit.sentence_id, unit.text) for unit in store.units_by_id(range(1, 200)).values())
        pairs = sorted(
            (int(i), vector.tobytes()) for ids, vectors in store.iter_vectors() for i, vector in zip(ids, vectors)
        )
        hits = [[(hit.path, hit.text) for hit in index.search(query, k=5)] for query in ("영화 리뷰 3", "문서 12의")]
        return rows, pairs, hits, index.store.counts()


def _vectors(index: kosearch.Index) -> dict[int, np.ndarray]:
    return {int(i): vector for ids, vectors in index.store.iter_vectors() for i, vector in zip(ids, vectors)}


def _build(folder: Path, documents: Path, encoder) -> kosearch.results.IngestReport:
    with kosearch.Index.create(folder, model=encoder) as index:
        if isinstance(encoder, ReleasingEncoder):
            encoder.store = index.store
        return index.add_folder(documents, unit="sentence", checkpoint_sentences=CHECKPOINT)


def test_the_encoder_is_released_before_a_merge_inside_the_run_and_used_again_after(tmp_path):
    documents = write_numbered_documents(tmp_path / "docs")
    encoder = ReleasingEncoder()
    report = _build(tmp_path / "index", documents, encoder)
    assert report.sentences_added == 70
    # 70 sentences in checkpoints of 5: the tenth checkpoint fills the tier, one merge follows it;
    # the release came after that checkpoint's commit and before the merge (ten segments still listed).
    assert encoder.releases == [SEGMENTS_PER_TIER]
    assert encoder.reloads == 1  # the run went on encoding after the merge
    with kosearch.Index.open(tmp_path / "index", model=HashingEncoder()) as index:
        entries = index.store.segment_entries()
        assert entries[0].count == SEGMENTS_PER_TIER * CHECKPOINT and len(entries) == 5


def test_a_run_gives_the_same_index_with_and_without_the_release(tmp_path):
    documents = write_numbered_documents(tmp_path / "docs")
    _build(tmp_path / "released", documents, ReleasingEncoder())
    _build(tmp_path / "kept", documents, HashingEncoder())  # no ``release``: nothing is freed
    assert _state(tmp_path / "released") == _state(tmp_path / "kept")


def test_a_merge_below_the_release_size_keeps_the_encoder(tmp_path, monkeypatch):
    """Freeing the model and Kiwi costs their reload (seconds): a merge of a few vectors, whose
    working set is far smaller, runs beside them. The merge reads 50 vectors of 64 dimensions: 12,800 bytes."""
    documents = write_numbered_documents(tmp_path / "docs")
    monkeypatch.setattr(index_store, "RELEASE_BEFORE_MERGE_BYTES", 50 * 64 * 4 + 1)
    encoder = ReleasingEncoder()
    _build(tmp_path / "index", documents, encoder)
    assert encoder.releases == [] and encoder.reloads == 0
    with kosearch.Index.open(tmp_path / "index", model=HashingEncoder()) as index:
        assert index.store.segment_entries()[0].count == SEGMENTS_PER_TIER * CHECKPOINT  # the merge ran
    monkeypatch.setattr(index_store, "RELEASE_BEFORE_MERGE_BYTES", 50 * 64 * 4)  # exactly the merge's size
    encoder = ReleasingEncoder()
    _build(tmp_path / "at-size", documents, encoder)
    assert encoder.releases == [SEGMENTS_PER_TIER]


def test_by_default_a_small_merge_inside_a_run_keeps_the_encoder(tmp_path, monkeypatch):
    monkeypatch.undo()  # the store's own release size (the fixture's lowering gone)
    documents = write_numbered_documents(tmp_path / "docs")
    encoder = ReleasingEncoder()
    _build(tmp_path / "index", documents, encoder)
    assert encoder.releases == [] and encoder.reloads == 0


def test_no_release_without_a_merge(tmp_path):
    documents = write_numbered_documents(tmp_path / "docs", files=4)
    encoder = ReleasingEncoder()
    _build(tmp_path / "index", documents, encoder)
    assert encoder.releases == [] and encoder.reloads == 0


def test_the_run_releases_kiwi_too_and_it_loads_again(tmp_path, monkeypatch):
    """With the lexical index on, the analyzer's Kiwi (shared with splitting) goes before the merge."""
    seen: list[bool] = []
    original = MorphemeAnalyzer.release

    def watched(self):
        original(self)
        seen.append(self.kiwi is None and split._kiwi is None)

    monkeypatch.setattr(MorphemeAnalyzer, "release", watched)
    documents = write_numbered_documents(tmp_path / "docs")
    _build(tmp_path / "index", documents, ReleasingEncoder())
    assert seen == [True]
    assert split._kiwi is not None  # the run analysed (and split) again after the merge


def test_a_failing_release_leaves_the_last_commit_and_the_next_run_finishes(tmp_path):
    """The hook runs after the checkpoint's commit: if it fails, the ten segments are committed,
    unmerged, and a new run merges them and indexes the rest."""

    class FailingRelease(ReleasingEncoder):
        def release(self) -> None:
            raise RuntimeError("release failed")

    documents = write_numbered_documents(tmp_path / "docs")
    with pytest.raises(RuntimeError, match="release failed"):
        _build(tmp_path / "index", documents, FailingRelease())
    with kosearch.Index.open(tmp_path / "index", model=HashingEncoder()) as index:
        assert len(index.store.segment_entries()) == SEGMENTS_PER_TIER
        assert len(index) == SEGMENTS_PER_TIER * CHECKPOINT
    encoder = ReleasingEncoder()
    with kosearch.Index.open_or_create(tmp_path / "index", model=encoder) as index:
        encoder.store = index.store
        index.add_folder(documents, unit="sentence", checkpoint_sentences=CHECKPOINT)
    _build(tmp_path / "whole", documents, HashingEncoder())
    assert _state(tmp_path / "index")[1:3] == _state(tmp_path / "whole")[1:3]


def test_checkpoint_calls_before_merge_only_when_vectors_merge(tmp_path, monkeypatch):
    """Each ``add_texts`` commits one checkpoint; the hook runs at the tenth only, after its commit
    (ten segments committed) and before the merge (which leaves one)."""
    calls: list[tuple[int, int]] = []
    original = IndexStore.checkpoint

    def with_hook(self, pending=None, *, skipped=None, before_merge=None):
        hook = lambda: calls.append((len(self.segment_entries()), self.generation))  # noqa: E731
        return original(self, pending, skipped=skipped, before_merge=hook)

    monkeypatch.setattr(IndexStore, "checkpoint", with_hook)
    with kosearch.Index.create(tmp_path / "index", model=HashingEncoder()) as index:
        for number in range(SEGMENTS_PER_TIER):
            index.add_texts([f"문장 {number} 하나", f"문장 {number} 둘"])
            if number < SEGMENTS_PER_TIER - 1:
                assert calls == []
        generation = index.store.generation
        assert len(index.store.segment_entries()) == 1
    assert calls == [(SEGMENTS_PER_TIER, generation - 1)]  # the merge is the one commit after it


def test_a_small_merge_then_a_large_one_in_one_checkpoint_releases_once_before_the_large_one(tmp_path, monkeypatch):
    """Merges cascade: the hundredth checkpoint of two texts merges ten segments of 2 vectors (5,120 bytes
    at 64 dimensions) into the tenth segment of 20, and those ten into one of 200 (51,200 bytes). With the
    release size between the two, the hook runs once, after the small merge (ten segments of 20 listed,
    not nineteen) and before the large one."""
    monkeypatch.setattr(index_store, "RELEASE_BEFORE_MERGE_BYTES", 20_000)
    calls: list[int] = []
    original = IndexStore.checkpoint

    def with_hook(self, pending=None, *, skipped=None, before_merge=None):
        return original(
            self, pending, skipped=skipped, before_merge=lambda: calls.append(len(self.segment_entries()))
        )

    monkeypatch.setattr(IndexStore, "checkpoint", with_hook)
    with kosearch.Index.create(tmp_path / "index", model=HashingEncoder()) as index:
        for number in range(SEGMENTS_PER_TIER**2):
            index.add_texts([f"문장 {number} 하나", f"문장 {number} 둘"])
        assert [entry.count for entry in index.store.segment_entries()] == [2 * SEGMENTS_PER_TIER**2]
    assert calls == [SEGMENTS_PER_TIER]


def test_the_reader_gate_holds_the_reader_between_items():
    started: list[int] = []

    def slow_items():
        for number in range(6):
            started.append(number)
            time.sleep(0.05)
            yield number

    gate = ReaderGate()
    items = _prefetch(slow_items(), 2, gate=gate)
    assert next(items) == 0
    gate.pause()  # returns once the item being read (if any) is done
    held = len(started)
    time.sleep(0.3)
    assert len(started) == held  # nothing new was read while paused
    gate.resume()
    assert list(items) == [1, 2, 3, 4, 5]


def test_the_reader_gate_lets_a_stopped_consumer_end_the_reader():
    gate = ReaderGate()
    items = _prefetch(iter(range(100)), 2, gate=gate)
    assert next(items) == 0
    gate.pause()
    items.close()  # the consumer stops while the reader is held: the thread must not hang
    threads = [thread for thread in threading.enumerate() if thread.name == "kosearch-reader"]
    for thread in threads:
        thread.join(2)
    assert not any(thread.is_alive() for thread in threads)


@pytest.mark.slow
def test_the_bundled_encoder_is_released_during_a_merge_and_the_index_matches_one_built_without(
    tmp_path, monkeypatch
):
    """The user-facing path: ``Index.add_folder`` with the bundled encoder and Kiwi, a merge inside
    the run. The model is gone during the merge, back after it, and the vectors equal those of a
    run that never released it (same model, same batches)."""
    from kosearch.encoders import Encoder

    documents = write_numbered_documents(tmp_path / "docs")
    during_merge: list[bool] = []
    original_merge = IndexStore._merge

    def watched_merge(self, names):
        during_merge.append(encoder._model is None and split._kiwi is None)
        original_merge(self, names)

    monkeypatch.setattr(IndexStore, "_merge", watched_merge)
    encoder = Encoder(None, device="cpu")
    with kosearch.Index.create(tmp_path / "released", model=encoder) as index:
        index.add_folder(documents, unit="sentence", checkpoint_sentences=CHECKPOINT)
        assert during_merge == [True]
        assert encoder._model is not None  # loaded again for the sentences after the merge
        released_hits = [(hit.path, hit.text) for hit in index.search("영화 리뷰 12", k=5, mode="dense")]
        released = _vectors(index)
    monkeypatch.setattr(Encoder, "release", lambda self: None)
    with kosearch.Index.create(tmp_path / "kept", model=Encoder(None, device="cpu")) as index:
        index.add_folder(documents, unit="sentence", checkpoint_sentences=CHECKPOINT)
        kept_hits = [(hit.path, hit.text) for hit in index.search("영화 리뷰 12", k=5, mode="dense")]
        kept = _vectors(index)
    assert released.keys() == kept.keys() and len(released) == 70
    assert max(float(np.abs(released[i] - kept[i]).max()) for i in released) < 1e-6
    assert released_hits == kept_hits


def test_an_analyzer_keeps_a_kiwi_it_was_given_and_lets_the_shared_one_go():
    own = object()
    given = MorphemeAnalyzer(kiwi=own)  # type: ignore[arg-type]
    given.release()
    assert given.kiwi is own
    shared = MorphemeAnalyzer()
    assert shared.analyze("영화가 재미있다")  # loads the process-wide Kiwi
    assert shared.kiwi is split._kiwi
    shared.release()
    assert shared.kiwi is None and split._kiwi is None
    assert shared.analyze("영화가 재미있다") == MorphemeAnalyzer().analyze("영화가 재미있다")
