"""Which columns of a table (or keys of a JSON record) hold prose worth indexing.

Ids, labels, scores and dates must not be embedded as sentences. A column is chosen by its name
when the name says it holds text (``review``, ``sentence1``, ``문장``, ``Q``...); when no name
does, by its values: prose is mostly non-numeric and longer than a word or two. The user can
always override with ``text_fields``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

TEXT_FIELD_WORDS = frozenset(
    {"text", "content", "contents", "body", "review", "reviews", "sentence", "sentences", "document",
     "question", "answer", "comment", "description", "abstract", "summary", "premise", "hypothesis"}
)
"""Latin-script words that mark a text column, matched against the words of the column name."""
KOREAN_TEXT_FIELD_WORDS = ("문장", "내용", "본문", "리뷰", "질문", "답변", "요약", "댓글")
"""Korean words that mark a text column, matched anywhere in the name (Korean names are not spaced)."""
SHORT_TEXT_FIELD_NAMES = frozenset({"q", "a"})
"""Names that mark text only when they are the whole name (question/answer pairs such as ChatbotData)."""
NON_TEXT_WORDS = frozenset(
    {"id", "ids", "url", "uri", "link", "date", "time", "len", "length", "count", "num", "lang", "label",
     "type", "score", "rating", "hash", "path", "file", "filename"}
)
"""A name word that vetoes a match: ``text_id`` or ``review_date`` name metadata about the text."""

MIN_TEXT_CHARS = 10
"""Values at least this long (and not numbers) count as prose when columns are chosen by content."""
CONTENT_SAMPLE_SIZE = 500
"""How many values of each column are looked at when choosing by content."""


def is_text_field_name(name: str) -> bool:
    """Whether a column name (or the last part of a JSON key path) says it holds prose."""
    lowered = name.strip().lower()
    if lowered in SHORT_TEXT_FIELD_NAMES:
        return True
    words = [word for word in re.split(r"[^a-z]+", lowered) if word]
    if any(word in NON_TEXT_WORDS for word in words):
        return False
    return any(word in TEXT_FIELD_WORDS for word in words) or any(word in lowered for word in KOREAN_TEXT_FIELD_WORDS)


def choose_text_fields(
    names: Sequence[str],
    samples: Mapping[str, Sequence[str]],
    requested: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Pick the fields to index; returns ``(chosen names, warnings for the user)``.

    ``names`` are the available fields in file order, ``samples`` some values of each, and
    ``requested`` the user's ``text_fields`` (matched case-insensitively), which wins when given.
    """
    if requested is not None:
        return _requested_fields(names, requested)
    by_name = [name for name in names if is_text_field_name(name.rsplit(".", 1)[-1])]
    if by_name:
        return by_name, []
    by_content = [name for name in names if _prose_share(samples.get(name, ())) >= 0.5]
    if by_content:
        return by_content, []
    fallback = _longest_textual(names, samples)
    if fallback is None:
        return [], [f"no field holds text (fields: {', '.join(names) or 'none'}); pass text_fields to choose"]
    return [fallback], [
        f"no field is named or looks like prose; indexing {fallback!r}, the longest text field "
        "(pass text_fields to choose)"
    ]


def _requested_fields(names: Sequence[str], requested: Sequence[str]) -> tuple[list[str], list[str]]:
    by_lower = {name.lower(): name for name in reversed(names)}
    chosen = [by_lower[field.lower()] for field in requested if field.lower() in by_lower]
    missing = [field for field in requested if field.lower() not in by_lower]
    warnings = []
    if missing:
        warnings.append(
            f"text_fields {', '.join(map(repr, missing))} not found; the fields are: {', '.join(names) or 'none'}"
        )
    return chosen, warnings


def _is_number(value: str) -> bool:
    try:
        float(value.replace(",", ""))
    except ValueError:
        return False
    return True


def _prose_share(values: Sequence[str]) -> float:
    present = [value.strip() for value in values[:CONTENT_SAMPLE_SIZE] if value.strip()]
    if not present:
        return 0.0
    prose = sum(1 for value in present if len(value) >= MIN_TEXT_CHARS and not _is_number(value))
    return prose / len(present)


def _longest_textual(names: Sequence[str], samples: Mapping[str, Sequence[str]]) -> str | None:
    """The field whose non-numeric values are longest on average, for files with only short text."""
    best, best_length = None, 0.0
    for name in names:
        values = [v.strip() for v in samples.get(name, ())[:CONTENT_SAMPLE_SIZE] if v.strip()]
        words = [v for v in values if not _is_number(v) and any(char.isalpha() for char in v)]
        if values and len(words) >= 0.5 * len(values):
            length = sum(map(len, words)) / len(words)
            if length > best_length:
                best, best_length = name, length
    return best


def typed_value(text: str) -> int | float | str | None:
    """A metadata cell as the type it reads as: an int, a float, else the stripped text; None if empty.

    Stored that way, ``rating >= 9`` compares numbers, not strings (where "10" < "9").
    """
    value = text.strip()
    if not value:
        return None
    if re.fullmatch(r"[-+]?\d{1,18}", value):
        return int(value)
    if len(value) <= 40 and re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", value):
        number = float(value)
        if math.isfinite(number):
            return number
    return value
