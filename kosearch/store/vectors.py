"""Vector stores: where an index keeps its embeddings and how it finds the nearest ones.

Every backend implements the same short interface (``add, remove, search, count, iter_vectors,
save, load``), so search and paraphrase code never knows which one it talks to. The on-disk format
is always a FAISS file: FAISS is the persistence layer, and a backend is only a way to search it.

- ``FaissVectorStore``: FAISS on the CPU, or on the GPU when a faiss-gpu build sees a CUDA device.
- ``TorchVectorStore``: exact search as a matrix product on a torch device. It exists for machines
  with CUDA but without faiss-gpu (whose wheel is large and often unavailable), and it doubles as
  an independent implementation that tests can check FAISS against.

Vectors are L2-normalised before they arrive here, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import faiss
import numpy as np

from kosearch.errors import IndexCorruptError, KosearchError
from kosearch.memory import drop_file_pages, drop_pages
from kosearch.store import ann  # imports nothing of the store: no cycle

DEFAULT_FACTORY = "Flat"


@runtime_checkable
class VectorStore(Protocol):
    """What an index needs from a vector backend."""

    backend: str
    dimension: int

    def count(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        excluded: IdSet | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(scores, ids)``, each ``(len(queries), k)``; missing results have id -1.

        ``allowed_ids`` restricts the search to those ids; ``excluded`` (deleted ids) are never returned.
        ``ef_search`` replaces an HNSW index's tuned search depth for this call (a caller that
        needs less than recall@10 of all neighbours, such as pair mining); exact backends ignore it.
        """
        ...

    def ids(self) -> np.ndarray:
        """Every id held, in storage order."""
        ...

    def iter_vectors(self, batch_size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids, vectors)`` in batches, so callers can stream the whole store."""
        ...

    def save(self, path: Path) -> None: ...


def only_ids(
    batches: Iterator[tuple[np.ndarray, np.ndarray]], wanted: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows of ``(ids, vectors)`` batches whose ids are in ``wanted``; batches left empty are skipped."""
    for ids, batch in batches:
        keep = np.isin(ids, wanted)
        if keep.any():
            yield ids[keep], batch[keep]


class IdSet:
    """A fixed set of ids (deleted ones, typically) with its FAISS selector built once.

    A reader's view shares one per segment between all the threads that search it: the selector is
    only read during a search, and building it (a hash set) costs more than a small search.
    """

    OVERFETCH_LIMIT = 1024
    """Up to this many ids, a search asks for ``k + len`` results and drops them instead of filtering."""

    def __init__(self, ids: np.ndarray | list[int]) -> None:
        self.ids = np.unique(np.asarray(ids, dtype=np.int64))
        self._selector = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def selector(self) -> faiss.IDSelector:
        """``IDSelectorNot(IDSelectorBatch(ids))``: lets through every id but these."""
        with self._lock:
            if self._selector is None:
                batch = faiss.IDSelectorBatch(self.ids)
                selector = faiss.IDSelectorNot(batch)
                selector._keep = batch  # the C++ object points at it: keep it alive with its owner
                self._selector = selector
            return self._selector

    def mask(self, ids: np.ndarray) -> np.ndarray:
        """True where ``ids`` are not in the set."""
        return ~np.isin(ids, self.ids)


def _as_ids(ids: np.ndarray | list[int]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64))


def _as_vectors(vectors: np.ndarray, dimension: int) -> np.ndarray:
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise KosearchError(
            f"vectors of shape {vectors.shape} do not fit an index of dimension {dimension}"
        )
    return vectors


def new_faiss_index(dimension: int, factory: str = DEFAULT_FACTORY) -> faiss.Index:
    """Build an empty FAISS index from a factory string, with our ids as FAISS ids.

    Only factories that need no training are accepted: indexing streams documents in, so there is
    no moment when a representative training sample is in hand.
    """
    try:
        index = faiss.index_factory(dimension, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise KosearchError(
            f"FAISS cannot build an index from factory string {factory!r}: {error}"
        ) from None
    if not index.is_trained:
        raise KosearchError(
            f"FAISS index type {factory!r} needs training, which streaming ingestion cannot do; "
            f"use 'Flat' (exact) or a graph index such as 'HNSW32'."
        )
    ann.set_build_depth(index)
    return index


class FaissVectorStore:
    """FAISS with an ``IDMap2`` wrapper: FAISS ids are the SQLite sentence row ids."""

    def __init__(self, index: faiss.Index, device: str = "cpu") -> None:
        self.index = index
        self.dimension = index.d
        self.device = device
        self.backend = "faiss"
        self._gpu_clone: faiss.Index | None = None
        self._gpu_resources = None
        self._mapped_file = False
        """Whether the vectors were memory-mapped from a file by ``load`` (the only pages ever released)."""
        if device.startswith("cuda") and _faiss_gpu_available():
            # Searching a GPU clone keeps the CPU index as the one that is saved and updated;
            # the clone is rebuilt lazily after the CPU index changes.
            self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = int(device.split(":")[1]) if ":" in device else 0
            self.backend = "faiss-gpu"

    @classmethod
    def empty(cls, dimension: int, factory: str = DEFAULT_FACTORY, device: str = "cpu") -> FaissVectorStore:
        return cls(new_faiss_index(dimension, factory), device)

    @classmethod
    def load(cls, path: Path, device: str = "cpu", mmap: bool = False) -> FaissVectorStore:
        """Read a saved store; a missing, truncated or foreign file is an ``IndexCorruptError``.

        ``mmap`` maps the vectors instead of reading them (FAISS's ``IO_FLAG_MMAP_IFC``, for Flat
        codes and the Flat storage of HNSW): opening costs no reading, the pages are the page
        cache's (shared between processes, dropped under memory pressure), and the file must not
        change while mapped, which immutable segment files never do.
        """
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        try:
            if os.path.getsize(path) == 0:
                raise RuntimeError("the file is empty")
            index = faiss.read_index(str(path), flags)
        except (RuntimeError, MemoryError, OSError) as error:
            raise IndexCorruptError(f"FAISS cannot read {path}: {_faiss_reason(error)}") from None
        if not isinstance(index, (faiss.IndexIDMap2, faiss.IndexIDMap)):
            raise IndexCorruptError(
                f"{path} is a FAISS file but not a kosearch vector file (no id map: {type(index).__name__})"
            )
        if mmap:
            # FAISS checks every neighbour of an HNSW graph as it reads it, which leaves the graph's pages
            # resident in this process (0.27 GB at a million vectors), counted in its RSS whether or not
            # it ever searches (an indexing run after a merge; a reader that has just opened). The page
            # cache keeps them, and a search maps back the pages it touches.
            drop_file_pages(path)
        store = cls(index, device)
        store._mapped_file = mmap
        return store

    def count(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vectors = _as_vectors(vectors, self.dimension)
        self.index.add_with_ids(vectors, ids)
        self._gpu_clone = None

    def remove(self, ids: np.ndarray) -> int:
        ids = _as_ids(ids)
        if len(ids) == 0:
            return 0
        try:
            removed = int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))
        except RuntimeError as error:
            raise KosearchError(
                f"this FAISS index type cannot remove vectors ({error}); rebuild the index "
                f"into a new folder instead of updating it"
            ) from None
        self._gpu_clone = None
        return removed

    def _searcher(self) -> faiss.Index:
        if self._gpu_resources is None:
            return self.index
        if self._gpu_clone is None:
            self._gpu_clone = faiss.index_cpu_to_gpu(self._gpu_resources, self._gpu, self.index)
        return self._gpu_clone

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        excluded: IdSet | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        from kosearch.store.ann import search_depth, search_parameters

        queries = _as_vectors(queries, self.dimension)
        if self.count() == 0:
            return _no_results(len(queries))
        k = max(1, min(k, self.count()))
        if excluded is not None and len(excluded) == 0:
            excluded = None
        # A depth of its own is a CPU-side search parameter (the CPU index is the one that is HNSW).
        searcher, params = self._searcher(), None
        if ef_search is not None and "efSearch" in search_depth(self.index):
            searcher, params = self.index, search_parameters(self.index, None, ef_search)
        if allowed_ids is None and excluded is None:
            return searcher.search(queries, k, params=params)
        if allowed_ids is None and len(excluded) <= IdSet.OVERFETCH_LIMIT:
            # A few deleted ids: over-fetch and drop them, which keeps FAISS's fast unfiltered
            # kernels (a selector makes Flat scan vector by vector) and is exact.
            wanted = min(k + len(excluded), self.count())
            scores, ids = searcher.search(queries, wanted, params=params)
            return _drop(scores, ids, excluded.mask(ids), k)
        # ID selectors are a CPU-side feature of FAISS; restricted searches stay on the CPU index.
        if allowed_ids is not None:
            selector = faiss.IDSelectorBatch(_as_ids(allowed_ids))
            if excluded is not None:
                inner = selector
                selector = faiss.IDSelectorAnd(inner, excluded.selector())
                selector._keep = inner
        else:
            selector = excluded.selector()
        return self.index.search(queries, k, params=search_parameters(self.index, selector, ef_search))

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64, copy=False)

    def iter_vectors_of(self, wanted: np.ndarray, batch_size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` of the held ids among ``wanted`` (sorted, unique), in storage order.

        Where the index reconstructs a vector from its position (Flat, HNSW over flat or scalar-quantised
        storage) only those vectors are read: the exact fallback of a narrow filter (a few thousand
        allowed units of a 1.2M-unit HNSW segment) then copies megabytes, not every vector (about 0.5 s
        per query). Other types (IVF without a direct map) are scanned, as ``iter_vectors`` does.
        """
        ids = self.ids()
        wanted = np.asarray(wanted, dtype=np.int64)
        if len(ids) and len(wanted) and bool((ids[1:] > ids[:-1]).all()):  # ids ascending: binary search
            at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
            positions = np.unique(at[ids[at] == wanted])
        else:
            positions = np.flatnonzero(np.isin(ids, wanted))
        if len(positions) == 0:
            return
        inner = self.index.index
        try:
            inner.reconstruct(int(positions[0]))
        except RuntimeError:  # no reconstruction by position for this index type
            yield from only_ids(self.iter_vectors(batch_size), wanted)
            return
        for start in range(0, len(positions), batch_size):
            chunk = positions[start : start + batch_size]
            yield ids[chunk], inner.reconstruct_batch(chunk)

    def iter_vectors(
        self, batch_size: int = 65536, *, release_pages: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``release_pages``: see ``read_vectors_once``."""
        ids = faiss.vector_to_array(self.index.id_map)
        inner = self.index.index
        mapped = _mapped_codes(inner) if release_pages and self._mapped_file else None
        for start in range(0, len(ids), batch_size):
            stop = min(start + batch_size, len(ids))
            batch = inner.reconstruct_n(start, stop - start)
            if mapped is not None:
                address, code_size = mapped
                drop_pages(address + start * code_size, address + stop * code_size)
            yield ids[start:stop], batch

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


class TorchVectorStore:
    """Exact inner-product search as a torch matrix product, on whatever device torch has.

    Vectors live in fixed-size chunks so that adding never copies the whole store. On CUDA they are
    kept in fp16, halving memory; scores are computed in fp32 accumulation by the matmul.
    """

    def __init__(self, dimension: int, device: str = "cpu", chunk_rows: int = 262144) -> None:
        import torch

        self._torch = torch
        self.dimension = dimension
        self.device = device
        self.backend = "torch"
        self._dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self._chunk_rows = chunk_rows
        self._ids: list[np.ndarray] = []
        self._vectors: list = []

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> TorchVectorStore:
        source = FaissVectorStore.load(path, mmap=True)
        store = cls(source.dimension, device)
        for ids, vectors in source.iter_vectors():
            store.add(ids, vectors)
        return store

    def count(self) -> int:
        return int(sum(len(ids) for ids in self._ids))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = _as_ids(ids)
        vectors = _as_vectors(vectors, self.dimension)
        for start in range(0, len(ids), self._chunk_rows):
            stop = start + self._chunk_rows
            self._ids.append(ids[start:stop].copy())
            self._vectors.append(
                self._torch.from_numpy(vectors[start:stop].copy()).to(self.device, self._dtype)
            )

    def remove(self, ids: np.ndarray) -> int:
        doomed = _as_ids(ids)
        removed = 0
        for position, chunk_ids in enumerate(self._ids):
            keep = ~np.isin(chunk_ids, doomed)
            if not keep.all():
                removed += int((~keep).sum())
                self._ids[position] = chunk_ids[keep]
                mask = self._torch.from_numpy(keep).to(self.device)
                self._vectors[position] = self._vectors[position][mask]
        return removed

    def ids(self) -> np.ndarray:
        return np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        excluded: IdSet | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        del ef_search  # exact: there is no search depth to change
        torch = self._torch
        queries = _as_vectors(queries, self.dimension)
        total = self.count()
        if total == 0:
            return _no_results(len(queries))
        k = max(1, min(k, total))
        q = torch.from_numpy(queries).to(self.device, self._dtype)
        best_scores = torch.full((len(queries), 0), float("-inf"), device=self.device)
        best_ids = torch.zeros((len(queries), 0), dtype=torch.int64, device=self.device)
        allowed = None if allowed_ids is None else _as_ids(allowed_ids)
        for chunk_ids, chunk_vectors in zip(self._ids, self._vectors):
            if len(chunk_ids) == 0:
                continue
            scores = (q @ chunk_vectors.T).float()
            ids = torch.from_numpy(chunk_ids).to(self.device)
            keep = np.ones(len(chunk_ids), dtype=bool)
            if allowed is not None:
                keep &= np.isin(chunk_ids, allowed)
            if excluded is not None and len(excluded):
                keep &= excluded.mask(chunk_ids)
            if not keep.all():
                mask = torch.from_numpy(keep).to(self.device)
                scores = scores.masked_fill(~mask, float("-inf"))
            merged_scores = torch.cat([best_scores, scores], dim=1)
            merged_ids = torch.cat([best_ids, ids.expand(len(queries), -1)], dim=1)
            top = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
            best_scores, best_ids = top.values, torch.gather(merged_ids, 1, top.indices)
        best_ids = best_ids.masked_fill(torch.isinf(best_scores), -1)
        return best_scores.cpu().numpy().astype(np.float32), best_ids.cpu().numpy()

    def iter_vectors(self, batch_size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for chunk_ids, chunk_vectors in zip(self._ids, self._vectors):
            for start in range(0, len(chunk_ids), batch_size):
                stop = start + batch_size
                yield chunk_ids[start:stop], chunk_vectors[start:stop].float().cpu().numpy()

    def save(self, path: Path) -> None:
        target = FaissVectorStore.empty(self.dimension)
        for ids, vectors in self.iter_vectors():
            target.add(ids, vectors)
        target.save(path)


def _faiss_reason(error: BaseException) -> str:
    """The useful end of a FAISS error ("read error in F: 1963 != 3200"), without its C++ location."""
    text = str(error).strip()
    match = re.search(r"\.(?:cpp|h):\d+: (?:Error: '[^']*' failed: )?(.*)", text, flags=re.S)
    return (match.group(1) if match else text).strip() or type(error).__name__


def _drop(scores: np.ndarray, ids: np.ndarray, keep: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` kept results of each row (rows are sorted best first), padded with id -1."""
    keep = keep & (ids >= 0)
    rank = np.cumsum(keep, axis=1) - 1
    out_scores = np.full((len(ids), k), -np.finfo(np.float32).max, dtype=np.float32)
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    rows, columns = np.nonzero(keep & (rank < k))
    out_scores[rows, rank[rows, columns]] = scores[rows, columns]
    out_ids[rows, rank[rows, columns]] = ids[rows, columns]
    return out_scores, out_ids


def _no_results(queries: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((queries, 1), dtype=np.float32), np.full((queries, 1), -1, dtype=np.int64)


def read_vectors_once(store: VectorStore, batch_size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``store.iter_vectors`` for a reader that passes once over all of it (a merge).

    A memory-mapped segment's pages count in the process's RSS once touched, and a merge touching
    every source page would hold a second copy of all its vectors that way (file-backed and
    reclaimable, but counted). After each batch is copied out, its pages are dropped from this
    process (``madvise(MADV_DONTNEED)``; the page cache keeps them and a later search maps them
    again). Only pages mapped read-only from a segment file are dropped, never memory FAISS owns.
    """
    if isinstance(store, FaissVectorStore):
        yield from store.iter_vectors(batch_size, release_pages=True)
    else:
        yield from store.iter_vectors(batch_size)


def _mapped_codes(inner: faiss.Index) -> tuple[int, int] | None:
    """``(address, code_size)`` of a flat storage that FAISS memory-mapped from a file (not owned)."""
    inner = faiss.downcast_index(inner)
    storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
    if not isinstance(storage, faiss.IndexFlatCodes) or storage.ntotal == 0 or storage.codes.is_owned:
        return None
    return int(faiss.rev_swig_ptr(storage.codes.data(), 1).ctypes.data), int(storage.code_size)


def _faiss_gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def choose_backend(device: str, backend: str | None = None) -> str:
    """Pick the search backend for a device: FAISS wherever it can run there, torch otherwise."""
    if backend not in (None, "auto"):
        if backend not in ("faiss", "torch"):
            raise KosearchError(f"unknown vector backend {backend!r}; use 'faiss' or 'torch'")
        return backend
    if device.startswith("cuda") and not _faiss_gpu_available():
        return "torch"
    return "faiss"


def backend_name(device: str, backend: str | None = None) -> str:
    """What searches on ``device``: ``faiss``, ``faiss-gpu`` or ``torch``."""
    chosen = choose_backend(device, backend)
    if chosen == "faiss" and device.startswith("cuda") and _faiss_gpu_available():
        return "faiss-gpu"
    return chosen


def load_vector_store(
    path: Path, device: str = "cpu", backend: str | None = None, mmap: bool = False
) -> VectorStore:
    """Open a saved FAISS file with the backend that suits ``device`` (memory-mapped for FAISS if asked)."""
    if choose_backend(device, backend) == "torch":
        return TorchVectorStore.load(path, device)
    return FaissVectorStore.load(path, device, mmap=mmap)


def empty_vector_store(
    dimension: int, factory: str = DEFAULT_FACTORY, device: str = "cpu", backend: str | None = None
) -> VectorStore:
    if choose_backend(device, backend) == "torch":
        if factory != DEFAULT_FACTORY:
            raise KosearchError("the torch backend searches exactly; it only supports the 'Flat' factory")
        return TorchVectorStore(dimension, device)
    return FaissVectorStore.empty(dimension, factory, device)
