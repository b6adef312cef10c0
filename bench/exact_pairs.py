"""Exact top pairs of up to ~1M unit vectors on a CPU: bfloat16 matrix products find candidates,
float32 re-scores them. The truth ``bench_paraphrase_mining.py`` scores ANN mining against.

A float32 brute force over 1M x 1M x 384 is ~770 TFLOP (about an hour at this machine's float32
rate); bfloat16 products run on AMX several times faster (0.2 TFLOP/s on one contended core here
vs 0.07 for float32), but are approximate. They are only used to *select*, with a margin that
provably covers their error, and every selected pair is re-scored in float32.

Error bound. For unit vectors x, y rounded to bfloat16 (8 significant bits, unit roundoff
u = 2^-8), each product x_i y_i carries a relative error at most (1+u)^2 - 1 = 2u + u^2, so the
inner product of the rounded vectors differs from x.y by at most (2u + u^2) sum|x_i y_i| <=
(2u + u^2) ||x|| ||y|| = 0.00783. oneDNN accumulates bfloat16 products in float32 (AMX TDPBF16PS):
384 additions add at most 384 * 2^-24 * 1.01 = 0.00003. The result is stored as bfloat16: one more
rounding, at most u * |s| <= 0.0040 for |s| <= 1.01. Total: |s_bf16 - s| <= 0.0118. ``MARGIN`` is
0.02. So every pair whose float32 score is >= ``floor`` has a bfloat16 score >= floor - MARGIN and
is a candidate; if at least ``top`` pairs score >= ``floor`` in float32, the ``top`` best candidates
are the exact top pairs (``exact_top_pairs`` applies the k-NN rule of mining on top, and checks
that enough pairs pass ``floor``; the bench takes the ANN answer's own ``top``-th score less 0.01).
The bench also checks the result against ``util.paraphrase_mining_embeddings`` where that finishes.
"""

from __future__ import annotations

import time

import numpy as np
import torch

MARGIN = 0.02
"""Covers bfloat16's error bound of 0.0118 (module docstring) with room to spare."""


def candidate_pairs(
    vectors: np.ndarray, floor: float, *, rows: np.ndarray | None = None, block: int = 8192, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, fp32 score)`` of every pair of positions (i < j) whose bfloat16 score is at least
    ``floor - MARGIN``, re-scored in float32.

    ``rows`` (sorted positions) restricts the pairs to those with at least one side in ``rows``
    (a sample: each of its vectors against all); None means all pairs (upper triangle of blocks).
    """
    full = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    low = full.to(torch.bfloat16)
    threshold = floor - MARGIN
    count = len(vectors)
    query_positions = np.arange(count) if rows is None else np.asarray(rows, dtype=np.int64)
    found_i, found_j = [], []
    started, done_flops = time.perf_counter(), 0.0
    total_flops = (count * (count + block) / 2 if rows is None else len(query_positions) * count) * vectors.shape[1] * 2
    for q_start in range(0, len(query_positions), block):
        q_pos = query_positions[q_start : q_start + block]
        queries = low[torch.from_numpy(q_pos)] if rows is not None else low[q_pos[0] : q_pos[-1] + 1]
        first_column = int(q_pos[0]) if rows is None else 0  # the upper triangle only, for all pairs
        for c_start in range(first_column, count, block):
            c_stop = min(c_start + block, count)
            scores = queries @ low[c_start:c_stop].T
            hit_q, hit_c = torch.nonzero(scores >= threshold, as_tuple=True)
            if len(hit_q):
                i = q_pos[hit_q.numpy()]
                j = hit_c.numpy() + c_start
                keep = i != j
                found_i.append(np.minimum(i, j)[keep])
                found_j.append(np.maximum(i, j)[keep])
            done_flops += len(q_pos) * (c_stop - c_start) * vectors.shape[1] * 2
        if progress:
            elapsed = time.perf_counter() - started
            print(f"    exact: {done_flops / total_flops:6.1%} after {elapsed:.0f}s "
                  f"(ETA {elapsed / max(done_flops, 1) * (total_flops - done_flops):.0f}s)", flush=True)
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    i = np.concatenate(found_i)
    j = np.concatenate(found_j)
    unique = np.unique(np.stack([i, j], axis=1), axis=0)  # a sample finds a pair from both sides
    i, j = unique[:, 0], unique[:, 1]
    scores = np.einsum("nd,nd->n", full[i].numpy(), full[j].numpy())
    return i, j, scores.astype(np.float32)


def exact_top_pairs(
    vectors: np.ndarray, top: int, floor: float, neighbours: int = 10, block: int = 8192
) -> set[tuple[int, int]]:
    """The exact ``top`` pairs (positions, i < j) of k-NN mining with ``neighbours`` neighbours, the
    contract of ``util.paraphrase_mining_embeddings(top_k=neighbours)`` and of kosearch: a pair
    counts when one side is among the other's ``neighbours`` nearest.

    Exact whenever it returns: every neighbour of i scoring above s(i, j) >= ``floor`` scores at
    least ``floor`` too, so it is a candidate, and j's rank among i's candidates is its true rank.
    If fewer than ``top`` eligible pairs score ``floor`` or more, the floor was too high: it raises.
    """
    i, j, scores = candidate_pairs(vectors, floor, block=block)
    keep = scores >= floor
    i, j, scores = i[keep], j[keep], scores[keep]
    eligible = knn_eligible(i, j, scores, neighbours)
    i, j, scores = i[eligible], j[eligible], scores[eligible]
    if len(scores) < top:
        raise RuntimeError(f"only {len(scores)} k-NN pairs score {floor} or more; lower the floor")
    order = np.lexsort((j, i, -scores))[:top]
    return set(zip(i[order].tolist(), j[order].tolist()))


def knn_eligible(i: np.ndarray, j: np.ndarray, scores: np.ndarray, neighbours: int) -> np.ndarray:
    """Whether each pair has one side among the other's ``neighbours`` best (given all of both sides'
    better-scoring pairs are in the arrays)."""
    side = np.concatenate([i, j])
    doubled = np.concatenate([scores, scores])
    order = np.lexsort((-doubled, side))
    sorted_side = side[order]
    rank_sorted = np.arange(len(side)) - np.searchsorted(sorted_side, sorted_side, side="left")
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    near = rank < neighbours
    return near[: len(i)] | near[len(i):]
