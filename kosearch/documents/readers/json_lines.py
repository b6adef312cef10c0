"""JSON Lines (.jsonl): the chosen string fields of every valid line; a bad line is a warning."""

from __future__ import annotations

from collections.abc import Sequence

from kosearch.documents.fields import CONTENT_SAMPLE_SIZE, choose_text_fields, typed_value
from kosearch.documents.jsonl import parse_jsonl
from kosearch.documents.readers.base import ReadResult
from kosearch.documents.records import Record, mapped_record


def read_json_lines(source: str, text_fields: Sequence[str] | None = None) -> ReadResult:
    """Records from the chosen string fields of every valid JSON line; bad lines become warnings.

    The line's other strings (typed: numbers as numbers), its numbers and booleans become the
    ``fields`` of its records.
    """
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
        metadata: dict = {}
        for item in json_line.strings:
            if item.path not in wanted and item.path and item.path not in metadata:
                value = typed_value(item.value)
                if value is not None:
                    metadata[item.path] = value
        metadata.update(json_line.scalars)
        fields = metadata or None
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
                record.fields = fields
                records.append(record)
    return ReadResult(records, warnings + field_warnings)
