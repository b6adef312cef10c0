"""The unit a reader hands to the splitter: one stretch of prose and how it maps back to the file.

A reader may change text before it is split (markdown markup removed, CSV quotes un-doubled, JSON
escapes decoded), yet every sentence must still point at its exact place in the file. A record
therefore carries, when its text is not a plain slice of the file, the file offset of each of its
characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class Record:
    """Prose to split, with the information needed to place each sentence in the decoded file."""

    text: str
    line: int
    """1-based line of the file where the record's text starts."""
    start: int
    """File offset of ``text[0]``."""
    end: int
    """File offset one past the record's last character."""
    block: int = 0
    """Records with the same block (the lines of one paragraph) may be joined into one passage."""
    char_starts: Sequence[int] | None = None
    """File offset of every character of ``text``; None when ``text == file_text[start:end]``."""
    char_ends: Sequence[int] | None = None
    """File offset one past every character (differs from the start + 1 for escapes like ``\\u00e9``)."""
    lines_follow_text: bool = True
    """True when a newline in ``text`` is a newline of the file (plain text, markdown); False for a
    CSV/JSONL field, whose sentences all report the line where their record starts."""
    page: int | None = None
    """1-based page of a paged format (PDF); None where the format has no pages."""
    fields: dict | None = None
    """Typed metadata of the row or line the record comes from (CSV/TSV/JSONL columns not indexed as text)."""

    @property
    def verbatim(self) -> bool:
        """Whether ``text`` is a slice of the decoded file, character for character."""
        return self.char_starts is None

    def span(self, begin: int, stop: int) -> tuple[int, int]:
        """File offsets of ``text[begin:stop]`` (``stop > begin``)."""
        if self.char_starts is None:
            return self.start + begin, self.start + stop
        assert self.char_ends is not None
        return self.char_starts[begin], self.char_ends[stop - 1]

    def line_at(self, index: int) -> int:
        """1-based file line of ``text[index]``."""
        if not self.lines_follow_text:
            return self.line
        return self.line + self.text.count("\n", 0, index)


def verbatim_record(source: str, start: int, end: int, line: int, block: int = 0) -> Record:
    """A record that is exactly ``source[start:end]``."""
    return Record(source[start:end], line, start, end, block)


def mapped_record(
    chars: Sequence[tuple[str, int, int]], line: int, block: int = 0, lines_follow_text: bool = True
) -> Record | None:
    """A record from ``(char, file_start, file_end)`` triples; None if nothing but whitespace is left.

    Leading and trailing whitespace is dropped here so every reader trims the same way.
    """
    first, last = 0, len(chars)
    while first < last and chars[first][0].isspace():
        first += 1
    while last > first and chars[last - 1][0].isspace():
        last -= 1
    if first == last:
        return None
    kept = chars[first:last]
    starts = [start for _, start, _ in kept]
    ends = [end for _, _, end in kept]
    text = "".join(char for char, _, _ in kept)
    return Record(text, line, starts[0], ends[-1], block, starts, ends, lines_follow_text)


def trimmed_span(source: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` narrowed past surrounding whitespace; ``start == end`` if only whitespace."""
    while start < end and source[start].isspace():
        start += 1
    while end > start and source[end - 1].isspace():
        end -= 1
    return start, end
