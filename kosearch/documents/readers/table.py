"""CSV and TSV (.csv, .tsv): the text columns of every row; each cell is one record at its row's line."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, islice

from kosearch.documents.delimited import Field, parse_delimited
from kosearch.documents.fields import CONTENT_SAMPLE_SIZE, choose_text_fields, typed_value
from kosearch.documents.readers.base import ReadResult
from kosearch.documents.records import Record, mapped_record, trimmed_span


def read_table(source: str, delimiter: str, text_fields: Sequence[str] | None = None) -> ReadResult:
    """Records from the text columns of a CSV/TSV file whose first row is the header.

    The other columns of a row become the typed ``fields`` of its records (numbers as numbers).
    Rows with fewer fields than a text column needs, or more than the header names, are counted in
    a warning: their text would otherwise be lost without a word (found by fuzzing).
    """
    rows = parse_delimited(source, delimiter)
    header = next(rows, None)
    if header is None:
        return ReadResult([])
    names = _field_names([cell.value.strip() for cell in header.fields])
    # Columns are chosen from the first rows; the rest stream past without being kept.
    first_rows = list(islice(rows, CONTENT_SAMPLE_SIZE))
    samples = {
        name: [row.fields[index].value for row in first_rows if index < len(row.fields)]
        for index, name in enumerate(names)
    }
    chosen, warnings = choose_text_fields(names, samples, text_fields)
    columns = [names.index(name) for name in chosen]
    others = [(index, name) for index, name in enumerate(names) if index not in columns]
    records: list[Record] = []
    short = _RaggedRows()
    long = _RaggedRows()
    for block, row in enumerate(chain(first_rows, rows)):
        if columns and len(row.fields) <= max(columns):
            short.add(row.line)
        elif len(row.fields) > len(names):
            long.add(row.line)
        values = {name: typed_value(row.fields[index].value) for index, name in others if index < len(row.fields)}
        fields = {name: value for name, value in values.items() if value is not None} or None
        for column in columns:
            if column < len(row.fields):
                record = _cell_record(source, row.fields[column], row.line, block)
                if record is not None:
                    record.fields = fields
                    records.append(record)
    if short.count:
        warnings.append(
            f"{short.describe()} fewer fields than the header, so text of {', '.join(map(repr, chosen))} "
            "is missing there; check the delimiter and the quoting"
        )
    if long.count:
        warnings.append(
            f"{long.describe()} more fields than the header; the extra fields are not indexed "
            "(an unquoted delimiter inside a text?)"
        )
    return ReadResult(records, warnings)


class _RaggedRows:
    """Rows whose field count does not fit the header: text that would otherwise vanish unreported."""

    def __init__(self) -> None:
        self.count = 0
        self.first_line = 0

    def add(self, line: int) -> None:
        self.count += 1
        self.first_line = self.first_line or line

    def describe(self) -> str:
        rows = "1 row (line" if self.count == 1 else f"{self.count} rows (first at line"
        return f"{rows} {self.first_line}) {'has' if self.count == 1 else 'have'}"


def _cell_record(source: str, cell: Field, line: int, block: int) -> Record | None:
    if cell.char_starts is None:
        start, end = trimmed_span(source, cell.start, cell.end)
        return Record(source[start:end], line, start, end, block, lines_follow_text=False) if start < end else None
    chars = [(char, at, at + 1) for char, at in zip(cell.value, cell.char_starts)]
    return mapped_record(chars, line, block, lines_follow_text=False)


def _field_names(header: Sequence[str]) -> list[str]:
    """Header cells as field names; an empty or repeated name gets its column number."""
    names: list[str] = []
    for index, name in enumerate(header):
        names.append(name if name and name not in names else f"{name or 'column'}{index + 1}")
    return names
