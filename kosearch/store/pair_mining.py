"""The most similar pairs among a set of vectors, by k-nearest-neighbour search, exact or ANN.

Every vector asks for its ``neighbours`` nearest others, and the best ``top`` pairs found from
either side are kept in a bounded buffer, so memory stays O(top + batch) whatever the count
(the idea of ``sentence_transformers.util.paraphrase_mining_embeddings``, whose ``top_k`` is our
``neighbours``). What makes it scale is the search: a flat scan makes mining O(N^2), which at 1M
vectors is ~800 TFLOP, hours on a small CPU; above the ANN break-even the vectors are first put in
an approximate index from ``ann.build_index`` (HNSW, tuned to recall@10 >= 0.95), and mining
costs one graph build plus N cheap searches. bench/bench_paraphrase_mining.py measures the recall
of the resulting top pairs against exact k-NN.

Search depth. Segment graphs are tuned for recall@10 of *all* neighbours of any query
(``ann.TARGET_RECALL``), which is what search needs; mining keeps only the closest pairs of the
whole set, which a shallow walk of the graph finds (a vector's nearest neighbour is where HNSW's
greedy descent lands), so mining searches every graph at ``MINING_EF_SEARCH`` instead, whether the
graph is built here or is an index's own segment (``kosearch.paraphrases`` reuses those).

Input is plain ``(ids, vectors)`` arrays, so this works over any store layout (one vector file or
many segments): the caller decides which vectors take part (e.g. one per distinct text).
"""

from __future__ import annotations

import numpy as np

from kosearch.store import ann


MINING_EF_SEARCH = 32
"""HNSW depth of mining searches. Measured (bench_paraphrase_mining.py, real NSMC review vectors,
recall of the top 10,000 pairs against sentence-transformers' exact answer, docs/benchmarks.md):
efSearch 16 / 32 / 64 gave 0.9996 / 0.9999 / 0.9999 at 50k and 0.9981 / 0.9996 / 0.9999 at 100k,
mining in 12 / 20 / 36 s at 100k. 16 already loses recall as the index grows; 32 keeps it at
0.9996 for 1.7x the time of 16, and deeper searches buy almost nothing for their time."""


def mine_pairs(
    ids: np.ndarray,
    vectors: np.ndarray,
    *,
    top: int | None = 100,
    min_score: float | None = None,
    neighbours: int = 10,
    batch_size: int = 4096,
    factory: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first, second, scores)`` of the best pairs, highest score first, ``first < second``.

    ``factory`` is the FAISS index searched (``"Flat"`` = exact); by default
    ``ann.choose_factory`` picks it from the count. Ties are broken by ids, so an exact run is
    deterministic.
    """
    if neighbours < 1:
        raise ValueError("neighbours must be at least 1")
    ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    best = PairBuffer(top, min_score)
    if len(ids) < 2:
        return best.result()
    factory = factory or ann.choose_factory(len(ids), vectors.shape[1])
    index = ann.build_index(ids, vectors, factory)
    params = ann.search_parameters(index, None, MINING_EF_SEARCH)
    wanted = min(neighbours + 1, len(ids))  # each vector finds itself first
    for start in range(0, len(ids), batch_size):
        stop = min(start + batch_size, len(ids))
        scores, found = index.search(vectors[start:stop], wanted, params=params)
        query_ids = np.repeat(ids[start:stop], found.shape[1])
        found, scores = found.ravel(), scores.ravel()
        valid = (found >= 0) & (found != query_ids)
        best.offer(query_ids[valid], found[valid], scores[valid])
    return best.result()


class PairBuffer:
    """The best pairs seen so far, deduplicated on (smaller id, larger id), at most ``top`` of them."""

    def __init__(self, top: int | None, min_score: float | None) -> None:
        self.top = top
        self.min_score = min_score
        self.first = np.zeros(0, dtype=np.int64)
        self.second = np.zeros(0, dtype=np.int64)
        self.scores = np.zeros(0, dtype=np.float32)

    def offer(self, a: np.ndarray, b: np.ndarray, scores: np.ndarray) -> None:
        floor = self.min_score
        if self.top is not None and len(self.scores) >= self.top:
            # Once full, only candidates at least as good as the current last pair can enter.
            last = float(self.scores[-1])
            floor = last if floor is None else max(floor, last)
        if floor is not None:
            keep = scores >= floor
            a, b, scores = a[keep], b[keep], scores[keep]
        if len(scores) == 0:
            return
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
