"""An index folder on disk, and the protocol that keeps it consistent when a run is killed.

Layout::

    INDEX/metadata.sqlite          documents, sentences, lexical postings (FTS5), skipped files,
                                   manifest (SQLite, WAL)
    INDEX/vectors.000007.faiss     the FAISS file named by the manifest's ``vectors_file``
    INDEX/write.lock               held (flock) by the one process allowed to write

The manifest's ``vectors_file`` must be a plain name of the form ``vectors.NNNNNN.faiss``; anything
else (an absolute path, a ``..``, another name) is reported as corruption, and the only files a
writer ever removes are names of exactly that form (plus ``.tmp``) directly inside the folder.

Creation. Under the write lock, the first (empty) vector file is written, then one SQLite
transaction creates the tables and the whole manifest. A folder with ``metadata.sqlite`` but no
manifest is therefore a creation that was killed (it cannot hold documents): readers are told so,
and the next ``create`` or ``open_or_create`` completes it in place. The lock is taken before
anything is looked at, so a second writer on a brand-new index is told another process is writing.

Writing. Between checkpoints a writer keeps one SQLite write transaction open: rows are inserted,
and rows of replaced documents deleted, as the run goes, so they wait in SQLite's page cache and
WAL instead of in Python memory, while their vectors go into the in-memory vector store. A
checkpoint writes the whole vector store to the *next* generation's file (fsynced, renamed into
place), then, in that same transaction, checks the rows against the vectors, points the manifest at
the new file and commits. Until that commit, readers and a restarted run see the previous
generation, whose file is untouched; after it, they see the new one. A kill at any moment therefore
leaves either the old state or the new one, never a mix: uncommitted rows vanish with their
transaction, and the stale file of the losing side is removed by the next writer. A checkpoint may
fall inside a document; such a document is committed with ``sha256 = ''`` until its last sentence
is in, so a run killed after it leaves that part searchable and the next run re-does the file.

Lexical index. The FTS5 table ``lexical`` (rowid = sentence id, text = the sentence's morphemes)
is written and deleted in the same SQLite transaction as the sentence rows, so whatever a kill
leaves, rows, postings and vectors belong to one checkpoint. The manifest's ``lexical`` key (the
analyzer's options, so queries are analysed like the documents) is set only in the transaction
that makes every sentence have its postings, and from then on every checkpoint checks that the
counts agree. An index made before the lexical index has no such key: it is searched densely,
and its next writer (``kosearch index``) adds the postings of its old sentences and then the key.

Reading. A reader holds one SQLite read transaction (a WAL snapshot) from ``open`` until
``refresh`` or ``close``: the manifest, the vector file it names and every row it reads all belong
to one generation, so counts always agree and every id the vectors return resolves to its row,
whatever a writer commits meanwhile. The one thing a snapshot cannot pin is the vector file: a
writer deletes generation G's file right after committing G+1, so a reader holding G's manifest may
find that file gone (or not yet readable); it then takes a fresh snapshot and loads the newer
generation. Once loaded, the vectors are in memory and the file no longer matters. The price of a
held snapshot is that SQLite cannot recycle its WAL past it, so a long-lived reader should call
``refresh`` now and then.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from kosearch._version import __version__
from kosearch.types import SkippedFile
from kosearch.errors import IndexCorruptError, IndexExistsError, IndexNotFoundError, KosearchError
from kosearch.store.metadata import SCHEMA_VERSION, MetadataStore, StoredDocument
from kosearch.store.vectors import (
    DEFAULT_FACTORY,
    VectorStore,
    empty_vector_store,
    load_vector_store,
    write_atomically,
)

METADATA_FILE = "metadata.sqlite"
LOCK_FILE = "write.lock"
VECTORS_FILE = re.compile(r"vectors\.[0-9]{6,}\.faiss")
"""The only names ``vectors_file`` may hold."""
STALE_VECTORS_FILE = re.compile(r"vectors\.[0-9]{6,}\.faiss(?:\.tmp)?")
"""The only names a writer removes."""
REQUIRED_KEYS = ("model", "fingerprint", "dimension", "vectors_file", "generation", "sentences")
OPEN_ATTEMPTS = 50
"""How many newer generations a reader follows while a writer keeps deleting the file it wanted."""


def vectors_file_name(generation: int) -> str:
    return f"vectors.{generation:06d}.faiss"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class PendingChanges:
    """Rows to write at a checkpoint in one go; their vectors are already in the vector store.

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
    """Metadata plus vectors for one index folder, opened for reading or for writing."""

    def __init__(self, folder: Path, metadata: MetadataStore, vectors: VectorStore, lock_handle=None) -> None:
        self.folder = folder
        self.metadata = metadata
        self.vectors = vectors
        self._lock_handle = lock_handle
        self._device = "cpu"
        self._backend: str | None = None
        self._broken = False

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
    ) -> IndexStore:
        """Create an index, or complete one whose creation was killed; refuse a finished one."""
        folder = Path(folder)
        lock = _lock_new_folder(folder)
        try:
            if _is_complete(folder):
                raise IndexExistsError(
                    f"{folder} already holds a kosearch index; open it to add documents, "
                    f"or choose another folder"
                )
            return cls._create_locked(folder, lock, encoder_manifest, factory, device, backend)
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
                return cls._open_locked(folder, lock, device, backend)
            return cls._create_locked(folder, lock, encoder_manifest(), factory, device, backend)
        except BaseException:
            _release(lock)
            raise

    @classmethod
    def open(
        cls, folder: Path, *, device: str = "cpu", backend: str | None = None, writable: bool = False
    ) -> IndexStore:
        folder = Path(folder)
        if not (folder / METADATA_FILE).is_file():
            raise IndexNotFoundError(
                f"no kosearch index in {folder}; create one with `kosearch index DOCS --index {folder}`"
            )
        lock = _acquire_write_lock(folder) if writable else None
        try:
            return cls._open_locked(folder, lock, device, backend)
        except BaseException:
            _release(lock)
            raise

    @classmethod
    def _create_locked(
        cls, folder: Path, lock, encoder_manifest: dict[str, Any], factory: str, device: str, backend: str | None
    ) -> IndexStore:
        vectors = empty_vector_store(int(encoder_manifest["dimension"]), factory, device, backend)
        first_file = vectors_file_name(0)
        write_atomically(vectors, folder / first_file)
        metadata = _open_metadata(folder)
        try:
            stamp = now()
            with metadata.transaction():  # schema and manifest appear together, or neither does
                metadata.ensure_schema()
                metadata.set_manifest(
                    {
                        **encoder_manifest,
                        "faiss_factory": factory,
                        "vectors_file": first_file,
                        "generation": 0,
                        "sentences": 0,
                        "next_sentence_id": 1,
                        "kosearch_version": __version__,
                        "schema_version": SCHEMA_VERSION,
                        "created": stamp,
                        "updated": stamp,
                    }
                )
        except BaseException:
            metadata.close()
            raise
        store = cls(folder, metadata, vectors, lock)
        store._device, store._backend = device, backend
        store._remove_stale_files(first_file)
        return store

    @classmethod
    def _open_locked(cls, folder: Path, lock, device: str, backend: str | None) -> IndexStore:
        metadata = _open_metadata(folder)
        try:
            vectors, manifest = _load_snapshot(folder, metadata, device, backend)
            if lock is not None:
                metadata.end_snapshot()  # the lock already keeps everyone else from changing it
                with metadata.transaction():
                    metadata.ensure_schema()
        except BaseException:
            metadata.close()
            raise
        store = cls(folder, metadata, vectors, lock)
        store._device, store._backend = device, backend
        if lock is not None:
            store._remove_stale_files(manifest["vectors_file"])
        return store

    def refresh(self) -> bool:
        """Move a reader to the newest committed generation; True when there was a newer one.

        Also lets SQLite recycle the WAL that the old snapshot held on to. A writer always sees
        its own latest state, so for it this does nothing.
        """
        if self._lock_handle is not None:
            return False
        current = self.metadata.manifest().get("generation")
        vectors, manifest = _load_snapshot(
            self.folder, self.metadata, self._device, self._backend, keep=(current, self.vectors)
        )
        self.vectors = vectors
        return manifest["generation"] != current

    def close(self) -> None:
        self.metadata.close()  # closing without a commit discards an unfinished write transaction
        _release(self._lock_handle)
        self._lock_handle = None

    @property
    def manifest(self) -> dict[str, Any]:
        return self.metadata.manifest()

    @property
    def writable(self) -> bool:
        """Whether this store holds the write lock (opened for writing, or created)."""
        return self._lock_handle is not None

    @property
    def has_lexical(self) -> bool:
        """Whether every sentence has lexical postings (see "Lexical index" above)."""
        return "lexical" in self.metadata.manifest()

    # -- reading units --------------------------------------------------------------------------

    def allowed_ids(self, where_sql: str, parameters: list[Any]) -> np.ndarray:
        """Ids of the units a filter (SQL over ``documents d`` and ``sentences s``) lets through."""
        return np.asarray(self.metadata.allowed_ids(where_sql, parameters), dtype=np.int64)

    def dense_search(
        self, query_vectors: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product, only among ``allowed_ids`` when given.

        An approximate index (HNSW, IVF) may return fewer than k of a selective set; the allowed
        vectors are then scored exactly, so a filtered query still gets k when k units match.
        """
        scores, ids = self.vectors.search(query_vectors, k, allowed_ids)
        if allowed_ids is None or len(allowed_ids) == 0:
            return scores, ids
        wanted = min(k, len(allowed_ids))
        if ids.shape[1] >= wanted and bool((ids[:, :wanted] >= 0).all()):
            return scores, ids
        return self._exact_search(query_vectors, wanted, allowed_ids)

    def _exact_search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kept_ids, kept_vectors = [], []
        for ids, vectors in self.vectors.iter_vectors():
            mask = np.isin(ids, allowed_ids)
            kept_ids.append(ids[mask])
            kept_vectors.append(vectors[mask])
        ids = np.concatenate(kept_ids) if kept_ids else np.zeros(0, dtype=np.int64)
        vectors = np.concatenate(kept_vectors) if kept_vectors else np.zeros((0, queries.shape[1]), np.float32)
        scores = np.asarray(queries, dtype=np.float32) @ vectors.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), ids[order]

    def lexical_search(
        self, match: str, k: int, where_sql: str = "1", parameters: list[Any] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best ``(unit id, BM25)`` for an FTS5 MATCH expression, inside the filter."""
        return self.metadata.lexical_search(match, k, where_sql, parameters or [])

    def documents_where(self, where_sql: str, parameters: list[Any]) -> list[StoredDocument]:
        """Documents (SQL over ``documents d`` and ``sentences s``) that have a unit passing the filter."""
        return self.metadata.documents_where(where_sql, parameters)

    def roots(self) -> list[str]:
        """The folders documents were indexed from (records come from none)."""
        return self.metadata.roots()

    def next_ids(self) -> tuple[int, int]:
        """The next free document and sentence ids (never reused within an index)."""
        return self.metadata.next_ids()

    def units_by_id(self, ids) -> dict[int, Any]:
        return self.metadata.sentences_by_id(ids)

    def unit_documents(self, ids) -> dict[int, int]:
        return self.metadata.unit_document(ids)

    def neighbours(self, unit_id: int, before: int, after: int) -> tuple[list[str], list[str]]:
        return self.metadata.neighbours(unit_id, before, after)

    def document(self, document_id: int) -> dict[str, Any] | None:
        return self.metadata.document(document_id)

    def unit_ids_of_document(self, document_id: int, limit: int = 1000) -> list[int]:
        return self.metadata.unit_ids_of_document(document_id, limit)

    def field_names(self, sample: int = 2000) -> dict[str, str]:
        return self.metadata.field_names(sample)

    # -- writing --------------------------------------------------------------------------------

    def _writing(self) -> None:
        if self._lock_handle is None:
            raise KosearchError("this index was opened read-only")
        if self._broken:
            raise KosearchError(
                f"a checkpoint of {self.folder} failed, so this writer's state is lost; "
                f"close the index and run again (the index holds the last committed checkpoint)"
            )
        self.metadata.begin_writing()

    def add_document(self, row: dict[str, Any]) -> None:
        """Insert a document row now; it becomes durable at the next checkpoint."""
        self._writing()
        self.metadata.insert_documents([row], [])

    def add_sentences(
        self, rows: list[dict[str, Any]], vectors: np.ndarray, tokens: list[str] | None = None
    ) -> None:
        """Insert sentence rows, their vectors (row ``id`` is the vector id) and, when the index has a
        lexical index, their space-joined ``tokens``, until the next checkpoint."""
        self._writing()
        if tokens is not None and len(tokens) != len(rows):
            raise ValueError(f"{len(rows)} sentence rows but {len(tokens)} token strings")
        self.vectors.add(np.asarray([row["id"] for row in rows], dtype=np.int64), vectors)
        self.metadata.insert_documents([], rows)
        if tokens is not None:
            self.metadata.insert_lexical([row["id"] for row in rows], tokens)

    def add_lexical(self, sentence_ids: list[int], tokens: list[str]) -> None:
        """Postings for sentences already stored (filling the lexical index of an older index)."""
        self._writing()
        self.metadata.insert_lexical(sentence_ids, tokens)

    def record_unit(self, unit: str) -> None:
        """Record what a hit is (``sentence`` or ``passage``); durable at the next checkpoint."""
        self._writing()
        self.metadata.set_manifest({"unit": unit})

    def set_lexical_options(self, options: dict[str, Any]) -> None:
        """Record the lexical analyzer's options; durable (and checked) from the next checkpoint on.

        Call it once every stored sentence has its postings: the key says the lexical index is whole.
        """
        self._writing()
        self.metadata.set_manifest({"lexical": options})

    def drop_lexical(self) -> None:
        """Make an index that holds no units yet one without a lexical index (searched densely).

        Durable at the next checkpoint; from then on its rows need no postings, until a writer fills
        them and sets the options again (``set_lexical_options``).
        """
        self._writing()
        if self.metadata.counts()[1]:
            raise KosearchError(f"index {self.folder} holds units; its lexical index cannot be dropped")
        self.metadata.delete_manifest_key("lexical")

    def complete_document(self, document_id: int, sha256: str) -> None:
        self._writing()
        self.metadata.complete_document(document_id, sha256)

    def remove_documents(self, document_ids: list[int]) -> int:
        """Take documents' vectors and rows out (durable at the next checkpoint); returns sentences removed."""
        self._writing()
        sentence_ids = self.metadata.sentence_ids_of(document_ids)
        self.remove_vectors(sentence_ids)
        self.metadata.delete_documents(document_ids)
        return len(sentence_ids)

    def checkpoint(
        self,
        pending: PendingChanges | None = None,
        *,
        skipped: tuple[str, list[SkippedFile]] | None = None,
    ) -> None:
        """Make everything added to the vector store so far, and its rows, durable at once."""
        self._writing()
        pending = pending or PendingChanges.empty()
        try:
            manifest = _checked_manifest(self.folder, self.metadata.manifest())
            old_file = manifest["vectors_file"]
            generation = int(manifest["generation"]) + 1
            new_file = vectors_file_name(generation)
            write_atomically(self.vectors, self.folder / new_file)
            with self.metadata.transaction():
                self.metadata.delete_documents(pending.removed_documents)
                self.metadata.insert_documents(pending.documents, pending.sentences)
                if skipped is not None:
                    self.metadata.replace_skipped(skipped[0], skipped[1], now())
                _, sentence_rows = self.metadata.counts()
                if sentence_rows != self.vectors.count():
                    raise KosearchError(
                        f"refusing to commit: {self.vectors.count()} vectors but {sentence_rows} rows"
                    )
                if "lexical" in manifest or "lexical" in self.metadata.manifest():
                    lexical_rows = self.metadata.lexical_count()
                    if lexical_rows != sentence_rows:
                        raise KosearchError(
                            f"refusing to commit: {sentence_rows} sentence rows but {lexical_rows} lexical rows"
                        )
                _, next_sentence_id = self.metadata.next_ids()
                self.metadata.set_manifest(
                    {
                        "vectors_file": new_file,
                        "generation": generation,
                        "sentences": sentence_rows,
                        "next_sentence_id": next_sentence_id,
                        "kosearch_version": __version__,
                        "updated": now(),
                    }
                )
            self.metadata.commit()
        except BaseException:
            # The rows since the last checkpoint are gone, but the vectors in memory still hold
            # them: this writer cannot go on, and the index on disk is the last checkpoint.
            self.metadata.rollback()
            self._broken = True
            raise
        (self.folder / old_file).unlink(missing_ok=True)

    def remove_vectors(self, sentence_ids: list[int]) -> None:
        if sentence_ids:
            self.vectors.remove(np.asarray(sentence_ids, dtype=np.int64))

    def _remove_stale_files(self, current: str) -> None:
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name != current and STALE_VECTORS_FILE.fullmatch(entry.name):
                    Path(entry.path).unlink(missing_ok=True)

    def size_bytes(self) -> int:
        total = 0
        for path in self.folder.iterdir():
            try:  # a writer may remove a stale file between the listing and the stat
                if path.is_file():
                    total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total


def _damaged(folder: Path, problem: str) -> IndexCorruptError:
    return IndexCorruptError(
        f"{problem}; the index {folder} is damaged: delete it and rebuild it with "
        f"`kosearch index DOCS --index {folder}`"
    )


def _open_metadata(folder: Path) -> MetadataStore:
    try:
        return MetadataStore(folder / METADATA_FILE)
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError):  # locked, unreadable folder: not damage
            raise
        raise _damaged(folder, f"{folder / METADATA_FILE} is not a readable SQLite database ({error})") from None


def _checked_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest, or a clear error when it is unfinished, damaged or names a foreign file."""
    if "vectors_file" not in manifest:
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
    name = manifest["vectors_file"]
    if not isinstance(name, str) or not VECTORS_FILE.fullmatch(name):
        raise _damaged(
            folder,
            f"the manifest's vectors_file {name!r} is not a vector file name inside the index folder "
            f"(expected vectors.NNNNNN.faiss)",
        )
    for key in ("generation", "sentences", "dimension"):
        if not isinstance(manifest[key], int) or isinstance(manifest[key], bool) or manifest[key] < 0:
            raise _damaged(folder, f"the manifest's {key} is {manifest[key]!r}, not a count")
    return manifest


def _load_snapshot(
    folder: Path,
    metadata: MetadataStore,
    device: str,
    backend: str | None,
    keep: tuple[Any, VectorStore] | None = None,
) -> tuple[VectorStore, dict[str, Any]]:
    """Start a read snapshot and load the vectors of its generation; the snapshot stays open.

    ``keep`` is ``(generation, vectors)`` already loaded: reused when the snapshot is still that
    generation. When the named file is unreadable because a writer has moved on (and deleted
    it), the next snapshot's generation is loaded instead; when it is unreadable in the newest
    generation, the index is damaged.
    """
    for _ in range(OPEN_ATTEMPTS):
        try:
            metadata.begin_snapshot()
            manifest = _checked_manifest(folder, metadata.manifest())
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):
                raise
            raise _damaged(folder, f"{folder / METADATA_FILE} cannot be read ({error})") from None
        if keep is not None and keep[0] == manifest["generation"]:
            return keep[1], manifest
        path = folder / manifest["vectors_file"]
        try:
            vectors = load_vector_store(path, device, backend)
        except IndexCorruptError as error:
            metadata.end_snapshot()
            if metadata.manifest().get("generation") != manifest["generation"]:
                continue  # a writer committed a newer generation and removed this file
            raise _damaged(folder, str(error)) from None
        if vectors.dimension != manifest["dimension"]:
            raise _damaged(
                folder, f"{path} holds {vectors.dimension}-dimensional vectors, the manifest says {manifest['dimension']}"
            )
        _, sentence_rows = metadata.counts()
        if not vectors.count() == sentence_rows == manifest["sentences"]:
            raise _damaged(
                folder,
                f"index {folder} is inconsistent: {vectors.count()} vectors but {sentence_rows} "
                f"sentences (the manifest says {manifest['sentences']})",
            )
        return vectors, manifest
    raise KosearchError(f"{folder} kept changing while it was being opened; try again")


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
            if "vectors_file" in manifest:
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
