"""An index folder on disk, and the protocol that keeps it consistent when a run is killed.

Layout::

    INDEX/metadata.sqlite          documents, sentences, skipped files, manifest (SQLite, WAL)
    INDEX/vectors.000007.faiss     the FAISS file named by the manifest's ``vectors_file``
    INDEX/write.lock               held (flock) by the one process allowed to write

A checkpoint writes the whole vector store to the *next* generation's file (fsynced, renamed into
place), then commits one SQLite transaction that inserts the new rows and points the manifest at
that file. Until that commit, readers and a restarted run see the previous generation, whose file
is untouched; after it, they see the new one. A kill at any moment therefore leaves either the old
state or the new one, never a mix, and the stale file of the losing side is removed by the next
writer.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from kosearch._version import __version__
from kosearch.documents.types import SkippedFile
from kosearch.errors import IndexExistsError, IndexNotFoundError, KosearchError
from kosearch.store.metadata import SCHEMA_VERSION, MetadataStore
from kosearch.store.vectors import (
    DEFAULT_FACTORY,
    VectorStore,
    empty_vector_store,
    load_vector_store,
    write_atomically,
)

METADATA_FILE = "metadata.sqlite"
LOCK_FILE = "write.lock"


def vectors_file_name(generation: int) -> str:
    return f"vectors.{generation:06d}.faiss"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class PendingChanges:
    """Rows waiting for the next checkpoint; their vectors are already in the vector store."""

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
        folder = Path(folder)
        if (folder / METADATA_FILE).exists():
            raise IndexExistsError(
                f"{folder} already holds a kosearch index; open it to add documents, "
                f"or choose another folder"
            )
        folder.mkdir(parents=True, exist_ok=True)
        lock = _acquire_write_lock(folder)
        vectors = empty_vector_store(int(encoder_manifest["dimension"]), factory, device, backend)
        metadata = MetadataStore(folder / METADATA_FILE)
        first_file = vectors_file_name(0)
        write_atomically(vectors, folder / first_file)
        stamp = now()
        with metadata.transaction():
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
        return cls(folder, metadata, vectors, lock)

    @classmethod
    def open(
        cls, folder: Path, *, device: str = "cpu", backend: str | None = None, writable: bool = False
    ) -> IndexStore:
        folder = Path(folder)
        if not (folder / METADATA_FILE).exists():
            raise IndexNotFoundError(
                f"no kosearch index in {folder}; create one with `kosearch index DOCS --index {folder}`"
            )
        lock = _acquire_write_lock(folder) if writable else None
        metadata = MetadataStore(folder / METADATA_FILE)
        manifest = metadata.manifest()
        if manifest.get("schema_version", 0) > SCHEMA_VERSION:
            raise KosearchError(
                f"{folder} was written by a newer kosearch ({manifest.get('kosearch_version')}); "
                f"upgrade kosearch to open it"
            )
        vectors = load_vector_store(folder / manifest["vectors_file"], device, backend)
        _, sentence_rows = metadata.counts()
        if vectors.count() != sentence_rows:
            raise KosearchError(
                f"index {folder} is inconsistent: {vectors.count()} vectors but {sentence_rows} "
                f"sentences; rebuild it"
            )
        store = cls(folder, metadata, vectors, lock)
        if writable:
            store._remove_stale_files(manifest["vectors_file"])
        return store

    def close(self) -> None:
        self.metadata.close()
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    @property
    def manifest(self) -> dict[str, Any]:
        return self.metadata.manifest()

    # -- writing --------------------------------------------------------------------------------

    def checkpoint(
        self,
        pending: PendingChanges,
        *,
        skipped: tuple[str, list[SkippedFile]] | None = None,
    ) -> None:
        """Make everything added to the vector store so far, and its rows, durable at once."""
        if self._lock_handle is None:
            raise KosearchError("this index was opened read-only")
        manifest = self.metadata.manifest()
        old_file = manifest["vectors_file"]
        generation = int(manifest["generation"]) + 1
        new_file = vectors_file_name(generation)
        write_atomically(self.vectors, self.folder / new_file)
        next_sentence_id = max(
            [int(manifest.get("next_sentence_id", 1))] + [row["id"] + 1 for row in pending.sentences]
        )
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
        (self.folder / old_file).unlink(missing_ok=True)

    def remove_vectors(self, sentence_ids: list[int]) -> None:
        if sentence_ids:
            self.vectors.remove(np.asarray(sentence_ids, dtype=np.int64))

    def _remove_stale_files(self, current: str) -> None:
        for path in self.folder.glob("vectors.*.faiss*"):
            if path.name != current:
                path.unlink(missing_ok=True)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


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
