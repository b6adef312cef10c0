"""CSV and TSV rows with the file offset of every field, tolerant of quotes used as text.

Python's ``csv`` module cannot say where a field lies in the file, and it takes any field that
starts with a quote mark for a quoted field, swallowing following rows when that quote was only
punctuation (KorSTS must be read with ``QUOTE_NONE`` for exactly this reason). This parser follows
RFC 4180 (quoted fields may hold delimiters, newlines and doubled quotes) but accepts a quoted
field only if its closing quote is followed by a delimiter or the end of the line; otherwise the
quote is read as ordinary text, up to the next delimiter on the same line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(slots=True)
class Field:
    """One field's value and where it sits in the file."""

    value: str
    start: int
    """File offset of the first character of the value (inside the quotes, if quoted)."""
    end: int
    char_starts: list[int] | None = None
    """Per-character file offsets, only when the value is not a plain slice (it had doubled quotes)."""


@dataclass(slots=True)
class Row:
    line: int
    """1-based line of the file where the row starts."""
    fields: list[Field]


def parse_delimited(source: str, delimiter: str) -> Iterator[Row]:
    """Yield the rows of CSV/TSV text (header included), skipping blank lines."""
    position, line, length = 0, 1, len(source)
    while position < length:
        line_end = source.find("\n", position)
        if line_end < 0:
            line_end = length
        if position == line_end or not source[position:line_end].strip():
            position, line = line_end + 1, line + 1
            continue
        if '"' not in source[position:line_end]:
            fields = _split_plain(source, position, line_end, delimiter)
            next_position, lines_used = line_end + 1, 1
        else:
            fields, next_position = _split_quoted(source, position, delimiter)
            lines_used = 1 + source.count("\n", position, next_position - 1)
        yield Row(line, fields)
        position, line = next_position, line + lines_used


def _split_plain(source: str, start: int, end: int, delimiter: str) -> list[Field]:
    """The fast path: a row with no quote marks is one line split at the delimiter."""
    fields = []
    for value in source[start:end].split(delimiter):
        fields.append(Field(value, start, start + len(value)))
        start += len(value) + len(delimiter)
    return fields


def _split_quoted(source: str, position: int, delimiter: str) -> tuple[list[Field], int]:
    """Split one row that contains a quote mark; returns its fields and the offset of the next row."""
    fields: list[Field] = []
    length = len(source)
    while True:
        quoted = _quoted_field(source, position, delimiter) if source.startswith('"', position) else None
        if quoted is not None:
            field, position = quoted
        else:
            end = position
            while end < length and source[end] != delimiter and source[end] != "\n":
                end += 1
            field = Field(source[position:end], position, end)
            position = end
        fields.append(field)
        if position >= length:
            return fields, length
        if source[position] == "\n":
            return fields, position + 1
        position += len(delimiter)


def _quoted_field(source: str, position: int, delimiter: str) -> tuple[Field, int] | None:
    """Parse a quoted field at ``position``; None if the quotes turn out to be ordinary text."""
    start = position + 1
    cursor = start
    pieces: list[str] = []
    starts: list[int] = []
    while True:
        quote = source.find('"', cursor)
        if quote < 0:
            return None  # never closed: the opening quote was punctuation
        pieces.append(source[cursor:quote])
        starts.extend(range(cursor, quote))
        if source.startswith('"', quote + 1):  # a doubled quote stands for one quote character
            pieces.append('"')
            starts.append(quote)
            cursor = quote + 2
            continue
        after = quote + 1
        if after < len(source) and source[after] != "\n" and not source.startswith(delimiter, after):
            return None
        value = "".join(pieces)
        plain = len(value) == quote - start
        return Field(value, start, quote, None if plain else starts), after
