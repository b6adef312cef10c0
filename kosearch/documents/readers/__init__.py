"""The format registry: which reader turns a file of each format into located records.

A reader is one module of this package and one line of :data:`READERS`. There are two kinds,
because the two kinds of file need different things before they can be read:

- a **text** reader (txt, md, csv, tsv, jsonl, html) gets the file's decoded text (the encoding is
  found by :mod:`kosearch.documents.decode`), and its records point into that text, so a hit can
  be opened at its exact line;
- a **binary** reader (pdf, docx, hwp, hwpx) gets the file's path, because its library parses the
  container itself, and its records point into the text it extracted (see
  :mod:`kosearch.documents.readers.extracted`), with ``page`` set where the format has pages.

Either way the raw bytes are what is hashed for unchanged-file detection, and the size limit
applies before anything is parsed (:func:`hash_file` for binary formats). A file a reader cannot
read raises :class:`~kosearch.documents.decode.UnreadableFile` with the reason the user will see;
a library's own exceptions never leave a reader. The libraries are imported on first use, so
indexing a folder of text files does not pay for loading them.

Adding a format: a module here with ``read_NAME(path) -> ReadResult`` (binary) or
``read_NAME(text, text_fields) -> ReadResult`` (text), one line in READERS, and its extension in
:data:`kosearch.documents.discover.FORMATS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kosearch.documents.decode import DecodedText, UnreadableFile
from kosearch.documents.markdown import read_markdown
from kosearch.documents.plaintext import read_plain_text
from kosearch.documents.readers.base import ReadResult
from kosearch.documents.readers.docx import read_docx
from kosearch.documents.readers.html import read_html
from kosearch.documents.readers.hwp import read_hwp, read_hwpx
from kosearch.documents.readers.json_lines import read_json_lines
from kosearch.documents.readers.pdf import read_pdf
from kosearch.documents.readers.table import read_table

__all__ = [
    "BINARY_ENCODING",
    "READERS",
    "BinaryReader",
    "ReadResult",
    "TextReader",
    "hash_file",
    "is_binary",
    "read_file",
    "read_records",
]

BINARY_ENCODING = "binary"
"""``Document.encoding`` of a binary format: its bytes are parsed, never decoded as text."""


@dataclass(frozen=True)
class TextReader:
    """Reads a decoded file; ``text_fields`` matters to the tabular formats only."""

    read: Callable[[str, Sequence[str] | None], ReadResult]


@dataclass(frozen=True)
class BinaryReader:
    """Reads a file through a document library, given its path."""

    read: Callable[[Path], ReadResult]


def _plain_text(source: str, text_fields: Sequence[str] | None) -> ReadResult:
    return ReadResult(read_plain_text(source))


def _markdown(source: str, text_fields: Sequence[str] | None) -> ReadResult:
    return ReadResult(read_markdown(source))


def _csv(source: str, text_fields: Sequence[str] | None) -> ReadResult:
    return read_table(source, ",", text_fields)


def _tsv(source: str, text_fields: Sequence[str] | None) -> ReadResult:
    return read_table(source, "\t", text_fields)


READERS: dict[str, TextReader | BinaryReader] = {
    "txt": TextReader(_plain_text),
    "md": TextReader(_markdown),
    "csv": TextReader(_csv),
    "tsv": TextReader(_tsv),
    "jsonl": TextReader(read_json_lines),
    "html": TextReader(read_html),
    "pdf": BinaryReader(read_pdf),
    "docx": BinaryReader(read_docx),
    "hwp": BinaryReader(read_hwp),
    "hwpx": BinaryReader(read_hwpx),
}
"""Format name (the values of ``discover.FORMATS``) -> its reader."""


def is_binary(format: str) -> bool:
    """Whether files of ``format`` are parsed by a library instead of decoded as text."""
    return isinstance(_reader(format), BinaryReader)


def read_records(source: str, format: str, text_fields: Sequence[str] | None = None) -> ReadResult:
    """Records of a decoded file in a text format (txt, md, csv, tsv, jsonl, html).

    ``text_fields`` chooses the columns (CSV/TSV) or dotted key paths (JSONL) to index; by default
    they are chosen by name, then by content (see :mod:`kosearch.documents.fields`).
    """
    reader = _reader(format)
    if not isinstance(reader, TextReader):
        raise ValueError(f"{format!r} is a binary format: read it with read_file")
    return reader.read(source, text_fields)


def read_file(
    path: Path, decoded: DecodedText, format: str, text_fields: Sequence[str] | None = None
) -> ReadResult:
    """Records of one file, whichever kind its format is; ``source`` is always set.

    ``decoded`` is what :func:`~kosearch.documents.decode.read_text` (text formats) or
    :func:`hash_file` (binary formats) returned for the file. Raises :class:`UnreadableFile`.
    """
    reader = _reader(format)
    if isinstance(reader, BinaryReader):
        return reader.read(Path(path))
    result = reader.read(decoded.text, text_fields)
    if result.source is None:
        result.source = decoded.text
    return result


def hash_file(path: str | Path, max_bytes: int) -> DecodedText:
    """Size and SHA-256 of a binary document, read in chunks; no text (``text == ""``).

    Raises :class:`UnreadableFile` for a file over ``max_bytes`` (before reading it) or one that
    cannot be read, with the same reasons as :func:`~kosearch.documents.decode.read_text`.
    """
    path = Path(path)
    digest = hashlib.sha256()
    size = 0
    try:
        on_disk = path.stat().st_size
        if on_disk > max_bytes:
            raise UnreadableFile(_too_large(on_disk, max_bytes))
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:  # grew after the check
                    raise UnreadableFile(_too_large(size, max_bytes))
                digest.update(chunk)
    except OSError as error:
        raise UnreadableFile(f"cannot be read: {error.strerror or error}") from error
    if size == 0:
        raise UnreadableFile("empty file")
    return DecodedText("", BINARY_ENCODING, digest.hexdigest(), size)


def _too_large(size: int, max_bytes: int) -> str:
    mib = 1024 * 1024
    return f"file too large: {size / mib:.1f} MiB is over the {max_bytes / mib:g} MiB limit (raise max_bytes to index it)"


def _reader(format: str) -> TextReader | BinaryReader:
    try:
        return READERS[format]
    except KeyError:
        raise ValueError(f"unknown document format {format!r}") from None
