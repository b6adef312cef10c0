"""The k best of a score array, in a stable order, without sorting the whole array.

Exact search, the retrieval evaluation and BM25 over a document list all need the same thing: the
positions of the ``k`` largest scores, best first, ties broken by a key in ascending order (by default
the position, which is what a stable ``argsort`` of ``-scores`` gives). Sorting a 1.2M-long row for ten
winners is the slow way; :func:`np.partition` finds the k-th score in linear time, and only the
candidates scoring at least that much (every tie of the k-th included, so the tie rule still decides)
are sorted. It is a shared module (it imports only numpy), so the store, search and evaluate all use it.
"""

from __future__ import annotations

import numpy as np


def top_k_positions(scores: np.ndarray, k: int, tie_key: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``k`` largest ``scores`` (all of them if there are fewer), best first.

    Equal scores are ordered by ``tie_key`` ascending (``tie_key[i]`` for position ``i``), by default
    by position: the order of ``np.argsort(-scores, kind="stable")``.
    """
    count = len(scores)
    if k <= 0 or count == 0:
        return np.zeros(0, dtype=np.int64)
    if k < count:
        kth = np.partition(scores, count - k)[count - k]
        candidates = np.flatnonzero(scores >= kth)
    else:
        candidates = np.arange(count)
    keys = candidates if tie_key is None else np.asarray(tie_key)[candidates]
    return candidates[np.lexsort((keys, -scores[candidates]))][:k]
