"""JSON Lines (.jsonl): the string values of each record, with file offsets through JSON escapes.

``json`` parses a line but cannot say where a value was; a small scanner walks the line's string
literals in the same order as the parsed object's keys and values, so each value's characters
(``\\n``, ``\\uXXXX`` and all) map back to the file. Nested keys are named by their path
(``review.text``); the items of a list share the list's path. A line that is not valid JSON
becomes a warning, never an error: one bad line should not cost the rest of a large file.

Valid JSON can still defeat Python's parser: nesting deeper than the recursion limit raises
``RecursionError``, and an integer longer than ``sys.get_int_max_str_digits()`` (4,300) raises
``ValueError``. Numbers are never indexed, so they are not converted at all; a line nested too
deeply is skipped with a warning like a malformed one. Lone surrogates (``"\\ud800"``) are kept
here, in step with the offsets, and replaced when the documents stage cleans the records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class StringValue:
    """One string found in a JSON record, and where each of its characters is in the file."""

    path: str
    """Dotted key path; '' for a line that is a bare string."""
    value: str
    char_starts: list[int] | None
    """File offsets of the characters' first bytes; None if the literal could not be located."""
    char_ends: list[int] | None


@dataclass(frozen=True)
class JsonLine:
    line: int
    start: int
    """File offset of the line, the fallback location for a string whose literal was not located."""
    end: int
    strings: list[StringValue]
    scalars: dict[str, int | float | bool] = field(default_factory=dict)
    """Numbers and booleans by dotted key path (not inside lists): typed metadata of the record."""


def parse_jsonl(source: str, warnings: list[str]) -> Iterator[JsonLine]:
    """Yield every valid line's strings; append a warning for each line that is not valid JSON."""
    position = 0
    for number, line in enumerate(source.split("\n"), start=1):
        line_start = position
        position += len(line) + 1
        if not line.strip():
            continue
        try:
            parsed = json.loads(line, parse_int=_NumberLiteral, parse_float=_NumberLiteral)
            strings = _strings(parsed, line, line_start)
            scalars = _scalars(parsed)
        except json.JSONDecodeError as error:
            warnings.append(f"line {number}: not valid JSON ({error.msg}, column {error.colno}); line skipped")
            continue
        except RecursionError:
            warnings.append(f"line {number}: JSON nested too deeply to read; line skipped")
            continue
        yield JsonLine(number, line_start, line_start + len(line), strings, scalars)


class _NumberLiteral(str):
    """Stands in for a JSON number: kept as its literal, converted only when short (``_scalars``),
    since converting a 5,000-digit integer would raise ``ValueError`` (Python's int-from-string limit)."""


MAX_NUMBER_CHARS = 40


def _scalars(parsed: object, path: str = "") -> dict[str, int | float | bool]:
    found: dict[str, int | float | bool] = {}
    if isinstance(parsed, dict):
        for key, item in parsed.items():
            child = f"{path}.{key}" if path else key
            if isinstance(item, bool):
                found[child] = item
            elif isinstance(item, _NumberLiteral):
                if len(item) <= MAX_NUMBER_CHARS:
                    number = float(item)
                    found[child] = int(item) if item.lstrip("-").isdigit() else number
            elif isinstance(item, dict):
                found.update(_scalars(item, child))
    return found


def _strings(parsed: object, line: str, line_start: int) -> list[StringValue]:
    literals = _StringLiterals(line, line_start)
    found: list[StringValue] = []
    _walk(parsed, "", literals, found)
    if literals.lost:
        # Duplicate keys or other oddities broke the order: keep the values, locate them by line only.
        found = [StringValue(item.path, item.value, None, None) for item in found]
    return found


def _walk(value: object, path: str, literals: _StringLiterals, found: list[StringValue]) -> None:
    if isinstance(value, _NumberLiteral):
        return
    if isinstance(value, str):
        starts, ends = literals.next_matching(value)
        found.append(StringValue(path, value, starts, ends))
    elif isinstance(value, dict):
        for key, item in value.items():
            literals.next_matching(key)
            _walk(item, f"{path}.{key}" if path else key, literals, found)
    elif isinstance(value, list):
        for item in value:
            _walk(item, path, literals, found)


class _StringLiterals:
    """The string literals of one JSON line, decoded one at a time with per-character offsets."""

    def __init__(self, line: str, line_start: int) -> None:
        self.line = line
        self.line_start = line_start
        self.cursor = 0
        self.lost = False

    def next_matching(self, expected: str) -> tuple[list[int] | None, list[int] | None]:
        if self.lost:
            return None, None
        literal = self._next()
        if literal is None or literal[0] != expected:
            self.lost = True
            return None, None
        return literal[1], literal[2]

    def _next(self) -> tuple[str, list[int], list[int]] | None:
        line = self.line
        opening = line.find('"', self.cursor)
        if opening < 0:
            return None
        chars: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        index = opening + 1
        while index < len(line):
            char = line[index]
            if char == '"':
                self.cursor = index + 1
                return "".join(chars), starts, ends
            width = 1
            if char == "\\":
                char, width = _unescape(line, index)
            chars.append(char)
            starts.append(self.line_start + index)
            ends.append(self.line_start + index + width)
            index += width
        return None


def _unescape(line: str, index: int) -> tuple[str, int]:
    """The character an escape at ``line[index]`` stands for, and how many source characters it uses."""
    code = line[index + 1 : index + 2]
    if code != "u":
        return _ESCAPES.get(code, code), 2
    unit = int(line[index + 2 : index + 6], 16)
    if 0xD800 <= unit < 0xDC00 and line.startswith("\\u", index + 6):
        low = int(line[index + 8 : index + 12], 16)
        if 0xDC00 <= low < 0xE000:
            return chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)), 12
    return chr(unit), 6
