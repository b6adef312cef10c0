"""Vectors in a Qdrant collection, under the same generation protocol as FAISS segments.

Why Qdrant (issue 10): a point id is an unsigned 64-bit integer, so a point's id is the sentence
id and nothing maps between them; payload range filters (``generation <= g``) and id filters
(``HasId``) express a pinned generation and kosearch's filters in one request; deletes are by id
or by filter; and qdrant-client has a local on-disk mode (``QdrantClient(path=...)``, pure Python,
no server) with the same API as a server or cluster, so tests and laptops run the code a cluster
runs. qdrant-client is Apache-2.0 and released monthly. Milvus was the alternative (pymilvus and
milvus-lite, both Apache-2.0): milvus-lite 3 serves a ``.db`` folder by starting a gRPC server on a
local port in a thread of the process, pymilvus adds pandas and milvus-lite pyarrow, and Milvus's
default consistency level (bounded staleness) would have to be raised to Strong on every request
for a reader to see a commit at once; its int64 primary keys and delete-by-expression would fit as
well as Qdrant's, but nothing it offers is missing here.

How the protocol holds (see ``kosearch.store.index_store`` for the protocol itself):

- Each point is ``id = sentence id``, the unit's vector, payload ``{"generation": g}``, ``g`` the
  generation whose checkpoint wrote it. A checkpoint upserts its new points (``wait=True``) *before*
  the SQLite transaction that commits generation ``g``; the manifest then records how many points
  generations up to ``g`` hold (``vector_points``, deleted ones included until compaction).
- A reader of generation ``g`` searches with the filter ``generation <= g`` and excludes the ids
  tombstoned in its SQLite snapshot, so points of a checkpoint still being written, or of one that a
  kill lost (``generation > committed``), are never seen.
- Orphans: the next writer, holding the write lock, deletes every point with ``generation >``
  the committed one before it writes anything (sentence ids the lost run used are given out again).
- Compaction deletes the tombstoned points, then one transaction deletes those tombstones and
  bumps ``generation``. A kill in between leaves tombstones whose points are gone: harmless, they
  are excluded anyway and the next compaction deletes them again.

Limits, stated rather than hidden:

- A reader pinned to a generation *older* than a compaction's may miss points that compaction
  deleted (FAISS readers keep removed files through their memory map; a database has no such
  thing). Compaction first commits ``points_deleted_from`` (the generation whose tombstones it
  deletes); a search whose generation is older than that re-runs on the newest generation when
  nothing pins it, and otherwise fails with ``IndexChangedError`` ("search again") instead of
  answering from a partial set. Compaction of a Qdrant index runs only on ``kosearch compact``.
- Local mode is one process at a time (qdrant-client locks the storage folder): a search while
  ``kosearch index`` runs needs a server (``qdrant://``). Within one process, readers and the
  writer share one client.
- Id lists: an allowed-id filter or the deleted ids go into the request as ``HasId`` up to
  ``ID_LIST_LIMIT`` ids (servers cap request size, 32 MB by default, and strict mode caps a
  condition's size). Beyond that kosearch over-fetches and filters the results itself, doubling
  the depth until ``k`` results pass or the generation has no more points.
- Scores: ``Distance.DOT`` on L2-normalised vectors, like FAISS's inner product. A server searches
  its HNSW graph unless the collection is small or the request says ``exact``; kosearch asks for
  exact search below ``EXACT_BELOW`` points (FAISS's measured break-even) and local mode is always
  exact.
- Local mode is qdrant-client's pure-Python engine, meant by its authors for tests and small
  collections: it commits each point to its SQLite file on its own and filters in Python
  (docs/benchmarks.md, "Qdrant backend (issue 10)": tens of points/s to ingest, about 0.1 s a query
  at 5,000 units on this machine). Real sizes belong on a server, whose code path is the same.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kosearch.errors import IndexChangedError, IndexCorruptError, KosearchError
from kosearch.store.ann import BREAK_EVEN
from kosearch.store.segments import SegmentEntry
from kosearch.store.vectors import IdSet, VectorStore
from kosearch.store.view import LoadedSegment

GENERATION = "generation"
"""The payload key holding the generation that wrote a point."""
ID_LIST_LIMIT = 10_000
"""Most ids sent in one ``HasId`` condition; longer lists are applied to the results instead."""
UPSERT_BATCH = 512
"""Points per upsert request (a 384-d batch is about 1 MB of JSON)."""
SCROLL_BATCH = 2048
EXACT_BELOW = BREAK_EVEN
"""Below this many points a server is asked for exact search (a flat scan, like a FAISS ``Flat``
segment below the same measured break-even, ``kosearch.store.ann``); above it, its HNSW graph."""
ENTRY_NAME = "qdrant"
MAX_POINT_ID = 2**63 - 1

__all__ = ["IndexChangedError", "QdrantGeneration", "QdrantPoints"]

_INSTALL = 'the qdrant vector store needs qdrant-client: pip install "kosearch[qdrant]"'


def _qdrant():
    try:
        import qdrant_client
        from qdrant_client import models
    except ImportError:
        raise KosearchError(_INSTALL) from None
    return qdrant_client, models


class _LocalClients:
    """One ``QdrantClient(path=...)`` per storage folder per process, shared, with one lock.

    qdrant-client's local mode locks its folder against any second client, even in the same
    process; a reader and a writer of one index in one process therefore share this one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, list[Any]] = {}  # path -> [client, users, call lock]

    def acquire(self, path: Path):
        key = str(path.resolve())
        with self._lock:
            if key not in self._clients:
                qdrant_client, _ = _qdrant()
                try:
                    client = qdrant_client.QdrantClient(path=key)
                except RuntimeError as error:
                    if "already accessed" in str(error):
                        raise KosearchError(
                            f"the Qdrant local storage {path} is open in another process; local mode serves "
                            f"one process at a time (use a Qdrant server, --vector-store qdrant://HOST:6333/NAME, "
                            f"to read while another process writes)"
                        ) from None
                    raise
                self._clients[key] = [client, 0, threading.RLock()]
            entry = self._clients[key]
            entry[1] += 1
            return entry[0], entry[2]

    def release(self, path: Path) -> None:
        key = str(path.resolve())
        with self._lock:
            entry = self._clients.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del self._clients[key]
                entry[0].close()


_LOCAL = _LocalClients()


class QdrantPoints:
    """The ``VectorBackend`` (``kosearch.store.vector_backend``) over one Qdrant collection."""

    kind = "qdrant"
    merges_segments = False

    def __init__(self, folder: Path, config: dict[str, Any], dimension: int, *, creating: bool = False) -> None:
        _, self._models = _qdrant()
        self.folder = folder
        self._config = dict(config)
        self.collection = str(config["collection"])
        self.dimension = dimension
        self._local_path: Path | None = None
        self._cleaned = False
        if "path" in config:
            relative = Path(str(config["path"]))
            if relative.is_absolute() or ".." in relative.parts:
                raise IndexCorruptError(f"the manifest's Qdrant path {relative} is not inside {folder}")
            self._local_path = folder / relative
            self._local_path.mkdir(exist_ok=True)
            self.client, self._call_lock = _LOCAL.acquire(self._local_path)
        else:
            qdrant_client, _ = _qdrant()
            self.client = qdrant_client.QdrantClient(
                url=str(config["url"]), api_key=os.environ.get("QDRANT_API_KEY") or None, timeout=60
            )
            self._call_lock = None
        try:
            self._check_collection(creating)
        except BaseException:
            self.close()
            raise

    # -- plumbing -------------------------------------------------------------------------------

    def _call(self, method: str, *args, **kwargs):
        """A client call; local mode's client is not thread-safe, so its calls take turns."""
        try:
            if self._call_lock is None:
                return getattr(self.client, method)(*args, **kwargs)
            with self._call_lock:
                return getattr(self.client, method)(*args, **kwargs)
        except KosearchError:
            raise
        except Exception as error:  # connection refused, timeouts, server errors: one line for the user
            if isinstance(error, (MemoryError, KeyboardInterrupt)):
                raise
            raise KosearchError(f"Qdrant ({self.describe()}) failed: {type(error).__name__}: {error}") from None

    def _check_collection(self, creating: bool) -> None:
        models = self._models
        if not self._call("collection_exists", self.collection):
            if not creating:
                raise IndexCorruptError(
                    f"the Qdrant collection {self.collection!r} ({self.describe()}) that holds the vectors of "
                    f"{self.folder} does not exist"
                )
            self._call(
                "create_collection",
                self.collection,
                vectors_config=models.VectorParams(size=self.dimension, distance=models.Distance.DOT),
            )
            if self._local_path is None:  # local mode scans payloads; a server wants the field indexed
                self._call(
                    "create_payload_index", self.collection, GENERATION, field_schema=models.PayloadSchemaType.INTEGER
                )
            return
        params = self._call("get_collection", self.collection).config.params.vectors
        size = getattr(params, "size", None)
        distance = getattr(params, "distance", None)
        if size != self.dimension or distance != models.Distance.DOT:
            raise KosearchError(
                f"the Qdrant collection {self.collection!r} holds {size}-dimensional {distance} vectors; this "
                f"index needs {self.dimension}-dimensional Dot vectors: give another collection"
            )
        if creating and self.stored(None) > 0:
            raise KosearchError(
                f"the Qdrant collection {self.collection!r} ({self.describe()}) already holds points; a new "
                f"index needs an empty or new collection of its own"
            )

    def generation_filter(self, generation: int | None, *, above: bool = False):
        models = self._models
        if generation is None:
            return None
        bound = models.Range(gt=generation) if above else models.Range(lte=generation)
        return models.Filter(must=[models.FieldCondition(key=GENERATION, range=bound)])

    def stored(self, generation: int | None) -> int:
        """Points written by generations up to ``generation`` (all points when None), exactly."""
        return int(self._call("count", self.collection, count_filter=self.generation_filter(generation), exact=True).count)

    # -- VectorBackend --------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def describe(self) -> str:
        if self._local_path is not None:
            return f"qdrant (local, collection {self.collection})"
        return f"qdrant ({self._config.get('url')}/{self.collection})"

    def load(self, manifest: dict[str, Any], known: dict[str, LoadedSegment], problem) -> list[LoadedSegment]:
        generation = int(manifest["generation"])
        count = manifest.get("vector_points", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise problem(f"the manifest's vector_points is {count!r}, not a count")
        prior = known.get(ENTRY_NAME)
        if prior is not None and getattr(prior.vectors, "generation", None) == generation:
            return [prior]
        return [self._segment(generation, count)]

    def _segment(self, generation: int, count: int) -> LoadedSegment:
        entry = SegmentEntry(ENTRY_NAME, count, "qdrant", 0, MAX_POINT_ID)
        return LoadedSegment(entry, QdrantGeneration(self, generation, count))

    def verify(self, manifest: dict[str, Any], tombstones: int) -> None:
        """At a writer's open: the points of the committed generations are all there (less only
        deleted ones that a compaction killed before its commit removed)."""
        expected = int(manifest.get("vector_points", 0))
        found = self.stored(int(manifest["generation"]))
        if not expected - tombstones <= found <= expected:
            raise IndexCorruptError(
                f"the Qdrant collection {self.collection!r} holds {found} points of generations up to "
                f"{manifest['generation']}, the manifest says {expected} ({tombstones} of them deleted)"
            )

    def write(
        self, generation: int, pending: VectorStore, segments: list[LoadedSegment], manifest: dict[str, Any]
    ) -> list[LoadedSegment]:
        models = self._models
        payload = {GENERATION: generation}
        written = 0
        for ids, vectors in pending.iter_vectors(UPSERT_BATCH):
            self._call(
                "upsert",
                self.collection,
                points=models.Batch(ids=ids.tolist(), vectors=vectors.tolist(), payloads=[payload] * len(ids)),
                wait=True,
            )
            written += len(ids)
        before = segments[0].entry.count if segments else int(manifest.get("vector_points", 0))
        return [self._segment(generation, before + written)]

    def reopen_written(self, segments: list[LoadedSegment]) -> list[LoadedSegment]:
        return segments

    def manifest_keys(self, segments: list[LoadedSegment]) -> dict[str, Any]:
        return {"segments": [], "vector_points": segments[0].entry.count if segments else 0}

    def remove_uncommitted(self, segments: list[LoadedSegment], generation: int, keep: frozenset[str] = frozenset()) -> None:
        """Delete the points of generations after the committed one (once per writer: it makes none)."""
        if self._cleaned:
            return
        models = self._models
        selector = models.FilterSelector(filter=self.generation_filter(generation, above=True))
        self._call("delete", self.collection, points_selector=selector, wait=True)
        self._cleaned = True

    def delete_points(self, ids: np.ndarray) -> None:
        models = self._models
        for start in range(0, len(ids), ID_LIST_LIMIT):
            chunk = [int(i) for i in ids[start : start + ID_LIST_LIMIT]]
            self._call("delete", self.collection, points_selector=models.PointIdsList(points=chunk), wait=True)

    def close(self) -> None:
        if self._local_path is not None:
            if self.client is not None:
                _LOCAL.release(self._local_path)
        elif self.client is not None:
            self.client.close()
        self.client = None


class QdrantGeneration:
    """The points one committed generation sees, searched like a segment (``VectorStore``'s reading half)."""

    backend = "qdrant"

    def __init__(self, points: QdrantPoints, generation: int, count: int) -> None:
        self.points = points
        self.generation = generation
        self.dimension = points.dimension
        self._count = count

    def count(self) -> int:
        return self._count

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        raise KosearchError("a committed generation is read-only; a writer adds vectors at its checkpoint")

    def remove(self, ids: np.ndarray) -> int:
        raise KosearchError("a committed generation is read-only; a writer deletes with tombstones")

    def save(self, path: Path) -> None:
        raise KosearchError("Qdrant points are not saved to a file")

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        excluded: IdSet | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` of the k best points of this generation; see the module's "Id lists".

        ``ef_search`` is ignored: Qdrant keeps its own HNSW settings."""
        models = self.points._models
        queries = np.asarray(queries, dtype=np.float32)
        must = [models.FieldCondition(key=GENERATION, range=models.Range(lte=self.generation))]
        must_not = []
        keep_only: np.ndarray | None = None
        drop: np.ndarray | None = None
        if allowed_ids is not None:
            allowed = np.unique(np.asarray(allowed_ids, dtype=np.int64))
            if len(allowed) <= ID_LIST_LIMIT:
                must.append(models.HasIdCondition(has_id=allowed.tolist()))
            else:
                keep_only = allowed
        if excluded is not None and len(excluded):
            if len(excluded) <= ID_LIST_LIMIT:
                must_not.append(models.HasIdCondition(has_id=excluded.ids.tolist()))
            else:
                drop = excluded.ids
        query_filter = models.Filter(must=must, must_not=must_not or None)
        scores = np.full((len(queries), k), -np.finfo(np.float32).max, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        if keep_only is None and drop is None:
            found = self._query(queries, query_filter, k)
            for row, points in enumerate(found):
                self._fill(scores, ids, row, points)
            return scores, ids
        for row, query in enumerate(queries):
            depth = min(max(2 * k, k + 64), self._count)
            while True:
                (points,) = self._query(query[None, :], query_filter, depth)
                kept = [
                    point for point in points
                    if (keep_only is None or _contains(keep_only, point.id)) and (drop is None or not _contains(drop, point.id))
                ]
                if len(kept) >= k or len(points) < depth or depth >= self._count:
                    break
                depth = min(depth * 2, self._count)
            self._fill(scores, ids, row, kept[:k])
        return scores, ids

    def _query(self, queries: np.ndarray, query_filter, limit: int) -> list[list[Any]]:
        models = self.points._models
        params = None
        if self.points._local_path is None and self._count < EXACT_BELOW:
            params = models.SearchParams(exact=True)
        requests = [
            models.QueryRequest(query=query.tolist(), filter=query_filter, limit=max(1, limit), params=params)
            for query in queries
        ]
        responses = self.points._call("query_batch_points", self.points.collection, requests=requests)
        return [response.points for response in responses]

    @staticmethod
    def _fill(scores: np.ndarray, ids: np.ndarray, row: int, points: list[Any]) -> None:
        for column, point in enumerate(points[: scores.shape[1]]):
            scores[row, column] = point.score
            ids[row, column] = int(point.id)

    def ids(self) -> np.ndarray:
        return np.concatenate([ids for ids, _ in self._scroll(with_vectors=False)] or [np.zeros(0, np.int64)])

    def iter_vectors(self, batch_size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """This generation's points (deleted ones included: the view drops them), in id order."""
        yield from self._scroll(with_vectors=True, batch_size=min(batch_size, SCROLL_BATCH))

    def _scroll(self, *, with_vectors: bool, batch_size: int = SCROLL_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        offset = None
        query_filter = self.points.generation_filter(self.generation)
        while True:
            points, offset = self.points._call(
                "scroll",
                self.points.collection,
                scroll_filter=query_filter,
                limit=batch_size,
                offset=offset,
                with_payload=False,
                with_vectors=with_vectors,
            )
            if points:
                ids = np.asarray([int(point.id) for point in points], dtype=np.int64)
                if with_vectors:
                    vectors = np.asarray([point.vector for point in points], dtype=np.float32)
                else:
                    vectors = np.zeros((len(points), 0), dtype=np.float32)
                yield ids, vectors
            if offset is None:
                return


def _contains(sorted_ids: np.ndarray, value: Any) -> bool:
    position = int(np.searchsorted(sorted_ids, int(value)))
    return position < len(sorted_ids) and int(sorted_ids[position]) == int(value)
