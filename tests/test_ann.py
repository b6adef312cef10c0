"""kosearch/store/ann.py: the factory chosen by size, tuned ANN indexes, recall, selectors.

Vectors are small clustered random ones (a few thousand, 32-d) so every test runs in well under a
second; the real-vector numbers behind the break-even live in bench/bench_ann.py.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from kosearch.errors import KosearchError
from kosearch.store import ann

FACTORIES = ["Flat", "HNSW32", "IVF64,SQ8", "IVF64,Flat"]


def clustered(count: int, dimension: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around 40 centres: like sentence embeddings, they have neighbourhoods."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dimension))
    vectors = centres[rng.integers(0, 40, count)] + 0.6 * rng.normal(size=(count, dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


@pytest.fixture(scope="module")
def data():
    everything = clustered(4064)  # held-out queries from the same distribution as the stored vectors
    vectors, queries = everything[:4000], everything[4000:]
    ids = np.arange(len(vectors), dtype=np.int64) * 7 + 100  # not positions: the id map must matter
    return ids, vectors, queries


@pytest.fixture(scope="module")
def built(data):
    ids, vectors, _ = data
    return {factory: ann.build_index(ids, vectors, factory) for factory in FACTORIES}


def test_flat_below_break_even_and_ann_above():
    assert ann.choose_factory(0, 384) == "Flat"
    assert ann.choose_factory(ann.BREAK_EVEN - 1, 384) == "Flat"
    assert ann.choose_factory(ann.BREAK_EVEN, 384) == ann.ANN_FACTORY
    assert ann.choose_factory(1_000_000, 384) == ann.ANN_FACTORY
    # A flat scan's cost is count x dimension: smaller vectors move the break-even up.
    assert ann.choose_factory(ann.BREAK_EVEN, 192) == "Flat"
    with pytest.raises(ValueError):
        ann.choose_factory(10, 0)


@pytest.mark.parametrize("factory", FACTORIES)
def test_built_index_is_an_id_map_over_the_factory_and_reaches_target_recall(built, data, factory):
    ids, vectors, queries = data
    index = built[factory]
    assert isinstance(index, faiss.IndexIDMap2)
    assert index.ntotal == len(ids)
    assert index.is_trained
    assert set(faiss.vector_to_array(index.id_map).tolist()) == set(ids.tolist())
    assert ann.measure_recall(index, ids, vectors, queries).with_ties >= ann.TARGET_RECALL
    sample = np.arange(0, len(ids), 37)
    recall = ann.measure_recall(index, ids, vectors, vectors[sample], query_ids=ids[sample])
    assert recall.with_ties >= ann.TARGET_RECALL
    assert recall.by_ids <= recall.with_ties  # no duplicates here, so the two are close


def test_tuning_raises_the_search_depth_and_the_file_keeps_it(built, tmp_path):
    hnsw, ivf = built["HNSW32"], built["IVF64,SQ8"]
    assert ann.search_depth(built["Flat"]) == {}
    assert set(ann.search_depth(hnsw)) == {"efSearch"}
    assert ann.search_depth(ivf)["nprobe"] > 1  # one list of 64 cannot hold the 10 nearest of most queries
    for name, index in (("hnsw", hnsw), ("ivf", ivf)):
        path = tmp_path / f"{name}.faiss"
        faiss.write_index(index, str(path))
        assert ann.search_depth(faiss.read_index(str(path))) == ann.search_depth(index)


def test_measure_recall_can_fail():
    """An index tuned too shallow must measure below target: recall is computed, not assumed."""
    ids = np.arange(4000, dtype=np.int64)
    everything = clustered(4064, seed=3)
    vectors, queries = everything[:4000], everything[4000:]
    index = ann.build_index(ids, vectors, "IVF64,Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    recall = ann.measure_recall(index, ids, vectors, queries)
    assert 0.0 < recall.by_ids <= recall.with_ties < ann.TARGET_RECALL
    # And the exact index is exact.
    flat = ann.build_index(ids, vectors, "Flat")
    assert ann.measure_recall(flat, ids, vectors, queries) == ann.Recall(1.0, 1.0)


@pytest.mark.parametrize("factory", FACTORIES)
def test_selectors_are_honoured_with_tuned_depth(built, data, factory):
    """Tombstones (IDSelectorNot) and filters (IDSelectorBatch), combined with IDSelectorAnd."""
    ids, vectors, queries = data
    index = built[factory]
    deleted = ids[::3]
    allowed = ids[ids % 2 == 0]
    selector = faiss.IDSelectorAnd(
        faiss.IDSelectorNot(faiss.IDSelectorBatch(deleted)), faiss.IDSelectorBatch(allowed)
    )
    params = ann.search_parameters(index, selector)
    expected_type = {"Flat": faiss.SearchParameters, "HNSW32": faiss.SearchParametersHNSW}.get(
        factory, faiss.SearchParametersIVF
    )
    assert type(params) is expected_type
    assert ann.search_parameters(index, None).sel is None
    _, found = index.search(queries, 10, params=params)
    hits = found[found >= 0]
    assert len(hits) > 0.9 * found.size
    assert not np.isin(hits, deleted).any()
    assert np.isin(hits, allowed).all()
    # The answer is close to exact search over the live, allowed vectors only.
    live = np.isin(ids, allowed) & ~np.isin(ids, deleted)
    assert _recall_against(ids[live], vectors[live], queries, found) >= 0.9


def test_search_parameters_keep_the_tuned_depth(built):
    hnsw, ivf = built["HNSW32"], built["IVF64,SQ8"]
    selector = faiss.IDSelectorBatch(np.arange(10, dtype=np.int64))
    assert ann.search_parameters(hnsw, selector).efSearch == ann.search_depth(hnsw)["efSearch"]
    assert ann.search_parameters(ivf, selector).nprobe == ann.search_depth(ivf)["nprobe"]


def test_ivf_vectors_can_be_read_back_for_compaction(built, data):
    ids, vectors, _ = data
    for factory in ("HNSW32", "IVF64,Flat"):
        index = built[factory]
        position = 5
        assert faiss.vector_to_array(index.id_map)[position] == ids[position]
        np.testing.assert_allclose(index.index.reconstruct(position), vectors[position], atol=1e-5)


def test_bad_input_is_a_kosearch_error():
    with pytest.raises(KosearchError, match="factory string"):
        ann.build_index(np.arange(3), clustered(3), "NotAnIndex")
    with pytest.raises(KosearchError, match="do not match"):
        ann.build_index(np.arange(4), clustered(3), "Flat")
    with pytest.raises(KosearchError, match="trained"):
        ann.build_index(np.zeros(0, dtype=np.int64), np.zeros((0, 32), dtype=np.float32), "IVF64,Flat")


def test_ivf_list_count_follows_sqrt_n():
    assert ann.ivf_lists(1_000_000) == 3968  # 4000 rounded to a multiple of 64
    assert ann.ivf_lists(10) == 64
    assert ann.is_known_factory("HNSW32") and ann.is_known_factory(f"IVF{ann.ivf_lists(10**6)},SQ8")
    assert not ann.is_known_factory("IVF64,PQ8,junk")


def _recall_against(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, found: np.ndarray) -> float:
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, positions = exact.search(queries, found.shape[1])
    truth = ids[positions]
    return float(np.mean([len(np.intersect1d(t, f)) / len(t) for t, f in zip(truth, found)]))


def test_build_index_leaves_the_callers_vectors_unchanged_and_adds_held_out_rows_last():
    """build_index reorders the rows in place to add the held-out ones last, then puts them back."""
    vectors = clustered(3000, 16, seed=3)
    vectors[100:400] = vectors[1000:1300]  # duplicates: ties in the exact answers
    ids = np.arange(3000, dtype=np.int64) * 7 + 1
    before = vectors.copy()
    index = ann.build_index(ids, vectors, "HNSW32")
    assert np.array_equal(vectors, before)
    held_out = np.zeros(3000, dtype=bool)
    held_out[np.random.default_rng(ann._SEED).choice(3000, ann.TUNING_QUERIES, replace=False)] = True
    order = np.concatenate([np.flatnonzero(~held_out), np.flatnonzero(held_out)])
    assert np.array_equal(faiss.vector_to_array(index.id_map), ids[order])
    assert np.array_equal(index.index.reconstruct_n(0, 3000), before[order])
    read_only = before.copy()
    read_only.flags.writeable = False
    again = ann.build_index(ids, read_only, "HNSW32")
    assert np.array_equal(faiss.vector_to_array(again.id_map), ids[order])


def test_exact_neighbours_match_a_flat_index_with_ties():
    vectors = clustered(2000, 16, seed=4)
    vectors[:500] = vectors[500:1000]
    queries = vectors[::37]
    flat = faiss.IndexFlatIP(16)
    flat.add(vectors)
    _, expected = flat.search(queries, 11)
    assert np.array_equal(ann.exact_neighbours(vectors, queries, 11), expected)


# -- recall with ties (duplicated vectors) -------------------------------------------------------------


def duplicated(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors where most vectors come in identical copies (1 to 12 of each of 400), as
    short reviews repeat word for word: a query's exact top 10 is then an arbitrary pick among equals."""
    rng = np.random.default_rng(seed)
    distinct = clustered(400, 16, seed=seed)
    vectors = np.repeat(distinct, rng.integers(1, 13, len(distinct)), axis=0)
    vectors = vectors[rng.permutation(len(vectors))]
    return np.arange(len(vectors), dtype=np.int64) * 3 + 11, np.ascontiguousarray(vectors)


def brute_force_recall(ids, vectors, queries, found, k=10, query_ids=None, epsilon=ann.TIE_EPSILON) -> float:
    """Recall with ties computed from scratch: every score in float64, each query's k-th best among
    all stored vectors but itself, and the share of returned ids scoring at least that minus epsilon."""
    position = {int(i): row for row, i in enumerate(ids)}
    scores = queries.astype(np.float64) @ vectors.astype(np.float64).T
    hits = 0
    for row in range(len(queries)):
        others = np.ones(len(ids), dtype=bool) if query_ids is None else ids != query_ids[row]
        kth = np.sort(scores[row][others])[::-1][k - 1]
        got = [int(i) for i in found[row] if i >= 0 and (query_ids is None or i != query_ids[row])][:k]
        hits += sum(scores[row, position[i]] >= kth - epsilon for i in got)
    return hits / (k * len(queries))


@pytest.mark.parametrize("factory", ["HNSW8", "IVF16,SQ8"])
def test_recall_with_ties_counts_equal_neighbours_and_uses_exact_scores(factory, monkeypatch):
    monkeypatch.setattr(ann, "EF_CONSTRUCTION", 40)  # FAISS's default: a graph sparse enough to miss at depth 16
    ids, vectors = duplicated()
    index = ann.build_index(ids, vectors, factory)
    steps, set_depth = ann.depth_steps(index)
    # A shallow search (one list; efSearch 4, below tuning's first step, because FAISS 1.15's graph already finds
    # every true neighbour at 16 here): some true misses as well as ties.
    set_depth(4 if factory.startswith("HNSW") else steps[0])
    sample = np.arange(0, len(ids), 41)
    queries, query_ids = vectors[sample], ids[sample]
    recall = ann.measure_recall(index, ids, vectors, queries, query_ids=query_ids)
    _, found = index.search(queries, 11, params=ann.search_parameters(index, None))
    # Computed independently (SQ8's approximate distances must not leak in: scores come from the vectors).
    assert recall.with_ties == pytest.approx(brute_force_recall(ids, vectors, queries, found, query_ids=query_ids), abs=1e-12)
    assert recall.by_ids < recall.with_ties < 1.0


def test_an_exact_index_is_perfect_with_ties_whatever_equal_neighbour_it_returns():
    """A flat index holding the rows in reverse order breaks ties the other way than exact search over the
    caller's order: by ids it looks wrong, with ties it is (rightly) perfect."""
    ids, vectors = duplicated(seed=6)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    flat.add_with_ids(vectors[::-1].copy(), ids[::-1].copy())
    queries = vectors[::25]  # stored vectors (themselves included): their copies tie at the top
    recall = ann.measure_recall(flat, ids, vectors, queries)
    assert recall.with_ties == 1.0
    assert recall.by_ids < 0.95
    _, found = flat.search(queries, 10)
    assert brute_force_recall(ids, vectors, queries, found) == 1.0


def test_the_epsilon_separates_identical_vectors_from_close_ones():
    """One query, exact top 2 = (a, b); the index returns (a, c) with c 5e-4 below b: a miss at 1e-5, found at 1e-3."""
    truth, found = np.array([[1, 2]]), np.array([[1, 3]])
    truth_scores, found_scores = np.array([[0.9, 0.8]]), np.array([[0.9, 0.8 - 5e-4]])
    assert ann.recall_at_k(truth, truth_scores, found, found_scores, 2).with_ties == 0.5
    assert ann.recall_at_k(truth, truth_scores, found, found_scores, 2, epsilon=1e-3).with_ties == 1.0
    tie = np.array([[0.9, 0.8]])  # c exactly as close as b: a tie, found either way; by ids still a miss
    assert ann.recall_at_k(truth, truth_scores, found, tie, 2) == ann.Recall(1.0, 0.5)
    # A query's own id is left out of both answers before the top k are taken.
    own = ann.recall_at_k(np.array([[7, 1, 2]]), np.array([[1.0, 0.9, 0.8]]), np.array([[1, 7, 3]]),
                          np.array([[0.9, 1.0, 0.5]]), 2, query_ids=np.array([7]))
    assert own == ann.Recall(0.5, 0.5)


def test_tuning_stops_earlier_when_ties_count():
    """On duplicated vectors the old rule (by ids) runs deeper, or to the last step; the new one stops
    at the first depth whose recall with ties reaches the target, and measure_recall confirms it."""
    ids, vectors = duplicated(seed=8)
    index = ann.build_index(ids, vectors, "HNSW32")
    chosen = ann.search_depth(index)["efSearch"]
    sample = np.random.default_rng(1).choice(len(ids), 256, replace=False)
    truth = ann.ExactAnswers(ids, vectors, vectors[sample], 10, ids[sample])
    steps, set_depth = ann.depth_steps(index)
    by_step = {}
    for value in steps:
        set_depth(value)
        _, found = index.search(truth.queries, truth.depth, params=ann.search_parameters(index, None))
        by_step[value] = truth.recall(found)
    target = ann.TARGET_RECALL + ann.TUNING_MARGIN
    old_rule = next((value for value in steps if by_step[value].by_ids >= target), steps[-1])
    assert chosen < old_rule
    set_depth(chosen)
    assert ann.measure_recall(index, ids, vectors, vectors[sample], query_ids=ids[sample]).with_ties >= ann.TARGET_RECALL
