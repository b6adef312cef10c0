"""An index folder on disk, and the protocol that keeps it consistent when a run is killed.

Layout::

    INDEX/metadata.sqlite                documents, sentences, lexical tokens (FTS5), tombstones,
                                         skipped files, manifest (SQLite, WAL)
    INDEX/segment.000007.faiss           immutable FAISS files, one per segment the manifest's
    INDEX/segment.000012.faiss           ``segments`` lists (see ``kosearch.store.segments``)
    INDEX/segment.000012.lexical.npz     immutable BM25 postings files, one per entry of the manifest's
                                         ``lexical_segments`` (see ``kosearch.store.postings``)
    INDEX/write.lock                     held (flock) by the one process allowed to write
    INDEX/qdrant/                        only with ``--vector-store qdrant:local``: Qdrant's local storage

The index's vectors are the union of its segments minus the ids in the ``tombstones`` table.
Segment names in the manifest must be of the form ``segment.NNNNNN``; anything else (an absolute
path, a ``..``, another name) is reported as corruption, and the only files a writer ever removes
are segment files (``segment.NNNNNN.faiss``, ``segment.NNNNNN.lexical.npz``, with or without
``.tmp``) and old ``vectors.NNNNNN.faiss`` files directly inside the folder that the committed
manifest does not name. The invariant checked at every commit and open: sentence rows = vectors in
the segments - tombstones = the manifest's ``sentences`` (= units in the postings files - the
tombstones among them, for an index with postings files).

Vector backends. Where the vectors live is the manifest's ``vector_store`` (absent: the FAISS
segment files above). ``kosearch.store.vector_backend`` is the seam: a backend writes a checkpoint's
new vectors before the commit, loads a generation's vectors for a view, names them in the manifest
and removes what no commit names. With Qdrant (``kosearch.store.qdrant_backend``) the manifest's
``segments`` stay empty and ``vector_points`` counts the points committed generations wrote; each
point carries the generation that wrote it, a view of generation g searches ``generation <= g``
minus its tombstones, the next writer deletes the points of generations above the committed one,
and compaction deletes tombstoned points in place (its limits are stated there). Everything below
about segment files is FAISS's; the transactions, tombstones and counts are the same for both.

Creation. Under the write lock, one SQLite transaction creates the tables and the whole manifest
(no segment yet). A folder with ``metadata.sqlite`` but no manifest is therefore a creation that
was killed (it cannot hold documents): readers are told so, and the next ``create`` or
``open_or_create`` completes it in place. The lock is taken before anything is looked at, so a
second writer on a brand-new index is told another process is writing.

Writing. Between checkpoints a writer keeps one SQLite write transaction open: rows are inserted,
rows of replaced documents deleted and their vector ids added to ``tombstones``, as the run goes,
so they wait in SQLite's page cache and WAL instead of in Python memory, while the new vectors wait
in a small in-memory store (a deleted vector that was never committed just leaves it). A
checkpoint writes those new vectors, and only those, as a new segment file (fsynced, renamed into
place), then, in that same transaction, checks the counts, adds the segment to the manifest's
list, increments ``generation`` and commits. Until that commit, readers and a restarted run see the
previous generation, whose files are untouched; after it, they see the new one. A kill at any
moment therefore leaves either the old state or the new one, never a mix: uncommitted rows and
tombstones vanish with their transaction, and the orphan segment file of the losing side is removed
by the next writer. A checkpoint may fall inside a document; such a document is committed with
``sha256 = ''`` until its last sentence is in, so a run killed after it leaves that part searchable
and the next run re-does the file. Bytes written per checkpoint are the new vectors and rows, so
indexing N sentences writes about the final size, plus compaction.

Compaction. Under the write lock (right after a checkpoint), segments are merged: on their own when
a tier of segments of one order of magnitude holds ten (``kosearch.store.segments.tier_to_merge``),
all of them on an explicit ``compact()``. The merged segment holds the live vectors only; it is an
approximate index (HNSW, IVF: ``kosearch.store.ann``) when its size is above the measured
break-even, with its recall@10 recorded in its entry (counted with ties, and by ids:
``kosearch.store.ann.recall_at_k``). The sources are read once, batch by batch,
straight into the new index (their mapped pages dropped behind the reader), and an HNSW's tuning
and recorded recall compare against its own stored vectors, so a merge holds about the new index
plus one batch (a compressed factory such as ``HNSW32,SQfp16`` still reads them into one array:
its codes cannot serve as the exact truth). Before the first merge that follows a checkpoint and
reads at least ``RELEASE_BEFORE_MERGE_BYTES`` of vectors, the writer frees what a merge does not
need: its SQLite page cache, and whatever the caller's ``before_merge`` hook frees (an indexing
run's encoder and Kiwi: ``kosearch.ingest``); the store knows nothing of what the hook holds. It is
written like any segment, then one
transaction replaces the merged entries by the new one and deletes the dropped ids from
``tombstones``; only after that commit are the old files removed. An explicit ``compact()`` then
empties the SQLite WAL (a checkpoint into ``metadata.sqlite``, when no transaction is open and as
far as readers' snapshots allow), so the disk space it reports is what stays.

Migration. An index made before segments names one file, ``vectors_file = vectors.NNNNNN.faiss``,
and has no ``segments`` key: it opens read-only as one segment made of that file. Its first writer
gives the file a second name (a hard link, else a copy) ``segment.MMMMMM.faiss`` and commits a
manifest listing that segment (and no ``vectors_file``); the old name is removed after the commit.

Lexical index. Two parts. The FTS5 table ``lexical`` (rowid = sentence id, text = the sentence's
morphemes) is the durable token store: written and deleted in the same SQLite transaction as the
sentence rows, so whatever a kill leaves, rows, tokens and vectors belong to one checkpoint. It is
not searched; it is what the postings files are built from (a checkpoint's new units, a migration,
a repair), so no file ever has to be the only copy of an analysis. The *postings files*
(``segment.NNNNNN.lexical.npz``, ``kosearch.store.postings``) are what lexical search and hybrid's
BM25 completion read, memory-mapped, with k1 and b chosen per query: FTS5's ``bm25()`` cannot take
them, and it scores every matching row (three times dense-only at a million units, where postings
measured 1.00x; docs/benchmarks.md). A checkpoint builds the postings of its new units from their
FTS5 rows (read inside its own transaction), writes them as ``segment.G.lexical.npz`` (fsynced,
renamed) before the commit, and the commit names the file in ``lexical_segments`` and checks that
the postings' units minus the tombstones among them are the sentence rows; a kill before the
commit leaves an orphan file that the next writer removes, like a FAISS segment's. Postings files
do not depend on the vector backend (Qdrant indexes have them too) and are merged by compaction:
an explicit or tier merge of FAISS segments merges the postings files of the same names and every
postings file holding a unit whose tombstone the merge deletes (Qdrant's compaction: every file
holding a deleted unit), without those units; postings files also merge on their own when a tier
of ten fills. Deleted units stay in the BM25 statistics (N, avgdl, df) until that merge, as in
Lucene. The manifest's ``lexical`` key (the analyzer's options, so queries are analysed like the
documents) is set only in the transaction that makes every sentence have its FTS5 row, and from
then on every checkpoint checks the counts. An index made before the lexical index has no such
key: it is searched densely, and its next writer (``kosearch index``) adds the FTS5 rows of its old
sentences, then the key, and that checkpoint writes one postings file of every unit. An index made
before postings files (``lexical`` but no ``lexical_segments``) is searched through postings that a
reader builds in memory from the FTS5 rows once per generation, and its next writer, at open, writes
them as one file in a commit of its own.

Failures and damage. A write that fails (disk full, a quota, the process's file size limit, an
I/O error) is raised as one ``IndexWriteError`` saying so; the half-written ``.tmp`` file is
removed at once, the writer stops (its uncommitted rows are lost) and the index keeps its last
commit. Opening checks what a search needs and can afford (manifest, segment headers and counts);
a damaged SQLite page first met by a later read is an ``IndexCorruptError`` naming the file.
``kosearch.store.check`` reads everything (``kosearch check``), and its repair commits through
``checkpoint`` like any writer, from a writer opened without the unreadable segments.

Reading. A reader searches a *view* (``kosearch.store.view``): one generation's manifest,
segments, tombstones and a SQLite read transaction (a WAL snapshot) of that generation, so counts
always agree and every id the vectors return resolves to its row. Before each read a cheap check
(one autocommit query of the manifest's ``generation``) tells whether a writer committed a newer
generation; if so a new view is made that reuses the segments already open by name and opens only
the new ones (memory-mapped, so opening reads nothing). A writer removes a segment file only after
committing a manifest that no longer names it, so a reader making a view from an older snapshot may
find a file gone; it then takes a fresh snapshot. Segments already open stay readable after their
file is removed (the mapping holds it). Views are immutable and many threads may search one
``IndexStore`` at once; the snapshot of a view no search uses any more is released, so SQLite can
recycle its WAL.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from kosearch._version import __version__
from kosearch.errors import (
    IndexChangedError,
    IndexCorruptError,
    IndexExistsError,
    IndexNotFoundError,
    IndexWriteError,
    KosearchError,
)
from kosearch.memory import large_blocks_mapped, return_free_memory
from kosearch.results import CompactionReport, IndexedSentence
from kosearch.store import ann
from kosearch.store.metadata import SCHEMA_VERSION, CommittedHashes, MetadataStore, StoredDocument
from kosearch.store.postings import (
    LEXICAL_FILE,
    LexicalEntry,
    LexicalSegments,
    SegmentPostings,
    lexical_entries_of,
    load_checked,
)
from kosearch.ranking import top_k_positions
from kosearch.store.segments import (
    REMOVABLE_FILE,
    SegmentEntry,
    file_crc32,
    link_or_copy,
    load_segment,
    segment_name,
    tier_to_merge,
)
from kosearch.store.durable import write_file_atomically
from kosearch.store.vector_backend import VectorBackend, describe_vector_store, vector_backend_for
from kosearch.store.vectors import (
    DEFAULT_FACTORY,
    VectorStore,
    backend_name,
    empty_vector_store,
    new_faiss_index,
    read_vectors_once,
)
from kosearch.store.view import LoadedSegment, StoreView
from kosearch.types import SkippedFile

METADATA_FILE = "metadata.sqlite"
LOCK_FILE = "write.lock"
REQUIRED_KEYS = ("model", "fingerprint", "dimension", "generation", "sentences")
OPEN_ATTEMPTS = 50
"""How many newer generations a reader follows while a writer keeps deleting the files it wanted."""
RECALL_QUERIES = 200
"""How many of a merged approximate segment's own vectors are the queries its recall@10 (with ties and
by ids) is measured on (each query's own id left out of both answers: finding itself would flatter
the index)."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO}
"""Write errors that say the disk (or a quota, or the process's file size limit) is full, or failing."""

RELEASE_BEFORE_MERGE_BYTES = ann.BREAK_EVEN * 384 * 4
"""A merge frees the caller's memory (``checkpoint``'s ``before_merge``) only when the segments it reads
hold at least this many bytes of float32 vectors, deleted ones included: 46 MB, the ANN break-even
(``kosearch.store.ann.BREAK_EVEN`` vectors at 384 dimensions; the break-even scales with 384 / dimension,
so these bytes are the break-even at any dimension). Below it a merge with the default factory writes a
Flat segment whose working set is a fraction of the model's, and freeing the encoder and Kiwi would cost
their reload (3 to 7 s, ``bench/bench_build_memory.py --reload-cost``) for no lower peak; from it on the
merge builds a graph beside its vectors, the long and large kind the release is for. (A factory the index
was created with applies below it too; such a small merge keeps the model all the same.)"""


def _write_failure(folder: Path, error: BaseException) -> IndexWriteError | None:
    """The one-line error for a failed write of the index, or None for an error that is not one.

    FAISS reports its own write errors as ``RuntimeError('... write error in PATH: ... (REASON)')``
    and SQLite as ``OperationalError('database or disk is full')``; both are said plainly here.
    """
    if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
        reason = f"{os.strerror(error.errno)} ({getattr(error, 'filename', None) or folder})"
    elif isinstance(error, sqlite3.OperationalError) and ("disk is full" in str(error) or "disk I/O" in str(error)):
        reason = f"{error} ({folder / METADATA_FILE})"
    elif isinstance(error, RuntimeError) and "write error in " in str(error):
        detail = str(error).split("write error in ", 1)[1]
        path, _, rest = detail.partition(":")
        reason = f"{rest[rest.rfind('(') + 1 : rest.rfind(')')] or 'write error'} ({path})"
    else:
        return None
    return IndexWriteError(
        f"could not write the index {folder}: {reason}; it keeps its last committed state. "
        f"Make room on the disk (or raise the file size limit) and run the same command again"
    )


def _explains_write_failures(method):
    """A writer method whose failed writes (disk full, ...) become one ``IndexWriteError``, after which
    the writer stops (its uncommitted rows are lost; the index on disk is the last commit)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):
                failure = _write_failure(self.folder, error)
                if failure is None:
                    raise
            else:
                failure = _damaged(self.folder, f"{self.folder / METADATA_FILE} cannot be read ({error})")
            self._broken = True
            raise failure from None
        except (OSError, RuntimeError) as error:
            failure = _write_failure(self.folder, error)
            if failure is None:
                raise
            self._broken = True
            raise failure from None

    return wrapper


@dataclass
class PendingChanges:
    """Rows to write at a checkpoint in one go; their vectors are already added (``add_vectors``).

    Ingestion writes its rows as it goes instead (``add_document``, ``add_sentences``); this is
    for callers that build a small change in memory.
    """

    documents: list[dict[str, Any]]
    sentences: list[dict[str, Any]]
    removed_documents: list[int]

    @classmethod
    def empty(cls) -> PendingChanges:
        return cls([], [], [])

    def __bool__(self) -> bool:
        return bool(self.documents or self.removed_documents)


class IndexStore:
    """Metadata plus segmented vectors for one index folder, opened for reading or for writing."""

    def __init__(self, folder: Path, lock_handle, device: str, backend: str | None) -> None:
        self.folder = folder
        self._lock_handle = lock_handle
        self._device = device
        self._backend = backend
        self._broken = False
        # A reader: its current view, the connection that asks for the committed generation, and
        # the view each thread is inside (``reading``).
        self._view: StoreView | None = None
        self._probe: sqlite3.Connection | None = None
        self._swap = threading.Lock()
        self._local = threading.local()
        # A writer: its connection (with the open write transaction), the committed segments, the
        # deleted ids (committed and its own), and the vectors added since its last commit.
        self._writer: MetadataStore | None = None
        self._segments: list[LoadedSegment] = []
        self._tombstones = np.zeros(0, dtype=np.int64)
        self._pending: VectorStore | None = None
        self._writer_view: StoreView | None = None
        # Where the vectors live (``kosearch.store.vector_backend``), from the manifest's ``vector_store``.
        self._vectors: VectorBackend | None = None
        # A writer's committed BM25 postings files (None: the index has none, or they are to be rebuilt).
        self._lexical_entries: list[LexicalEntry] | None = None
        self._lexical = LexicalSegments()
        self._rebuild_postings = False

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        folder: Path,
        encoder_manifest: dict[str, Any],
        *,
        factory: str = DEFAULT_FACTORY,
        device: str = "cpu",
        backend: str | None = None,
        vector_store: dict[str, Any] | None = None,
    ) -> IndexStore:
        """Create an index, or complete one whose creation was killed; refuse a finished one.

        ``vector_store`` is where its vectors will live (``vector_backend.parse_vector_store``;
        None or ``{}``: FAISS segment files), recorded in the manifest for every later open.
        """
        folder = Path(folder)
        lock = _lock_new_folder(folder)
        try:
            if _is_complete(folder):
                raise IndexExistsError(
                    f"{folder} already holds a kosearch index; open it to add documents, "
                    f"or choose another folder"
                )
            return cls._create_locked(folder, lock, encoder_manifest, factory, device, backend, vector_store)
        except BaseException:
            _release(lock)
            raise

    @classmethod
    def open_or_create(
        cls,
        folder: Path,
        encoder_manifest: Callable[[], dict[str, Any]],
        *,
        factory: str = DEFAULT_FACTORY,
        device: str = "cpu",
        backend: str | None = None,
        vector_store: dict[str, Any] | None = None,
    ) -> IndexStore:
        """Open for writing, creating (or completing) the index first when there is none.

        ``encoder_manifest`` is called only to create, so an existing index needs no encoder
        loaded here. The decision is taken under the write lock, so two processes racing on a
        new folder never both create it: the second is told another process is writing.
        """
        folder = Path(folder)
        lock = _lock_new_folder(folder)
        try:
            if _is_complete(folder):
                return cls._open_writer(folder, lock, device, backend, vector_store)
            return cls._create_locked(folder, lock, encoder_manifest(), factory, device, backend, vector_store)
        except BaseException:
            _release(lock)
            raise

    @classmethod
    def open(
        cls,
        folder: Path,
        *,
        device: str = "cpu",
        backend: str | None = None,
        writable: bool = False,
        vector_store: dict[str, Any] | None = None,
    ) -> IndexStore:
        """Open an index; ``vector_store``, when given, must be the one it records."""
        folder = Path(folder)
        if not (folder / METADATA_FILE).is_file():
            raise IndexNotFoundError(
                f"no kosearch index in {folder}; create one with `kosearch index DOCS --index {folder}`"
            )
        if not writable:
            store = cls._open_reader(folder, device, backend)
            try:
                _check_vector_store(folder, store.manifest, vector_store)
            except BaseException:
                store.close()
                raise
            return store
        lock = _acquire_write_lock(folder)
        try:
            return cls._open_writer(folder, lock, device, backend, vector_store)
        except BaseException:
            _release(lock)
            raise

    @classmethod
    def _create_locked(
        cls,
        folder: Path,
        lock,
        encoder_manifest: dict[str, Any],
        factory: str,
        device: str,
        backend: str | None,
        vector_store: dict[str, Any] | None = None,
    ) -> IndexStore:
        dimension = int(encoder_manifest["dimension"])
        empty_vector_store(dimension, factory, device, backend)  # refuses a factory it cannot stream into
        recorded = {"vector_store": dict(vector_store)} if vector_store else {}
        if recorded:
            if factory != DEFAULT_FACTORY:
                raise KosearchError(
                    f"--faiss-factory {factory} applies to FAISS segments; {describe_vector_store(vector_store)} "
                    f"indexes its vectors itself"
                )
            # Reach the collection (and create it) before any index exists: a wrong URL leaves nothing.
            vector_backend_for(folder, {**recorded, "dimension": dimension}, device, backend, creating=True).close()
        for leftover in (folder / name for name in os.listdir(folder) if REMOVABLE_FILE.fullmatch(name)):
            leftover.unlink(missing_ok=True)
        metadata = _open_metadata(folder)
        try:
            stamp = now()
            with metadata.transaction():  # schema and manifest appear together, or neither does
                metadata.ensure_schema()
                metadata.set_manifest(
                    {
                        **encoder_manifest,
                        **recorded,
                        "faiss_factory": factory,
                        "segments": [],
                        # An index created with a lexical index has its (empty) postings list from the
                        # start, so its first writer commits no migration generation.
                        **({"lexical_segments": []} if "lexical" in encoder_manifest else {}),
                        "generation": 0,
                        "sentences": 0,
                        "next_sentence_id": 1,
                        "kosearch_version": __version__,
                        "schema_version": SCHEMA_VERSION,
                        "created": stamp,
                        "updated": stamp,
                    }
                )
        finally:
            metadata.close()
        return cls._open_writer(folder, lock, device, backend)

    @classmethod
    def open_to_repair(
        cls, folder: Path, lock, leave_out: list[str], device: str = "cpu", *, rebuild_postings: bool = False
    ) -> IndexStore:
        """A writer over every segment but ``leave_out`` (unreadable ones), whose counts may disagree.

        For ``kosearch check --repair`` (``kosearch.store.check``), which holds ``lock`` (the write
        lock), adds the missing vectors and tombstones, and commits through ``checkpoint``, whose
        check of the invariant is the same as at every commit. Until then nothing is removed: the
        left-out files are still named by the committed manifest. ``rebuild_postings``: the BM25
        postings files are damaged or the FTS5 rows are being repaired, so the checkpoint rebuilds
        them all from the FTS5 rows (otherwise they are kept: they do not depend on the vectors).
        """
        return cls._open_writer(
            Path(folder), lock, device, None, leave_out=frozenset(leave_out), rebuild_postings=rebuild_postings
        )

    @classmethod
    def _open_writer(
        cls, folder: Path, lock, device: str, backend: str | None, vector_store: dict[str, Any] | None = None,
        leave_out: frozenset[str] | None = None,
        rebuild_postings: bool = False,
    ) -> IndexStore:
        store = cls(folder, lock, device, backend)
        metadata = _open_metadata(folder, writer=True)
        try:
            manifest = _read_manifest(folder, metadata)
            _check_vector_store(folder, manifest, vector_store)
            with metadata.transaction():
                metadata.ensure_schema()
            store._vectors = vector_backend_for(folder, manifest, device, backend)
            tombstones = np.asarray(metadata.tombstone_ids(), dtype=np.int64)
            described = manifest
            if leave_out is not None and isinstance(manifest.get("segments"), list):
                kept = [item for item in manifest["segments"] if not (isinstance(item, dict) and item.get("name") in leave_out)]
                described = {**manifest, "segments": kept}
            try:
                segments = store._vectors.load(described, {}, lambda problem: _damaged(folder, problem))
                if leave_out is None:
                    store._vectors.verify(manifest, len(tombstones))
            except _Damage:
                raise
            except IndexCorruptError as error:
                raise _damaged(folder, str(error)) from None
            _check_dimensions(folder, manifest, segments)
            if leave_out is None:
                _check_counts(folder, manifest, segments, len(tombstones), metadata.counts()[1])
            lexical_entries = lexical_entries_of(manifest, lambda problem: _damaged(folder, problem))
            if "lexical" in manifest and lexical_entries is not None and not rebuild_postings:
                store._lexical = _load_lexical(folder, lexical_entries, LexicalSegments())
                store._lexical_entries = lexical_entries
                if leave_out is None:
                    _check_lexical_count(folder, store._lexical, tombstones, int(manifest["sentences"]))
            store._rebuild_postings = rebuild_postings
        except BaseException:
            metadata.close()
            if store._vectors is not None:
                store._vectors.close()
            raise
        store._writer = metadata
        store._segments = segments
        store._tombstones = tombstones
        store._pending = empty_vector_store(int(manifest["dimension"]), DEFAULT_FACTORY, device, backend)
        if "segments" not in manifest and (leave_out is None or store._segments):
            store._migrate(manifest)
        if leave_out is None and "lexical" in manifest and store._lexical_entries is None:
            store._migrate_postings()
        if leave_out is not None:
            return store  # repairing: the left-out files go once its checkpoint has committed
        store._remove_stale_files()
        return store

    @classmethod
    def _open_reader(cls, folder: Path, device: str, backend: str | None) -> IndexStore:
        store = cls(folder, None, device, backend)
        store._probe = sqlite3.connect(folder / METADATA_FILE, check_same_thread=False, isolation_level=None)
        try:
            store._view = store._new_view(None, check_rows=True).acquire()
        except BaseException:
            store._probe.close()
            raise
        return store

    def _new_view(self, previous: StoreView | None, *, check_rows: bool = False) -> StoreView:
        """A view of the newest committed generation, reusing ``previous``'s open segments.

        When a segment the snapshot names is unreadable because a writer has moved on (and
        removed it), the next snapshot is taken instead; unreadable in the newest generation, the
        index is damaged. ``check_rows`` also counts the rows (a full count: done at open).
        """
        for _ in range(OPEN_ATTEMPTS):
            metadata = _open_metadata(self.folder, shared=True)
            try:
                try:
                    metadata.begin_snapshot()
                    manifest = _read_manifest(self.folder, metadata)
                    if previous is not None and previous.generation == manifest["generation"]:
                        metadata.close()
                        return previous
                    tombstones = np.asarray(metadata.tombstone_ids(), dtype=np.int64)
                except sqlite3.DatabaseError as error:
                    if isinstance(error, sqlite3.OperationalError):
                        raise
                    raise _damaged(self.folder, f"{self.folder / METADATA_FILE} cannot be read ({error})") from None
                if self._vectors is None:
                    self._vectors = vector_backend_for(self.folder, manifest, self._device, self._backend)
                known = previous.segments_by_name() if previous is not None else {}
                try:
                    segments = self._vectors.load(manifest, known, lambda problem: _damaged(self.folder, problem))
                    lexical = _reader_lexical(self.folder, manifest, metadata, previous)
                except _Damage:
                    raise
                except IndexCorruptError as error:
                    metadata.end_snapshot()
                    if metadata.manifest().get("generation") != manifest["generation"]:
                        metadata.close()
                        continue  # a writer committed a newer generation and removed this file
                    raise _damaged(self.folder, str(error)) from None
                _check_dimensions(self.folder, manifest, segments)
                rows = metadata.counts()[1] if check_rows else None
                _check_counts(self.folder, manifest, segments, len(tombstones), rows)
                if lexical is not None:
                    _check_lexical_count(self.folder, lexical, tombstones, int(manifest["sentences"]))
                return StoreView(manifest, segments, tombstones, metadata, lexical=lexical)
            except BaseException:
                metadata.close()
                raise
        raise KosearchError(f"{self.folder} kept changing while it was being opened; try again")

    def refresh(self) -> bool:
        """Move a reader to the newest committed generation now; True when there was a newer one.

        Readers do this on their own before every read, so this is only needed to release an old
        snapshot early. A writer always sees its own latest state, so for it this does nothing.
        """
        if self._writer is not None:
            return False
        before = self._view.generation
        self._advance()
        return self._view.generation != before

    def close(self) -> None:
        if self._view is not None:
            self._view.retire()
            self._view.release()
            self._view = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        if self._writer is not None:
            try:
                # Closing discards an unfinished write transaction anyway; ending it first lets the
                # statistics for filtered reads be written (see MetadataStore.refresh_statistics).
                if self._writer.db.conn.in_transaction:
                    self._writer.rollback()
                self._writer.refresh_statistics()
            except sqlite3.Error:
                pass  # statistics only make reads faster; a writer that cannot write them still closes
            self._writer.close()  # closing without a commit discards an unfinished write transaction
            self._writer = None
        if self._vectors is not None:
            self._vectors.close()
            self._vectors = None
        self._segments, self._pending, self._writer_view = [], None, None
        _release(self._lock_handle)
        self._lock_handle = None

    # -- views ----------------------------------------------------------------------------------

    def _advance(self) -> None:
        """Replace the reader's view when a newer generation is committed (the cheap check first)."""
        with self._swap:
            if self._committed_generation() == self._view.generation:
                return
            view = self._new_view(self._view)
            if view is not self._view:
                view.acquire()
                old, self._view = self._view, view
                old.retire()
                old.release()

    def _committed_generation(self) -> Any:
        try:
            row = self._probe.execute("select value from manifest where key = 'generation'").fetchone()
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):
                raise
            raise _damaged(self.folder, f"{self.folder / METADATA_FILE} cannot be read ({error})") from None
        try:
            return None if row is None else json.loads(row[0])
        except (TypeError, ValueError):
            return row[0]

    @contextmanager
    def reading(self) -> Iterator[StoreView]:
        """Pin one generation for everything this thread reads inside the block.

        A search asks for ids, vectors, rows and neighbours in several calls; inside one
        ``reading`` they all come from one view, whatever a writer commits meanwhile.
        """
        pinned = getattr(self._local, "view", None)
        if pinned is not None:
            yield pinned
            return
        if self._writer is not None:
            yield self._own_view()
            return
        if self._view is None:
            raise KosearchError(f"the index {self.folder} is closed")
        self._advance()
        with self._swap:
            view = self._view.acquire()
        self._local.view = view
        try:
            yield view
        finally:
            self._local.view = None
            view.release()

    def _own_view(self) -> StoreView:
        """What a writer sees: its committed segments, every deletion so far and its pending vectors."""
        if self._writer is None:
            raise KosearchError(f"the index {self.folder} is closed")
        if self._writer_view is None:
            manifest = self._writer.manifest()
            self._writer_view = StoreView(
                manifest, self._segments, self._tombstones, self._writer,
                owns_metadata=False, pending=self._pending,
                lexical=self._lexical if "lexical" in manifest else None,
                pending_lexical=self._uncommitted_postings,
            )
        return self._writer_view

    @contextmanager
    def _sql(self) -> Iterator[MetadataStore]:
        """The view's SQLite side; a damaged page met while reading is an error naming the file.

        Opening does not read every page (``kosearch check`` does: at a million units that takes
        seconds), so damage can first show up here, in the middle of a search.
        """
        with self.reading() as view, view.sql() as metadata:
            try:
                yield metadata
            except sqlite3.DatabaseError as error:
                if isinstance(error, sqlite3.OperationalError):
                    raise
                raise _damaged(self.folder, f"{self.folder / METADATA_FILE} cannot be read ({error})") from None

    @property
    def metadata(self) -> MetadataStore:
        """The SQLite side of the current view (for tests and tools; search code uses the methods)."""
        if self._writer is not None:
            return self._writer
        with self.reading() as view:
            return view.metadata

    @property
    def manifest(self) -> dict[str, Any]:
        if self._writer is not None:
            return self._writer.manifest()
        with self.reading() as view:
            return view.manifest

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    @property
    def writable(self) -> bool:
        """Whether this store holds the write lock (opened for writing, or created)."""
        return self._lock_handle is not None

    @property
    def has_lexical(self) -> bool:
        """Whether every sentence has lexical postings (see "Lexical index" above)."""
        return "lexical" in self.manifest

    @property
    def backend(self) -> str:
        """Which vector backend searches: ``faiss``, ``faiss-gpu``, ``torch`` or ``qdrant``."""
        if self._vectors is not None and self._vectors.kind != "faiss":
            return self._vectors.kind
        return backend_name(self._device, self._backend)

    @property
    def vector_store(self) -> str:
        """Where the vectors live, for ``info``: ``faiss`` or ``qdrant (...)`` (the manifest's ``vector_store``)."""
        return describe_vector_store(self.manifest.get("vector_store") or {})

    # -- reading units --------------------------------------------------------------------------

    def count(self) -> int:
        """Live vectors (= sentence rows): what a search can return."""
        with self.reading() as view:
            return view.count()

    def counts(self) -> tuple[int, int]:
        """(documents, sentences) rows."""
        with self._sql() as metadata:
            return metadata.counts()

    def segment_entries(self) -> list[SegmentEntry]:
        with self.reading() as view:
            return [segment.entry for segment in view.segments]

    def deleted_count(self) -> int:
        """Deleted vectors still in segment files (their space comes back at compaction)."""
        with self.reading() as view:
            return len(view.tombstones)

    def allowed_ids(self, where_sql: str, parameters: list[Any]) -> np.ndarray:
        """Ids of the units a filter (SQL over ``documents d`` and ``sentences s``) lets through."""
        with self._sql() as metadata:
            return np.asarray(metadata.allowed_ids(where_sql, parameters), dtype=np.int64)

    def dense_search(
        self,
        query_vectors: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        *,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product, only among ``allowed_ids`` when given; deleted ids never.

        An approximate index (HNSW, IVF) may return fewer than k of a selective set; the allowed
        vectors are then scored exactly, so a filtered query still gets k when k units match.
        ``ef_search`` asks for an approximate answer at that HNSW depth instead of the segments'
        tuned one (pair mining: ``kosearch.paraphrases``); such a call is never completed by an
        exact scan.
        """
        pinned = getattr(self._local, "view", None) is not None
        for _ in range(OPEN_ATTEMPTS):
            with self.reading() as view:
                scores, ids = view.search(query_vectors, k, allowed_ids, ef_search)
                if allowed_ids is not None and len(allowed_ids) > 0 and ef_search is None:
                    scores, ids = _complete_short_rows(view, query_vectors, scores, ids, min(k, len(allowed_ids)), allowed_ids)
                if pinned or not self._compacted_since(view):
                    self._refuse_if_compacted(view)
                    return scores, ids
        raise KosearchError(f"{self.folder} kept being compacted during the search; try again")

    def _compacted_since(self, view: StoreView) -> bool:
        """Whether a compaction deleted points (a database backend) that ``view``'s generation still shows.

        FAISS segments are never changed (a compaction writes new ones and readers keep the old ones
        mapped), so this is only ever true of a backend that deletes in place; see
        ``kosearch.store.qdrant_backend`` ("Limits"). The committed manifest's ``points_deleted_from``
        is set before such a compaction deletes anything.
        """
        if self._probe is None or self._vectors is None or self._vectors.merges_segments:
            return False
        try:
            row = self._probe.execute("select value from manifest where key = 'points_deleted_from'").fetchone()
        except sqlite3.DatabaseError:
            return False
        return row is not None and view.generation < int(json.loads(row[0]))

    def _refuse_if_compacted(self, view: StoreView) -> None:
        if self._compacted_since(view):
            raise IndexChangedError(
                f"{self.folder} was compacted while this read was pinned to generation {view.generation}, "
                f"and points it could see were deleted; search again"
            )

    def iter_vectors(self, batch_size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` of every live vector, in batches, all from one generation."""
        with self.reading() as view:
            yield from view.iter_vectors(batch_size)
            self._refuse_if_compacted(view)

    def lexical_search(
        self,
        terms: list[str],
        k: int,
        allowed_ids: np.ndarray | None = None,
        *,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> list[tuple[int, float]]:
        """The ``k`` best ``(unit id, BM25)`` for the query's morphemes ``terms`` (each counted as often as
        it is given), over the generation's postings segments, only among ``allowed_ids`` when given
        (a filter, applied before the top k is taken); deleted units never. BM25 with ``k1`` and ``b``
        and FTS5's idf (``kosearch.store.postings``)."""
        with self.reading() as view:
            try:
                return view.lexical_search(list(terms), k, allowed_ids, k1, b)
            except sqlite3.DatabaseError as error:  # a writer's pending postings are read from SQLite
                if isinstance(error, sqlite3.OperationalError):
                    raise
                raise _damaged(self.folder, f"{self.folder / METADATA_FILE} cannot be read ({error})") from None

    def units_by_id(self, ids) -> dict[int, IndexedSentence]:
        with self._sql() as metadata:
            return metadata.sentences_by_id(ids)

    sentences_by_id = units_by_id

    def documents_where(self, where_sql: str, parameters: list[Any]) -> list[StoredDocument]:
        """Documents (SQL over ``documents d`` and ``sentences s``) that have a unit passing the filter."""
        with self._sql() as metadata:
            return metadata.documents_where(where_sql, parameters)

    def unit_documents(self, ids) -> dict[int, int]:
        with self._sql() as metadata:
            return metadata.unit_document(ids)

    def neighbours(self, unit_id: int, before: int, after: int) -> tuple[list[str], list[str]]:
        with self._sql() as metadata:
            return metadata.neighbours(unit_id, before, after)

    def duplicate_groups(self) -> list[tuple[int, int]]:
        """``(representative id, copies)`` for every distinct sentence text."""
        with self._sql() as metadata:
            return list(metadata.duplicate_groups())

    def roots(self) -> list[str]:
        with self._sql() as metadata:
            return metadata.roots()

    def skipped(self) -> list[SkippedFile]:
        with self._sql() as metadata:
            return metadata.skipped()

    # -- what ingestion asks ----------------------------------------------------------------------

    def next_ids(self) -> tuple[int, int]:
        """The next free document and sentence ids (ids are never reused within an index)."""
        with self._sql() as metadata:
            return metadata.next_ids()

    def document_at(self, root: str, path: str) -> StoredDocument | None:
        with self._sql() as metadata:
            return metadata.document_at(root, path)

    def start_seen(self) -> None:
        """Begin a run's list of the paths it saw (a temporary table of the writer's connection)."""
        self._writing()
        self._writer.start_seen()

    def remember_seen(self, path: str) -> None:
        self._writing()
        self._writer.remember_seen(path)

    def unseen_documents(self, root: str, below_id: int, after_id: int = 0, limit: int = 500) -> list[StoredDocument]:
        """Documents under ``root`` with ids in (after_id, below_id) whose path this run did not see."""
        self._writing()
        return self._writer.unseen_documents(root, below_id, after_id, limit)

    def sentences_without_lexical(self, limit: int = 2000) -> list[tuple[int, str]]:
        with self._sql() as metadata:
            return metadata.sentences_without_lexical(limit)

    def committed_hashes(self, root: str) -> CommittedHashes:
        """The committed sha256 of documents under ``root``, askable from another thread."""
        return CommittedHashes(self.folder / METADATA_FILE, root)

    def document(self, document_id: int) -> dict[str, Any] | None:
        with self._sql() as metadata:
            return metadata.document(document_id)

    def unit_ids_of_document(self, document_id: int, limit: int = 1000) -> list[int]:
        with self._sql() as metadata:
            return metadata.unit_ids_of_document(document_id, limit)

    def field_names(self, sample: int = 2000) -> dict[str, str]:
        with self._sql() as metadata:
            return metadata.field_names(sample)

    # -- writing --------------------------------------------------------------------------------

    def _writing(self) -> None:
        if self._lock_handle is None or self._writer is None:
            raise KosearchError("this index was opened read-only")
        if self._broken:
            raise KosearchError(
                f"a checkpoint of {self.folder} failed, so this writer's state is lost; "
                f"close the index and run again (the index holds the last committed checkpoint)"
            )
        self._writer.begin_writing()

    @_explains_write_failures
    def add_document(self, row: dict[str, Any]) -> None:
        """Insert a document row now; it becomes durable at the next checkpoint."""
        self._writing()
        self._writer.insert_documents([row], [])

    def add_vectors(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Vectors whose rows come with the next checkpoint's ``PendingChanges``."""
        self._writing()
        self._pending.add(np.asarray(ids, dtype=np.int64), vectors)

    @_explains_write_failures
    def add_sentences(
        self, rows: list[dict[str, Any]], vectors: np.ndarray, tokens: list[str] | None = None
    ) -> None:
        """Insert sentence rows, their vectors (row ``id`` is the vector id) and, when the index has a
        lexical index, their space-joined ``tokens``, until the next checkpoint."""
        self._writing()
        if tokens is not None and len(tokens) != len(rows):
            raise ValueError(f"{len(rows)} sentence rows but {len(tokens)} token strings")
        self._pending.add(np.asarray([row["id"] for row in rows], dtype=np.int64), vectors)
        self._writer.insert_documents([], rows)
        if tokens is not None:
            self._writer.insert_lexical([row["id"] for row in rows], tokens)

    @_explains_write_failures
    def add_lexical(self, sentence_ids: list[int], tokens: list[str]) -> None:
        """Postings for sentences already stored (filling the lexical index of an older index)."""
        self._writing()
        self._writer.insert_lexical(sentence_ids, tokens)

    def record_unit(self, unit: str) -> None:
        """Record what a hit is (``sentence`` or ``passage``); durable at the next checkpoint."""
        self._writing()
        self._writer.set_manifest({"unit": unit})

    def set_lexical_options(self, options: dict[str, Any]) -> None:
        """Record the lexical analyzer's options; durable (and checked) from the next checkpoint on.

        Call it once every stored sentence has its postings: the key says the lexical index is whole.
        """
        self._writing()
        self._writer.set_manifest({"lexical": options})

    def drop_lexical(self) -> None:
        """Make an index that holds no units yet one without a lexical index (searched densely).

        Durable at the next checkpoint; from then on its rows need no postings, until a writer fills
        them and sets the options again (``set_lexical_options``).
        """
        self._writing()
        if self._writer.counts()[1]:
            raise KosearchError(f"index {self.folder} holds units; its lexical index cannot be dropped")
        self._writer.delete_manifest_keys(["lexical", "lexical_segments"])

    @_explains_write_failures
    def complete_document(self, document_id: int, sha256: str) -> None:
        self._writing()
        self._writer.complete_document(document_id, sha256)

    @_explains_write_failures
    def remove_documents(self, document_ids: list[int]) -> int:
        """Take documents' vectors and rows out (durable at the next checkpoint); returns sentences removed."""
        self._writing()
        sentence_ids = self._writer.sentence_ids_of(document_ids)
        self.remove_vectors(sentence_ids)
        self._writer.delete_documents(document_ids)
        return len(sentence_ids)

    @_explains_write_failures
    def remove_vectors(self, sentence_ids) -> None:
        """Delete vectors: uncommitted ones leave the pending store, committed ones get a tombstone."""
        self._writing()
        ids = np.unique(np.asarray(sentence_ids, dtype=np.int64))
        if len(ids) == 0:
            return
        if self._pending.count():
            in_pending = np.isin(ids, self._pending.ids())
            if in_pending.any():
                self._pending.remove(ids[in_pending])
                ids = ids[~in_pending]
        if len(ids):
            self._writer.insert_tombstones(ids.tolist())
            self._tombstones = np.union1d(self._tombstones, ids)
        self._writer_view = None

    def forget_tombstones(self, ids) -> None:
        """Delete tombstones that name no vector of any segment (``kosearch check --repair``); durable at the next checkpoint."""
        self._writing()
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if any(len(self._lexical.segment(name).holding(ids)) for name in self._lexical.names):
            self._rebuild_postings = True  # a unit neither live nor deleted must leave the postings too
        self._writer.delete_tombstones(ids.tolist())
        self._tombstones = np.setdiff1d(self._tombstones, ids)
        self._writer_view = None

    @_explains_write_failures
    def checkpoint(
        self,
        pending: PendingChanges | None = None,
        *,
        skipped: tuple[str, list[SkippedFile]] | None = None,
        before_merge: Callable[[], None] | None = None,
    ) -> None:
        """Make everything written so far durable at once: new vectors as one new segment, rows, deletions.

        Then merge what the tier policy says; ``before_merge`` is called once, after the commit and
        before the first merge of vectors large enough to matter (``RELEASE_BEFORE_MERGE_BYTES``), so
        the caller can free what a merge does not need (an indexing run's encoder and Kiwi) instead
        of holding it beside the new index.
        """
        self._writing()
        pending = pending or PendingChanges.empty()
        try:
            manifest = _checked_manifest(self.folder, self._writer.manifest())
            generation = int(manifest["generation"]) + 1
            segments = list(self._segments)
            if self._pending.count():
                segments = self._vectors.write(generation, self._pending, segments, manifest)
            with self._writer.transaction():
                self._writer.delete_documents(pending.removed_documents)
                self._writer.insert_documents(pending.documents, pending.sentences)
                if skipped is not None:
                    self._writer.replace_skipped(skipped[0], skipped[1], now())
                lexical = self._postings_at_checkpoint(manifest, generation)
                sentence_rows = self._check_commit(manifest, segments, lexical, self._tombstones)
                _, next_sentence_id = self._writer.next_ids()
                self._writer.set_manifest(
                    {
                        **self._vectors.manifest_keys(segments),
                        **_lexical_keys(lexical),
                        "generation": generation,
                        "sentences": sentence_rows,
                        "next_sentence_id": next_sentence_id,
                        "kosearch_version": __version__,
                        "updated": now(),
                    }
                )
            self._writer.commit()
        except BaseException:
            # The rows since the last checkpoint are gone, but the pending vectors still hold
            # them: this writer cannot go on, and the index on disk is the last checkpoint.
            self._writer.rollback()
            self._broken = True
            raise
        if self._pending.count():
            segments = self._vectors.reopen_written(segments)
            self._pending = empty_vector_store(int(manifest["dimension"]), DEFAULT_FACTORY, self._device, self._backend)
        self._segments = segments
        self._set_lexical(lexical)
        self._writer_view = None
        self._remove_stale_files()
        released = False
        while self._vectors.merges_segments and (group := tier_to_merge([s.entry for s in self._segments])):
            if not released and _merge_bytes(group, int(manifest["dimension"])) >= RELEASE_BEFORE_MERGE_BYTES:
                self._free_before_merge(before_merge)
                released = True
            self._merge([entry.name for entry in group])
        while self._lexical_entries and (group := tier_to_merge(self._lexical_entries)):  # type: ignore[arg-type]
            self._merge_postings([entry.name for entry in group])

    @_explains_write_failures
    def compact(self) -> CompactionReport:
        """Merge every segment into one, without the deleted vectors (approximate when large).

        Anything written and not yet checkpointed is checkpointed first. The disk space of deleted
        vectors comes back once the old segment files are removed, right after the commit; the
        SQLite WAL, which keeps the size of the largest transaction since it was last emptied, is
        then emptied too (``truncate_wal``). Deleted rows' pages stay in ``metadata.sqlite`` for
        SQLite to reuse (no VACUUM, which would rewrite the whole file).
        """
        started = time.perf_counter()
        if self._writer is not None and (self._pending.count() or self._writer.db.conn.in_transaction):
            self.checkpoint()
        self._writing()
        before = self.size_bytes()
        segments_before = len(self._segments)
        deleted = len(self._tombstones)
        names = [segment.entry.name for segment in self._segments]
        live = sum(segment.entry.count for segment in self._segments) - deleted
        if not self._vectors.merges_segments:
            if deleted:
                self._delete_points()
        elif len(names) > 1 or deleted or any(
            segment.entry.factory != self._factory_for(live)
            or segment.entry.crc32 is None  # give it a checksum
            or ann.graph_outdated(segment.entry.factory, segment.entry.ef_construction)
            for segment in self._segments
        ):
            self._merge(names)
        try:
            self._writer.refresh_statistics()
        except sqlite3.Error:
            pass  # the compaction has committed; statistics only make reads faster (close tries again)
        self._writer.truncate_wal()
        return CompactionReport(
            segments_before=segments_before,
            segments_after=len(self._segments),
            vectors_dropped=deleted,
            bytes_before=before,
            bytes_after=self.size_bytes(),
            seconds=time.perf_counter() - started,
        )

    def _free_before_merge(self, before_merge: Callable[[], None] | None) -> None:
        """What a merge does not need goes before it starts: the caller's (``before_merge``) and this
        writer's SQLite page cache (up to ``MetadataStore.WRITER_CACHE_KIB``, refilled as rows are read
        again); then glibc is asked to hand the freed heap pages back (``kosearch.memory``)."""
        if before_merge is not None:
            before_merge()
        self._writer.release_memory()
        return_free_memory()

    def _merge(self, names: list[str]) -> None:
        """One segment for the named ones, without their deleted vectors, in one commit."""
        chosen = [segment for segment in self._segments if segment.entry.name in names]
        kept = [segment for segment in self._segments if segment.entry.name not in names]
        manifest = _checked_manifest(self.folder, self._writer.manifest())
        generation = int(manifest["generation"]) + 1
        dropped = [np.intersect1d(segment.vectors.ids(), self._tombstones) for segment in chosen]
        dropped_ids = np.concatenate(dropped) if dropped else np.zeros(0, dtype=np.int64)
        live = sum(segment.entry.count for segment in chosen) - len(dropped_ids)
        merged: list[LoadedSegment] = []
        if live > 0:
            with large_blocks_mapped():  # a long HNSW add must not grow the heap back (kosearch.memory)
                entry = self._write_merged(segment_name(generation), chosen, live, int(manifest["dimension"]))
            merged.append(LoadedSegment(entry, load_segment(self.folder, entry, self._device, self._backend)))
        segments = kept + merged
        self._writing()
        remaining = np.setdiff1d(self._tombstones, dropped_ids)
        lexical = self._merged_postings(names, np.unique(dropped_ids), segment_name(generation))
        with self._one_commit():
            self._writer.delete_tombstones(dropped_ids.tolist())
            self._check_commit(manifest, segments, lexical, remaining)
            self._writer.set_manifest(
                {
                    "segments": [segment.entry.to_dict() for segment in segments],
                    **_lexical_keys(lexical),
                    "generation": generation,
                    "updated": now(),
                }
            )
        self._segments = segments
        self._tombstones = remaining
        self._set_lexical(lexical)
        self._writer_view = None
        self._remove_stale_files()

    @contextmanager
    def _one_commit(self) -> Iterator[MetadataStore]:
        """One transaction of the writer, committed on leaving. On any error it is rolled back: the
        index keeps its last commit and, nothing else being in the transaction, this writer may go on."""
        try:
            with self._writer.transaction():
                yield self._writer
            self._writer.commit()
        except BaseException:
            self._writer.rollback()
            raise

    def _delete_points(self) -> None:
        """Compaction for a backend that deletes in place (Qdrant): the tombstoned points go, then
        one transaction deletes their tombstones and bumps the generation.

        First a commit of ``points_deleted_from`` (no new generation) tells readers pinned to an
        older generation that their results may lack points from now on (``_compacted_since``).
        A kill after the deletion and before the last commit leaves tombstones of deleted points:
        still excluded, deleted again by the next compaction.
        """
        manifest = _checked_manifest(self.folder, self._writer.manifest())
        dropped = self._tombstones
        with self._one_commit():
            self._writer.set_manifest({"points_deleted_from": int(manifest["generation"])})
        self._vectors.delete_points(dropped)
        generation = int(manifest["generation"]) + 1
        stored = sum(segment.entry.count for segment in self._segments) - len(dropped)
        segments = self._vectors.load(
            {**manifest, "generation": generation, "vector_points": stored}, {}, lambda problem: _damaged(self.folder, problem)
        )
        self._writing()
        lexical = self._merged_postings([], dropped, segment_name(generation))
        with self._one_commit():
            self._writer.delete_tombstones(dropped.tolist())
            self._check_commit(manifest, segments, lexical, np.zeros(0, dtype=np.int64))
            self._writer.set_manifest(
                {**self._vectors.manifest_keys(segments), **_lexical_keys(lexical), "generation": generation, "updated": now()}
            )
        self._segments = segments
        self._tombstones = np.zeros(0, dtype=np.int64)
        self._set_lexical(lexical)
        self._writer_view = None
        self._remove_stale_files()

    def _factory_for(self, count: int) -> str:
        """The index's own factory when it asked for one, else what the measured break-even says."""
        manifest = self._writer.manifest()
        chosen = manifest.get("faiss_factory", DEFAULT_FACTORY)
        if chosen != DEFAULT_FACTORY:
            return chosen
        return ann.choose_factory(count, int(manifest["dimension"]))

    def _write_merged(self, name: str, chosen: list[LoadedSegment], live: int, dimension: int) -> SegmentEntry:
        """Write one segment of the live vectors of ``chosen`` and return its entry.

        The sources are read once, batch by batch (``read_vectors_once`` drops each batch's mapped
        pages), straight into the new index for Flat and exact-storage ANN factories (HNSW), whose
        tuning and recorded recall take their exact truth from the new index's own storage: the peak
        is the new index plus one batch. Only a compressed factory (IVF, SQ, PQ) is built from one
        array of the live vectors, which its training and its exact truth need.
        """
        import faiss

        factory = self._factory_for(live)
        excluded = self._tombstones
        live_ids = [ids[~np.isin(ids, excluded)] for ids in (segment.vectors.ids() for segment in chosen)]
        ids = np.concatenate(live_ids) if live_ids else np.zeros(0, dtype=np.int64)
        if len(ids) != live:
            raise KosearchError(f"refusing to merge: the segments hold {len(ids)} live vectors, {live} were counted")

        def live_batches() -> Iterator[np.ndarray]:
            done = 0
            for segment in chosen:
                for batch_ids, batch in read_vectors_once(segment.vectors, ann.ADD_BATCH):
                    keep = ~np.isin(batch_ids, excluded)
                    expected = ids[done : done + int(keep.sum())]
                    if not np.array_equal(batch_ids[keep], expected):
                        raise KosearchError("refusing to merge: a segment's vectors do not follow its ids")
                    done += len(expected)
                    if len(expected):
                        yield batch if len(expected) == len(batch) else batch[keep]

        recall = None
        if factory == DEFAULT_FACTORY:
            index = new_faiss_index(dimension, factory)  # streamed: never all vectors twice in memory
            done = 0
            for batch in live_batches():
                index.add_with_ids(batch, ids[done : done + len(batch)])
                done += len(batch)
        elif ann.keeps_exact_vectors(factory, dimension):
            index = ann.build_index(ids, ann.VectorStream(dimension, live_batches()), factory, device=self._device)
            sample = np.random.default_rng(0).choice(len(ids), min(RECALL_QUERIES, len(ids)), replace=False)
            recall = ann.measure_stored_recall(index, ids[sample], 10, device=self._device)
        else:
            vectors = np.empty((live, dimension), dtype=np.float32)
            done = 0
            for batch in live_batches():
                vectors[done : done + len(batch)] = batch
                done += len(batch)
            index = ann.build_index(ids, vectors, factory, device=self._device)
            sample = np.random.default_rng(0).choice(len(ids), min(RECALL_QUERIES, len(ids)), replace=False)
            recall = ann.measure_recall(index, ids, vectors, vectors[sample], 10, query_ids=ids[sample], device=self._device)
            del vectors
        _write_faiss(self.folder, f"{name}.faiss", index)
        ids = faiss.vector_to_array(index.id_map)
        return SegmentEntry(
            name, int(index.ntotal), factory, int(ids.min()), int(ids.max()),
            None if recall is None else recall.with_ties,
            crc32=file_crc32(self.folder / f"{name}.faiss"),
            recall_at_10_ids=None if recall is None else recall.by_ids,
            ef_construction=ann.ef_construction(index),
        )

    def _check_commit(
        self,
        manifest: dict[str, Any],
        segments: list[LoadedSegment],
        lexical: tuple[list[LexicalEntry], LexicalSegments] | None = None,
        tombstones: np.ndarray | None = None,
    ) -> int:
        """Inside the commit's transaction: rows = vectors - tombstones, FTS5 rows = rows, and the
        postings files' units - tombstones = rows (``tombstones``: those the commit leaves)."""
        _, sentence_rows = self._writer.counts()
        vectors = sum(segment.entry.count for segment in segments) - self._writer.tombstone_count()
        if sentence_rows != vectors:
            raise KosearchError(f"refusing to commit: {vectors} vectors but {sentence_rows} rows")
        if "lexical" in manifest:
            lexical_rows = self._writer.lexical_count()
            if lexical_rows != sentence_rows:
                raise KosearchError(
                    f"refusing to commit: {sentence_rows} sentence rows but {lexical_rows} lexical rows"
                )
        if lexical is not None:
            held = len(lexical[1]) - lexical[1].deleted_within(np.unique(np.asarray(tombstones, dtype=np.int64)))
            if held != sentence_rows:
                raise KosearchError(f"refusing to commit: {sentence_rows} sentence rows but {held} units in the postings")
        return sentence_rows

    # -- lexical postings files (``kosearch.store.postings``) -------------------------------------

    def _postings_at_checkpoint(
        self, manifest: dict[str, Any], generation: int
    ) -> tuple[list[LexicalEntry], LexicalSegments] | None:
        """Inside the checkpoint's transaction: the postings the commit names, the new file written.

        The new units' tokens are read back from the FTS5 table (the writer's own transaction), so
        whatever wrote them (ingest, a fill of an older index, a repair) the postings follow the
        rows. With no postings files yet (an older index, a fill just finished, a repair) every
        unit's postings go into one new file. None: the index has no lexical index.
        """
        if "lexical" not in manifest:
            return None
        name = segment_name(generation)
        if self._rebuild_postings or self._lexical_entries is None:
            ids, tokens = self._writer.lexical_tokens()
            return self._with_new_postings([], LexicalSegments(), name, SegmentPostings.build(ids, tokens))
        new = self._pending_postings(self._pending.ids()) if self._pending.count() else None
        if new is None or new.count == 0:
            return self._lexical_entries, self._lexical
        return self._with_new_postings(list(self._lexical_entries), self._lexical, name, new)

    def _pending_postings(self, ids: np.ndarray) -> SegmentPostings:
        """Postings of the pending units that no postings file holds yet (a repair re-encodes the
        vectors of units whose postings it keeps)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        for name in self._lexical.names:
            ids = np.setdiff1d(ids, self._lexical.segment(name).holding(ids), assume_unique=True)
        found_ids, tokens = self._writer.lexical_tokens(ids.tolist())
        by_id = dict(zip(found_ids, tokens))
        ids = np.asarray(ids, dtype=np.int64)
        return SegmentPostings.build(ids, [by_id.get(int(i), "") for i in ids])

    def _uncommitted_postings(self) -> SegmentPostings | None:
        """What a writer's own view adds to its committed postings: its pending units' (or all, when
        the index has no postings files yet)."""
        if self._writer is None or "lexical" not in self._writer.manifest():
            return None
        if self._rebuild_postings or self._lexical_entries is None:
            ids, tokens = self._writer.lexical_tokens()
            return SegmentPostings.build(ids, tokens)
        return self._pending_postings(self._pending.ids()) if self._pending.count() else None

    def _with_new_postings(
        self, entries: list[LexicalEntry], lexical: LexicalSegments, name: str, segment: SegmentPostings
    ) -> tuple[list[LexicalEntry], LexicalSegments]:
        """``entries`` plus ``segment`` written durably as ``name`` (not yet named by a commit)."""
        if segment.count == 0:
            return entries, lexical
        path = self.folder / LexicalEntry(name, 0).file
        segment.save(path)
        entry = LexicalEntry.for_segment(name, segment, file_crc32(path))
        loaded = load_checked(self.folder, entry)
        return [*entries, entry], LexicalSegments({**{e.name: lexical.segment(e.name) for e in entries}, name: loaded})

    def _merged_postings(
        self, names: list[str], dropped: np.ndarray, name: str
    ) -> tuple[list[LexicalEntry], LexicalSegments] | None:
        """Compaction's postings: the files named ``names`` and every file holding a ``dropped`` unit
        (its tombstone goes in this commit), merged into one without the dropped units."""
        if self._lexical_entries is None:
            return None
        chosen = [
            entry for entry in self._lexical_entries
            if entry.name in names or len(self._lexical.segment(entry.name).holding(dropped))
        ]
        if not chosen:
            return self._lexical_entries, self._lexical
        kept = [entry for entry in self._lexical_entries if entry not in chosen]
        merged = SegmentPostings.merge([self._lexical.segment(entry.name) for entry in chosen], excluded=dropped)
        kept_segments = LexicalSegments({entry.name: self._lexical.segment(entry.name) for entry in kept})
        return self._with_new_postings(kept, kept_segments, name, merged)

    def _merge_postings(self, names: list[str]) -> None:
        """Merge postings files on their own (a tier of them full, as for vector segments), in one commit;
        deleted units stay (their tombstones stay too)."""
        manifest = _checked_manifest(self.folder, self._writer.manifest())
        generation = int(manifest["generation"]) + 1
        self._writing()
        lexical = self._merged_postings(names, np.zeros(0, dtype=np.int64), segment_name(generation))
        with self._one_commit():
            self._check_commit(manifest, self._segments, lexical, self._tombstones)
            self._writer.set_manifest({**_lexical_keys(lexical), "generation": generation, "updated": now()})
        self._set_lexical(lexical)
        self._writer_view = None
        self._remove_stale_files()

    def _migrate_postings(self) -> None:
        """An index whose lexical index is the FTS5 table alone gets its postings file, in one commit."""
        manifest = _checked_manifest(self.folder, self._writer.manifest())
        generation = int(manifest["generation"]) + 1
        self._writing()
        self._rebuild_postings = True
        lexical = self._postings_at_checkpoint(manifest, generation)
        with self._one_commit():
            self._check_commit(manifest, self._segments, lexical, self._tombstones)
            self._writer.set_manifest({**_lexical_keys(lexical), "generation": generation, "updated": now()})
        self._set_lexical(lexical)
        self._writer_view = None

    def _set_lexical(self, lexical: tuple[list[LexicalEntry], LexicalSegments] | None) -> None:
        """After a commit: the postings it named are the writer's."""
        self._rebuild_postings = False
        if lexical is None:
            self._lexical_entries, self._lexical = None, LexicalSegments()
        else:
            self._lexical_entries, self._lexical = lexical

    def _migrate(self, manifest: dict[str, Any]) -> None:
        """Turn an index made before segments into one segment, in a commit (see "Migration")."""
        (legacy,) = self._segments
        generation = int(manifest["generation"]) + 1
        name = segment_name(generation)
        link_or_copy(self.folder / legacy.entry.file, self.folder / f"{name}.faiss")
        entry = replace(legacy.entry, name=name)
        self._writing()
        with self._one_commit():
            self._writer.delete_manifest_keys(["vectors_file"])
            self._writer.set_manifest(
                {"segments": [entry.to_dict()], "generation": generation, "updated": now()}
            )
        self._segments = [LoadedSegment(entry, legacy.vectors)]
        self._writer_view = None

    def _remove_stale_files(self) -> None:
        """Remove what no committed manifest names: segment and postings files, or a database's orphan points."""
        keep = frozenset(entry.file for entry in self._lexical_entries or [])
        self._vectors.remove_uncommitted(self._segments, int(self._writer.manifest()["generation"]), keep)
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name not in keep and LEXICAL_FILE.fullmatch(entry.name):
                    Path(entry.path).unlink(missing_ok=True)

    def size_bytes(self) -> int:
        """Bytes of the index folder's files (with ``qdrant:local``'s storage; a server's are its own)."""
        total = 0
        for path in self.folder.iterdir():
            try:  # a writer may remove a stale file between the listing and the stat
                if path.is_file():
                    total += path.stat().st_size
                elif path.name == "qdrant" and path.is_dir():
                    total += sum(part.stat().st_size for part in path.rglob("*") if part.is_file())
            except FileNotFoundError:
                continue
        return total


def _merge_bytes(group: list[SegmentEntry], dimension: int) -> int:
    """The float32 bytes of the vectors a merge of ``group`` reads (deleted ones included: an upper bound)."""
    return sum(entry.count for entry in group) * dimension * 4


def _lexical_keys(lexical: tuple[list[LexicalEntry], LexicalSegments] | None) -> dict[str, Any]:
    return {} if lexical is None else {"lexical_segments": [entry.to_dict() for entry in lexical[0]]}


def _load_lexical(folder: Path, entries: list[LexicalEntry], previous: LexicalSegments) -> LexicalSegments:
    """The postings files ``entries`` name, reusing those ``previous`` already mapped."""
    by_name = {entry.name: entry for entry in entries}
    return previous.with_segments(list(by_name), lambda name: load_checked(folder, by_name[name]))


def _reader_lexical(
    folder: Path, manifest: dict[str, Any], metadata: MetadataStore, previous: StoreView | None
) -> LexicalSegments | None:
    """A reader's postings of the generation ``manifest`` describes (None: the index has no lexical index).

    An index whose lexical index is the FTS5 table alone (made before postings files, not written
    since) has its postings built in memory from that table, once per generation; its next writer
    writes them as a file (``_migrate_postings``).
    """
    if "lexical" not in manifest:
        return None
    entries = lexical_entries_of(manifest, lambda problem: _damaged(folder, problem))
    if entries is None:
        ids, tokens = metadata.lexical_tokens()
        return LexicalSegments({"fts5": SegmentPostings.build(ids, tokens)})
    known = previous.lexical if previous is not None and previous.lexical is not None else LexicalSegments()
    return _load_lexical(folder, entries, known)


def _check_lexical_count(folder: Path, lexical: LexicalSegments, tombstones: np.ndarray, sentences: int) -> None:
    held = len(lexical) - lexical.deleted_within(np.unique(np.asarray(tombstones, dtype=np.int64)))
    if held != sentences:
        raise _damaged(folder, f"the lexical postings files of {folder} hold {held} live units, the manifest says {sentences}")


def _complete_short_rows(
    view: StoreView, queries: np.ndarray, scores: np.ndarray, ids: np.ndarray, wanted: int, allowed_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Answer exactly (``_exact_search``) only the queries whose approximate answer has fewer than ``wanted``
    allowed units; the others keep theirs.

    So a query's answer depends on the query alone, not on the batch it came in: one short row used to
    send its whole batch to the exact scan (mining's refining pass sends 5,953 queries at once, and the
    scan over 1.1M allowed units was most of its cost). Where any row is short, the answer is ``wanted``
    wide for every row; otherwise it is the approximate answer as it came.
    """
    if ids.shape[1] < wanted:
        return _exact_search(view, queries, wanted, allowed_ids)
    short = (ids[:, :wanted] < 0).any(axis=1)
    if not short.any():
        return scores, ids
    if short.all():
        return _exact_search(view, queries, wanted, allowed_ids)
    exact_scores, exact_ids = _exact_search(view, np.asarray(queries)[short], wanted, allowed_ids)
    scores, ids = scores[:, :wanted].copy(), ids[:, :wanted].copy()
    scores[short], ids[short] = exact_scores, exact_ids
    return scores, ids


def _exact_search(view: StoreView, queries: np.ndarray, k: int, allowed_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` best allowed units by exact inner product, best first, ties to the unit met first.

    The allowed vectors are read a batch at a time (``StoreView.iter_vectors``, by id where the store can),
    scored and dropped: nothing holds all allowed vectors at once (1.7 GB for 1.1M units, the refining
    pass of mining). Queries go a block at a time, so a score matrix stays near ``EXACT_BLOCK_SCORES``
    floats. Each batch's best ``k`` per query are merged into the running best by (score, position among
    the allowed units), so the answer is a stable argsort's over all of them.
    """
    queries = np.asarray(queries, dtype=np.float32)
    count = len(queries)
    best_scores = np.full((count, max(k, 0)), -np.inf, dtype=np.float32)
    best_positions = np.full((count, max(k, 0)), np.iinfo(np.int64).max, dtype=np.int64)
    best_ids = np.full((count, max(k, 0)), -1, dtype=np.int64)
    seen = 0
    for ids, vectors in view.iter_vectors(allowed_ids=allowed_ids):  # only allowed rows come back
        if k <= 0:
            seen += len(ids)
            continue
        block = max(1, EXACT_BLOCK_SCORES // len(ids))
        for start in range(0, count, block):
            scores = queries[start : start + block] @ vectors.T
            rows = len(scores)
            batch_scores = np.full((rows, k), -np.inf, dtype=np.float32)
            batch_positions = np.full((rows, k), np.iinfo(np.int64).max, dtype=np.int64)
            batch_ids = np.full((rows, k), -1, dtype=np.int64)
            for row, line in enumerate(scores):
                chosen = top_k_positions(line, k)
                batch_scores[row, : len(chosen)] = line[chosen]
                batch_positions[row, : len(chosen)] = seen + chosen
                batch_ids[row, : len(chosen)] = ids[chosen]
            stop = start + rows
            merged_scores = np.concatenate([best_scores[start:stop], batch_scores], axis=1)
            merged_positions = np.concatenate([best_positions[start:stop], batch_positions], axis=1)
            merged_ids = np.concatenate([best_ids[start:stop], batch_ids], axis=1)
            order = np.lexsort((merged_positions, -merged_scores), axis=-1)[:, :k]
            best_scores[start:stop] = np.take_along_axis(merged_scores, order, axis=1)
            best_positions[start:stop] = np.take_along_axis(merged_positions, order, axis=1)
            best_ids[start:stop] = np.take_along_axis(merged_ids, order, axis=1)
        seen += len(ids)
    width = min(max(k, 0), seen)
    return best_scores[:, :width], best_ids[:, :width]


EXACT_BLOCK_SCORES = 1 << 25
"""Scores (float32: 128 MiB) an exact fallback search computes at once."""


def _check_vector_store(folder: Path, manifest: dict[str, Any], wanted: dict[str, Any] | None) -> None:
    """An existing index keeps the vector store it was made with; asking for another is an error."""
    if wanted is None:
        return
    recorded = manifest.get("vector_store") or {}
    if dict(wanted) != recorded:
        raise KosearchError(
            f"{folder} keeps its vectors in {describe_vector_store(recorded)}, not "
            f"{describe_vector_store(wanted)}; leave out --vector-store to use it, or index into a new folder"
        )


def _write_faiss(folder: Path, name: str, index) -> None:
    import faiss

    write_file_atomically(folder, name, lambda temporary: faiss.write_index(index, str(temporary)))


class _Damage(IndexCorruptError):
    """An ``IndexCorruptError`` already worded for the user (``_damaged``): passed on as it is."""


def _damaged(folder: Path, problem: str) -> IndexCorruptError:
    return _Damage(
        f"{problem}; the index {folder} is damaged: `kosearch check {folder}` says what is wrong and what "
        f"--repair can rebuild from its rows; or delete it and rebuild it with `kosearch index DOCS --index {folder}`"
    )


def _open_metadata(folder: Path, *, shared: bool = False, writer: bool = False) -> MetadataStore:
    try:
        return MetadataStore(folder / METADATA_FILE, shared=shared, writer=writer)
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError):  # locked, unreadable folder: not damage
            raise
        raise _damaged(folder, f"{folder / METADATA_FILE} is not a readable SQLite database ({error})") from None


def _read_manifest(folder: Path, metadata: MetadataStore) -> dict[str, Any]:
    try:
        return _checked_manifest(folder, metadata.manifest())
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError):
            raise
        raise _damaged(folder, f"{folder / METADATA_FILE} cannot be read ({error})") from None


def _checked_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest, or a clear error when it is unfinished, damaged or from a newer kosearch."""
    if "segments" not in manifest and "vectors_file" not in manifest:
        raise IndexNotFoundError(
            f"the kosearch index in {folder} was never finished: its creation is still running or "
            f"was interrupted; wait for it, or create it again with `kosearch index DOCS --index {folder}`"
        )
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise _damaged(folder, f"the manifest of {folder / METADATA_FILE} lacks {', '.join(missing)}")
    if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
        raise KosearchError(
            f"{folder} was written by a newer kosearch ({manifest.get('kosearch_version')}); "
            f"upgrade kosearch to open it"
        )
    for key in ("generation", "sentences", "dimension"):
        if not isinstance(manifest[key], int) or isinstance(manifest[key], bool) or manifest[key] < 0:
            raise _damaged(folder, f"the manifest's {key} is {manifest[key]!r}, not a count")
    return manifest


def _check_dimensions(folder: Path, manifest: dict[str, Any], segments: list[LoadedSegment]) -> None:
    for segment in segments:
        if segment.vectors.dimension != manifest["dimension"]:
            raise _damaged(
                folder,
                f"{folder / segment.entry.file} holds {segment.vectors.dimension}-dimensional vectors, "
                f"the manifest says {manifest['dimension']}",
            )


def _check_counts(
    folder: Path, manifest: dict[str, Any], segments: list[LoadedSegment], tombstones: int, rows: int | None
) -> None:
    vectors = sum(segment.entry.count for segment in segments) - tombstones
    if vectors != manifest["sentences"] or (rows is not None and rows != vectors):
        raise _damaged(
            folder,
            f"index {folder} is inconsistent: {vectors} vectors but {rows if rows is not None else '?'} "
            f"sentences (the manifest says {manifest['sentences']})",
        )


def _is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished index (call it holding the write lock).

    No metadata file, or one without a manifest and without documents, is a creation that never
    finished, which may be done again; a manifest-less file that holds documents is damage.
    """
    if not (folder / METADATA_FILE).is_file():
        return False
    metadata = _open_metadata(folder)
    try:
        try:
            manifest = metadata.manifest()
            if "segments" in manifest or "vectors_file" in manifest:
                return True
            holds_documents = "documents" in metadata.db.table_names() and metadata.counts()[0] > 0
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):
                raise
            raise _damaged(folder, f"{folder / METADATA_FILE} cannot be read ({error})") from None
        if holds_documents:
            raise _damaged(folder, f"{folder / METADATA_FILE} holds documents but no manifest")
        return False
    finally:
        metadata.close()


def _lock_new_folder(folder: Path):
    if folder.exists() and not folder.is_dir():
        raise KosearchError(f"{folder} is a file; give a folder for the index")
    folder.mkdir(parents=True, exist_ok=True)
    return _acquire_write_lock(folder)


def _acquire_write_lock(folder: Path):
    handle = open(folder / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise KosearchError(
            f"another kosearch process is writing {folder}; wait for it to finish"
        ) from None
    os.set_inheritable(handle.fileno(), False)
    return handle


def _release(handle) -> None:
    if handle is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
