"""Paraphrase mining: the most similar sentence pairs inside an index.

Instead of the full n x n similarity matrix, every sentence asks the vector store for its
``neighbours`` nearest sentences, and the best pairs found from either side are kept. That is the
same idea as ``sentence_transformers.util.paraphrase_mining`` (whose ``top_k`` plays the role of
``neighbours``), but it reuses the index's stored vectors and FAISS search, streams the store in
batches, and keeps only the current best ``top`` pairs in memory.

Exact duplicate texts would otherwise fill the top of the list with score-1.0 pairs, so each
distinct text takes part once (its lowest sentence id stands for it) and the pair reports how many
copies each side has.

Above the ANN break-even (``kosearch.store.ann``) a flat search per sentence makes mining O(N^2).
An index that large normally already has one: compaction puts every segment above the break-even
into an HNSW graph. When such segments hold all but a break-even's worth of the live vectors, each
sentence searches the index itself (its graphs, and its few small flat segments exactly), at the
shallow mining depth ``pair_mining.mining_ef_search`` (it grows with the number of distinct texts)
rather than the segments' tuned one, and the texts of the provisional top pairs are then searched
again at the tuned depth and scored exactly against each other (``pair_mining.refine_pairs``: the
shallow pass finds which texts matter, the refining pass gets their neighbours right, which near-tie
clusters of near-duplicates at 1M need);
deleted sentences are excluded by the store like in any search. Otherwise (an index of many small flat
segments, or one whose vectors live elsewhere, e.g. Qdrant) the distinct texts' vectors are mined
by ``pair_mining.mine_pairs`` through an HNSW index built for the purpose. Recall of the top pairs
of both is measured in bench/bench_paraphrase_mining.py.
"""

from __future__ import annotations

import numpy as np

from kosearch.results import Pair
from kosearch.store import IndexStore, ann, pair_mining
from kosearch.store.pair_mining import SHALLOW_SLACK, PairBuffer, mine_pairs, mining_ef_search, offer_rows, refine_pairs


def mine_paraphrases(
    store: IndexStore,
    *,
    top: int | None = 100,
    min_score: float | None = None,
    neighbours: int = 10,
    batch_size: int = 4096,
    ef_search: int | None = None,
    refine: bool = True,
) -> list[Pair]:
    """The ``top`` most similar pairs of distinct texts (all pairs scoring ``min_score`` or more
    when ``top`` is None), best first. ``ef_search`` overrides ``pair_mining.mining_ef_search`` when the
    index's own HNSW segments are searched (benchmarks sweep it; other paths ignore it);
    ``refine=False`` skips the refining pass of an approximate search (benchmarks compare)."""
    if neighbours < 1:
        raise ValueError("neighbours must be at least 1")
    with store.reading():  # one generation throughout, whatever a writer commits meanwhile
        return _mine(store, top, min_score, neighbours, batch_size, ef_search, refine)


def _mine(
    store: IndexStore,
    top: int | None,
    min_score: float | None,
    neighbours: int,
    batch_size: int,
    mining_depth: int | None,
    refine: bool,
) -> list[Pair]:
    groups = np.array(list(store.duplicate_groups()), dtype=np.int64).reshape(-1, 2)
    representatives, copies = groups[:, 0], dict(zip(groups[:, 0].tolist(), groups[:, 1].tolist()))
    has_duplicates = len(representatives) < store.count()
    allowed = representatives if has_duplicates else None
    max_copies = int(groups[:, 1].max()) if len(groups) else 1

    distinct = len(representatives) if has_duplicates else store.count()
    dimension = int(store.manifest["dimension"])
    ef_search = None
    if ann.choose_factory(distinct, dimension) != "Flat":
        if not _searchable_by_own_ann(store, dimension):
            first, second, scores = _mine_with_ann(store, representatives if has_duplicates else None,
                                                   top, min_score, neighbours, batch_size, refine)
            return _pairs(store, first, second, scores, copies)
        ef_search = mining_depth or mining_ef_search(distinct)

    refining = refine and ef_search is not None and (top is not None or min_score is not None)
    best = PairBuffer(top * SHALLOW_SLACK if refining and top is not None else top, min_score)
    for ids, vectors in store.iter_vectors(batch_size):
        if has_duplicates:
            keep = np.isin(ids, representatives)
            ids, vectors = ids[keep], vectors[keep]
        if len(ids) == 0:
            continue
        found, scores = _neighbours_of(store, ids, vectors, neighbours, allowed, max_copies, ef_search)
        offer_rows(best, ids, found, scores)
    if not refining:
        return _pairs(store, *best.result(), copies)

    def deep_search(ids: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # by default the segments' tuned depth, i.e. the index's ordinary search
        return _neighbours_of(store, ids, vectors, k - 1, allowed, max_copies, pair_mining.REFINE_EF_SEARCH)

    (first, second, scores), _ = refine_pairs(
        best.result(), top=top, min_score=min_score, neighbours=neighbours,
        vectors_of=lambda ids: _vectors_of(store, ids, batch_size * 16), deep_search=deep_search,
    )
    return _pairs(store, first, second, scores, copies)


def _vectors_of(store: IndexStore, wanted: np.ndarray, batch_size: int) -> np.ndarray:
    """The stored vectors of ``wanted`` ids, in that order (one scan of the store: the refining pass
    asks for a few thousand at a time, a few times per mining run)."""
    rows: dict[int, np.ndarray] = {}
    for ids, vectors in store.iter_vectors(batch_size):
        keep = np.flatnonzero(np.isin(ids, wanted))
        rows.update(zip(ids[keep].tolist(), vectors[keep]))
    return np.stack([rows[int(i)] for i in wanted])


def _searchable_by_own_ann(store: IndexStore, dimension: int) -> bool:
    """Whether the index's approximate segments hold all its vectors but at most a break-even's
    worth, so searching the index itself costs a graph walk plus a small exact scan per sentence."""
    entries = store.segment_entries()
    in_ann = sum(entry.count for entry in entries if entry.factory != "Flat")
    exact_part = store.count() + store.deleted_count() - in_ann  # flat segments and a writer's pending vectors
    return in_ann > 0 and ann.choose_factory(max(exact_part, 0), dimension) == "Flat"


def _mine_with_ann(
    store: IndexStore,
    representatives: np.ndarray | None,
    top: int | None,
    min_score: float | None,
    neighbours: int,
    batch_size: int,
    refine: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mine the distinct texts' vectors through an ANN index holding only them (no copies to skip)."""
    id_parts, vector_parts = [], []
    for ids, vectors in store.iter_vectors(batch_size * 16):
        if representatives is not None:
            keep = np.isin(ids, representatives)
            ids, vectors = ids[keep], vectors[keep]
        id_parts.append(ids)
        vector_parts.append(vectors)
    return mine_pairs(
        np.concatenate(id_parts),
        np.concatenate(vector_parts),
        top=top,
        min_score=min_score,
        neighbours=neighbours,
        batch_size=batch_size,
        refine=refine,
    )


def _pairs(store: IndexStore, first: np.ndarray, second: np.ndarray, scores: np.ndarray, copies: dict) -> list[Pair]:
    rows = store.units_by_id(np.concatenate([first, second]).tolist())
    return [
        Pair(
            score=float(score),
            a=rows[int(a)],
            b=rows[int(b)],
            copies_a=copies.get(int(a), 1),
            copies_b=copies.get(int(b), 1),
        )
        for a, b, score in zip(first, second, scores)
    ]


def _neighbours_of(
    store: IndexStore,
    ids: np.ndarray,
    vectors: np.ndarray,
    neighbours: int,
    allowed: np.ndarray | None,
    max_copies: int,
    ef_search: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``neighbours`` nearest distinct-text sentences of each vector (besides itself).

    With ``ef_search`` the index's HNSW segments are searched at that depth, and crowded rows'
    second search stays approximate (an exact scan of every distinct text per crowded batch
    would make mining O(N^2) again).

    Restricting a FAISS search to representative ids with an ID selector is exact but makes FAISS
    scan vector by vector instead of using its matrix-product kernel (several times slower). So
    the search runs unrestricted with a few spare results, non-representatives are dropped here,
    and only the rows whose spares were all used up by copies of a text are searched again with
    the selector.
    """
    wanted = neighbours + 1  # each vector finds itself first
    if allowed is None:
        scores, found = store.dense_search(vectors, wanted, ef_search=ef_search)
        return found, scores
    spare = min(max_copies - 1, 16)
    scores, found = store.dense_search(vectors, wanted + spare, ef_search=ef_search)
    usable = (found >= 0) & np.isin(found, allowed)
    rank = np.cumsum(usable, axis=1)
    keep = usable & (rank <= wanted)
    crowded = (rank[:, -1] < wanted) & (found[:, -1] >= 0)
    out_ids = np.full((len(ids), wanted), -1, dtype=np.int64)
    out_scores = np.zeros((len(ids), wanted), dtype=np.float32)
    rows, columns = np.nonzero(keep)
    out_ids[rows, rank[rows, columns] - 1] = found[rows, columns]
    out_scores[rows, rank[rows, columns] - 1] = scores[rows, columns]
    if crowded.any():
        again_scores, again = store.dense_search(vectors[crowded], wanted, allowed, ef_search=ef_search)
        rows = np.flatnonzero(crowded)
        out_ids[rows] = -1
        out_ids[rows, : again.shape[1]] = again  # FAISS returns fewer columns for a small store
        out_scores[rows, : again.shape[1]] = again_scores
    return out_ids, out_scores
