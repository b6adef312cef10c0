"""Indexing a folder: documents -> sentences -> vectors -> a checkpointed index.

The run streams: files are read and split one at a time (in a background thread, so splitting
overlaps encoding), sentences are encoded in large batches (the encoder sorts each batch by length,
which is where most of its speed comes from), and only the current batch's rows and vectors are
held outside the store. Each batch's rows go into the store's open SQLite transaction as soon as
it is encoded, and what the run has seen is kept in a temporary SQLite table, so a run's Python
memory does not grow with the corpus; only the vector store (in memory) does.

A checkpoint (every ``checkpoint_sentences`` sentences, counted inside a file too, or every
``checkpoint_seconds``) makes everything so far durable at once; a killed run therefore loses at
most the work since the last checkpoint. A file cut by a checkpoint is committed as unfinished
(see ``kosearch.store.index_store``), so the next run re-does it.

When a checkpoint is followed by a tier merge (``kosearch.store.index_store``: minutes for an
HNSW segment of a million vectors), the run frees its encoder's model and Kiwi first and holds the
reader thread between files, so the merge's index is not resident beside them; both load again on
their next use, seconds against the merge's minutes (peak RSS of a million-unit build: docs/benchmarks.md,
"Build peak RSS with the real encoder").

Each batch's sentences also get their lexical postings (Kiwi morphemes, analysed with the options
the index's manifest records) in the same transaction as their rows. An index made before the
lexical index (or one built with ``--no-lexical``) gets the postings of its old sentences at the
start of the run, before anything new; ``IngestOptions.lexical = False`` writes no postings at all.

Re-running on the same folder is an update: unchanged files (same bytes) are skipped, changed
files replace their old sentences, and files that disappeared are removed.

Where documents come from is a :data:`DocumentSource`: by default this process reads and splits them
(:func:`local_documents`); the Ray ingest (:mod:`kosearch.distributed.ray_ingest`) reads, splits,
analyses and encodes them on a cluster and hands back :class:`EncodedDocument` items. Either way this
loop is the one writer: the same rows, the same store calls, the same checkpoints.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from kosearch.documents.split import release_kiwi
from kosearch.documents.types import Document, Sentence, SkippedFile
from kosearch.errors import KosearchError
from kosearch.results import IngestReport
from kosearch.search.morphemes import LexicalOptions, MorphemeAnalyzer
from kosearch.store import IndexStore
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
    mode: str | None = None
    """The unit, ``sentence`` or ``passage``; None: the index's own, or ``DEFAULT_UNIT`` for a new one."""
    metadata_fields: Sequence[str] | None = None
    """CSV/TSV/JSONL columns kept as typed metadata; None keeps every column not indexed as text."""
    encode_batch_sentences: int = 8192
    checkpoint_sentences: int = 100_000
    checkpoint_seconds: float = 300.0
    prune: bool = True
    """Remove from the index the files of this folder that no longer exist."""
    lexical: bool = True
    """Keep the lexical index (BM25 postings of Kiwi morphemes) with the vectors. False builds a new
    index without one (dense search only, no Kiwi analysis of the units); an index that has one keeps
    it, and a run with True adds it to an index that lacks it."""


DEFAULT_UNIT = "passage"
"""What a hit is in a new index. Measured with ``bench/bench_units.py`` (corpora/sample, its 60
questions, bundled encoder, hybrid mode, z-score fusion): passages MRR@10 92.2 / nDCG@10 92.7 /
answer recall@10 96.7, sentences 69.2 / 75.7 / 95.8 (dense: 92.2 vs 72.8 MRR@10). Tests about
sentences say so (``unit="sentence"``). An existing index keeps the unit it was built with."""

ProgressCallback = Callable[[int, int, str], None]
"""Called with (files seen, sentences encoded, current file's relative path)."""


@dataclass(frozen=True)
class EncodedDocument:
    """A document whose units were encoded (and lexically analysed) elsewhere, e.g. on a Ray worker.

    ``unit_vectors`` has one L2-normalised float32 row per sentence, in order; ``tokens`` one
    space-joined morpheme string per sentence, or None when the run keeps no lexical index.
    """

    document: Document
    unit_vectors: np.ndarray
    tokens: list[str] | None = None


@dataclass(frozen=True)
class SourceRequest:
    """What a document source is asked for: one folder, read the way this run reads it."""

    root: Path
    unit: str
    text_fields: Sequence[str] | None
    metadata_fields: Sequence[str] | None
    is_unchanged: Callable[[str, str], bool]
    """``(relpath, sha256)`` -> whether the index holds that file as it is (then it is not split)."""
    committed_sha256: Callable[[str], str | None]
    """The committed hash of a path, for sources that ship the question to other processes."""
    lexical: dict | None
    """The analyzer options (``LexicalOptions.to_dict()``) units are tokenised with; None: no postings."""


DocumentSource = Callable[[SourceRequest], Iterable["Document | SkippedFile | EncodedDocument"]]
"""Produces a folder's documents in sorted path order: split ones (this process encodes them) or
:class:`EncodedDocument` ones (their vectors and tokens are stored as they are)."""


def local_documents(request: SourceRequest) -> Iterator[Document | SkippedFile]:
    """The default source: read and split in this process (``iter_documents``)."""
    from kosearch.documents import iter_documents

    return iter_documents(
        request.root, text_fields=request.text_fields, mode=request.unit, is_unchanged=request.is_unchanged,
        metadata_fields=request.metadata_fields,
    )


def ingest_folder(
    store: IndexStore,
    encoder: Encoder,
    root: Path,
    options: IngestOptions | None = None,
    progress: ProgressCallback | None = None,
    source: DocumentSource | None = None,
) -> IngestReport:
    """Index (or update) ``root`` into ``store``; ``source`` (default: :func:`local_documents`) yields its documents."""
    options = options or IngestOptions()
    started = time.perf_counter()
    root = Path(root).resolve()
    root_key = escape_path(str(root))  # a folder name need not be UTF-8; SQLite needs valid text
    report = IngestReport(root=root_key)
    store.start_seen()
    committed = store.committed_hashes(root_key)
    first_new_document_id, next_sentence_id = store.next_ids()
    next_document_id = first_new_document_id
    batch = _EncodeBatch()
    reader_gate = ReaderGate()
    unit = _check_unit(store, options.mode)
    analyzer = _lexical_analyzer(store) if options.lexical else _without_lexical(store)
    last_checkpoint = time.monotonic()
    since_checkpoint = 0
    changed = False
    files = 0

    def flush() -> None:
        if batch.texts:
            if batch.given_vectors and len(batch.given_vectors) != len(batch.rows):
                raise KosearchError("a document source mixed encoded and unencoded documents in one run")
            vectors = np.stack(batch.given_vectors) if batch.given_vectors else encoder.encode_documents(batch.texts)
            if batch.tokens or analyzer is None:
                tokens = batch.tokens or None
            else:
                tokens = [" ".join(t) for t in analyzer.analyze_batch(batch.texts)]
            store.add_sentences(batch.rows, vectors, tokens)
            report.sentences_added += len(batch.texts)
            batch.clear()

    def drop(stored: StoredDocument) -> None:
        """Take a stored document out now (vectors and rows); durable at the next checkpoint."""
        nonlocal changed
        report.sentences_removed += store.remove_documents([stored.id])
        changed = True

    def checkpoint_due() -> bool:
        return since_checkpoint >= options.checkpoint_sentences or (
            changed and time.monotonic() - last_checkpoint >= options.checkpoint_seconds
        )

    def release_for_merge() -> None:
        """Before a large merge (the store's ``RELEASE_BEFORE_MERGE_BYTES``): the reader stops between files
        (it would load Kiwi again), then the model and Kiwi go; ``checkpoint`` lets the reader go on, and
        each loads again when next used."""
        reader_gate.pause()
        release = getattr(encoder, "release", None)  # encoders without one (stand-ins) keep what they hold
        if release is not None:
            release()
        if analyzer is not None:
            analyzer.release()  # its Kiwi and the process-wide one the documents stage splits with
        else:
            release_kiwi()  # the documents stage's splitting Kiwi

    def checkpoint(final: bool) -> None:
        nonlocal last_checkpoint, since_checkpoint, changed
        flush()
        if changed or since_checkpoint or final:
            skipped = (root_key, report.skipped) if final else None
            try:
                store.checkpoint(skipped=skipped, before_merge=release_for_merge)
            finally:
                reader_gate.resume()
        last_checkpoint = time.monotonic()
        since_checkpoint = 0
        changed = False

    def is_unchanged(relpath: str, sha256: str) -> bool:
        # Lets the documents stage skip splitting files the index already holds as they are.
        return committed.sha256(relpath) == sha256

    request = SourceRequest(
        root=root, unit=unit, text_fields=options.text_fields, metadata_fields=options.metadata_fields,
        is_unchanged=is_unchanged, committed_sha256=committed.sha256,
        lexical=analyzer.options.to_dict() if analyzer is not None else None,
    )
    documents = _stop_instead_of_raising((source or local_documents)(request))
    stopped_early = False
    # Files read ahead wait as whole documents: bounded in sentences, not only in number.
    read_ahead = _prefetch(
        documents, 64, weight=_sentences_in, max_weight=2 * options.encode_batch_sentences, gate=reader_gate
    )
    for item in read_ahead:
        encoded = item if isinstance(item, EncodedDocument) else None
        if encoded is not None:
            item = encoded.document
        if isinstance(item, _ReaderStopped):
            report.warnings.append(item.message)
            stopped_early = True
            break
        files += 1
        if isinstance(item, SkippedFile):
            report.skipped.append(item)
            continue
        store.remember_seen(item.relpath)
        if item.unchanged:
            report.files_unchanged += 1
            continue
        report.warnings.extend(f"{item.relpath}: {warning}" for warning in item.warnings)
        previous = store.document_at(root_key, item.relpath)
        if previous is not None:
            drop(previous)
            report.files_updated += 1
        else:
            report.files_added += 1
        document_id = next_document_id
        next_document_id += 1
        # sha256 '' until the last sentence is in: a checkpoint inside this file commits it
        # as changed, so a run killed before the end re-does it.
        store.add_document(_document_row(document_id, root_key, item))
        changed = True
        for position, sentence in enumerate(item.sentences):
            if checkpoint_due():
                checkpoint(final=False)
            batch.add(
                sentence_row(
                    next_sentence_id, document_id, position, sentence,
                    _fields_json(getattr(sentence, "fields", None)),
                ),
                None if encoded is None else encoded.unit_vectors[position],
                None if encoded is None or encoded.tokens is None else encoded.tokens[position],
            )
            next_sentence_id += 1
            since_checkpoint += 1
            if len(batch.texts) >= options.encode_batch_sentences:
                flush()
        store.complete_document(document_id, item.sha256)
        changed = True
        if progress is not None:
            progress(files, report.sentences_added, item.relpath)
        if checkpoint_due():
            checkpoint(final=False)

    if options.prune and root.is_dir() and not stopped_early:  # unseen files may just be unread
        after = 0
        while unseen := store.unseen_documents(root_key, first_new_document_id, after):
            for stored in unseen:
                drop(stored)
                report.files_removed += 1
            after = unseen[-1].id
    checkpoint(final=True)
    committed.close()
    if progress is not None:
        progress(files, report.sentences_added, "")
    report.seconds = time.perf_counter() - started
    return report


class _EncodeBatch:
    """Sentence rows waiting to be encoded; they go to the store with their vectors.

    Rows of an :class:`EncodedDocument` arrive with their vector (and tokens): a run's source gives
    either encoded documents or plain ones, so a batch holds vectors for all its rows or for none.
    """

    def __init__(self) -> None:
        self.clear()

    def add(self, row: dict, vector: np.ndarray | None = None, tokens: str | None = None) -> None:
        self.rows.append(row)
        self.texts.append(row["text"])
        if vector is not None:
            self.given_vectors.append(vector)
        if tokens is not None:
            self.tokens.append(tokens)

    def clear(self) -> None:
        self.rows, self.texts = [], []
        self.given_vectors: list[np.ndarray] = []
        self.tokens: list[str] = []


def _check_unit(store: IndexStore, unit: str | None) -> str:
    """The unit of this run; one index, one unit: hits of sentences and passages mixed would not compare.

    An index made before units were recorded holds sentences unless it says otherwise.
    """
    if unit is not None and unit not in ("sentence", "passage"):
        raise KosearchError(f"unknown unit {unit!r}; use 'sentence' or 'passage'")
    recorded = store.manifest.get("unit")
    if recorded is None:
        recorded = unit or (DEFAULT_UNIT if store.counts()[1] == 0 else "sentence")
        store.record_unit(recorded)
        return recorded
    if unit is not None and recorded != unit:
        raise KosearchError(
            f"index {store.folder} holds {recorded} units; index with --unit {recorded}, "
            f"or build a new index for {unit} units"
        )
    return recorded


def _lexical_analyzer(store: IndexStore) -> MorphemeAnalyzer:
    """The analyzer the index's postings are made with; first fills those an older index lacks."""
    recorded = store.manifest.get("lexical")
    if recorded is not None:
        return MorphemeAnalyzer(LexicalOptions.from_dict(recorded))
    analyzer = MorphemeAnalyzer()
    while missing := store.sentences_without_lexical():
        tokens = analyzer.analyze_batch([text for _, text in missing])
        store.add_lexical([i for i, _ in missing], [" ".join(t) for t in tokens])
    store.set_lexical_options(analyzer.options.to_dict())
    return analyzer


def _without_lexical(store: IndexStore) -> None:
    """No analyzer: this run writes no postings. A new index gives up the lexical index it was made with."""
    if not store.has_lexical:
        return None
    if store.counts()[1]:
        raise KosearchError(
            f"index {store.folder} has a lexical index, and its new units would need postings too; "
            f"index without --no-lexical, or build a new index with --no-lexical"
        )
    store.drop_lexical()
    return None


def sentence_row(unit_id: int, document_id: int, position: int, sentence: Sentence, fields_json: str | None) -> dict:
    """The ``sentences`` row of one unit: what a folder's files and ``add_texts`` records both store."""
    return {
        "id": unit_id,
        "document_id": document_id,
        "position": position,
        "text": sentence.text,
        "line": sentence.line,
        "start": sentence.start,
        "end": sentence.end,
        "page": sentence.page,
        "fields": fields_json,
    }


def _fields_json(fields: dict | None) -> str | None:
    # ensure_ascii=False: SQLite's json_extract matches keys as written, and filters name them in Korean.
    return json.dumps(fields, ensure_ascii=False) if fields else None


def _modified(path: Path) -> str | None:
    """The file's modification time as ISO text (UTC), what ``--where "modified >= '2024-01-01'"`` compares."""
    try:
        stamp = os.stat(path).st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")


def _sentences_in(item: Document | SkippedFile | EncodedDocument) -> int:
    if isinstance(item, EncodedDocument):
        item = item.document
    return len(item.sentences) if isinstance(item, Document) else 0


def _document_row(document_id: int, root: str, document: Document) -> dict:
    return {
        "id": document_id,
        "root": root,
        "path": document.relpath,
        "sha256": "",
        "size": document.size,
        "encoding": document.encoding,
        "format": document.format,
        "sentences": len(document.sentences),
        "indexed_at": now(),
        "modified": _modified(document.path),
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


class ReaderGate:
    """Lets the ingest loop hold ``_prefetch``'s reader thread between two items.

    ``pause`` returns once the reader is not inside the source (reading and splitting a file, which
    may load Kiwi) and will not enter it again before ``resume``; items already read wait as before.
    """

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._producing = threading.Lock()

    def pause(self) -> None:
        self._open.clear()
        with self._producing:  # the item being read, if any, is finished
            pass

    def resume(self) -> None:
        self._open.set()

    def next_item(self, iterator: Iterator[T], stop: threading.Event) -> T:
        """The source's next item once the gate is open (StopIteration at its end, or on ``stop``)."""
        while True:
            while not self._open.wait(0.1):
                if stop.is_set():
                    raise StopIteration
            with self._producing:
                if self._open.is_set():
                    return next(iterator)


def _prefetch(
    items: Iterable[T],
    size: int,
    weight: Callable[[T], int] | None = None,
    max_weight: int | None = None,
    gate: ReaderGate | None = None,
) -> Iterator[T]:
    """Produce ``items`` in a background thread, so reading and splitting overlap encoding.

    At most ``size`` items wait, and, when ``weight`` is given, at most ``max_weight`` of their
    summed weight (one item always fits): with sentences as the weight, the files read ahead hold a
    bounded number of sentences however large the files are.

    Errors raised by the producer are re-raised in the consumer, and a consumer that stops early
    (an exception, Ctrl-C) lets the producer thread finish instead of blocking forever. ``gate``
    lets the consumer hold the producer between items (``ReaderGate``).
    """
    waiting: collections.deque = collections.deque()
    changed = threading.Condition()
    stop = threading.Event()
    held = 0

    def put(item: object, item_weight: int) -> bool:
        nonlocal held
        with changed:
            while waiting and (
                len(waiting) >= size or (max_weight is not None and held + item_weight > max_weight)
            ):
                if stop.is_set():
                    return False
                changed.wait(0.1)
            waiting.append((item, item_weight))
            held += item_weight
            changed.notify_all()
            return True

    def produce() -> None:
        iterator = iter(items)
        try:
            while True:
                try:
                    item = gate.next_item(iterator, stop) if gate is not None else next(iterator)
                except StopIteration:
                    break
                if stop.is_set() or not put(item, weight(item) if weight is not None else 0):
                    return
            put(_DONE, 0)
        except BaseException as error:  # handed to the consumer, which re-raises it
            put(error, 0)
        finally:  # a generator stopped early runs its own clean-up now (a Ray source shuts its cluster)
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="kosearch-reader", daemon=True)
    thread.start()
    try:
        while True:
            with changed:
                while not waiting:
                    changed.wait()
                item, item_weight = waiting.popleft()
                held -= item_weight
                changed.notify_all()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
