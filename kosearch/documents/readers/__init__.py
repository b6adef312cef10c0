"""From decoded text to records, the prose of a file that the splitter cuts into sentences.

One function per format family; :func:`read_records` picks by format name. Plain text and Markdown
records follow the file's lines; a table or JSON Lines record is one text field of one row, and
reports the line where its row starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, islice

from kosearch.documents.delimited import Field, parse_delimited
from kosearch.documents.fields import CONTENT_SAMPLE_SIZE, choose_text_fields
from kosearch.documents.jsonl import parse_jsonl
from kosearch.documents.markdown import read_markdown
from kosearch.documents.plaintext import read_plain_text
from kosearch.documents.records import Record, mapped_record, trimmed_span

DELIMITERS = {"csv": ",", "tsv": "\t"}


@dataclass
class ReadResult:
    records: list[Record]
    warnings: list[str] = field(default_factory=list)


def read_records(source: str, format: str, text_fields: Sequence[str] | None = None) -> ReadResult:
    """Records of a decoded file in the given format (txt, md, csv, tsv, jsonl).

    ``text_fields`` chooses the columns (CSV/TSV) or dotted key paths (JSONL) to index; by default
    they are chosen by name, then by content (see :mod:`kosearch.documents.fields`).
    """
    if format == "txt":
        return ReadResult(read_plain_text(source))
    if format == "md":
        return ReadResult(read_markdown(source))
    if format in DELIMITERS:
        return read_table(source, DELIMITERS[format], text_fields)
    if format == "jsonl":
        return read_json_lines(source, text_fields)
    raise ValueError(f"unknown document format {format!r}")


def read_table(source: str, delimiter: str, text_fields: Sequence[str] | None = None) -> ReadResult:
    """Records from the text columns of a CSV/TSV file whose first row is the header."""
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
    records: list[Record] = []
    for block, row in enumerate(chain(first_rows, rows)):
        for column in columns:
            if column < len(row.fields):
                record = _cell_record(source, row.fields[column], row.line, block)
                if record is not None:
                    records.append(record)
    return ReadResult(records, warnings)


def _cell_record(source: str, cell: Field, line: int, block: int) -> Record | None:
    if cell.char_starts is None:
        start, end = trimmed_span(source, cell.start, cell.end)
        return Record(source[start:end], line, start, end, block, lines_follow_text=False) if start < end else None
    chars = [(char, at, at + 1) for char, at in zip(cell.value, cell.char_starts)]
    return mapped_record(chars, line, block, lines_follow_text=False)


def read_json_lines(source: str, text_fields: Sequence[str] | None = None) -> ReadResult:
    """Records from the chosen string fields of every valid JSON line; bad lines become warnings."""
    warnings: list[str] = []
    lines = list(parse_jsonl(source, warnings))
    names: list[str] = []
    samples: dict[str, list[str]] = {}
    for json_line in lines:
        for item in json_line.strings:
            if item.path not in samples:
                names.append(item.path)
                samples[item.path] = []
            if len(samples[item.path]) < CONTENT_SAMPLE_SIZE:
                samples[item.path].append(item.value)
    display = {name: name or "(whole line)" for name in names}
    chosen, field_warnings = choose_text_fields(
        [display[name] for name in names], {display[name]: samples[name] for name in names}, text_fields
    )
    wanted = {name for name in names if display[name] in chosen}
    records: list[Record] = []
    for block, json_line in enumerate(lines):
        for item in json_line.strings:
            if item.path not in wanted:
                continue
            if item.char_starts is None or item.char_ends is None:
                # Literal not located: the whole line is the best place we can point at.
                chars = [(char, json_line.start, json_line.end) for char in item.value]
            else:
                chars = list(zip(item.value, item.char_starts, item.char_ends))
            record = mapped_record(chars, json_line.line, block, lines_follow_text=False)
            if record is not None:
                records.append(record)
    return ReadResult(records, warnings + field_warnings)


def _field_names(header: Sequence[str]) -> list[str]:
    """Header cells as field names; an empty or repeated name gets its column number."""
    names: list[str] = []
    for index, name in enumerate(header):
        names.append(name if name and name not in names else f"{name or 'column'}{index + 1}")
    return names
