"""Approximate nearest-neighbour (ANN) indexes for large segments: which one, built how, how good.

A segment below the break-even size stays ``Flat`` (exact): a flat scan of a few tens of thousands
of 384-d vectors costs a few milliseconds, and no approximate index is needed to beat that. Above
it, compaction builds an HNSW graph whose search depth (``efSearch``) is tuned on the segment's own
vectors until recall@10 against exact search, counted with ties (below), reaches ``TARGET_RECALL``;
FAISS saves ``efSearch`` (and IVF's ``nprobe``) inside the index file, so a reader that opens the
segment searches exactly as tuned. Every index is an ``IndexIDMap2`` whose ids are the sentence
ids, like a flat segment.

Recall counts ties, as ann-benchmarks does. A corpus of short texts repeats sentences word for
word, so many stored vectors are identical and a query's exact top 10 is one arbitrary pick among
equals; recall by ids counts an equally close neighbour as a miss, and on the 1.23M-sentence NSMC
segment it plateaued near 0.94 however deep the search (docs/benchmarks.md, "Living index at 1.23M
sentences"). ``recall_at_k`` therefore counts a returned neighbour as found when its exact score
(recomputed from the vectors, so compressed codes cannot flatter it) is within ``TIE_EPSILON`` of
the exact k-th score; tuning stops on that figure, and the manifest records it next to recall by
ids (``Recall``), so neither is hidden.

Why these numbers (bench/bench_ann.py on real NSMC review vectors of the bundled encoder, 500
held-out reviews as queries, this 2-core machine; full table and command in docs/benchmarks.md,
"ANN by size"; recall there was counted by ids, before ties were counted):

- Break-even. Single-query p50 with 1 thread, Flat vs HNSW32 tuned by ``build_index``:
  10k: Flat 0.64 ms, HNSW 0.18 ms (efSearch 64); 30k: 1.71 vs 0.39 ms (efSearch 128);
  100k: 10.3 vs 1.02 ms (efSearch 256); 300k: Flat 32 ms. On latency alone HNSW already wins
  at 10k, but there the gain is under half a millisecond, far below query encoding, while the
  graph costs a build at every compaction (1.3 s at 10k, 23 s at 100k), 18% more bytes and
  exactness. ``BREAK_EVEN`` is 30,000: from there Flat is over 4x slower and grows linearly
  (past 25 ms near 250k), while HNSW grows slowly (7.5 ms at 300k with efSearch 768, measured
  while another bench shared the CPU).
- HNSW32 rather than IVF. HNSW needs no training, keeps the exact vectors (a later compaction
  reads them back unchanged) and was 2-2.5x faster than IVF-SQ8 at equal held-out recall (IVF
  needed nprobe 384-512, i.e. a third of its lists, for recall@10 0.97 at 30k-100k), with a build
  half as long at 100k. IVF-SQ8 is 4x smaller (43 MB vs 182 MB at 100k) and stays available as
  an explicit factory (``"IVF1280,SQ8"``) for memory-bound machines; IVF-PQ48 reached only
  recall@10 0.46 even scanning every list (its codes are too coarse for top-10 on these vectors).
- Out-of-domain queries (the sample questions, about another corpus) found fewer true neighbours
  than held-out reviews at the same depth (0.87 vs 0.97 at 100k), hence ``TUNING_MARGIN``.

Build depth (``EF_CONSTRUCTION``). FAISS builds HNSW at efConstruction 40; on these vectors that graph
needed efSearch 1024 at 1.23M sentences for recall@10 0.959 with ties, and that search was a third of
a query's time. bench/ann_ef_construction.py builds the product's index at several depths on the same
200k real review vectors and measures 500 held-out reviews (docs/benchmarks.md, "HNSW build depth"):
at efConstruction 160 the build takes 2x as long (73 s vs 36 s) and recall@10 0.97 is reached at
efSearch 192 instead of 256, 0.95 at 96 instead of 128 (80 was no better than 40 there, within one
build's noise). A segment's manifest entry records the depth its graph was built with, and compaction
rebuilds a graph built shallower than ``EF_CONSTRUCTION`` (``graph_outdated``), so existing indexes
get the faster graph at their next ``kosearch compact``.

Memory. A merge builds its HNSW segment from a stream of the live vectors (``VectorStream``):
rows go in ``ADD_BATCH`` at a time, the held-out tuning queries are set aside as they pass, and
the exact neighbours that tuning and ``measure_stored_recall`` compare against are computed over
the index's own flat storage (a zero-copy view, ``stored_vectors``). The peak is the index itself
(the vectors once, plus ~0.2x for HNSW32's links and id maps) and one batch; an array input takes
the same path, so both give the same index. Compressed factories (IVF, SQ, PQ) keep an array path:
their training sample and their exact truth need the vectors, which their codes are not.
Measured in bench/bench_merge_memory.py (docs/benchmarks.md, "Memory of an HNSW merge").

On CUDA with a faiss-gpu build, the brute-force parts of a build run on the GPU: the exact
neighbours that tuning and recall are measured against (``faiss.knn_gpu``) and IVF's k-means (a GPU
flat index as its clustering index). The HNSW graph itself is built on the CPU (FAISS builds HNSW
only there); the saved index is always a CPU index, so a segment opens the same everywhere.

Filters and tombstones reach every index type through an ID selector; FAISS refuses a plain
``SearchParameters`` on HNSW/IVF and would reset ``efSearch``/``nprobe`` to its defaults with an
empty subclass, so ``search_parameters`` builds the matching subclass with the tuned values. HNSW
applies the selector while walking the graph: a very selective filter (well under 1% of a segment
allowed) can return fewer than k hits, which is why callers search such filters exactly over the
allowed ids instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np

from kosearch.errors import KosearchError

BREAK_EVEN = 30_000
"""Segments with at least this many vectors get an ANN index (measured, see the module docstring)."""

ANN_FACTORY = "HNSW32"
TARGET_RECALL = 0.95
TUNING_MARGIN = 0.02
"""Tuning aims this much above the target: its 256-query estimate has a standard error near 0.005
and user queries (questions rather than review-like sentences) found fewer true neighbours than
held-out reviews at the same depth in bench_ann.py."""
TUNING_QUERIES = 256
"""Stored vectors used as tuning queries; 256 queries x 10 neighbours bound the recall estimate's
standard error near 0.95 to about 0.004."""

EF_CONSTRUCTION = 160
"""HNSW's build depth: candidates kept while each vector's links are chosen (FAISS's default is 40).
A deeper build makes a better-connected graph, which reaches the same recall at a shallower, faster
search depth; it costs build time once, at compaction, and saves search time on every query. See the
module docstring ("Build depth") for the measurement behind 160."""

TIE_EPSILON = 1e-5
"""How far below the exact k-th score a returned neighbour's exact score may be and still count as
found (``recall_at_k``). See ``recall_at_k`` for why this value and not ann-benchmarks' 1e-3."""

_EF_SEARCH = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
_NPROBE = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)
_SEED = 1234


def choose_factory(count: int, dimension: int) -> str:
    """The FAISS factory string a segment of ``count`` vectors should be built with.

    ``"Flat"`` below ``BREAK_EVEN``, ``"HNSW32"`` from there on. ``dimension`` is part of the
    interface because the break-even scales with it (a flat scan's cost is count x dimension);
    it was measured at 384 and is scaled linearly for other dimensions.
    """
    if count < 0 or dimension < 1:
        raise ValueError(f"count {count} and dimension {dimension} must be non-negative and positive")
    break_even = BREAK_EVEN * 384 / dimension
    return "Flat" if count < break_even else ANN_FACTORY


def ivf_lists(count: int) -> int:
    """IVF's usual list count, about 4 * sqrt(N), rounded to a multiple of 64 (at least 64)."""
    return max(64, int(round(4 * np.sqrt(max(count, 1)) / 64)) * 64)


ADD_BATCH = 8_192
"""Rows per ``add`` while an index with exact storage is built (and per read of a merge's sources).
FAISS's HNSW inserts the vectors of one ``add`` level by level in a shuffled order, so the graph
depends on where the adds split the rows; a fixed batch makes it a function of the rows alone,
whether they come from one array or a stream. 12 MiB at 384-d: small beside any index that gets
an HNSW graph (30k vectors and up), large enough for FAISS to spread one add over many threads."""


@dataclass(frozen=True)
class VectorStream:
    """The vectors of ``build_index``'s ids as a stream of ``(rows, dimension)`` chunks, in the ids'
    order: a merge reads its source segments chunk by chunk instead of into one array."""

    dimension: int
    chunks: Iterable[np.ndarray]


def build_index(
    ids: np.ndarray, vectors: np.ndarray | VectorStream, factory: str, device: str = "cpu"
) -> faiss.Index:
    """An ``IndexIDMap2`` over ``factory`` holding ``vectors`` under ``ids``, ready to search.

    The search depth is raised step by step until recall@10 with ties (``recall_at_k``) reaches
    ``TARGET_RECALL`` (plus a margin) for ``TUNING_QUERIES`` of the vectors, chosen by position and
    held out of the index until tuning is done (added last); the value stays in the index and in its
    file (the manifest's ``recall_at_10`` and ``recall_at_10_ids`` come from ``measure_recall``).
    Training (IVF centroids, PQ/SQ codebooks) uses a sample of the vectors. Vectors are expected L2-normalised,
    as everywhere in kosearch; scores are inner products.

    Two paths, by what the index stores:

    - Exact storage (``Flat``, ``HNSW32``: the index keeps the vectors themselves). ``vectors`` may
      be an array or a ``VectorStream``; either way the rows are added ``ADD_BATCH`` at a time, the
      held-out rows set aside as they pass, and the exact neighbours that tuning compares against
      are computed over the index's own storage. Peak memory is the index plus one batch, and an
      array and a stream of the same rows give the same index (same graph with one thread).
    - Compressed storage (IVF, SQ, PQ: the stored codes are not the vectors, so they cannot serve as
      the truth). The vectors are needed as one array for training and for the truth; a stream is
      read into one. A caller that wants to avoid that array uses an exact-storage factory.
    """
    ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))
    if isinstance(vectors, VectorStream):
        dimension = int(vectors.dimension)
    else:
        vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if vectors.ndim != 2 or len(ids) != len(vectors):
            raise KosearchError(f"{len(ids)} ids do not match vectors of shape {vectors.shape}")
        dimension = vectors.shape[1]
    try:
        index = faiss.index_factory(dimension, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise KosearchError(f"FAISS cannot build an index from factory string {factory!r}: {error}") from None
    inner = faiss.downcast_index(index.index)
    set_build_depth(index)
    if _exact_storage(inner) is not None:
        chunks = vectors.chunks if isinstance(vectors, VectorStream) else _slices(vectors, ADD_BATCH)
        _add_streamed(index, ids, chunks, dimension, device)
        return index
    if isinstance(vectors, VectorStream):
        vectors = _gathered(vectors, len(ids))
    _build_from_array(index, ids, vectors, factory, device)
    return index


def set_build_depth(index: faiss.Index) -> None:
    """Give an empty HNSW index (bare or inside an ``IndexIDMap2``) the build depth ``EF_CONSTRUCTION``,
    where FAISS's factory left it shallower; other indexes are left alone. Every HNSW graph kosearch
    writes goes through here: a merge's (``build_index``) and a checkpoint's of an index created with
    an HNSW ``--faiss-factory``."""
    inner = faiss.downcast_index(index.index) if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)) else index
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efConstruction = max(inner.hnsw.efConstruction, EF_CONSTRUCTION)


def ef_construction(index: faiss.Index) -> int | None:
    """The build depth of an HNSW index's graph (bare or inside an ``IndexIDMap2``); None for other indexes."""
    inner = faiss.downcast_index(index.index) if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)) else index
    return int(inner.hnsw.efConstruction) if isinstance(inner, faiss.IndexHNSW) else None


def graph_outdated(factory: str, built_with: int | None) -> bool:
    """Whether a segment of ``factory`` whose graph was built at depth ``built_with`` (None: before the
    depth was recorded, i.e. FAISS's default 40) should be rebuilt at ``EF_CONSTRUCTION``: only
    factories that start with an HNSW graph (``HNSW32``, ``HNSW64,Flat``, ``HNSW32,SQ8``; not an IVF
    whose quantiser is a graph), and only graphs built shallower. A graph recorded deeper (a later
    kosearch with a larger setting) is kept. Each such segment is rebuilt once; at 1.23M vectors that
    is a 10-minute compaction that needs room for the old and the new file."""
    if not factory.startswith("HNSW"):
        return False
    return (40 if built_with is None else built_with) < EF_CONSTRUCTION


def keeps_exact_vectors(factory: str, dimension: int) -> bool:
    """Whether an index of ``factory`` stores the vectors themselves (``Flat``, ``HNSW32``), so that
    ``build_index`` can take a ``VectorStream`` without gathering it and ``measure_stored_recall``
    can take the truth from the index."""
    try:
        index = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError:
        return False
    return _exact_storage(index) is not None


def stored_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray] | None:
    """``(ids, vectors)`` of an ``IndexIDMap2`` with exact storage, in storage order, or None.

    ``vectors`` is a read-only view of the index's flat storage, not a copy: it is valid only while
    ``index`` lives and is not added to (an add may move the storage).
    """
    storage = _exact_storage(faiss.downcast_index(index.index))
    if storage is None:
        return None
    ids = faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    count = int(storage.ntotal)
    if count == 0:
        return ids, np.zeros((0, storage.d), dtype=np.float32)
    raw = faiss.rev_swig_ptr(storage.codes.data(), count * storage.code_size)
    view = raw.view(np.float32).reshape(count, storage.d)
    view.flags.writeable = False  # a mapped segment's pages are read-only: a write would crash
    return ids, view


def measure_stored_recall(index: faiss.Index, query_ids: np.ndarray, k: int = 10, device: str = "cpu") -> Recall:
    """``measure_recall`` of an exact-storage index for its stored vectors ``query_ids`` as queries,
    with the truth computed over the index's own storage instead of a second copy of the vectors."""
    stored = stored_vectors(index)
    if stored is None:
        raise KosearchError("this index does not store its vectors exactly; measure its recall against the vectors")
    ids, vectors = stored
    query_ids = np.asarray(query_ids, dtype=np.int64)
    queries = index.reconstruct_batch(query_ids) if len(query_ids) else np.zeros((0, index.d), dtype=np.float32)
    return measure_recall(index, ids, vectors, queries, k, query_ids=query_ids, device=device)


def _exact_storage(inner: faiss.Index) -> faiss.IndexFlat | None:
    """The flat index holding the vectors of ``inner`` (itself, or an HNSW's storage), or None."""
    inner = faiss.downcast_index(inner)
    storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
    return storage if isinstance(storage, faiss.IndexFlat) and storage.is_trained else None


def _slices(vectors: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(vectors), size):
        yield vectors[start : start + size]


def _held_out_positions(count: int, rng: np.random.Generator) -> np.ndarray:
    """The sorted positions of the tuning queries kept out of the index until tuning is done."""
    if count < 4 * TUNING_QUERIES:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(count, TUNING_QUERIES, replace=False))


def _add_streamed(
    index: faiss.Index, ids: np.ndarray, chunks: Iterable[np.ndarray], dimension: int, device: str
) -> None:
    """Add the rows of ``chunks`` under ``ids`` to an exact-storage index and tune it (see ``build_index``).

    Tuning queries go in last: tuned while they are not yet in the index, they are honest held-out
    queries (a stored vector's own graph links make it far easier to answer). The index's order is
    that of the rows without the held-out ones, then the held-out ones.
    """
    count = len(ids)
    inner = faiss.downcast_index(index.index)
    rng = np.random.default_rng(_SEED)
    held = _held_out_positions(count, rng)
    held_vectors = np.empty((len(held), dimension), dtype=np.float32)
    _reserve_codes(inner, count)
    _reserve_graph(inner, count)
    batch = _AddBuffer(index, min(ADD_BATCH, max(count, 1)), dimension)
    seen = 0
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2 or chunk.shape[1] != dimension:
            raise KosearchError(f"a chunk of shape {chunk.shape} does not hold {dimension}-d vectors")
        stop = seen + len(chunk)
        if stop > count:
            raise KosearchError(f"the vectors outnumber the {count} ids")
        low, high = np.searchsorted(held, [seen, stop])
        local = held[low:high] - seen
        held_vectors[low:high] = chunk[local]
        keep = np.ones(len(chunk), dtype=bool)
        keep[local] = False
        batch.add(ids[seen:stop][keep], chunk[keep] if high > low else chunk)
        seen = stop
    batch.flush()
    if seen != count:
        raise KosearchError(f"{seen} vectors arrived for {count} ids")
    stored_ids, stored = stored_vectors(index)  # type: ignore[misc]
    if len(held):
        _tune(index, stored_ids, stored, held_vectors, None, device=device)
        index.add_with_ids(held_vectors, ids[held])
    else:
        # Too few vectors to spare tuning queries: stored ones, each leaving itself out of the answers.
        rows = rng.choice(count, min(TUNING_QUERIES, count), replace=False)
        _tune(index, stored_ids, stored, np.array(stored[rows]), stored_ids[rows], device=device)


class _AddBuffer:
    """Rows gathered into fixed-size batches for ``add_with_ids`` (see ``ADD_BATCH``)."""

    def __init__(self, index: faiss.Index, size: int, dimension: int) -> None:
        self.index = index
        self.ids = np.empty(size, dtype=np.int64)
        self.vectors = np.empty((size, dimension), dtype=np.float32)
        self.filled = 0

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        start = 0
        while start < len(ids):
            take = min(len(ids) - start, len(self.ids) - self.filled)
            self.ids[self.filled : self.filled + take] = ids[start : start + take]
            self.vectors[self.filled : self.filled + take] = vectors[start : start + take]
            self.filled += take
            start += take
            if self.filled == len(self.ids):
                self.flush()

    def flush(self) -> None:
        if self.filled:
            self.index.add_with_ids(self.vectors[: self.filled], self.ids[: self.filled])
            self.filled = 0


def _gathered(stream: VectorStream, count: int) -> np.ndarray:
    """A stream's vectors in one array (compressed factories need them all at once)."""
    vectors = np.empty((count, stream.dimension), dtype=np.float32)
    filled = 0
    for chunk in stream.chunks:
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2 or chunk.shape[1] != stream.dimension or filled + len(chunk) > count:
            raise KosearchError(f"the vectors do not match the {count} ids ({stream.dimension}-d)")
        vectors[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    if filled != count:
        raise KosearchError(f"{filled} vectors arrived for {count} ids")
    return vectors


def _build_from_array(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, factory: str, device: str) -> None:
    """Train, add and tune a compressed-storage index from one array (see ``build_index``)."""
    inner = faiss.downcast_index(index.index)
    if not index.is_trained:
        if len(vectors) == 0:
            raise KosearchError(f"a {factory!r} index must be trained, and there are no vectors to train it on")
        _train(index, _training_sample(vectors, inner), gpu_number(device))
    rng = np.random.default_rng(_SEED)
    positions = _held_out_positions(len(ids), rng)
    if len(positions):
        # One add of the kept rows, then the held-out ones, without copying all vectors for it
        # (the rows are moved in place, and moved back before returning).
        kept_ids = np.delete(ids, positions)
        kept = len(kept_ids)
        _reserve_codes(inner, len(ids))
        with _held_out_last(vectors, positions) as ordered:
            index.add_with_ids(ordered[:kept], kept_ids)
            _tune(index, kept_ids, ordered[:kept], ordered[kept:], None, device=device)
            index.add_with_ids(ordered[kept:], ids[positions])
    else:
        index.add_with_ids(vectors, ids)
        rows = rng.choice(len(ids), min(TUNING_QUERIES, len(ids)), replace=False)
        _tune(index, ids, vectors, vectors[rows], ids[rows], device=device)
    ivf = _ivf_of(index)
    if ivf is not None:
        # Lets the store read vectors back (iter_vectors, compaction) and remove ids.
        ivf.make_direct_map()


@dataclass(frozen=True)
class Recall:
    """Recall@k of an approximate index, measured two ways over the same queries and answers.

    ``with_ties`` is what tuning stops on and the manifest's ``recall_at_10`` records
    (``recall_at_k``); ``by_ids`` is the share of the exact top-k ids found, recorded as
    ``recall_at_10_ids``. By ids is never higher: it counts a returned neighbour only when it is the
    very id exact search picked among equally close ones.
    """

    with_ties: float
    by_ids: float


def measure_recall(
    index: faiss.Index,
    ids: np.ndarray,
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int = 10,
    *,
    query_ids: np.ndarray | None = None,
    device: str = "cpu",
) -> Recall:
    """Recall@k of ``index`` against exact inner-product search over the same ``(ids, vectors)``,
    with ties and by ids (``recall_at_k``).

    When the queries are stored vectors, pass their ``query_ids``: each query's own id is then left
    out of both lists (finding yourself is trivially easy and would flatter the index).
    """
    ids = np.asarray(ids, dtype=np.int64)
    queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
    if len(queries) == 0 or len(ids) == 0:
        return Recall(1.0, 1.0)
    truth = ExactAnswers(ids, np.asarray(vectors, dtype=np.float32), queries, k, query_ids, device)
    _, found = index.search(queries, truth.depth, params=search_parameters(index, None))
    return truth.recall(found)


class ExactAnswers:
    """Each query's exact top k over ``(ids, vectors)``, and the exact score of any stored id.

    Computed once per query set, then ``recall(found)`` scores any number of approximate answers
    against it (one per search depth while tuning). ``query_ids``, when the queries are stored
    vectors, are left out of both the exact and the approximate answers.
    """

    def __init__(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        queries: np.ndarray,
        k: int = 10,
        query_ids: np.ndarray | None = None,
        device: str = "cpu",
    ) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vectors = vectors
        self.queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        self.k = k
        self.query_ids = None if query_ids is None else np.asarray(query_ids, dtype=np.int64)
        self.depth = min(k + (query_ids is not None), len(self.ids))
        """How many neighbours to ask an index for, so that k remain once a query's own id is left out."""
        positions = exact_neighbours(vectors, self.queries, self.depth, device)
        self.truth = np.where(positions >= 0, self.ids[np.maximum(positions, 0)], -1)
        self._order = None if bool(np.all(self.ids[1:] > self.ids[:-1])) else np.argsort(self.ids, kind="stable")
        self._sorted = self.ids if self._order is None else self.ids[self._order]

    def scores(self, found: np.ndarray) -> np.ndarray:
        """Exact inner products (float64, from the stored float32 vectors) of each query with the
        ids in its row of ``found``; -inf where an id is -1 (no answer) or not stored."""
        found = np.asarray(found, dtype=np.int64)
        slots = np.minimum(np.searchsorted(self._sorted, found), len(self._sorted) - 1)
        known = (found >= 0) & (self._sorted[slots] == found)
        rows = slots if self._order is None else self._order[slots]
        rows = np.where(known, rows, 0)
        stored = np.asarray(self.vectors[rows.ravel()], dtype=np.float64).reshape(*rows.shape, -1)
        scores = np.einsum("qkd,qd->qk", stored, self.queries.astype(np.float64))
        return np.where(known, scores, -np.inf)

    def recall(self, found: np.ndarray, epsilon: float = TIE_EPSILON) -> Recall:
        """``recall_at_k`` of an approximate answer ``found`` (ids, -1 padded, ``depth`` per query)."""
        return recall_at_k(self.truth, self.scores(self.truth), found, self.scores(found), self.k, self.query_ids, epsilon)


def recall_at_k(
    truth: np.ndarray,
    truth_scores: np.ndarray,
    found: np.ndarray,
    found_scores: np.ndarray,
    k: int,
    query_ids: np.ndarray | None = None,
    epsilon: float = TIE_EPSILON,
) -> Recall:
    """Recall@k with ties (ann-benchmarks' "k-nn" recall) and by ids, from exact answers.

    ``truth``/``found``: per query, the exact and the approximate answer (ids, best first, -1 for
    none); ``*_scores``: the exact inner product of each of those ids with the query. A query's
    own id (``query_ids``) is left out of both before the top ``k`` are taken.

    With ties, a returned neighbour counts as found when its exact score is at least the exact
    k-th score minus ``epsilon``: the rule of ann-benchmarks (Aumüller, Bernhardsson and Faithfull,
    "ANN-Benchmarks: a benchmarking tool for approximate nearest neighbor algorithms", Information
    Systems 87, 2020; ``knn`` / ``knn_threshold`` in erikbern/ann-benchmarks,
    ``ann_benchmarks/plotting/metrics.py``), which recomputes each returned neighbour's distance
    from the dataset and counts it when it is at most the k-th true distance plus epsilon (1e-3
    there). For its angular metric (cosine distance, 1 - cos) a distance margin is the same margin
    on the inner product of L2-normalised vectors, as here.

    Why ``TIE_EPSILON`` is 1e-5 and not 1e-3: this figure stands in for "the index finds the true
    top k", and only identical sentences are interchangeable answers. The inner product of two
    384-d unit vectors in float32 is off by about 1e-6, so 1e-5 admits identical vectors and nothing
    else; 1e-3 is a real distance for the bundled encoder. Measured on the 1.23M-sentence NSMC
    segment (bench/ann_recall_ties.py, docs/benchmarks.md): a query's exact top 10 spans a median
    0.009 in score, so 1e-3 is a ninth of it; none of the 58-121 returned neighbours per query set
    that 1e-3 counts and 1e-5 does not carried the text of an exact top-10 sentence; and 160 of
    the 162 copies of a query's own text among its top 10 score within 1e-5 of it (bf16 encoding
    moved 2 further).

    By ids: the share of the exact top-k ids that are among the returned top k. Both figures
    divide by the number of exact neighbours (k per query, fewer only in an index that holds fewer).
    """
    hits_ids = hits_ties = total = 0
    for row in range(len(truth)):
        expected, expected_scores = truth[row], truth_scores[row]
        got, got_scores = found[row], found_scores[row]
        keep_expected, keep_got = expected >= 0, got >= 0
        if query_ids is not None:
            keep_expected &= expected != query_ids[row]
            keep_got &= got != query_ids[row]
        expected, expected_scores = expected[keep_expected][:k], expected_scores[keep_expected][:k]
        got, got_scores = got[keep_got][:k], got_scores[keep_got][:k]
        if len(expected) == 0:
            continue
        hits_ids += len(np.intersect1d(expected, got))
        hits_ties += min(len(expected), int(np.count_nonzero(got_scores >= expected_scores.min() - epsilon)))
        total += len(expected)
    if not total:
        return Recall(1.0, 1.0)
    return Recall(hits_ties / total, hits_ids / total)


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int, device: str = "cpu") -> np.ndarray:
    """Positions in ``vectors`` of each query's ``k`` largest inner products: the truth recall is measured
    against. Brute force on the GPU (``faiss.knn_gpu``) when ``device`` is CUDA and faiss-gpu sees it."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    gpu = gpu_number(device)
    if gpu is not None:
        return _knn_gpu(vectors, queries, k, gpu)
    # faiss.knn scans ``vectors`` where they are (an IndexFlatIP would hold a copy of them all);
    # both run FAISS's same exhaustive inner-product search, so the answers are the same.
    _, positions = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    return positions


def _reserve_codes(inner: faiss.Index, count: int) -> None:
    """Room for ``count`` vectors in an empty flat storage (an HNSW's, or the index itself) before
    the first of several adds.

    Without it each later add (the next batch, the held-out rows) may grow the storage's
    ``std::vector``, which copies every stored vector into a buffer twice as large: a transient
    second copy of them all. A vector keeps its capacity when shrunk, so growing it once and
    shrinking it back reserves it.
    """
    storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
    if isinstance(storage, faiss.IndexFlatCodes) and storage.ntotal == 0:
        storage.codes.resize(count * storage.code_size)
        storage.codes.resize(0)


def _reserve_graph(inner: faiss.Index, count: int) -> None:
    """Room for the links of ``count`` vectors in an empty HNSW graph, for the same reason as
    ``_reserve_codes``: each add grows the neighbour table, and growing copies it. A vertex holds
    2M links on level 0 and M on each level above (1/(M-1) levels on average), so 2M + 2 per
    vertex is enough for any M >= 2 (beyond it, FAISS simply grows the table)."""
    if isinstance(inner, faiss.IndexHNSW) and inner.ntotal == 0:
        links = count * (inner.hnsw.nb_neighbors(0) + 2)
        inner.hnsw.neighbors.resize(links)
        inner.hnsw.neighbors.resize(0)


@contextmanager
def _held_out_last(vectors: np.ndarray, positions: np.ndarray) -> Iterator[np.ndarray]:
    """``vectors`` with the rows at sorted ``positions`` moved to the end (the others keep their order).

    Done in place, block by block (each block between two held-out rows moves left, as far as the
    held-out rows before it), and undone on leaving, so the caller's array comes back unchanged;
    only the held-out rows and one block at a time are copied. An array that cannot be written
    (a read-only memory map) is reordered in a copy instead.
    """
    if not vectors.flags.writeable:
        yield np.concatenate([np.delete(vectors, positions, axis=0), vectors[positions]])
        return
    held = vectors[positions].copy()
    bounds = [*positions.tolist(), len(vectors)]
    for shift, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:]), start=1):
        vectors[start + 1 - shift : stop - shift] = vectors[start + 1 : stop]
    vectors[len(vectors) - len(held) :] = held
    try:
        yield vectors
    finally:
        for shift, (start, stop) in reversed(list(enumerate(zip(bounds[:-1], bounds[1:]), start=1))):
            vectors[start + 1 : stop] = vectors[start + 1 - shift : stop - shift]
        vectors[positions] = held


def gpu_number(device: str) -> int | None:
    """The GPU a build uses for ``device`` (``cuda``, ``cuda:1``), or None: CPU device, or no faiss-gpu."""
    from kosearch.store.vectors import _faiss_gpu_available

    if not device.startswith("cuda") or not _faiss_gpu_available():
        return None
    return int(device.split(":", 1)[1]) if ":" in device else 0


def _knn_gpu(vectors: np.ndarray, queries: np.ndarray, k: int, gpu: int) -> np.ndarray:
    resources = faiss.StandardGpuResources()
    _, positions = faiss.knn_gpu(resources, queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT, device=gpu)
    return positions


def _gpu_clustering_index(dimension: int, gpu: int) -> faiss.Index:
    """A flat L2 index on the GPU for k-means' assignment step (the CPU one is what IVF uses otherwise)."""
    resources = faiss.StandardGpuResources()
    index = faiss.index_cpu_to_gpu(resources, gpu, faiss.IndexFlatL2(dimension))
    index._resources = resources  # the GPU index points into them: keep them alive with it
    return index


def _train(index: faiss.Index, sample: np.ndarray, gpu: int | None) -> None:
    """Train ``index``; IVF's k-means assigns on the GPU when one is given (the result is a CPU index)."""
    ivf = _ivf_of(index)
    if gpu is None or ivf is None:
        index.train(sample)
        return
    clustering = _gpu_clustering_index(ivf.d, gpu)  # FAISS does not own it: this reference keeps it alive
    ivf.clustering_index = clustering
    try:
        index.train(sample)
    finally:
        ivf.clustering_index = None


def search_parameters(
    index: faiss.Index, selector: faiss.IDSelector | None, ef_search: int | None = None
) -> faiss.SearchParameters:
    """Search parameters for ``index`` (an ``IndexIDMap2`` or a bare index) that apply ``selector``
    (or none) together with the index's own tuned ``efSearch`` / ``nprobe``, or with ``ef_search``
    instead of the tuned ``efSearch`` when given (pair mining searches shallower, see
    ``kosearch.store.pair_mining``).

    The selector refers to the caller's ids; ``IndexIDMap2`` translates it to internal positions.
    """
    inner = faiss.downcast_index(index.index) if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)) else index
    if isinstance(inner, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW()
        params.efSearch = inner.hnsw.efSearch if ef_search is None else int(ef_search)
    elif _ivf_of(index) is not None:
        ivf = _ivf_of(index)
        params = faiss.SearchParametersIVF()
        params.nprobe = ivf.nprobe
        params.max_codes = ivf.max_codes
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector  # faiss's wrapper keeps the selector alive as long as the parameters
    return params


def search_depth(index: faiss.Index) -> dict[str, int]:
    """The tuned search parameter of an index, for ``info``: ``{"efSearch": 64}``, ``{"nprobe": 16}`` or ``{}``."""
    inner = faiss.downcast_index(index.index) if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)) else index
    if isinstance(inner, faiss.IndexHNSW):
        return {"efSearch": int(inner.hnsw.efSearch)}
    ivf = _ivf_of(index)
    return {"nprobe": int(ivf.nprobe)} if ivf is not None else {}


def _ivf_of(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _training_sample(vectors: np.ndarray, inner: faiss.Index) -> np.ndarray:
    """Enough vectors for k-means (about 64 per IVF list) and for 256-centroid PQ/SQ codebooks."""
    ivf = _ivf_of(inner)
    wanted = max(20_000, 64 * ivf.nlist) if ivf is not None else 20_000
    if len(vectors) <= wanted:
        return vectors
    rows = np.random.default_rng(_SEED).choice(len(vectors), wanted, replace=False)
    rows.sort()
    return np.ascontiguousarray(vectors[rows])


def _tune(
    index: faiss.Index,
    ids: np.ndarray,
    vectors: np.ndarray,
    queries: np.ndarray,
    query_ids: np.ndarray | None,
    k: int = 10,
    device: str = "cpu",
) -> Recall:
    """Raise efSearch / nprobe until recall@k of ``queries``, counted with ties, reaches
    TARGET_RECALL + TUNING_MARGIN (or the deepest step); returns the recall at the depth kept.

    ``ids``/``vectors`` are what the index holds now; ``query_ids`` is given when the queries are
    among them (then each query's own id is left out of both answers).
    """
    if len(ids) == 0:
        return Recall(1.0, 1.0)
    return _deepen(index, ExactAnswers(ids, vectors, queries, k, query_ids, device))


def depth_steps(index: faiss.Index) -> tuple[tuple[int, ...], Callable[[int], None]]:
    """The search depths tuning tries, shallowest first, and the setter of the index's depth."""
    inner = faiss.downcast_index(index.index)
    ivf = _ivf_of(index)
    if isinstance(inner, faiss.IndexHNSW):
        return _EF_SEARCH, lambda value: setattr(inner.hnsw, "efSearch", value)
    if ivf is not None:
        steps = tuple(p for p in _NPROBE if p < ivf.nlist) + (ivf.nlist,)
        return steps, lambda value: setattr(ivf, "nprobe", value)
    return (0,), lambda value: None


def _deepen(index: faiss.Index, truth: ExactAnswers) -> Recall:
    """The stop rule: the shallowest step whose recall with ties reaches the target (else the deepest)."""
    steps, set_depth = depth_steps(index)
    recall = Recall(0.0, 0.0)
    for value in steps:
        set_depth(value)
        _, found = index.search(truth.queries, truth.depth, params=search_parameters(index, None))
        recall = truth.recall(found)
        if recall.with_ties >= TARGET_RECALL + TUNING_MARGIN:
            break
    return recall


_FACTORY = re.compile(r"^(Flat|HNSW\d+(,(Flat|SQ8|SQfp16))?|IVF\d+,(Flat|SQ8|SQfp16|PQ\d+(x\d+)?))$")


def is_known_factory(factory: str) -> bool:
    """Whether ``factory`` is one of the types kosearch builds and tunes (others are FAISS's business)."""
    return bool(_FACTORY.match(factory))
