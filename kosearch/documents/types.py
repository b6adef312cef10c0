"""Plain records that flow out of the documents stage into the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kosearch.types import SkippedFile  # re-exported: readers and callers import it from here


@dataclass(frozen=True)
class Sentence:
    """One sentence and where it came from, so a hit can be shown in its file."""

    text: str
    line: int
    """1-based line of the file where the sentence starts (for CSV/TSV/JSONL: the record's line; for
    PDF: the line on its page; for DOCX/HWP/HWPX: the number of its paragraph or table cell)."""
    start: int
    """Character offset of the sentence's first character in the decoded file text (for a binary
    format: in the text its reader extracted)."""
    end: int
    """Character offset one past the sentence's last character."""
    page: int | None = None
    """1-based page of a PDF; None for formats without pages."""
    fields: dict | None = field(default=None, hash=False)
    """Typed metadata (CSV/TSV/JSONL columns not indexed as text, ints and floats where they parse)."""


@dataclass
class Document:
    """A decoded file, split into sentences."""

    path: Path
    """Absolute path of the file."""
    relpath: str
    """Path relative to the folder being indexed, with '/' separators: the stable key in the index.
    Escaped by :func:`kosearch.textclean.escape_path` (backslashes doubled, bytes that are not UTF-8
    and control characters as ``\\xHH``), so any file name can be stored and printed;
    ``unescape_path`` gives back the name to open."""
    encoding: str
    """The codec the text was decoded with; ``"binary"`` for pdf, docx, hwp, hwpx."""
    format: str
    """One of txt, md, csv, tsv, jsonl, html, pdf, docx, hwp, hwpx."""
    sha256: str
    """Hash of the raw bytes: lets a re-run skip files that did not change."""
    size: int
    sentences: list[Sentence] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Problems inside a file that was still indexed (a malformed JSONL line, a guessed CSV column):
    worth telling the user, not worth skipping the file for."""
    unchanged: bool = False
    """True when the caller said this version (relpath, sha256) is indexed already: the file was
    hashed but not split, and ``sentences`` is empty."""
