"""Natural-language-inference pairs (KorNLI TSV, KLUE-NLI JSON) and the triples that supervised SimCSE trains on.

NLI data is the cheapest strong supervision for sentence embeddings: a premise with an entailed hypothesis is a
positive pair and the contradicted hypothesis of the same premise is a hard negative (Gao et al., 2021, SimCSE).
The two Korean sources ship in different containers, so :func:`read_nli` accepts both and returns one record type.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kosearch.errors import DataFormatError

NLI_LABELS = ("entailment", "neutral", "contradiction")
"""The three gold labels every supported format uses, spelled as in KorNLI and KLUE-NLI."""

_UNLABELLED = "-"
"""SNLI/MNLI mark pairs whose annotators did not agree with '-': they carry no gold label, so they are skipped."""

# Column names accepted for each field: KorNLI's own header first, then the generic names other dumps use.
_TSV_COLUMNS = {
    "premise": ("sentence1", "premise"),
    "hypothesis": ("sentence2", "hypothesis"),
    "label": ("gold_label", "label"),
}


@dataclass(frozen=True)
class NLIExample:
    """One premise/hypothesis pair with its gold label."""

    premise: str
    hypothesis: str
    label: str
    """One of :data:`NLI_LABELS`."""
    line: int
    """1-based line of the file where the record starts, so errors and audits can point at it."""


@dataclass(frozen=True)
class NLITriple:
    """(anchor, positive, hard negative): the input MultipleNegativesRankingLoss takes for supervised SimCSE."""

    anchor: str
    positive: str
    negative: str


def read_nli(path: str | Path) -> list[NLIExample]:
    """Read an NLI file, choosing the parser from its name.

    ``.tsv`` / ``.tsv.gz``: a header row naming ``sentence1 sentence2 gold_label`` (KorNLI) or
    ``premise hypothesis label``. ``.json``: a list of objects with ``premise``, ``hypothesis``, ``gold_label``
    (KLUE-NLI). ``.jsonl``: one such object per line. Pairs labelled ``-`` (no annotator consensus) are skipped.

    Raises:
        DataFormatError: naming the file, the line and what is wrong, for anything that is not a usable pair.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such NLI file. Pass a KorNLI .tsv or a KLUE-NLI .json file.")
    name = path.name.lower()
    if name.endswith((".tsv", ".tsv.gz")):
        records = _tsv_records(path)
    elif name.endswith(".jsonl"):
        records = _jsonl_records(path)
    elif name.endswith(".json"):
        records = _json_records(path)
    else:
        raise DataFormatError(
            f"{path}: cannot tell the NLI format from the file name; use .tsv (KorNLI), .json (KLUE-NLI) or .jsonl."
        )
    examples = [example for example in (_to_example(path, line, record) for line, record in records) if example]
    if not examples:
        raise DataFormatError(f"{path}: holds no labelled NLI pairs.")
    return examples


def nli_triples(examples: Iterable[NLIExample]) -> list[NLITriple]:
    """Turn labelled pairs into (premise, entailed hypothesis, contradicted hypothesis) triples.

    Hypotheses are grouped by premise in file order. Every entailed hypothesis yields one triple; it is paired with
    the premise's contradictions in turn, so a premise with two entailments and one contradiction reuses that
    contradiction rather than dropping an entailment. Premises lacking either kind give no triple: without a
    contradiction there is no hard negative, and in-batch negatives alone are what the unsupervised recipe is for.
    Neutral hypotheses are not used, as in SimCSE.
    """
    entailed: dict[str, list[str]] = {}
    contradicted: dict[str, list[str]] = {}
    for example in examples:
        if example.label == "entailment":
            entailed.setdefault(example.premise, []).append(example.hypothesis)
        elif example.label == "contradiction":
            contradicted.setdefault(example.premise, []).append(example.hypothesis)
    triples = []
    for premise, positives in entailed.items():
        negatives = contradicted.get(premise)
        if not negatives:
            continue
        for index, positive in enumerate(positives):
            triples.append(NLITriple(premise, positive, negatives[index % len(negatives)]))
    return triples


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _tsv_records(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    # QUOTE_NONE: Korean NLI sentences contain bare quote marks that csv's default dialect would swallow.
    with _open_text(path) as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if header is None:
            raise DataFormatError(f"{path}: the file is empty; expected a header 'sentence1 sentence2 gold_label'.")
        header = [column.strip().lstrip("\ufeff") for column in header]
        positions = {}
        for field, candidates in _TSV_COLUMNS.items():
            found = next((header.index(name) for name in candidates if name in header), None)
            if found is None:
                raise DataFormatError(
                    f"{path}:1: the header {header} has no {' or '.join(repr(name) for name in candidates)} column; "
                    "expected KorNLI's 'sentence1 sentence2 gold_label'."
                )
            positions[field] = found
        for row in rows:
            line = rows.line_num
            if not row or row == [""]:
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    f"{path}:{line}: expected {len(header)} tab-separated fields ({' '.join(header)}), "
                    f"found {len(row)}."
                )
            yield line, {field: row[position] for field, position in positions.items()}


def _json_records(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    # Decode element by element (rather than json.loads) to know the line each record starts on.
    position = _skip_space(text, 0)
    if position >= len(text) or text[position] != "[":
        raise DataFormatError(f"{path}:{_line_of(text, position)}: expected a JSON list of NLI records.")
    position = _skip_space(text, position + 1)
    while position < len(text) and text[position] != "]":
        try:
            record, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}:{error.lineno}: invalid JSON ({error.msg}).") from None
        yield _line_of(text, position), record
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
        elif position < len(text) and text[position] != "]":
            raise DataFormatError(f"{path}:{_line_of(text, position)}: expected ',' or ']' between records.")
    if position >= len(text):
        raise DataFormatError(f"{path}:{_line_of(text, position)}: the JSON list is not closed with ']'.")


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield line, json.loads(raw)
            except json.JSONDecodeError as error:
                raise DataFormatError(f"{path}:{line}: invalid JSON ({error.msg}).") from None


def _to_example(path: Path, line: int, record: object) -> NLIExample | None:
    if not isinstance(record, dict):
        raise DataFormatError(f"{path}:{line}: expected an object with premise, hypothesis and gold_label.")
    label_key = "gold_label" if "gold_label" in record else "label"
    values = {}
    for key in ("premise", "hypothesis", label_key):
        value = record.get(key)
        if not isinstance(value, str):
            raise DataFormatError(
                f"{path}:{line}: the record has no text field {key!r} (found keys: {', '.join(map(str, record))})."
            )
        values[key] = value.strip()
    label = values[label_key].lower()
    if label == _UNLABELLED:
        return None
    if label not in NLI_LABELS:
        raise DataFormatError(
            f"{path}:{line}: unknown label {values[label_key]!r}; expected one of {', '.join(NLI_LABELS)} (or '-')."
        )
    for key in ("premise", "hypothesis"):
        if not values[key]:
            raise DataFormatError(f"{path}:{line}: the {key} is empty.")
    return NLIExample(values["premise"], values["hypothesis"], label, line)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1
