"""Where an index keeps its vectors: the store's one seam between the commit protocol and a vector engine.

The store (``kosearch.store.index_store``) owns the protocol: rows, documents, lexical tokens,
tombstones and the manifest live in SQLite, the BM25 postings files next to them (the same for
every backend), and a checkpoint or compaction is one SQLite
transaction that bumps ``generation``. A *vector backend* only keeps the vectors each generation
adds and answers, for one committed generation, which of them are nearest. It does five things,
each at a fixed point of the protocol (the short interface of txtai's ANN backends, bent to
generations):

- ``load`` (and, for a writer, ``verify``): the searchable vectors of the generation a manifest
  describes, as ``LoadedSegment``s that a ``StoreView`` searches (reusing those a previous view opened);
- ``write``: a checkpoint's new vectors, durable *before* the SQLite commit that makes them visible;
- ``reopen_written``: what a writer keeps of them once committed;
- ``manifest_keys``: what the commit records about them in the manifest;
- ``remove_uncommitted``: whatever a writer that lost (killed, or failed to commit) left behind.

Compaction differs by nature: FAISS segments are immutable files, so compacting merges them
(``IndexStore._merge``, ``merges_segments``); a database deletes points in place
(``delete_points``). Search code never sees a backend: it calls ``IndexStore.dense_search``.

Two implementations:

- ``FaissSegments`` (default): immutable ``segment.NNNNNN.faiss`` files (``kosearch.store.segments``).
- ``QdrantPoints`` (``kosearch.store.qdrant_backend``, the ``qdrant`` extra): points in a Qdrant
  collection, on a server or cluster by URL or in Qdrant's local on-disk mode under the index folder.

Which one an index uses is data: the manifest's ``vector_store`` key (absent: FAISS), written at
creation from ``--vector-store`` and read at every open, so an index reopens with the backend that
built it.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from kosearch.errors import KosearchError
from kosearch.store.durable import write_file_atomically
from kosearch.store.segments import (
    REMOVABLE_FILE,
    entries_of,
    entry_for,
    file_crc32,
    load_segment,
    segment_name,
    with_id_range,
)
from kosearch.store.vectors import DEFAULT_FACTORY, VectorStore, new_faiss_index
from kosearch.store.view import LoadedSegment


class VectorBackend(Protocol):
    """What the store asks of the place its vectors live (see the module docstring for when)."""

    kind: str
    merges_segments: bool

    def config(self) -> dict[str, Any]:
        """The manifest's ``vector_store`` value that reopens this backend (empty for FAISS)."""
        ...

    def describe(self) -> str:
        """A short name for ``info``: ``faiss``, ``qdrant (local)``, ``qdrant (http://host:6333/c)``."""
        ...

    def load(self, manifest: dict[str, Any], known: dict[str, LoadedSegment], problem) -> list[LoadedSegment]:
        """The generation's vectors; ``problem(text)`` makes the error for a damaged manifest.

        A source that cannot be read raises ``IndexCorruptError`` (a reader then retries on a newer
        generation, in case a writer removed it; a writer reports damage)."""
        ...

    def verify(self, manifest: dict[str, Any], tombstones: int) -> None:
        """At a writer's open, beyond ``load``'s checks: the stored vectors are those the manifest counts."""
        ...

    def write(
        self, generation: int, pending: VectorStore, segments: list[LoadedSegment], manifest: dict[str, Any]
    ) -> list[LoadedSegment]:
        """Store ``pending`` as generation ``generation``'s new vectors, durably but not yet visible."""
        ...

    def reopen_written(self, segments: list[LoadedSegment]) -> list[LoadedSegment]:
        """After the commit: what the writer keeps (FAISS maps the new file instead of its memory copy)."""
        ...

    def manifest_keys(self, segments: list[LoadedSegment]) -> dict[str, Any]:
        """The manifest keys a commit of ``segments`` writes."""
        ...

    def remove_uncommitted(self, segments: list[LoadedSegment], generation: int, keep: frozenset[str] = frozenset()) -> None:
        """Remove what no committed manifest names, ``generation`` being the committed one; ``keep``:
        other files of the folder that the manifest names (the lexical postings files)."""
        ...

    def close(self) -> None: ...


class FaissSegments:
    """Vectors as immutable FAISS segment files in the index folder (``kosearch.store.segments``)."""

    kind = "faiss"
    merges_segments = True

    def __init__(self, folder: Path, device: str, backend: str | None) -> None:
        self.folder = folder
        self._device = device
        self._backend = backend

    def config(self) -> dict[str, Any]:
        return {}

    def describe(self) -> str:
        return "faiss"

    def load(self, manifest: dict[str, Any], known: dict[str, LoadedSegment], problem) -> list[LoadedSegment]:
        segments = []
        for entry in entries_of(manifest, problem):
            if entry.name in known:
                segments.append(known[entry.name])
                continue
            vectors = load_segment(self.folder, entry, self._device, self._backend)
            segments.append(LoadedSegment(with_id_range(entry, vectors), vectors))
        return segments

    def verify(self, manifest: dict[str, Any], tombstones: int) -> None:
        """Nothing beyond ``load``: it already checked each file's count against its entry."""

    def write(
        self, generation: int, pending: VectorStore, segments: list[LoadedSegment], manifest: dict[str, Any]
    ) -> list[LoadedSegment]:
        name = segment_name(generation)
        factory = manifest.get("faiss_factory", DEFAULT_FACTORY)
        depth = None
        if factory == DEFAULT_FACTORY:
            write_file_atomically(self.folder, f"{name}.faiss", pending.save)
        else:
            import faiss

            from kosearch.store import ann

            index = new_faiss_index(pending.dimension, factory)
            for ids, batch in pending.iter_vectors():
                index.add_with_ids(batch, ids)
            write_file_atomically(self.folder, f"{name}.faiss", lambda path: faiss.write_index(index, str(path)))
            depth = ann.ef_construction(index)
        entry = replace(
            entry_for(name, pending, factory), crc32=file_crc32(self.folder / f"{name}.faiss"), ef_construction=depth
        )
        return [*segments, LoadedSegment(entry, pending)]

    def reopen_written(self, segments: list[LoadedSegment]) -> list[LoadedSegment]:
        # The committed file replaces the in-memory copy (memory-mapped: no longer this run's memory).
        written = segments[-1].entry
        return [*segments[:-1], LoadedSegment(written, load_segment(self.folder, written, self._device, self._backend))]

    def manifest_keys(self, segments: list[LoadedSegment]) -> dict[str, Any]:
        return {"segments": [segment.entry.to_dict() for segment in segments]}

    def remove_uncommitted(self, segments: list[LoadedSegment], generation: int, keep: frozenset[str] = frozenset()) -> None:
        """Segment and old vector files that the committed manifest does not name (and only those)."""
        named = {name for segment in segments for name in segment.entry.files()} | set(keep)
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name not in named and REMOVABLE_FILE.fullmatch(entry.name):
                    Path(entry.path).unlink(missing_ok=True)

    def close(self) -> None:
        pass


_COLLECTION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


def parse_vector_store(spec: str | None) -> dict[str, Any]:
    """``--vector-store`` as the manifest's ``vector_store`` value; a malformed one is a one-line error.

    The forms (the CLI's ``VectorStoreOption`` help says the same to users):

    - ``None`` or ``faiss``: ``{}`` (FAISS segment files; nothing is recorded, like every older index);
    - ``qdrant:local`` or ``qdrant:local/COLLECTION``: Qdrant's local mode in ``INDEX/qdrant``;
    - ``qdrant://HOST[:PORT]/COLLECTION`` (``qdrants://`` for TLS): a Qdrant server or cluster.
    """
    if spec is None or spec.strip().lower() == "faiss":
        return {}
    text = spec.strip()
    usage = (
        f"--vector-store {spec!r} is not understood; use 'faiss', 'qdrant:local' or "
        f"'qdrant://HOST:6333/COLLECTION'"
    )
    if text.startswith("qdrant:local"):
        rest = text[len("qdrant:local"):]
        collection = rest[1:] if rest.startswith("/") else ("kosearch" if rest == "" else None)
        if collection is None or not _COLLECTION.fullmatch(collection):
            raise KosearchError(usage)
        return {"kind": "qdrant", "path": "qdrant", "collection": collection}
    if text.startswith(("qdrant://", "qdrants://")):
        parts = urlsplit(text)
        collection = parts.path.strip("/")
        if not parts.hostname or not _COLLECTION.fullmatch(collection) or parts.query or parts.username:
            raise KosearchError(usage + " (credentials go in $QDRANT_API_KEY, never in the URL)")
        scheme = "https" if parts.scheme == "qdrants" else "http"
        port = parts.port or 6333
        return {"kind": "qdrant", "url": f"{scheme}://{parts.hostname}:{port}", "collection": collection}
    raise KosearchError(usage)


def describe_vector_store(config: dict[str, Any]) -> str:
    if config.get("kind", "faiss") == "faiss":
        return "faiss"
    if "path" in config:
        return f"qdrant (local, collection {config['collection']})"
    return f"qdrant ({config.get('url')}/{config.get('collection')})"


def vector_backend_for(
    folder: Path, manifest: dict[str, Any], device: str, backend: str | None, *, creating: bool = False
) -> VectorBackend:
    """The backend the manifest's ``vector_store`` names (FAISS when it names none)."""
    config = manifest.get("vector_store") or {}
    if not isinstance(config, dict):
        raise KosearchError(f"the manifest of {folder} has a malformed vector_store {config!r}")
    kind = config.get("kind", "faiss")
    if kind == "faiss":
        return FaissSegments(folder, device, backend)
    if kind == "qdrant":
        from kosearch.store.qdrant_backend import QdrantPoints

        return QdrantPoints(folder, config, int(manifest["dimension"]), creating=creating)
    raise KosearchError(
        f"{folder} keeps its vectors in {kind!r}, which this kosearch does not know; upgrade kosearch"
    )


__all__ = [
    "FaissSegments",
    "VectorBackend",
    "describe_vector_store",
    "parse_vector_store",
    "vector_backend_for",
]
