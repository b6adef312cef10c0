"""The streaming HNSW merge (issue 7: memory of a merge): ``ann.build_index`` over a ``VectorStream``,
recall from the index's own storage, and the store's merge reading its sources once.

The streamed build must give what the array build gives for the same rows: same ids in the same
order, same vectors, same tuned efSearch and, with one FAISS thread (HNSW's parallel insertion is
not deterministic), the same graph, seen as identical search results. Vectors are random (no exact
ties), small and 32-64-d, so everything runs in seconds; ``ADD_BATCH`` is lowered so that the rows
go in over several adds, as they do for a real merge.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from kosearch import memory
from kosearch.errors import KosearchError
from kosearch.store import IndexStore, PendingChanges, ann
from kosearch.store.index_store import RECALL_QUERIES
from kosearch.store.vectors import FaissVectorStore, only_ids, read_vectors_once


def unit_vectors(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def one_thread():
    """HNSW inserts an add's vertices in parallel, in an order that depends on thread timing."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def chunks_of(vectors: np.ndarray, sizes: list[int]):
    assert sum(sizes) == len(vectors)
    start = 0
    for size in sizes:
        yield vectors[start : start + size]
        start += size


def assert_same_index(streamed: faiss.Index, array: faiss.Index, queries: np.ndarray) -> None:
    assert np.array_equal(faiss.vector_to_array(streamed.id_map), faiss.vector_to_array(array.id_map))
    assert np.array_equal(streamed.index.reconstruct_n(0, streamed.ntotal), array.index.reconstruct_n(0, array.ntotal))
    assert ann.search_depth(streamed) == ann.search_depth(array)
    scores_s, ids_s = streamed.search(queries, 10, params=ann.search_parameters(streamed, None))
    scores_a, ids_a = array.search(queries, 10, params=ann.search_parameters(array, None))
    assert np.array_equal(ids_s, ids_a) and np.array_equal(scores_s, scores_a)


def test_a_stream_builds_the_index_an_array_builds(one_thread, monkeypatch):
    monkeypatch.setattr(ann, "ADD_BATCH", 700)
    vectors = unit_vectors(5000, 32)
    ids = np.arange(5000, dtype=np.int64) * 3 + 11
    array = ann.build_index(ids, vectors, "HNSW32")
    streamed = ann.build_index(ids, ann.VectorStream(32, chunks_of(vectors, [1, 999, 2500, 33, 1467])), "HNSW32")
    assert_same_index(streamed, array, unit_vectors(100, 32, seed=1))
    # The held-out tuning queries are added last, in both: positions drawn as before streaming existed.
    held = np.sort(np.random.default_rng(ann._SEED).choice(5000, ann.TUNING_QUERIES, replace=False))
    order = np.concatenate([np.delete(np.arange(5000), held), held])
    assert np.array_equal(faiss.vector_to_array(streamed.id_map), ids[order])
    # The recorded recall: truth from the index's storage = truth from the caller's array.
    sample = np.random.default_rng(0).choice(5000, 200, replace=False)
    from_storage = ann.measure_stored_recall(streamed, ids[sample])
    from_array = ann.measure_recall(array, ids, vectors, vectors[sample], 10, query_ids=ids[sample])
    assert from_storage == from_array and from_storage.with_ties >= ann.TARGET_RECALL


def test_a_small_stream_tunes_on_stored_queries_like_an_array(one_thread):
    vectors = unit_vectors(600, 32, seed=2)  # under 4 x TUNING_QUERIES: nothing is held out
    ids = np.arange(600, dtype=np.int64) + 5
    array = ann.build_index(ids, vectors, "HNSW32")
    streamed = ann.build_index(ids, ann.VectorStream(32, chunks_of(vectors, [100, 500])), "HNSW32")
    assert_same_index(streamed, array, unit_vectors(50, 32, seed=3))
    assert np.array_equal(faiss.vector_to_array(streamed.id_map), ids)


def test_stored_vectors_is_a_read_only_view_of_exact_storage_only():
    vectors = unit_vectors(1200, 16, seed=4)
    ids = np.arange(1200, dtype=np.int64) + 1
    for factory in ("Flat", "HNSW32"):
        index = ann.build_index(ids, vectors, factory)
        stored_ids, stored = ann.stored_vectors(index)
        assert np.array_equal(stored, index.index.reconstruct_n(0, 1200)) and not stored.flags.writeable
        assert np.array_equal(stored_ids, faiss.vector_to_array(index.id_map))
        assert ann.keeps_exact_vectors(factory, 16)
    ivf = ann.build_index(ids, vectors, "IVF16,SQ8")
    assert ann.stored_vectors(ivf) is None and not ann.keeps_exact_vectors("IVF16,SQ8", 16)
    assert not ann.keeps_exact_vectors("HNSW32,SQ8", 16)
    with pytest.raises(KosearchError, match="does not store its vectors exactly"):
        ann.measure_stored_recall(ivf, ids[:5])


def test_a_stream_for_a_compressed_factory_is_gathered_into_the_array_path():
    vectors = unit_vectors(3000, 16, seed=5)
    ids = np.arange(3000, dtype=np.int64) * 2
    array = ann.build_index(ids, vectors, "IVF16,Flat")
    streamed = ann.build_index(ids, ann.VectorStream(16, chunks_of(vectors, [1000, 2000])), "IVF16,Flat")
    assert_same_index(streamed, array, unit_vectors(40, 16, seed=6))


@pytest.mark.parametrize(
    ("sizes", "dimension", "message"),
    [([100, 100], 32, "outnumber"), ([100], 32, "arrived for"), ([150], 16, "16-d vectors")],
)
def test_a_stream_that_does_not_match_its_ids_is_refused(sizes, dimension, message):
    ids = np.arange(150, dtype=np.int64)
    stream = ann.VectorStream(dimension, (unit_vectors(size, 32) for size in sizes))
    with pytest.raises(KosearchError, match=message):
        ann.build_index(ids, stream, "HNSW32")


# -- the store's merge ---------------------------------------------------------------------------------


def _store(folder: Path, vectors: np.ndarray, segments: int, factory: str | None) -> IndexStore:
    """A store of ``segments`` flat segments, 4 documents each, of consecutive ids from 1."""
    manifest = {"model": "test/model", "fingerprint": "test", "dimension": vectors.shape[1], "prompts": {}}
    store = IndexStore.create(folder, manifest, **({} if factory is None else {"factory": factory}))
    number = 0
    for rows in np.array_split(np.arange(len(vectors)), segments):
        store.add_vectors(rows + 1, vectors[rows])
        documents, sentences = [], []
        for part in np.array_split(rows, 4):
            number += 1
            documents.append({"id": number, "root": "/t", "path": f"d{number}.txt", "sha256": "x", "size": 1,
                              "encoding": "utf-8", "format": "txt", "sentences": len(part), "indexed_at": "now"})
            sentences += [{"id": int(i) + 1, "document_id": number, "position": p, "text": "가", "line": 1,
                           "start": 0, "end": 1} for p, i in enumerate(part)]
        store.checkpoint(PendingChanges(documents=documents, sentences=sentences, removed_documents=[]))
    return store


@pytest.mark.parametrize("factory", [None, "HNSW16,Flat", "HNSW16,SQfp16"])
def test_a_merge_streams_into_the_index_the_array_build_gives(tmp_path, monkeypatch, one_thread, factory):
    """Compaction of 3 segments with deletions = build_index over the live rows in one array, and the
    recorded recall = measure_recall against that array (the issue-7 merge path before streaming).
    The default and an explicit exact-storage factory stream; SQfp16 (compressed codes, so no exact
    truth in the index) is the store's one trainless compressed factory and keeps the array path."""
    monkeypatch.setattr(ann, "BREAK_EVEN", 1)
    monkeypatch.setattr(ann, "ADD_BATCH", 500)
    vectors = unit_vectors(2400, 64, seed=7)
    store = _store(tmp_path / "idx", vectors, 3, factory)
    store.remove_documents([2, 7])  # a document inside the first and one inside the second segment
    store.checkpoint()
    # What the sources hold (SQfp16 segments hold fp16-rounded vectors), live ones in reading order.
    read = [pair for segment in store._segments for pair in segment.vectors.iter_vectors()]
    ids, held = np.concatenate([i for i, _ in read]), np.concatenate([v for _, v in read])
    live = ~np.isin(ids, store._tombstones)
    ids, held = ids[live], held[live]
    store.compact()
    (entry,) = store.segment_entries()
    merged = store._segments[0].vectors.index
    store.close()

    expected_factory = factory or ann.ANN_FACTORY
    array = ann.build_index(ids, held, expected_factory)
    assert entry.factory == expected_factory and entry.count == len(ids) == 2400 - 400
    assert_same_index(merged, array, unit_vectors(60, 64, seed=8))
    sample = np.random.default_rng(0).choice(len(ids), min(RECALL_QUERIES, len(ids)), replace=False)
    recall = ann.measure_recall(array, ids, held, held[sample], 10, query_ids=ids[sample])
    assert entry.recall_at_10 == pytest.approx(recall.with_ties, abs=0) and recall.with_ties >= ann.TARGET_RECALL
    assert entry.recall_at_10_ids == pytest.approx(recall.by_ids, abs=0)


def _mapped_rss_kb(path: Path) -> int:
    """Resident kB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            inside = len(fields) >= 6 and fields[5] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps; madvise is Linux's")
def test_reading_a_mapped_segment_once_drops_its_pages_and_leaves_memory_stores_intact(tmp_path):
    vectors = unit_vectors(20_000, 128, seed=9)  # 10 MB
    ids = np.arange(20_000, dtype=np.int64) + 1
    path = tmp_path / "segment.000001.faiss"
    source = FaissVectorStore.empty(128)
    source.add(ids, vectors)
    source.save(path)

    mapped = FaissVectorStore.load(path, mmap=True)
    kept = [batch for _, batch in mapped.iter_vectors(4096)]
    assert _mapped_rss_kb(path) > 8_000  # a plain pass keeps the touched pages mapped
    del kept, mapped

    once = FaissVectorStore.load(path, mmap=True)
    read = list(read_vectors_once(once, 4096))
    assert _mapped_rss_kb(path) < 1_000
    assert np.array_equal(np.concatenate([i for i, _ in read]), ids)
    assert np.array_equal(np.concatenate([v for _, v in read]), vectors)
    _, found = once.search(vectors[:5], 1)  # the dropped pages come back from the file on use
    assert np.array_equal(found[:, 0], ids[:5])

    in_memory = FaissVectorStore.load(path)  # owned memory: never released (it would be zeroed)
    list(read_vectors_once(in_memory, 4096))
    assert np.array_equal(np.concatenate([v for _, v in in_memory.iter_vectors()]), vectors)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps; madvise is Linux's")
def test_opening_a_mapped_hnsw_segment_leaves_none_of_its_pages_resident_and_it_searches_the_same(tmp_path):
    """FAISS reads an HNSW graph through the mapping (checking every neighbour); those pages are dropped after
    the load, so a process that opens a segment and never searches it holds none of it."""
    vectors = unit_vectors(20_000, 32, seed=12)
    ids = np.arange(20_000, dtype=np.int64) + 1
    path = tmp_path / "segment.000001.faiss"
    source = FaissVectorStore.empty(32, "HNSW32")
    source.add(ids, vectors)
    source.save(path)
    expected = source.search(vectors[:50], 10)

    mapped = FaissVectorStore.load(path, mmap=True)
    assert _mapped_rss_kb(path) < 200  # the graph alone is 20,000 x 64 neighbours x 4 bytes = 5 MB
    found = mapped.search(vectors[:50], 10)
    assert np.array_equal(found[1], expected[1]) and np.allclose(found[0], expected[0])
    assert _mapped_rss_kb(path) > 0  # the search mapped back what it touched


def test_compaction_rebuilds_a_graph_built_shallower_than_the_current_depth(tmp_path, monkeypatch):
    """An HNSW segment records the efConstruction its graph was built with; a segment built shallower
    (or before the depth was recorded, FAISS's default 40) is rebuilt by the next compaction even with
    nothing to merge, and a current one is left alone."""
    monkeypatch.setattr(ann, "BREAK_EVEN", 1)
    vectors = unit_vectors(1200, 32, seed=11)
    monkeypatch.setattr(ann, "EF_CONSTRUCTION", 40)
    store = _store(tmp_path / "idx", vectors, 1, None)
    store.compact()
    (old,) = store.segment_entries()
    assert old.factory == ann.ANN_FACTORY and old.ef_construction == 40
    assert ann.graph_outdated(old.factory, None) is False  # None reads as 40, which is current here

    monkeypatch.setattr(ann, "EF_CONSTRUCTION", 80)
    assert ann.graph_outdated(old.factory, old.ef_construction) and ann.graph_outdated(old.factory, None)
    assert not ann.graph_outdated("Flat", None) and not ann.graph_outdated("IVF64,SQ8", None)
    store.compact()
    (rebuilt,) = store.segment_entries()
    assert rebuilt.name != old.name and rebuilt.ef_construction == 80 and rebuilt.count == old.count
    assert ann.ef_construction(store._segments[0].vectors.index) == 80

    store.compact()  # current: nothing to do
    assert store.segment_entries() == [rebuilt]
    store.close()
    reopened = IndexStore.open(tmp_path / "idx")
    assert reopened.segment_entries() == [rebuilt]  # the depth survives the manifest
    reopened.close()


def test_a_checkpoint_of_an_hnsw_factory_index_builds_and_records_the_current_depth(tmp_path):
    """An index created with an HNSW ``--faiss-factory`` writes a graph at every checkpoint; it is built
    at ``EF_CONSTRUCTION`` and says so, so compaction has nothing to rebuild."""
    store = _store(tmp_path / "idx", unit_vectors(300, 32, seed=12), 2, "HNSW16,Flat")
    entries = store.segment_entries()
    assert [entry.ef_construction for entry in entries] == [ann.EF_CONSTRUCTION] * 2
    assert all(ann.ef_construction(segment.vectors.index) == ann.EF_CONSTRUCTION for segment in store._segments)
    assert not any(ann.graph_outdated(entry.factory, entry.ef_construction) for entry in entries)
    store.close()


def test_the_exact_fallback_search_works_in_blocks_and_keeps_the_stable_order(monkeypatch):
    """A batch of queries over many allowed units is scored a block of queries at a time (a batch of
    5,953 refining queries over 1.1M units once asked for 24.8 GiB at once); the answer is a stable
    argsort's, ties to the lower position."""
    from kosearch.store import index_store

    rng = np.random.default_rng(3)
    vectors = np.round(rng.standard_normal((500, 8)), 1).astype(np.float32)  # rounded: many equal scores
    ids = np.arange(500, dtype=np.int64) * 2 + 1
    queries = np.round(rng.standard_normal((37, 8)), 1).astype(np.float32)

    class View:
        def iter_vectors(self, allowed_ids=None):  # as the real view: only the allowed rows
            yield from only_ids([(ids[:200], vectors[:200]), (ids[200:], vectors[200:])], allowed_ids)

    allowed = ids[::3]
    monkeypatch.setattr(index_store, "EXACT_BLOCK_SCORES", 1000)  # 6 queries per block
    scores, found = index_store._exact_search(View(), queries, 12, allowed)
    kept = np.isin(ids, allowed)
    full = queries @ vectors[kept].T
    order = np.argsort(-full, axis=1, kind="stable")[:, :12]
    assert np.array_equal(found, ids[kept][order])
    # The scores of a block and of the whole matrix may differ in the last float32 bit: BLAS splits the two
    # shapes differently on some CPUs (AMD EPYC here). The order above is what must be exact.
    assert np.allclose(scores, np.take_along_axis(full, order, axis=1), rtol=0, atol=1e-5)


@pytest.mark.parametrize("k", [1, 12, 60, 400])
def test_the_exact_fallback_search_streams_batches_without_holding_them(monkeypatch, k):
    """Batches with no allowed unit, fewer allowed units than k, and k past every allowed unit: the answer
    is still a stable argsort's over all allowed units, and its width is min(k, allowed)."""
    from kosearch.store import index_store

    rng = np.random.default_rng(k)
    vectors = np.round(rng.standard_normal((300, 6)), 1).astype(np.float32)
    ids = np.arange(300, dtype=np.int64) + 1000
    queries = np.round(rng.standard_normal((9, 6)), 1).astype(np.float32)
    allowed = np.concatenate([ids[5:40:2], ids[200:203], ids[250:300]])  # nothing allowed in 100-200

    class View:
        def iter_vectors(self, allowed_ids=None):
            batches = [(ids[start : start + 100], vectors[start : start + 100]) for start in range(0, 300, 100)]
            yield from only_ids(batches, allowed_ids)

    monkeypatch.setattr(index_store, "EXACT_BLOCK_SCORES", 200)
    scores, found = index_store._exact_search(View(), queries, k, allowed)
    kept = np.isin(ids, allowed)
    full = queries @ vectors[kept].T
    order = np.argsort(-full, axis=1, kind="stable")[:, :k]
    assert found.shape == (9, min(k, int(kept.sum())))
    assert np.array_equal(found, ids[kept][order])
    assert np.allclose(scores, np.take_along_axis(full, order, axis=1), atol=1e-6)
    empty_scores, empty_found = index_store._exact_search(View(), queries, k, np.array([5], dtype=np.int64))
    assert empty_found.shape == (9, 0) and empty_scores.shape == (9, 0)


@pytest.mark.parametrize("factory", ["Flat", "HNSW8", "IVF4,Flat"])
@pytest.mark.parametrize("ascending", [True, False])
def test_reading_vectors_by_id_equals_scanning(factory, ascending):
    """``iter_vectors_of`` reads only the wanted ids' vectors (Flat, HNSW), or scans where FAISS cannot
    reconstruct by position (IVF without a direct map): the same rows, in storage order, either way."""
    import faiss

    from kosearch.store.vectors import FaissVectorStore

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((400, 8)).astype(np.float32)
    ids = np.arange(400, dtype=np.int64) * 3 + 5
    if not ascending:
        ids = rng.permutation(ids)
    inner = faiss.index_factory(8, factory, faiss.METRIC_INNER_PRODUCT)
    inner.train(vectors)
    store = FaissVectorStore(faiss.IndexIDMap2(inner))
    store.add(ids, vectors)
    wanted = np.unique(np.concatenate([rng.choice(ids, 37, replace=False), [1, 2, 10_000]]))  # some held by none
    got = list(store.iter_vectors_of(wanted, batch_size=16))
    expected = [(batch_ids[np.isin(batch_ids, wanted)], batch[np.isin(batch_ids, wanted)]) for batch_ids, batch in store.iter_vectors()]
    got_ids = np.concatenate([batch_ids for batch_ids, _ in got])
    got_vectors = np.concatenate([batch for _, batch in got])
    assert np.array_equal(got_ids, np.concatenate([batch_ids for batch_ids, _ in expected]))
    assert np.allclose(got_vectors, np.concatenate([batch for _, batch in expected]))
    assert list(store.iter_vectors_of(np.array([1, 2], dtype=np.int64))) == []


def test_only_the_short_rows_of_a_batch_go_to_the_exact_fallback():
    """Where the approximate search found fewer than k allowed units for some queries, only those are
    answered exactly; the others keep their approximate answer, so each query's answer is the one it gets
    alone (a whole batch once went to the exact scan when one row was short)."""
    from kosearch.store import index_store

    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((120, 6)).astype(np.float32)
    ids = np.arange(120, dtype=np.int64) + 500
    queries = rng.standard_normal((5, 6)).astype(np.float32)
    allowed = ids[::2]
    scanned = []

    class View:
        def iter_vectors(self, allowed_ids=None):
            scanned.append(len(allowed_ids))
            yield from only_ids([(ids, vectors)], allowed_ids)

    k = 4
    # an approximate answer that is deliberately not the exact one, and two rows that came back short
    approx_ids = np.tile(allowed[-k:][::-1], (5, 1))
    approx_scores = np.tile(np.arange(k, 0, -1, dtype=np.float32), (5, 1))
    approx_ids[1, 3] = -1
    approx_ids[3, 1:] = -1
    short = np.array([False, True, False, True, False])

    scores, found = index_store._complete_short_rows(View(), queries, approx_scores, approx_ids, k, allowed)
    exact_scores, exact_found = index_store._exact_search(View(), queries, k, allowed)
    assert np.array_equal(found[~short], approx_ids[~short]) and np.array_equal(scores[~short], approx_scores[~short])
    assert np.array_equal(found[short], exact_found[short]) and np.allclose(scores[short], exact_scores[short])
    for row in range(5):  # the same answer as the query gets alone
        alone_scores, alone = index_store._complete_short_rows(
            View(), queries[row : row + 1], approx_scores[row : row + 1], approx_ids[row : row + 1], k, allowed
        )
        assert np.array_equal(alone[0], found[row])

    scanned.clear()
    complete = approx_ids.copy()
    complete[1, 3], complete[3, 1:] = allowed[0], allowed[1:4]
    unchanged_scores, unchanged = index_store._complete_short_rows(View(), queries, approx_scores, complete, k, allowed)
    assert unchanged is complete and unchanged_scores is approx_scores and scanned == []  # no scan at all


def _heap_mappings() -> list[tuple[int, int, str]]:
    """``(start, stop, VmFlags)`` of each mapping /proc/self/smaps names ``[heap]`` (glibc's brk heap)."""
    found, current = [], None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:
            start, stop = (int(part, 16) for part in fields[0].split("-"))
            current = (start, stop) if len(fields) >= 6 and fields[5] == "[heap]" else None
        elif current is not None and fields[0] == "VmFlags:":
            found.append((*current, " ".join(fields[1:])))
    return found


def _in_heap(array: np.ndarray) -> bool:
    return any(start <= array.ctypes.data < stop for start, stop, _ in _heap_mappings())


def _heap_during_a_merge(folder: str) -> dict:
    """What a merge's build sees of the heap, in this process: run in a fresh interpreter (below), since
    where glibc puts a block depends on the process's history (a free heap chunk left by an earlier test
    is reused whatever the mmap threshold)."""
    lift = np.ones(16 << 20, dtype=np.uint8)  # freeing a mapped 16 MiB block lifts glibc's rising threshold
    del lift
    outside = np.ones(5 << 20, dtype=np.uint8)
    seen = {"outside_in_heap": _in_heap(outside)}
    original = ann.build_index

    def watching(*args, **kwargs):
        inside = np.ones(5 << 20, dtype=np.uint8)
        seen["in_heap"] = _in_heap(inside)
        seen["heap_flags"] = [flags for _, _, flags in _heap_mappings()]
        return original(*args, **kwargs)

    ann.BREAK_EVEN, ann.build_index = 1, watching
    store = _store(Path(folder) / "idx", unit_vectors(1200, 32, seed=3), 3, None)
    store.compact()
    store.close()
    return seen


@pytest.mark.skipif(memory._mallopt() is None, reason="glibc's allocator settings on Linux")
def test_a_merge_keeps_large_arrays_out_of_the_heap_and_huge_pages_off_it(tmp_path):
    """numpy advises huge pages for arrays of 4 MiB and more; in glibc's heap, khugepaged then fills huge
    pages around its free pages during an hour-long HNSW add (docs/benchmarks.md, section h). During a
    merge's build, such arrays must get mappings of their own and the heap must be advised against huge pages."""
    script = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_merge_stream as t; "
        f"print(json.dumps(t._heap_during_a_merge({str(tmp_path)!r})))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["outside_in_heap"]  # what a merge must not do (and what makes this test able to fail)
    assert seen["in_heap"] is False
    assert seen["heap_flags"] and all("nh" in flags.split() and "hg" not in flags.split() for flags in seen["heap_flags"])
