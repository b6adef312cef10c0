"""The text a binary reader extracts from a document, and records that point into it.

A PDF, DOCX or HWP file has no text of its own for offsets to point into, so its reader builds
one: it appends every paragraph (body paragraphs and table cells, in reading order) or every page
(PDF) to an :class:`ExtractedText`, which hands out the records. The locations a hit shows come
from here:

- a paragraph is one line of the extracted text, and ``line`` is its number (1-based, counting the
  paragraphs that hold text), since these formats have no lines of their own;
- a page is cut the way a plain-text file is (PDF text comes out as layout lines, so hard-wrapped
  lines are joined, see :mod:`kosearch.documents.plaintext`); ``line`` is the line on the page and
  ``page`` the 1-based page number.

Control characters that libraries pass through (NUL padding, PDFium's U+FFFE markers, vertical tabs
for line breaks) are removed or made newlines first, so they never reach the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from kosearch.documents.decode import UnreadableFile, normalize_newlines
from kosearch.documents.plaintext import read_plain_text
from kosearch.documents.readers.base import ReadResult
from kosearch.documents.records import Record

_LINE_BREAKS = re.compile("[\x0b\x0c\u2028\u2029]")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
PAGE_SEPARATOR = "\f"
PARAGRAPH_SEPARATOR = "\n"


def clean_text(text: str) -> str:
    """Newlines normalised, line and page break characters made newlines, other controls removed."""
    return _CONTROLS.sub("", _LINE_BREAKS.sub("\n", normalize_newlines(text)))


class ExtractedText:
    """Paragraphs or pages appended in reading order, and the records of their text."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._blocks = 0
        self.records: list[Record] = []
        self.paragraphs = 0

    def add_paragraph(self, text: str) -> None:
        """One paragraph or table cell; one without any letter or digit is left out."""
        text = clean_text(text).strip()
        if not any(char.isalnum() for char in text):
            return
        self.paragraphs += 1
        start = self._append(text, PARAGRAPH_SEPARATOR)
        record = Record(text, self.paragraphs, start, start + len(text), self._blocks, lines_follow_text=False)
        self._blocks += 1
        self.records.append(record)

    def add_page(self, text: str, page: int) -> bool:
        """One page's text layer; returns False (and adds nothing) when it holds no text."""
        text = clean_text(text)
        if not text.strip():
            return False
        start = self._append(text, PAGE_SEPARATOR)
        first_block = self._blocks
        for record in read_plain_text(text):
            block = first_block + record.block
            self.records.append(
                replace(record, start=record.start + start, end=record.end + start, block=block, page=page)
            )
            self._blocks = max(self._blocks, block + 1)
        return True

    @property
    def source(self) -> str:
        """The whole extracted text: what every record's offsets refer to."""
        return "".join(self._parts)

    def result(self, empty_reason: str, warnings: Iterable[str] = ()) -> ReadResult:
        """The records, or :class:`UnreadableFile` with ``empty_reason`` when there is no text at all."""
        if not self.records:
            raise UnreadableFile(empty_reason)
        return ReadResult(self.records, list(warnings), self.source)

    def _append(self, text: str, separator: str) -> int:
        if self._parts:
            self._parts.append(separator)
            self._length += len(separator)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        return start
