"""A reader's view: one committed generation of an index, frozen, searchable from many threads.

A view holds the generation's manifest, its segments (opened once, memory-mapped, shared with the
views before and after it that name the same segment), its deleted ids, and its own SQLite
connection holding the WAL snapshot of that generation, so every row it reads belongs to the same
generation as the vectors it searches: an id a search returns always resolves to its row, and a
deleted row's vector is never returned. Nothing in a view changes after it is made; SQL calls are
serialised by the view's lock (one SQLite connection is not safe for concurrent use), FAISS
searches are not (FAISS searches are read-only and run in parallel). A view is closed once it is
replaced and no search still uses it.

A writer uses the same class for what it sees itself: the committed segments, the deleted ids
including its uncommitted deletions, and ``pending``, the vectors it added since its last commit.

The lexical side is the same: ``lexical`` holds the generation's BM25 postings segments
(``kosearch.store.postings``), shared by name with the views before and after it, searched with the
view's deleted ids excluded; a writer's view adds the postings of its uncommitted units, built from
its SQLite transaction the first time it searches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from kosearch.store.metadata import MetadataStore
from kosearch.store.postings import LexicalSegments, SegmentPostings
from kosearch.store.segments import SegmentEntry, tombstones_within
from kosearch.store.vectors import IdSet, VectorStore, only_ids


@dataclass(frozen=True)
class LoadedSegment:
    entry: SegmentEntry
    vectors: VectorStore


class StoreView:
    """One generation: manifest, segments, deleted ids and the SQLite snapshot they agree with."""

    def __init__(
        self,
        manifest: dict[str, Any],
        segments: list[LoadedSegment],
        tombstones: np.ndarray,
        metadata: MetadataStore,
        *,
        owns_metadata: bool = True,
        pending: VectorStore | None = None,
        lexical: LexicalSegments | None = None,
        pending_lexical: Callable[[], SegmentPostings | None] | None = None,
    ) -> None:
        self.manifest = manifest
        self.generation = int(manifest["generation"])
        self.segments = segments
        self.tombstones = np.unique(np.asarray(tombstones, dtype=np.int64))
        self.pending = pending
        self.lexical = lexical
        self._pending_lexical = pending_lexical
        self._metadata = metadata
        self._owns_metadata = owns_metadata
        self._excluded = {s.entry.name: IdSet(tombstones_within(self.tombstones, s.entry)) for s in segments}
        self._sql_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._users = 0
        self._retired = False

    # -- lifetime -------------------------------------------------------------------------------

    def acquire(self) -> StoreView:
        with self._state_lock:
            self._users += 1
        return self

    def release(self) -> None:
        with self._state_lock:
            self._users -= 1
            done = self._retired and self._users == 0
        if done:
            self._close()

    def retire(self) -> None:
        """A newer view replaces this one: close it as soon as no search uses it."""
        with self._state_lock:
            self._retired = True
            done = self._users == 0
        if done:
            self._close()

    def _close(self) -> None:
        if self._owns_metadata:
            with self._sql_lock:
                self._metadata.close()

    @contextmanager
    def sql(self) -> Iterator[MetadataStore]:
        """The snapshot's SQLite access, one caller at a time."""
        with self._sql_lock:
            yield self._metadata

    @property
    def metadata(self) -> MetadataStore:
        return self._metadata

    def segments_by_name(self) -> dict[str, LoadedSegment]:
        return {segment.entry.name: segment for segment in self.segments}

    # -- lexical --------------------------------------------------------------------------------

    @cached_property
    def _pending_postings(self) -> list[SegmentPostings]:
        built = self._pending_lexical() if self._pending_lexical is not None else None
        return [built] if built is not None and built.count else []

    def lexical_search(
        self, terms: Sequence[str], k: int, allowed: np.ndarray | None, k1: float, b: float
    ) -> list[tuple[int, float]]:
        """The k best ``(unit id, BM25)`` over the view's postings, deleted units never, only ``allowed``
        ones when given (k come back whenever k allowed units share a term with the query)."""
        if self.lexical is None or not terms:
            return []
        with self._sql_lock if self._pending_lexical is not None else nullcontext():
            extra = self._pending_postings  # built from the writer's connection: one caller at a time
        return self.lexical.search(terms, k, self.tombstones, allowed, k1=k1, b=b, extra=extra)

    # -- vectors --------------------------------------------------------------------------------

    def count(self) -> int:
        """Live vectors: stored, minus deleted, plus a writer's pending ones."""
        stored = sum(segment.entry.count for segment in self.segments)
        pending = self.pending.count() if self.pending is not None else 0
        return stored + pending - len(self.tombstones)

    def _sources(self) -> Iterator[tuple[VectorStore, IdSet | None, SegmentEntry | None]]:
        for segment in self.segments:
            if segment.entry.count:
                yield segment.vectors, self._excluded[segment.entry.name], segment.entry
        if self.pending is not None and self.pending.count():
            yield self.pending, None, None  # a writer's own removals leave its pending store at once

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None, ef_search: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product over every segment, deleted ids excluded; id -1 pads missing results.

        With ``allowed_ids`` (the ids of live rows a filter let through, read from this same
        snapshot) no deleted id can come back, so the deleted ids need no filtering. ``ef_search``
        replaces HNSW segments' tuned search depth (see ``VectorStore.search``).
        """
        queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        live = self.count()
        if live <= 0:
            return np.zeros((len(queries), 1), np.float32), np.full((len(queries), 1), -1, np.int64)
        k = max(1, min(int(k), live))
        allowed = None if allowed_ids is None else np.unique(np.asarray(allowed_ids, dtype=np.int64))
        all_scores, all_ids = [], []
        for vectors, excluded, entry in self._sources():
            restrict = allowed
            if allowed is not None and entry is not None:
                restrict = tombstones_within(allowed, entry)  # the allowed ids this segment can hold
                if len(restrict) == 0:
                    continue
            scores, ids = vectors.search(
                queries, k, restrict, None if allowed is not None else excluded, ef_search=ef_search
            )
            all_scores.append(scores)
            all_ids.append(ids)
        if not all_scores:
            return np.zeros((len(queries), 1), np.float32), np.full((len(queries), 1), -1, np.int64)
        return _best(np.concatenate(all_scores, axis=1), np.concatenate(all_ids, axis=1), k)

    def iter_vectors(
        self, batch_size: int = 65536, allowed_ids: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` of every live vector, in batches; only ``allowed_ids`` ones when given (a
        store that can read vectors by id then reads only those: ``FaissVectorStore.iter_vectors_of``)."""
        allowed = None if allowed_ids is None else np.unique(np.asarray(allowed_ids, dtype=np.int64))
        for vectors, excluded, entry in self._sources():
            batches = vectors.iter_vectors(batch_size)
            if allowed is not None:
                restrict = allowed if entry is None else tombstones_within(allowed, entry)
                if len(restrict) == 0:
                    continue
                read_by_id = getattr(vectors, "iter_vectors_of", None)
                batches = read_by_id(restrict, batch_size) if read_by_id is not None else only_ids(batches, restrict)
            for ids, batch in batches:
                if excluded is not None and len(excluded):
                    keep = excluded.mask(ids)
                    ids, batch = ids[keep], batch[keep]
                if len(ids):
                    yield ids, batch


def _best(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best (score, id) of several searches' results, best first, ties by id."""
    if ids.shape[1] < k:
        pad = k - ids.shape[1]
        ids = np.concatenate([ids, np.full((len(ids), pad), -1, np.int64)], axis=1)
        scores = np.concatenate([scores, np.zeros((len(scores), pad), np.float32)], axis=1)
    scores = np.where(ids >= 0, scores, -np.inf)
    order = np.lexsort((ids, -scores), axis=-1)[:, :k]
    best_scores = np.take_along_axis(scores, order, axis=1)
    best_ids = np.take_along_axis(ids, order, axis=1)
    missing = ~np.isfinite(best_scores)
    best_ids[missing] = -1
    best_scores[missing] = -np.finfo(np.float32).max
    return best_scores.astype(np.float32), best_ids
