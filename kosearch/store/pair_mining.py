"""The most similar pairs among a set of vectors, by k-nearest-neighbour search, exact or ANN.

The rule (``sentence_transformers.util.paraphrase_mining_embeddings``, whose ``top_k`` is our
``neighbours``): a pair (a, b) counts when b is among a's ``neighbours`` nearest others or a among
b's, and the best ``top`` counting pairs are returned. Every vector asks for its neighbours and the
best pairs found from either side are kept in a bounded buffer, so memory stays O(top + batch)
whatever the count. What makes it scale is the search: a flat scan makes mining O(N^2), which at
1M vectors is ~800 TFLOP, hours on a small CPU; above the ANN break-even the vectors are searched
in an approximate index (HNSW from ``ann.build_index``, or an index's own segments through
``kosearch.paraphrases``), and mining costs N cheap searches. bench/bench_paraphrase_mining.py
measures the recall of the resulting top pairs against exact k-NN.

Two passes, because finding *which* texts are in the top pairs and knowing *their* exact k nearest
are different jobs.

1. Shallow pass: every vector searches at ``mining_ef_search(N)`` (efSearch 32 below 500k texts,
   64 up to 2M, then doubled at every further 4x of N), well below a segment's tuned efSearch
   (tuned for recall@10 of *all* neighbours of any query). A text with near-duplicates usually
   finds at least one of them on a shallow walk (a vector's nearest neighbour is where HNSW's
   greedy descent lands), and that is all this pass must do: name the texts of the top pairs. It
   keeps twice ``top`` pairs, as a slack for the second pass. Its depth grows with N because what
   the second pass cannot repair (below) is this pass's miss, and those grow with the corpus.
2. Refining pass (``refine_pairs``). The shallow lists themselves are not exact where it matters:
   at 1.2M NSMC reviews the top 10,000 pairs score >= 0.997 and sit in clusters of near-duplicates
   whose members differ by 1e-4, more of them than a walk of 32 candidates sees, so a shallow walk
   misses some of a text's true 10 nearest; it then both misses pairs and keeps pairs the k-NN rule
   excludes (b is in a's found 10 only because better ones were missed). Recall of the top 10,000
   fell to 0.897 there, against 0.9996 at 100k. So every text of a provisional top pair is searched
   again at ``REFINE_EF_SEARCH`` (the index's tuned depth: the search a user's query gets) and also
   scored exactly against every other text being refined (the "pool": a near-duplicate cluster
   whose members are in the pool has its near-ties ranked exactly, whatever the walks saw); its
   list becomes the best of both. The top pairs are rebuilt from the refined lists (a pair of two
   refined texts counts only if one is in the other's refined top ``neighbours``, so the partner's
   list decides too and both ends get refined) plus the shallow pairs that still have an unrefined
   end. Then the texts to refine next are the unrefined ends of the new top pairs and every text a
   refined list holds at or above the new floor (the ``top``-th score): such a text's best pair
   scores at least that, and a text's best pair always counts under the rule, so it is in the top
   pairs, and only its own refined list can say which of its pairs count. Rounds repeat until no
   text is left (two to four rounds measured), so every returned pair has both ends refined. It
   touches the texts of the top pairs only (about 2 x ``top`` plus ties), at most ``4 * top``.

   What it cannot repair: a top pair neither of whose texts the shallow pass put in any pair above
   the floor and no refined list holds (a pair of near-duplicates that found neither each other nor
   any text of the top pairs). That is a miss of the shallow pass itself; the benchmark counts how
   many of the pairs still missed had 0, 1 or 2 refined texts. At 1.23M NSMC reviews (2% sample):
   recall 0.897 -> 0.919, or 0.947 -> 0.965 forgiving misses decided by float32 ties; every real
   miss left had no refined text, and the pass took 87 s, +15% of the shallow pass's 592 s. Hence
   the shallow depth grows with N: at 64 (efConstruction-160 graph) the real misses fell from 14 to
   10 in the sample and recall counting ties rose to 0.975 (``mining_ef_search``).

Input is plain ``(ids, vectors)`` arrays, so this works over any store layout (one vector file or
many segments): the caller decides which vectors take part (e.g. one per distinct text).
``refine_pairs`` takes the search and the vector lookup as functions for the same reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kosearch.store import ann

logger = logging.getLogger(__name__)

MINING_EF_SEARCH = 32
"""HNSW depth of the shallow pass below ``MINING_DEPTH_FROM`` texts (``mining_ef_search`` makes it
grow above). Measured (bench_paraphrase_mining.py, real NSMC review vectors, recall of the top
10,000 pairs against sentence-transformers' exact answer, docs/benchmarks.md), before the refining
pass existed: efSearch 16 / 32 / 64 gave 0.9996 / 0.9999 / 0.9999 at 50k and 0.9981 / 0.9996 /
0.9999 at 100k, mining in 12 / 20 / 36 s at 100k; at 1.12M distinct texts, 32 gave 0.897, and
0.919 with the refining pass, every real miss left being a pair neither of whose texts this pass
put in any top pair (which the refinement cannot see)."""

MINING_DEPTH_FROM = 500_000
"""From this many texts mined the shallow depth doubles, and doubles again at every further 4x
(``mining_ef_search``)."""


def mining_ef_search(count: int) -> int:
    """The shallow pass's HNSW depth for mining ``count`` texts: ``MINING_EF_SEARCH`` below
    ``MINING_DEPTH_FROM``, then doubled at it and at every further 4x (64 up to 2M, 128 up to 8M):
    the depth grows as about the square root of N, in the powers of two the tuning grid uses.

    Why it grows: the top pairs of a larger corpus are near-duplicates in larger clusters of
    near-ties, and a walk that keeps 32 candidates sees less of them; the shallow pass must only
    name the texts of the top pairs, but a pair neither of whose texts it names is lost (module
    docstring). Measured (docs/benchmarks.md, 2% sample): 32 is enough at 35k-100k (recall 0.9996+);
    at 1.12M distinct texts (efConstruction-160 graph) 32 left 14 real misses in the sample, all in
    texts the shallow pass never named, and 64 left 10: recall counting float32 ties 0.965 -> 0.975
    (95% lower bound 0.943 -> 0.956), for +26% CPU. Not measured: the step at 500k, and beyond 2M.
    """
    depth = MINING_EF_SEARCH
    threshold = MINING_DEPTH_FROM
    while count >= threshold:
        depth *= 2
        threshold *= 4
    return depth


SHALLOW_SLACK = 2
"""The shallow pass keeps ``SHALLOW_SLACK * top`` pairs: refining drops pairs the k-NN rule excludes,
and the floor of the top pairs may then fall below the shallow ``top``-th score."""

REFINED_WIDTH = 2
"""Refined lists hold ``REFINED_WIDTH * neighbours`` neighbours: beyond the top k they only name
texts to refine (those at or above the floor), which widths of 2, 4 and 10 found alike on the
tests' near-tie clusters."""

REFINE_EF_SEARCH: int | None = None
"""HNSW depth of the refining searches; None: the index's own tuned efSearch, i.e. the ordinary
search a user's query gets (benchmarks may set a number to compare)."""

REFINE_LIMIT = 100_000
"""At most this many texts are refined when ``top`` is None (all pairs above ``min_score``);
with ``top``, at most ``4 * top``. The best pairs' texts are refined first."""

NeighbourSearch = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""``(ids, vectors, k) -> (found ids, scores)``, one row per query, best first, -1 where fewer
were found; a row may contain the query's own id."""


@dataclass(frozen=True)
class Refinement:
    """What the refining pass did (logged at INFO under this module's logger as ``extra={"refinement": ...}``)."""

    texts: int
    """Texts searched again (deeply) and scored exactly against each other."""
    rounds: int
    seconds: float
    complete: bool
    """False when ``refine_limit`` stopped it before every text of a returned pair was refined."""
    shallow: tuple[np.ndarray, np.ndarray, np.ndarray]
    """The ``top`` pairs the shallow pass alone would have returned (for benchmarks: what changed)."""
    refined: np.ndarray
    """Ids of the refined texts (benchmarks ask whether a pair still missed had a refined text)."""


def mine_pairs(
    ids: np.ndarray,
    vectors: np.ndarray,
    *,
    top: int | None = 100,
    min_score: float | None = None,
    neighbours: int = 10,
    batch_size: int = 4096,
    factory: str | None = None,
    refine: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first, second, scores)`` of the best pairs, highest score first, ``first < second``.

    ``factory`` is the FAISS index searched (``"Flat"`` = exact); by default
    ``ann.choose_factory`` picks it from the count. Ties are broken by ids, so an exact run is
    deterministic. An approximate search is followed by the refining pass (module docstring) unless
    ``refine`` is False (benchmarks compare the two) or every pair was asked for (no ``top``, no
    ``min_score``: there are no "top pairs" to refine, every text's list would be).
    """
    if neighbours < 1:
        raise ValueError("neighbours must be at least 1")
    ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if len(ids) < 2:
        return PairBuffer(top, min_score).result()
    factory = factory or ann.choose_factory(len(ids), vectors.shape[1])
    refining = refine and factory != "Flat" and (top is not None or min_score is not None)
    best = PairBuffer(top * SHALLOW_SLACK if refining and top is not None else top, min_score)
    index = ann.build_index(ids, vectors, factory)
    params = ann.search_parameters(index, None, mining_ef_search(len(ids)))
    wanted = min(neighbours + 1, len(ids))  # each vector finds itself first
    for start in range(0, len(ids), batch_size):
        stop = min(start + batch_size, len(ids))
        scores, found = index.search(vectors[start:stop], wanted, params=params)
        offer_rows(best, ids[start:stop], found, scores)
    if not refining:
        return best.result()

    position = dict(zip(ids.tolist(), range(len(ids))))
    tuned = ann.search_parameters(index, None, REFINE_EF_SEARCH)  # by default the index's own tuned depth

    def deep_search(query_ids: np.ndarray, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, found = index.search(query_vectors, min(k, len(ids)), params=tuned)
        return found, scores

    pairs, _ = refine_pairs(
        best.result(), top=top, min_score=min_score, neighbours=neighbours,
        vectors_of=lambda wanted_ids: vectors[[position[i] for i in wanted_ids.tolist()]],
        deep_search=deep_search,
    )
    return pairs


def offer_rows(buffer: PairBuffer, query_ids: np.ndarray, found: np.ndarray, scores: np.ndarray) -> None:
    """Offer every (query, found) pair of a search's result rows, skipping the query itself and -1."""
    queries = np.repeat(query_ids, found.shape[1])
    found, scores = found.ravel(), scores.ravel()
    valid = (found >= 0) & (found != queries)
    buffer.offer(queries[valid], found[valid], scores[valid])


def refine_pairs(
    shallow: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    top: int | None,
    min_score: float | None,
    neighbours: int,
    vectors_of: Callable[[np.ndarray], np.ndarray],
    deep_search: NeighbourSearch,
    refine_limit: int | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], Refinement]:
    """The top pairs rebuilt from deep, exact-within-the-pool neighbour lists of their texts (the
    refining pass of the module docstring), and what it did.

    ``shallow`` is the shallow pass's buffer (best first; ideally ``SHALLOW_SLACK * top`` pairs),
    ``vectors_of(ids)`` the vectors of those ids in that order, ``deep_search`` the deep search.
    """
    started = time.perf_counter()
    if refine_limit is None:
        refine_limit = REFINE_LIMIT if top is None else 4 * top
    first, second, scores = (np.asarray(part) for part in shallow)
    shallow_top = (first[:top], second[:top], scores[:top]) if top is not None else (first, second, scores)
    pool: _Pool | None = None
    rounds = 0
    result = shallow_top
    while True:
        refined = pool.ids if pool is not None else np.zeros(0, dtype=np.int64)
        result, floor = _select(pool, (first, second, scores), top, min_score, neighbours)
        todo = _to_refine(pool, result, floor, neighbours)
        room = refine_limit - len(refined)
        if len(todo) == 0 or room <= 0:
            break
        todo = todo[:room]
        rounds += 1
        todo_vectors = np.ascontiguousarray(vectors_of(todo), dtype=np.float32)
        found, found_scores = deep_search(todo, todo_vectors, REFINED_WIDTH * neighbours + 1)
        if pool is None:
            pool = _Pool(todo_vectors.shape[1], REFINED_WIDTH * neighbours)
        pool.add(todo, todo_vectors, np.asarray(found, dtype=np.int64), np.asarray(found_scores, dtype=np.float32))
    complete = len(todo) == 0
    report = Refinement(
        texts=0 if pool is None else len(pool.ids), rounds=rounds, seconds=time.perf_counter() - started,
        complete=complete, shallow=shallow_top, refined=np.zeros(0, dtype=np.int64) if pool is None else pool.ids,
    )
    logger.info("refined the top pairs: %d texts searched again in %d rounds, %.1f s%s", report.texts,
                report.rounds, report.seconds, "" if complete else " (stopped at the refine limit)",
                extra={"refinement": report})
    return result, report


class _Pool:
    """The refined texts: ids, vectors and their best-known neighbours (best first, ``width`` of
    them, -1 padded), the union of their deep search and an exact scan of every other pool text."""

    def __init__(self, dimension: int, width: int) -> None:
        self.width = width
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dimension), dtype=np.float32)
        self.neighbours = np.zeros((0, width), dtype=np.int64)
        self.scores = np.zeros((0, width), dtype=np.float32)

    def add(self, ids: np.ndarray, vectors: np.ndarray, found: np.ndarray, scores: np.ndarray, block: int = 1024) -> None:
        old = len(self.ids)
        all_ids = np.concatenate([self.ids, ids])
        all_vectors = np.concatenate([self.vectors, vectors])
        new_neighbours, new_scores = [], []
        for start in range(0, len(ids), block):  # new texts against the whole pool, exactly
            exact = vectors[start : start + block] @ all_vectors.T
            rows = np.arange(exact.shape[0])
            exact[rows, old + start + rows] = -np.inf  # not itself
            top_ids, top_scores = _row_top(exact, all_ids, self.width)
            deep_ids, deep_scores = _without_self(found[start : start + block], scores[start : start + block],
                                                  ids[start : start + block])
            merged = _merge_rows(top_ids, top_scores, deep_ids, deep_scores, self.width)
            new_neighbours.append(merged[0])
            new_scores.append(merged[1])
        for start in range(0, old, block):  # old texts gain the new ones where they are closer
            exact = self.vectors[start : start + block] @ vectors.T
            top_ids, top_scores = _row_top(exact, ids, self.width)
            self.neighbours[start : start + block], self.scores[start : start + block] = _merge_rows(
                self.neighbours[start : start + block], self.scores[start : start + block], top_ids, top_scores,
                self.width)
        self.ids, self.vectors = all_ids, all_vectors
        self.neighbours = np.concatenate([self.neighbours, *new_neighbours])
        self.scores = np.concatenate([self.scores, *new_scores])


def _row_top(scores: np.ndarray, column_ids: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``width`` best columns as (ids, scores), -1 / -inf padded, unordered."""
    rows, columns = scores.shape
    out_ids = np.full((rows, width), -1, dtype=np.int64)
    out_scores = np.full((rows, width), -np.inf, dtype=np.float32)
    take = min(width, columns)
    if take == 0:
        return out_ids, out_scores
    best = np.argpartition(-scores, take - 1, axis=1)[:, :take] if take < columns else np.tile(np.arange(columns), (rows, 1))
    out_scores[:, :take] = np.take_along_axis(scores, best, axis=1)
    out_ids[:, :take] = np.where(np.isfinite(out_scores[:, :take]), column_ids[best], -1)
    return out_ids, out_scores


def _without_self(found: np.ndarray, scores: np.ndarray, query_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    invalid = (found < 0) | (found == query_ids[:, None])
    return np.where(invalid, -1, found), np.where(invalid, -np.inf, scores).astype(np.float32)


def _merge_rows(
    ids_a: np.ndarray, scores_a: np.ndarray, ids_b: np.ndarray, scores_b: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row by row, the ``width`` best distinct ids of two (ids, scores) lists, best first."""
    ids = np.concatenate([ids_a, ids_b], axis=1)
    scores = np.concatenate([scores_a, scores_b], axis=1).astype(np.float32)
    scores[ids < 0] = -np.inf
    by_id = np.argsort(ids, axis=1, kind="stable")
    ids, scores = np.take_along_axis(ids, by_id, axis=1), np.take_along_axis(scores, by_id, axis=1)
    repeat = np.zeros(ids.shape, dtype=bool)
    repeat[:, 1:] = ids[:, 1:] == ids[:, :-1]  # the same neighbour from both lists: keep one
    scores[repeat] = -np.inf
    best = np.argsort(-scores, axis=1, kind="stable")[:, :width]
    ids, scores = np.take_along_axis(ids, best, axis=1), np.take_along_axis(scores, best, axis=1)
    ids[~np.isfinite(scores)] = -1
    return ids, scores


def _select(
    pool: _Pool | None,
    shallow: tuple[np.ndarray, np.ndarray, np.ndarray],
    top: int | None,
    min_score: float | None,
    neighbours: int,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], float]:
    """The top pairs under the k-NN rule from the refined lists plus the shallow pairs with an
    unrefined end, and their floor (the ``top``-th score, else ``min_score``, else -inf)."""
    best = PairBuffer(top, min_score)
    first, second, scores = shallow
    if pool is not None:
        near = pool.neighbours[:, :neighbours]
        offer_rows(best, pool.ids, near, pool.scores[:, :neighbours])
        verified = np.isin(first, pool.ids) & np.isin(second, pool.ids)  # decided by the lists above
        first, second, scores = first[~verified], second[~verified], scores[~verified]
    best.offer(first, second, scores)
    result = best.result()
    if top is not None and len(result[2]) >= top:
        floor = float(result[2][-1])
    else:
        floor = -np.inf if min_score is None else float(min_score)
    return result, floor


def _to_refine(
    pool: _Pool | None, result: tuple[np.ndarray, np.ndarray, np.ndarray], floor: float, neighbours: int
) -> np.ndarray:
    """Texts to refine next, best pairs first: unrefined ends of the top pairs, then texts a refined
    list holds at ``floor`` or above (their best pair is a top pair; which of their pairs count
    only their own refined list can tell)."""
    first, second, _ = result
    candidates = [np.stack([first, second], axis=1).ravel()]
    if pool is not None:
        hit = (pool.neighbours >= 0) & (pool.scores >= floor)
        order = np.argsort(-pool.scores[hit], kind="stable")
        candidates.append(pool.neighbours[hit][order])
    ordered = np.concatenate(candidates)
    _, first_seen = np.unique(ordered, return_index=True)
    ordered = ordered[np.sort(first_seen)]
    if pool is not None:
        ordered = ordered[~np.isin(ordered, pool.ids)]
    return ordered


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
