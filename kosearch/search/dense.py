"""The dense signal: a query vector's nearest units in the store, as ``unit id -> similarity``."""

from __future__ import annotations

import numpy as np

from kosearch.store import IndexStore


def dense_candidates(
    store: IndexStore, vector: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> dict[int, float]:
    """The ``k`` units most similar to one query vector (shape ``(1, dimension)``), inside ``allowed``.

    FAISS pads with id -1 when fewer than ``k`` vectors are there; those are dropped.
    """
    scores, ids = store.dense_search(vector, k, allowed)
    return {int(i): float(s) for s, i in zip(scores[0], ids[0]) if i >= 0}
