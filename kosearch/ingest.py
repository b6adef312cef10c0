"""Indexing a folder: documents -> sentences -> vectors -> a checkpointed index.

The run streams: files are read and split one at a time (in a background thread, so splitting
overlaps encoding), sentences are encoded in large batches (the encoder sorts each batch by length,
which is where most of its speed comes from), and only the current batch's vectors are held
outside the vector store. Rows wait in memory until the next checkpoint, which makes everything so
far durable at once; a killed run therefore loses at most the work since the last checkpoint.

Re-running on the same folder is an update: unchanged files (same bytes) are skipped, changed
files replace their old sentences, and files that disappeared are removed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from kosearch.documents.types import Document, SkippedFile
from kosearch.errors import KosearchError
from kosearch.results import IngestReport
from kosearch.store import IndexStore, PendingChanges
from kosearch.store.index_store import now
from kosearch.store.metadata import StoredDocument
from kosearch.textclean import clean_text, escape_path

if TYPE_CHECKING:
    from kosearch.encoders import Encoder

T = TypeVar("T")


@dataclass
class IngestOptions:
    """How a folder is read and how often the run makes its progress durable."""

    text_fields: Sequence[str] | None = None
    mode: str = "sentence"
    encode_batch_sentences: int = 8192
    checkpoint_sentences: int = 100_000
    checkpoint_seconds: float = 300.0
    prune: bool = True
    """Remove from the index the files of this folder that no longer exist."""


ProgressCallback = Callable[[int, int, str], None]
"""Called with (files seen, sentences encoded, current file's relative path)."""


def ingest_folder(
    store: IndexStore,
    encoder: Encoder,
    root: Path,
    options: IngestOptions | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    options = options or IngestOptions()
    started = time.perf_counter()
    root = Path(root).resolve()
    root_key = escape_path(str(root))  # a folder name need not be UTF-8; SQLite needs valid text
    report = IngestReport(root=root_key)
    known = store.metadata.documents_under(root_key)
    seen: set[str] = set()
    next_document_id, next_sentence_id = store.metadata.next_ids()
    pending = PendingChanges.empty()
    batch = _EncodeBatch()
    last_checkpoint = time.monotonic()
    since_checkpoint = 0
    files = 0

    def flush() -> None:
        if batch.texts:
            vectors = encoder.encode_documents(batch.texts)
            store.vectors.add(np.asarray(batch.ids, dtype=np.int64), vectors)
            report.sentences_added += len(batch.texts)
            batch.clear()

    def drop(stored: StoredDocument) -> None:
        """Take a stored document's vectors out now; its rows go at the next checkpoint."""
        old_ids = store.metadata.sentence_ids_of([stored.id])
        store.remove_vectors(old_ids)
        pending.removed_documents.append(stored.id)
        report.sentences_removed += len(old_ids)

    def checkpoint(final: bool) -> None:
        nonlocal pending, last_checkpoint, since_checkpoint
        flush()
        if pending or final:
            skipped = (root_key, report.skipped) if final else None
            store.checkpoint(pending, skipped=skipped)
        pending = PendingChanges.empty()
        last_checkpoint = time.monotonic()
        since_checkpoint = 0

    from kosearch.documents import iter_documents

    def is_unchanged(relpath: str, sha256: str) -> bool:
        # Lets the documents stage skip splitting files the index already holds as they are.
        stored = known.get(relpath)
        return stored is not None and stored.sha256 == sha256

    documents = _stop_instead_of_raising(
        iter_documents(root, text_fields=options.text_fields, mode=options.mode, is_unchanged=is_unchanged)
    )
    stopped_early = False
    for item in _prefetch(documents, size=64):
        if isinstance(item, _ReaderStopped):
            report.warnings.append(item.message)
            stopped_early = True
            break
        files += 1
        if isinstance(item, SkippedFile):
            report.skipped.append(item)
            continue
        seen.add(item.relpath)
        if item.unchanged:
            report.files_unchanged += 1
            continue
        report.warnings.extend(f"{item.relpath}: {warning}" for warning in item.warnings)
        previous = known.get(item.relpath)
        if previous is not None:
            drop(previous)
            report.files_updated += 1
        else:
            report.files_added += 1
        pending.documents.append(_document_row(next_document_id, root_key, item))
        for position, sentence in enumerate(item.sentences):
            pending.sentences.append(
                {
                    "id": next_sentence_id,
                    "document_id": next_document_id,
                    "position": position,
                    "text": sentence.text,
                    "line": sentence.line,
                    "start": sentence.start,
                    "end": sentence.end,
                    "page": sentence.page,
                }
            )
            batch.add(next_sentence_id, sentence.text)
            next_sentence_id += 1
        next_document_id += 1
        since_checkpoint += len(item.sentences)
        if len(batch.texts) >= options.encode_batch_sentences:
            flush()
        if progress is not None:
            progress(files, report.sentences_added, item.relpath)
        if (
            since_checkpoint >= options.checkpoint_sentences
            or time.monotonic() - last_checkpoint >= options.checkpoint_seconds
        ):
            checkpoint(final=False)

    if options.prune and root.is_dir() and not stopped_early:  # unseen files may just be unread
        for relpath, stored in known.items():
            if relpath not in seen:
                drop(stored)
                report.files_removed += 1
    checkpoint(final=True)
    if progress is not None:
        progress(files, report.sentences_added, "")
    report.seconds = time.perf_counter() - started
    return report


class _EncodeBatch:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.texts: list[str] = []

    def add(self, sentence_id: int, text: str) -> None:
        self.ids.append(sentence_id)
        self.texts.append(text)

    def clear(self) -> None:
        self.ids, self.texts = [], []


def _document_row(document_id: int, root: str, document: Document) -> dict:
    return {
        "id": document_id,
        "root": root,
        "path": document.relpath,
        "sha256": document.sha256,
        "size": document.size,
        "encoding": document.encoding,
        "format": document.format,
        "sentences": len(document.sentences),
        "indexed_at": now(),
    }


@dataclass(frozen=True)
class _ReaderStopped:
    """Stands in the document stream for an exception the documents stage raised between files."""

    error: Exception

    @property
    def message(self) -> str:
        detail = clean_text(f"{type(self.error).__name__}: {self.error}")[:200]
        return (
            f"reading stopped early ({detail}); the files read so far are indexed and none were removed; "
            "run again to index the rest"
        )


def _stop_instead_of_raising(items: Iterable[T]) -> Iterator[T | _ReaderStopped]:
    """``items``, ending in a :class:`_ReaderStopped` instead of an exception from the documents stage.

    Files that fail one by one are already skipped files; this is for a failure between them, which
    would otherwise end the run and lose everything encoded since the last checkpoint. A
    KosearchError (the folder does not exist) still raises: it comes before any work and says what to do.
    """
    try:
        yield from items
    except KosearchError:
        raise
    except Exception as error:  # noqa: BLE001 - reported in the run's warnings
        yield _ReaderStopped(error)


_DONE = object()


def _prefetch(items: Iterable[T], size: int) -> Iterator[T]:
    """Produce ``items`` in a background thread, so reading and splitting overlap encoding.

    Errors raised by the producer are re-raised in the consumer, and a consumer that stops early
    (an exception, Ctrl-C) lets the producer thread finish instead of blocking forever.
    """
    buffer: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as error:  # handed to the consumer, which re-raises it
            buffer.put(error)

    thread = threading.Thread(target=produce, name="kosearch-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
