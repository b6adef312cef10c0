"""Which FAISS index a segment gets, how it is built, and how good its answers are.

A placeholder with the interface of the store contract (``choose_factory``, ``build_index``,
``measure_recall``, ``search_parameters``): compaction calls it for every merged segment. This
version never chooses an approximate index (its break-even is not measured here, so every size
stays exact) and builds what it is asked for without tuning; the measured version replaces this
file with the same signatures.
"""

from __future__ import annotations

import faiss
import numpy as np

from kosearch.errors import KosearchError


def choose_factory(count: int, dimension: int) -> str:
    """The FAISS factory string for a segment of ``count`` vectors: always exact here."""
    return "Flat"


def build_index(ids: np.ndarray, vectors: np.ndarray, factory: str) -> faiss.Index:
    """An ``IndexIDMap2`` over ``factory`` holding ``vectors`` under ``ids`` (trained on them if needed)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    try:
        index = faiss.index_factory(vectors.shape[1], f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise KosearchError(f"FAISS cannot build an index from factory string {factory!r}: {error}") from None
    if not index.is_trained:
        index.train(vectors)
    index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    return index


def measure_recall(
    index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int = 10
) -> float:
    """recall@k of ``index`` against exact inner-product search over the same vectors."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(ids))
    if k == 0 or len(queries) == 0:
        return 1.0
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, positions = exact.search(queries, k)
    truth = np.asarray(ids, dtype=np.int64)[positions]
    _, found = index.search(queries, k)
    hits = sum(len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found))
    return hits / float(truth.size)


def search_parameters(index: faiss.Index, selector: faiss.IDSelector | None) -> faiss.SearchParameters:
    """Search parameters that apply ``selector`` and keep the index's own search-time settings."""
    inner = faiss.downcast_index(index.index) if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)) else index
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=inner.hnsw.efSearch)
    if isinstance(inner, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=inner.nprobe)
    return faiss.SearchParameters(sel=selector)
