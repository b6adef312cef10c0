"""kosearch/store/pair_mining.py: top pairs by k-NN, exact (checked against sentence-transformers'
``paraphrase_mining_embeddings``) and through an ANN index (recall of the top pairs measured), and
``mine_paraphrases`` taking the ANN path above the break-even."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import util

from kosearch.paraphrases import mine_paraphrases
from kosearch.store import ann
from kosearch.store.pair_mining import PairBuffer, mine_pairs
from kosearch_testing import HashingEncoder
from test_ann import clustered
from test_paraphrases import TEXTS, _store_with


def _pair_set(first, second) -> set[tuple[int, int]]:
    return set(zip(first.tolist(), second.tolist()))


def test_exact_mining_matches_sentence_transformers():
    vectors = clustered(1500, seed=5)
    ids = np.arange(len(vectors), dtype=np.int64)
    first, second, scores = mine_pairs(ids, vectors, top=300, neighbours=5, factory="Flat")
    reference = util.paraphrase_mining_embeddings(torch.from_numpy(vectors), top_k=5, max_pairs=300)
    assert _pair_set(first, second) == {(min(i, j), max(i, j)) for _, i, j in reference}
    np.testing.assert_allclose(scores, [s for s, _, _ in reference], atol=1e-5)
    assert (first < second).all() and (np.diff(scores) <= 0).all()


@pytest.mark.parametrize("factory", ["HNSW32", "IVF64,Flat"])
def test_ann_mining_recovers_the_exact_top_pairs(factory):
    vectors = clustered(3000, seed=6)
    ids = np.arange(len(vectors), dtype=np.int64) * 5 + 11
    exact = _pair_set(*mine_pairs(ids, vectors, top=500, factory="Flat")[:2])
    found = _pair_set(*mine_pairs(ids, vectors, top=500, factory=factory, batch_size=256)[:2])
    assert len(found) == 500
    assert len(found & exact) / len(exact) >= 0.95


def test_the_buffer_stays_bounded_and_keeps_the_best_of_both_sides():
    buffer = PairBuffer(top=3, min_score=None)
    buffer.offer(np.array([1, 2, 5]), np.array([2, 1, 6]), np.array([0.9, 0.9, 0.5], dtype=np.float32))
    buffer.offer(np.array([7, 8, 3]), np.array([8, 9, 4]), np.array([0.95, 0.4, 0.6], dtype=np.float32))
    first, second, scores = buffer.result()
    assert list(zip(first.tolist(), second.tolist())) == [(7, 8), (1, 2), (3, 4)]
    np.testing.assert_allclose(scores, [0.95, 0.9, 0.6])
    floor = PairBuffer(top=None, min_score=0.7)
    floor.offer(np.array([1, 3]), np.array([2, 4]), np.array([0.9, 0.6], dtype=np.float32))
    assert _pair_set(*floor.result()[:2]) == {(1, 2)}


def test_mine_paraphrases_above_the_break_even_uses_ann_and_agrees(tmp_path, monkeypatch):
    encoder = HashingEncoder(dimension=128)
    texts = TEXTS + TEXTS[:3]  # duplicates: only one copy of each text takes part
    store = _store_with(tmp_path, texts, encoder)
    exact = mine_paraphrases(store, top=8, neighbours=5)
    built = []
    original = ann.build_index
    monkeypatch.setattr(ann, "BREAK_EVEN", 4)
    monkeypatch.setattr(ann, "build_index", lambda *args: built.append(args[2]) or original(*args))
    approximate = mine_paraphrases(store, top=8, neighbours=5)
    assert built == [ann.ANN_FACTORY]
    assert [(p.a.sentence_id, p.b.sentence_id, p.copies_a, p.copies_b) for p in approximate] == [
        (p.a.sentence_id, p.b.sentence_id, p.copies_a, p.copies_b) for p in exact
    ]
    assert any(p.copies_a == 2 or p.copies_b == 2 for p in exact)


# -- mining through the index's own ANN segment ---------------------------------------------------

WORDS = ["치타", "사냥감", "날씨", "버스", "노선", "도서관", "여권", "김치찌개", "영화", "프로그램", "수치", "해석",
         "주민센터", "월요일", "변경", "신청", "맛있다", "지루하다", "따뜻하다", "바뀐다"]


def _texts(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    while len(texts) < count:
        text = " ".join(rng.choice(WORDS, size=4, replace=False).tolist())
        if text not in texts:
            texts.append(text)
    return texts


def _reference_pairs(store, top: int, neighbours: int) -> set[tuple[int, int]]:
    """The exact top pairs of the live distinct texts, by sentence-transformers over the stored vectors."""
    representatives = np.array([rep for rep, _ in store.duplicate_groups()], dtype=np.int64)
    parts = [(ids[keep], vectors[keep]) for ids, vectors in store.iter_vectors()
             for keep in [np.isin(ids, representatives)]]
    ids = np.concatenate([p[0] for p in parts])
    vectors = np.concatenate([p[1] for p in parts])
    reference = util.paraphrase_mining_embeddings(torch.from_numpy(vectors), top_k=neighbours, max_pairs=top)
    return {(min(ids[i], ids[j]), max(ids[i], ids[j])) for _, i, j in reference}


def _ann_index(tmp_path, monkeypatch, encoder, texts):
    """An index whose compaction built an HNSW segment (break-even lowered to 24 units of 64-d)."""
    import kosearch

    monkeypatch.setattr(ann, "BREAK_EVEN", 4)
    index = kosearch.Index.create(tmp_path / "idx", encoder)
    half = len(texts) // 2
    index.add_texts(texts[:half], ids=[f"r{i}" for i in range(half)])
    index.add_texts(texts[half:], ids=[f"r{i}" for i in range(half, len(texts))])
    index.add_texts(texts[:4], ids=[f"copy{i}" for i in range(4)])  # exact duplicates take part once
    index.compact()
    assert [entry.factory for entry in index.store.segment_entries()] == [ann.ANN_FACTORY]
    return index


def _spy_on_mining(monkeypatch, store) -> list:
    """Fail if mining builds a graph of its own; record the ef_search of every store search."""
    from kosearch.store import pair_mining

    def no_build(*args, **kwargs):
        raise AssertionError("mining built a second graph instead of searching the index's own segment")

    monkeypatch.setattr(ann, "build_index", no_build)
    depths: list = []
    original = store.dense_search
    monkeypatch.setattr(store, "dense_search", lambda *a, **k: depths.append(k.get("ef_search")) or original(*a, **k))
    assert pair_mining.MINING_EF_SEARCH >= 16
    return depths


@pytest.mark.parametrize("selector", [False, True], ids=["few-deletes", "deletes-through-id-selector"])
def test_mining_searches_the_index_own_hnsw_segment_and_never_returns_deleted_units(tmp_path, monkeypatch, selector):
    from kosearch.store.pair_mining import MINING_EF_SEARCH
    from kosearch.store.vectors import IdSet

    if selector:  # every tombstone goes through FAISS's ID selector inside the graph walk
        monkeypatch.setattr(IdSet, "OVERFETCH_LIMIT", 0)
    texts = _texts(400)
    with _ann_index(tmp_path, monkeypatch, HashingEncoder(), texts) as index:
        depths = _spy_on_mining(monkeypatch, index.store)
        before = index.paraphrases(top=60, neighbours=5)
        assert depths[0] == MINING_EF_SEARCH and set(depths) == {MINING_EF_SEARCH, None}  # shallow pass, refining
        found = {(p.a.sentence_id, p.b.sentence_id) for p in before}
        truth = _reference_pairs(index.store, 60, 5)
        assert len(found & truth) / len(truth) >= 0.95
        assert any(p.copies_a == 2 or p.copies_b == 2 for p in index.paraphrases(top=None, neighbours=5))

        # Delete the records behind the best pairs (and some more): none may come back.
        victims = sorted({p.a.path for p in before[:20]} | {p.b.path for p in before[:20]} | {"r7", "r8", "copy1"})
        index.delete(ids=victims)
        assert index.store.deleted_count() > 0 and index.store.segment_entries()[0].factory == ann.ANN_FACTORY
        depths.clear()
        after = index.paraphrases(top=60, neighbours=5)
        assert depths[0] == MINING_EF_SEARCH and set(depths) == {MINING_EF_SEARCH, None}
        paths = {p.a.path for p in after} | {p.b.path for p in after}
        assert not paths & set(victims)
        truth = _reference_pairs(index.store, 60, 5)
        assert len({(p.a.sentence_id, p.b.sentence_id) for p in after} & truth) / len(truth) >= 0.95
        for pair in after:  # scores are the stored vectors' inner products, as on the exact path
            assert pair.score == pytest.approx(float(
                HashingEncoder().encode_documents([pair.a.text])[0] @ HashingEncoder().encode_documents([pair.b.text])[0]),
                abs=1e-5)


def test_mining_builds_a_graph_when_the_index_has_only_small_flat_segments(tmp_path, monkeypatch):
    import kosearch

    monkeypatch.setattr(ann, "BREAK_EVEN", 4)
    built = []
    original = ann.build_index
    monkeypatch.setattr(ann, "build_index", lambda *args, **kwargs: built.append(args[2]) or original(*args, **kwargs))
    texts = _texts(120, seed=3)
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as index:
        for start in range(0, len(texts), 20):  # six flat segments of 20, no compaction
            index.add_texts(texts[start : start + 20], ids=[f"r{i}" for i in range(start, start + 20)])
        assert {entry.factory for entry in index.store.segment_entries()} == {"Flat"}
        pairs = index.paraphrases(top=30, neighbours=5)
        truth = _reference_pairs(index.store, 30, 5)
    assert built == [ann.ANN_FACTORY]
    assert len({(p.a.sentence_id, p.b.sentence_id) for p in pairs} & truth) / len(truth) >= 0.95


# -- the refining pass: near-tie clusters that a shallow walk gets wrong --------------------------

def near_duplicate_clusters(seed: int = 0, clusters: int = 10, members: int = 200, background: int = 1000,
                            dimension: int = 64) -> np.ndarray:
    """Unit vectors: ``clusters`` groups of ``members`` near-duplicates (cosine ~0.99 within a group,
    with differences of ~1e-3 deciding who is whose 10 nearest) among random background vectors,
    like the near-duplicate reviews that fill the top pairs of 1.2M NSMC reviews."""
    rng = np.random.default_rng(seed)
    heads = rng.normal(size=(clusters, dimension))
    near = np.repeat(heads, members, axis=0) + 0.1 * rng.normal(size=(clusters * members, dimension))
    vectors = np.concatenate([rng.normal(size=(background, dimension)), near])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


SPARSE_GRAPH = "HNSW4"
"""Few links per node: a walk at ``MINING_EF_SEARCH`` sees a small part of a 200-member cluster,
so shallow lists miss true neighbours the way HNSW32's do in 1.2M vectors' bigger clusters."""


def _recall(found: set, exact: set) -> float:
    return len(found & exact) / len(exact)


def test_refining_recovers_the_near_tie_pairs_a_shallow_walk_misses():
    vectors = near_duplicate_clusters()
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 7
    top = 5000  # the floor falls inside the clusters: every pair is a near-tie
    exact_first, exact_second, exact_scores = mine_pairs(ids, vectors, top=top, factory="Flat")
    exact = _pair_set(exact_first, exact_second)
    shallow = _pair_set(*mine_pairs(ids, vectors, top=top, factory=SPARSE_GRAPH, refine=False)[:2])
    first, second, scores = mine_pairs(ids, vectors, top=top, factory=SPARSE_GRAPH)
    assert _recall(shallow, exact) < 0.985  # the construction does defeat the shallow pass
    assert _recall(_pair_set(first, second), exact) >= 0.995
    assert (first < second).all() and (np.diff(scores) <= 0).all() and len(scores) == top
    # returned scores are the vectors' own inner products, whichever pass found the pair
    position = {int(i): p for p, i in enumerate(ids)}
    recomputed = [float(vectors[position[int(a)]] @ vectors[position[int(b)]]) for a, b in zip(first, second)]
    np.testing.assert_allclose(scores, recomputed, atol=1e-5)


def test_refining_keeps_the_k_nn_rule_with_min_score_and_no_top():
    vectors = near_duplicate_clusters(seed=1, clusters=6, members=150, background=500, dimension=48)
    ids = np.arange(len(vectors), dtype=np.int64)
    floor = float(mine_pairs(ids, vectors, top=2000, factory="Flat")[2][-1])
    exact = _pair_set(*mine_pairs(ids, vectors, top=None, min_score=floor, factory="Flat")[:2])
    first, second, scores = mine_pairs(ids, vectors, top=None, min_score=floor, factory=SPARSE_GRAPH)
    assert (scores >= floor).all()
    assert _recall(_pair_set(first, second), exact) >= 0.995
    assert len(set(zip(first.tolist(), second.tolist())) - exact) <= 0.005 * len(exact)


def test_mining_the_index_own_segment_refines_the_top_pairs(tmp_path, monkeypatch):
    from kosearch.store import IndexStore, PendingChanges
    from kosearch.store.pair_mining import MINING_EF_SEARCH

    vectors = near_duplicate_clusters(seed=2, clusters=8, members=200, background=600)
    ids = np.arange(1, len(vectors) + 1)
    monkeypatch.setattr(ann, "BREAK_EVEN", 100)
    # An index whose segments are the sparse graph; mining must search it (not build its own) and refine.
    store = IndexStore.create(tmp_path / "idx", {"model": "given", "fingerprint": "given", "dimension": 64,
                                                 "prompts": {}}, factory=SPARSE_GRAPH)
    store.add_vectors(ids, vectors)
    store.checkpoint(PendingChanges(
        documents=[{"id": 1, "root": "/r", "path": "a.txt", "sha256": "x", "size": 1, "encoding": "utf-8",
                    "format": "txt", "sentences": len(ids), "indexed_at": "now"}],
        sentences=[{"id": int(i), "document_id": 1, "position": p, "text": f"text {i}", "line": p + 1, "start": 0,
                    "end": 6} for p, i in enumerate(ids)],
        removed_documents=[],
    ))
    store.compact()
    try:
        assert [entry.factory for entry in store.segment_entries()] == [SPARSE_GRAPH]
        depths = _spy_on_mining(monkeypatch, store)
        top = 4000
        exact = _reference_pairs(store, top, 10)
        refined = {(p.a.sentence_id, p.b.sentence_id) for p in mine_paraphrases(store, top=top, neighbours=10)}
        assert depths[0] == MINING_EF_SEARCH and set(depths) == {MINING_EF_SEARCH, None}  # shallow, then tuned
        shallow = {(p.a.sentence_id, p.b.sentence_id)
                   for p in mine_paraphrases(store, top=top, neighbours=10, refine=False)}
    finally:
        store.close()
    assert _recall(shallow, exact) < 0.985
    assert _recall(refined, exact) >= 0.995


# -- the shallow pass's depth grows with N ---------------------------------------------------------

def test_the_shallow_depth_grows_with_the_number_of_texts():
    from kosearch.store.pair_mining import MINING_DEPTH_FROM, MINING_EF_SEARCH, mining_ef_search

    assert mining_ef_search(2) == mining_ef_search(MINING_DEPTH_FROM - 1) == MINING_EF_SEARCH
    assert mining_ef_search(MINING_DEPTH_FROM) == mining_ef_search(4 * MINING_DEPTH_FROM - 1) == 2 * MINING_EF_SEARCH
    assert mining_ef_search(4 * MINING_DEPTH_FROM) == 4 * MINING_EF_SEARCH
    assert mining_ef_search(1_119_298) == 64  # the 1.23M NSMC index's distinct texts: the 64 measured there
    counts = np.unique(np.geomspace(2, 1e10, 500).astype(np.int64))
    depths = np.array([mining_ef_search(int(count)) for count in counts])
    assert (np.diff(depths) >= 0).all()  # more texts never get a shallower walk
    above = counts >= MINING_DEPTH_FROM  # about the square root of N, in powers of two
    ratio = depths[above] / (MINING_EF_SEARCH * np.sqrt(counts[above] / MINING_DEPTH_FROM))
    assert (ratio > 1.0 - 1e-9).all() and (ratio <= 2.0 + 1e-9).all()


def test_mining_the_index_own_segment_searches_at_the_depth_of_its_count(tmp_path, monkeypatch):
    """The shallow depth comes from the number of distinct texts mined (copies take part once)."""
    from kosearch.store import pair_mining

    monkeypatch.setattr(pair_mining, "MINING_DEPTH_FROM", 100)  # so that a small test crosses two steps
    texts = _texts(400)
    with _ann_index(tmp_path, monkeypatch, HashingEncoder(), texts) as index:  # 400 distinct texts + 4 copies
        depths = _spy_on_mining(monkeypatch, index.store)
        index.paraphrases(top=60, neighbours=5)
        assert depths[0] == pair_mining.mining_ef_search(400) == 4 * pair_mining.MINING_EF_SEARCH
        assert set(depths) == {depths[0], None}  # shallow pass at the rule's depth, refining at the tuned one
        depths.clear()
        mine_paraphrases(index.store, top=60, neighbours=5, ef_search=24)  # an explicit depth still wins
        assert depths[0] == 24


def test_mining_its_own_graph_searches_at_the_depth_of_its_count(monkeypatch):
    from kosearch.store import pair_mining

    monkeypatch.setattr(pair_mining, "MINING_DEPTH_FROM", 100)
    asked = []
    original = ann.search_parameters
    monkeypatch.setattr(ann, "search_parameters",
                        lambda index, selector, ef=None: asked.append(ef) or original(index, selector, ef))
    vectors = clustered(250, seed=7)
    mine_pairs(np.arange(len(vectors)), vectors, top=50, factory="HNSW32")
    # after the build's tuning: the shallow pass at the rule's depth, then the refining pass at the tuned one
    assert asked[-2:] == [pair_mining.mining_ef_search(250), None] and asked[-2] == 2 * pair_mining.MINING_EF_SEARCH
