"""Read sentence-similarity (STS) pairs from the two Korean formats in use: KorSTS TSV and KLUE-STS JSON.

Both come down to (sentence1, sentence2, score in 0..5); everything else in the files (genre, guid,
source, binary labels) is dropped. A malformed record stops the read with a
:class:`~kosearch.errors.DataFormatError` naming the file, the line and the reason, because a silently
skipped pair changes a correlation without anyone noticing.

Example::

    from kosearch.data.sts import read_sts
    pairs = read_sts("../shared/data/korsts/sts-test.tsv")
    pairs[0].sentence1, pairs[0].sentence2, pairs[0].score   # ('한 소녀가 ...', '한 소녀가 ...', 2.5)
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosearch.errors import DataFormatError, KosearchError

MIN_SCORE = 0.0
MAX_SCORE = 5.0
_JSON_SUFFIXES = {".json", ".jsonl"}
_TSV_SUFFIXES = {".tsv", ".txt"}
_REQUIRED_COLUMNS = ("sentence1", "sentence2", "score")
# KLUE-STS keeps its 0-5 score under labels; "real-label" is the unrounded mean of the annotators,
# "label" the same rounded to one decimal. Flat "score" covers KorSTS exported to JSON(L).
_JSON_SCORE_KEYS = (("labels", "real-label"), ("labels", "label"), ("score",), ("label",))


@dataclass(frozen=True)
class STSExample:
    """One gold sentence pair."""

    sentence1: str
    sentence2: str
    score: float
    """Gold similarity on the 0..5 scale of KorSTS and KLUE-STS."""
    line: int
    """1-based line of the file where the record starts, to point back at it."""


def distinct_sentences(examples: Iterable[STSExample]) -> list[str]:
    """Every sentence of ``examples`` once, in order of first appearance: STS files repeat sentences across pairs,
    and what is encoded is each sentence once."""
    return list(dict.fromkeys(text for example in examples for text in (example.sentence1, example.sentence2)))


def read_sts(path: str | Path) -> list[STSExample]:
    """Read every pair of a KorSTS-style TSV or a KLUE-STS-style JSON / JSON Lines file.

    The format is chosen by extension (``.tsv``/``.txt`` vs ``.json``/``.jsonl``) and, for any other
    extension, by the file's first character (``[`` or ``{`` means JSON).
    """
    path = Path(path)
    if not path.is_file():
        raise KosearchError(f"STS file {path} does not exist; pass a KorSTS .tsv or a KLUE-STS .json file.")
    text = path.read_text(encoding="utf-8-sig")
    if _looks_like_json(path, text):
        examples = list(_read_json(path, text))
    else:
        examples = list(_read_tsv(path, text))
    if not examples:
        raise DataFormatError(f"{path}: holds no sentence pairs.")
    return examples


def _looks_like_json(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in _JSON_SUFFIXES:
        return True
    if suffix in _TSV_SUFFIXES:
        return False
    return text.lstrip()[:1] in ("[", "{")


def _read_tsv(path: Path, text: str) -> Iterator[STSExample]:
    # QUOTE_NONE: KorSTS sentences contain bare quote marks that the csv default would treat as quoting.
    rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(rows, None)
    if header is None:
        raise DataFormatError(f"{path}: the file is empty.")
    columns = [name.strip() for name in header]
    missing = [name for name in _REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise DataFormatError(
            f"{path}: line 1: the header must name the columns {', '.join(_REQUIRED_COLUMNS)} "
            f"(KorSTS: genre filename year id score sentence1 sentence2); missing {', '.join(missing)}."
        )
    s1_at, s2_at, score_at = (columns.index(name) for name in _REQUIRED_COLUMNS)
    for row in rows:
        line = rows.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(columns):
            raise DataFormatError(
                f"{path}: line {line}: expected {len(columns)} tab-separated columns, found {len(row)}."
            )
        yield _example(path, line, row[s1_at], row[s2_at], row[score_at])


def _read_json(path: Path, text: str) -> Iterator[STSExample]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        records = _json_array_records(path, text)
    else:
        records = _json_lines_records(path, text)
    for line, record in records:
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}: line {line}: expected a JSON object, found {type(record).__name__}.")
        for key in ("sentence1", "sentence2"):
            if not isinstance(record.get(key), str):
                raise DataFormatError(f"{path}: line {line}: the record has no text field '{key}'.")
        score = _json_score(record)
        if score is None:
            raise DataFormatError(
                f"{path}: line {line}: the record has no score "
                "(expected labels.real-label as in KLUE-STS, or a top-level score)."
            )
        yield _example(path, line, record["sentence1"], record["sentence2"], score)


def _json_array_records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Yield (start line, record) for each element of a top-level JSON array.

    Decoding element by element, rather than ``json.loads`` on the whole file, is what lets an error
    name the line of the record at fault.
    """
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        position = _skip_whitespace(text, position)
        if position < len(text) and text[position] == "]":
            return
        line = text.count("\n", 0, position) + 1
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}: line {error.lineno}: invalid JSON ({error.msg}).") from None
        yield line, record
        position = _skip_whitespace(text, position)
        if position < len(text) and text[position] == ",":
            position += 1
        elif position < len(text) and text[position] == "]":
            return
        else:
            line = text.count("\n", 0, position) + 1
            raise DataFormatError(f"{path}: line {line}: invalid JSON (expected ',' or ']' between records).")


def _json_lines_records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    # split on "\n" only: str.splitlines also breaks at U+2028 and friends, which would shift line numbers.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield line, json.loads(raw)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}: line {line}: invalid JSON ({error.msg}).") from None


def _skip_whitespace(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _json_score(record: dict[str, Any]) -> Any:
    for keys in _JSON_SCORE_KEYS:
        value: Any = record
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def _example(path: Path, line: int, sentence1: str, sentence2: str, raw_score: Any) -> STSExample:
    if isinstance(raw_score, bool):
        raise DataFormatError(f"{path}: line {line}: score {raw_score!r} is not a number.")
    try:
        score = float(raw_score)
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: line {line}: score {raw_score!r} is not a number.") from None
    if math.isnan(score) or not MIN_SCORE <= score <= MAX_SCORE:
        raise DataFormatError(
            f"{path}: line {line}: score {raw_score!r} is outside {MIN_SCORE:g}..{MAX_SCORE:g} "
            "(STS gold scores are on the 0-5 scale)."
        )
    for name, sentence in (("sentence1", sentence1), ("sentence2", sentence2)):
        if not sentence.strip():
            raise DataFormatError(f"{path}: line {line}: {name} is empty.")
    return STSExample(sentence1=sentence1, sentence2=sentence2, score=score, line=line)
