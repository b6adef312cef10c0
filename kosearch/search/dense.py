"""The dense signal: query vectors in, the store's nearest sentences out as ranked ``Hit`` records."""

from __future__ import annotations

import numpy as np

from kosearch.results import Hit
from kosearch.store import IndexStore


def search_vectors(
    store: IndexStore, query_vectors: np.ndarray, k: int = 10, context: int = 0
) -> list[list[Hit]]:
    """Rank the index's sentences for each query vector.

    ``context`` asks for that many neighbouring sentences of the same file on each side of a hit,
    which is what a reader needs to judge a one-sentence match.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    with store.reading():
        return _search_vectors(store, query_vectors, k, context)


def _search_vectors(store: IndexStore, query_vectors: np.ndarray, k: int, context: int) -> list[list[Hit]]:
    scores, ids = store.dense_search(query_vectors, k)
    rows = store.units_by_id(ids.ravel().tolist())
    results: list[list[Hit]] = []
    for query_scores, query_ids in zip(scores, ids):
        hits: list[Hit] = []
        for score, sentence_id in zip(query_scores, query_ids):
            row = rows.get(int(sentence_id))
            if row is None:  # FAISS pads with -1 when the index holds fewer than k vectors
                continue
            before, after = (
                store.neighbours(row.sentence_id, context, context) if context else ([], [])
            )
            hits.append(
                Hit(
                    score=float(score),
                    text=row.text,
                    path=row.path,
                    line=row.line,
                    sentence_id=row.sentence_id,
                    start=row.start,
                    end=row.end,
                    document_root=row.document_root,
                    context_before=tuple(before),
                    context_after=tuple(after),
                    page=row.page,
                )
            )
        results.append(hits)
    return results
