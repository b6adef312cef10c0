"""The documents stage: find files, decode them (or have a library parse PDF, DOCX, HWP), read their
prose and split it into sentences.

``iter_documents`` is the one entry point the index uses. It streams: each file is read, split and
handed over before the next is opened, so memory follows the largest file, not the corpus. Files
that cannot be indexed come out as :class:`SkippedFile` with a reason instead of raising, because
one bad file in a folder of thousands should be reported, not fatal: that includes any exception a
reader or the splitter raises on a hostile file, not only the failures foreseen.
A file that is read but yields no sentence (a CSV of numbers, JSON Lines none of which parse, a
page of markup) is skipped too, with its reader's warning as the reason: indexed, it would count as
added and never be found.

Everything that leaves this stage is valid Unicode (:mod:`kosearch.textclean`): sentences and
warnings have lone surrogates and NULs replaced, relative paths are escaped losslessly.

Example::

    from kosearch.documents import iter_documents, Document

    for item in iter_documents("corpora/sample"):
        if isinstance(item, Document):
            print(item.relpath, item.encoding, len(item.sentences))
        else:
            print("skipped", item.path, item.reason)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from kosearch.documents.decode import DEFAULT_MAX_BYTES, UnreadableFile, read_text
from kosearch.documents.discover import FORMATS, FoundFile, discover, format_of
from kosearch.documents.readers import hash_file, is_binary, read_file
from kosearch.documents.split import DEFAULT_MAX_CHARS, DEFAULT_PASSAGE_CHARS, SplitMode, split_records
from kosearch.documents.types import Document, Sentence, SkippedFile
from kosearch.textclean import clean_text, escape_path

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Document",
    "FORMATS",
    "Sentence",
    "SkippedFile",
    "FoundFile",
    "discover",
    "iter_documents",
    "read_document",
    "read_found_file",
]


def iter_documents(
    root: str | os.PathLike[str],
    *,
    text_fields: Sequence[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    mode: SplitMode = "sentence",
    on_skip: Callable[[SkippedFile], None] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    passage_chars: int = DEFAULT_PASSAGE_CHARS,
    is_unchanged: Callable[[str, str], bool] | None = None,
    metadata_fields: Sequence[str] | None = None,
) -> Iterator[Document | SkippedFile]:
    """Yield every readable file under ``root`` as a split :class:`Document`, in sorted path order.

    Args:
        root: a folder (walked recursively, hidden entries left out) or a single file.
        text_fields: CSV/TSV columns or JSONL key paths (``"a.b"``) to index; by default the ones
            named or looking like prose.
        max_bytes: larger files are skipped.
        mode: ``"sentence"``, or ``"passage"`` to group consecutive sentences up to ``passage_chars``.
        on_skip: when given, skipped files are passed to it instead of being yielded, so the loop
            sees only Documents.
        max_chars: longer sentences are cut at whitespace.
        is_unchanged: called with ``(relpath, sha256)`` once a file is read; when it returns True the
            file is not split (splitting is most of the cost) and its Document has ``unchanged=True``
            and no sentences. Lets a re-run over a large folder skip what the index already holds.
        metadata_fields: the CSV/TSV/JSONL columns kept as typed ``Sentence.fields``; None keeps
            every column that is not indexed as text.
    """
    for found in discover(root):
        if isinstance(found, SkippedFile):
            item: Document | SkippedFile = found
        else:
            item = _read(found, text_fields, max_bytes, mode, max_chars, passage_chars, is_unchanged, metadata_fields)
        if on_skip is not None and isinstance(item, SkippedFile):
            on_skip(item)
        else:
            yield item


def read_document(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    text_fields: Sequence[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    mode: SplitMode = "sentence",
    max_chars: int = DEFAULT_MAX_CHARS,
    passage_chars: int = DEFAULT_PASSAGE_CHARS,
) -> Document | SkippedFile:
    """Read and split one file; ``root`` (default: its folder) decides its relative path.

    Re-indexing a single changed file goes through here, so its Document is the same as the one
    :func:`iter_documents` would make for it.
    """
    file_path = Path(path).expanduser().resolve()
    root_path = Path(root).expanduser().resolve() if root is not None else file_path.parent
    relpath = file_path.relative_to(root_path).as_posix() if file_path.is_relative_to(root_path) else file_path.name
    relpath = escape_path(relpath)
    fmt = format_of(file_path)
    if fmt is None:
        supported = " ".join(sorted(FORMATS))
        suffix = escape_path(file_path.suffix) or "(none)"
        return SkippedFile(relpath, f"unsupported file type {suffix}; kosearch reads {supported}")
    return _read(FoundFile(file_path, relpath, fmt), text_fields, max_bytes, mode, max_chars, passage_chars)


def read_found_file(
    found: FoundFile,
    *,
    text_fields: Sequence[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    mode: SplitMode = "sentence",
    max_chars: int = DEFAULT_MAX_CHARS,
    passage_chars: int = DEFAULT_PASSAGE_CHARS,
    is_unchanged: Callable[[str, str], bool] | None = None,
    metadata_fields: Sequence[str] | None = None,
) -> Document | SkippedFile:
    """Read and split one file that :func:`discover` found, exactly as :func:`iter_documents` does.

    For callers that hand the files of one :func:`discover` walk to other processes (the Ray ingest
    reads them on worker nodes): the Document is the one a single-process run would make.
    """
    return _read(found, text_fields, max_bytes, mode, max_chars, passage_chars, is_unchanged, metadata_fields)


def _read(
    found: FoundFile,
    text_fields: Sequence[str] | None,
    max_bytes: int,
    mode: SplitMode,
    max_chars: int,
    passage_chars: int,
    is_unchanged: Callable[[str, str], bool] | None = None,
    metadata_fields: Sequence[str] | None = None,
) -> Document | SkippedFile:
    """Read and split one file; whatever goes wrong with it becomes a :class:`SkippedFile`.

    The readers handle the malformed input they know of (a bad JSONL line is a warning); this catch
    is for the rest, so a parser's ``RecursionError`` or ``ValueError`` on one hostile file, or a
    ``MemoryError`` that unwinding it has already undone, costs that file and not the run.
    """
    try:
        return _read_file(found, text_fields, max_bytes, mode, max_chars, passage_chars, is_unchanged, metadata_fields)
    except UnreadableFile as unreadable:
        return SkippedFile(found.relpath, unreadable.reason)
    except Exception as error:  # noqa: BLE001 - any failure on one file is that file's problem
        return SkippedFile(found.relpath, f"could not read: {_short_error(error)}")


def _read_file(
    found: FoundFile,
    text_fields: Sequence[str] | None,
    max_bytes: int,
    mode: SplitMode,
    max_chars: int,
    passage_chars: int,
    is_unchanged: Callable[[str, str], bool] | None,
    metadata_fields: Sequence[str] | None = None,
) -> Document:
    # Binary formats (pdf, docx, hwp, hwpx) are hashed, not decoded: their library parses them.
    binary = is_binary(found.format)
    decoded = hash_file(found.path, max_bytes) if binary else read_text(found.path, max_bytes)
    document = Document(
        path=found.path,
        relpath=found.relpath,
        encoding=decoded.encoding,
        format=found.format,
        sha256=decoded.sha256,
        size=decoded.size,
    )
    if is_unchanged is not None and is_unchanged(found.relpath, decoded.sha256):
        document.unchanged = True
        return document
    # Cleaning replaces character for character, so offsets into the cleaned text are offsets into
    # the decoded one. A verbatim record is a slice of that text, hence clean; any other record may
    # hold characters the text lacks (a JSON "\ud800" escape), so it is cleaned on its own. Text
    # extracted from a binary document is cleaned the same way, records and all.
    if not binary:
        decoded = replace(decoded, text=clean_text(decoded.text))
    result = read_file(found.path, decoded, found.format, text_fields)
    source = clean_text(result.source) if result.source is not None else None
    kept = None if metadata_fields is None else set(metadata_fields)
    for record in result.records:
        if binary or not record.verbatim:
            record.text = clean_text(record.text)
        if kept is not None and record.fields:
            record.fields = {name: value for name, value in record.fields.items() if name in kept} or None
    document.sentences = split_records(
        result.records, source=source, mode=mode, max_chars=max_chars, passage_chars=passage_chars
    )
    document.warnings = [clean_text(warning) for warning in result.warnings]
    if not document.sentences:
        # Indexed with no sentences, the file would count as added yet never be found: report it.
        raise UnreadableFile(_nothing_to_index(document.warnings))
    return document


def _nothing_to_index(warnings: Sequence[str]) -> str:
    """Why a file that was read holds no sentence: its reader's first warning, when it gave one."""
    if not warnings:
        return "no text to index (no letter or digit outside markup and punctuation)"
    more = f" (and {len(warnings) - 1} more warning(s))" if len(warnings) > 1 else ""
    return f"no text to index: {_short(warnings[0])}{more}"


_MAX_ERROR_CHARS = 200


def _short_error(error: Exception) -> str:
    """``Type: message``, cut short: a message may quote the file (a 5,000-digit number, a huge line)."""
    message = _short(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message[: _MAX_ERROR_CHARS - 1] + "…" if len(message) > _MAX_ERROR_CHARS else message
