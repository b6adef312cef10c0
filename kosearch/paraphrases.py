"""Paraphrase mining: the most similar sentence pairs inside an index.

Instead of the full n x n similarity matrix, every sentence asks the vector store for its
``neighbours`` nearest sentences, and the best pairs found from either side are kept. That is the
same idea as ``sentence_transformers.util.paraphrase_mining`` (whose ``top_k`` plays the role of
``neighbours``), but it reuses the index's stored vectors and FAISS search, streams the store in
batches, and keeps only the current best ``top`` pairs in memory.

Exact duplicate texts would otherwise fill the top of the list with score-1.0 pairs, so each
distinct text takes part once (its lowest sentence id stands for it) and the pair reports how many
copies each side has.
"""

from __future__ import annotations

import numpy as np

from kosearch.results import Pair
from kosearch.store import IndexStore


def mine_paraphrases(
    store: IndexStore,
    *,
    top: int | None = 100,
    min_score: float | None = None,
    neighbours: int = 10,
    batch_size: int = 4096,
) -> list[Pair]:
    if neighbours < 1:
        raise ValueError("neighbours must be at least 1")
    with store.reading():  # one generation throughout, whatever a writer commits meanwhile
        return _mine(store, top, min_score, neighbours, batch_size)


def _mine(store: IndexStore, top: int | None, min_score: float | None, neighbours: int, batch_size: int) -> list[Pair]:
    groups = np.array(list(store.duplicate_groups()), dtype=np.int64).reshape(-1, 2)
    representatives, copies = groups[:, 0], dict(zip(groups[:, 0].tolist(), groups[:, 1].tolist()))
    has_duplicates = len(representatives) < store.count()
    allowed = representatives if has_duplicates else None
    max_copies = int(groups[:, 1].max()) if len(groups) else 1

    best = _PairHeap(top, min_score)
    for ids, vectors in store.iter_vectors(batch_size):
        if has_duplicates:
            keep = np.isin(ids, representatives)
            ids, vectors = ids[keep], vectors[keep]
        if len(ids) == 0:
            continue
        found, scores = _neighbours_of(store, ids, vectors, neighbours, allowed, max_copies)
        query_ids = np.repeat(ids, found.shape[1])
        found, scores = found.ravel(), scores.ravel()
        valid = (found >= 0) & (found != query_ids)
        best.offer(query_ids[valid], found[valid], scores[valid])

    first, second, scores = best.result()
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
) -> tuple[np.ndarray, np.ndarray]:
    """The ``neighbours`` nearest distinct-text sentences of each vector (besides itself).

    Restricting a FAISS search to representative ids with an ID selector is exact but makes FAISS
    scan vector by vector instead of using its matrix-product kernel (several times slower). So
    the search runs unrestricted with a few spare results, non-representatives are dropped here,
    and only the rows whose spares were all used up by copies of a text are searched again with
    the selector.
    """
    wanted = neighbours + 1  # each vector finds itself first
    if allowed is None:
        scores, found = store.dense_search(vectors, wanted)
        return found, scores
    spare = min(max_copies - 1, 16)
    scores, found = store.dense_search(vectors, wanted + spare)
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
        again_scores, again = store.dense_search(vectors[crowded], wanted, allowed)
        rows = np.flatnonzero(crowded)
        out_ids[rows] = -1
        out_ids[rows, : again.shape[1]] = again  # FAISS returns fewer columns for a small store
        out_scores[rows, : again.shape[1]] = again_scores
    return out_ids, out_scores


class _PairHeap:
    """The best pairs seen so far, deduplicated on (smaller id, larger id)."""

    def __init__(self, top: int | None, min_score: float | None) -> None:
        self.top = top
        self.min_score = min_score
        self.first = np.zeros(0, dtype=np.int64)
        self.second = np.zeros(0, dtype=np.int64)
        self.scores = np.zeros(0, dtype=np.float32)

    def offer(self, a: np.ndarray, b: np.ndarray, scores: np.ndarray) -> None:
        if self.min_score is not None:
            keep = scores >= self.min_score
            a, b, scores = a[keep], b[keep], scores[keep]
        first = np.concatenate([self.first, np.minimum(a, b)])
        second = np.concatenate([self.second, np.maximum(a, b)])
        merged = np.concatenate([self.scores, scores.astype(np.float32)])
        # Highest score first, then drop repeats of a pair (found from both of its sides).
        order = np.lexsort((second, first, -merged))
        first, second, merged = first[order], second[order], merged[order]
        _, unique = np.unique(np.stack([first, second], axis=1), axis=0, return_index=True)
        unique.sort()
        if self.top is not None:
            unique = unique[: self.top]
        self.first, self.second, self.scores = first[unique], second[unique], merged[unique]

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.first, self.second, self.scores
