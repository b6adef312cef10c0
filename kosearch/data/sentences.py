"""Unlabelled sentences for the unsupervised recipes (TSDAE, SimCSE): plain text or one column of a TSV/CSV.

Domain adaptation needs raw in-domain text and nothing else, so this reader only has to find the text, drop blanks
and exact duplicates (a duplicate in a SimCSE batch is a false negative) and stop after ``limit`` sentences.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path

from kosearch.errors import DataFormatError

_TABLE_SUFFIXES = {".tsv": "\t", ".csv": ","}


def read_sentences(
    path: str | Path,
    *,
    column: str | None = None,
    limit: int | None = None,
    deduplicate: bool = True,
) -> list[str]:
    """Read sentences from ``path``: ``.txt`` (one per line) or ``.tsv``/``.csv`` (optionally ``.gz``) with a header.

    Args:
        column: the header name of the text column; required for a table with more than one column.
        limit: stop after this many sentences (after blanks and duplicates are dropped), taken in file order so
            that a run is reproducible and the rest of the file stays unseen for held-out evaluation.
        deduplicate: drop exact repeats of a sentence already read.

    Raises:
        DataFormatError: the file is missing, the column is not in the header, a row is too short, or nothing is left.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such sentences file. Pass a .txt file (one sentence a line) or a .tsv/.csv.")
    if limit is not None and limit < 1:
        raise DataFormatError(f"limit must be a positive number of sentences, got {limit}.")
    delimiter = _TABLE_SUFFIXES.get(_suffix(path))
    if delimiter is None and column is not None:
        raise DataFormatError(f"{path}: --column applies to .tsv/.csv files; a .txt file holds one sentence per line.")
    texts = _table_texts(path, delimiter, column) if delimiter else _line_texts(path)
    sentences: list[str] = []
    seen: set[str] = set()
    for text in texts:
        text = text.strip()
        if not text or (deduplicate and text in seen):
            continue
        seen.add(text)
        sentences.append(text)
        if limit is not None and len(sentences) >= limit:
            break
    if not sentences:
        raise DataFormatError(f"{path}: holds no non-empty sentences.")
    return sentences


def _suffix(path: Path) -> str:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _line_texts(path: Path) -> Iterator[str]:
    with _open_text(path) as handle:
        yield from handle


def _table_texts(path: Path, delimiter: str, column: str | None) -> Iterator[str]:
    # QUOTE_NONE for TSV: reviews hold bare quote marks; CSV keeps its quoting, which is how CSV escapes commas.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with _open_text(path) as handle:
        rows = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        header = [name.strip().lstrip("\ufeff") for name in next(rows, [])]
        if not header:
            raise DataFormatError(f"{path}: the file is empty; expected a header row naming the text column.")
        if column is None:
            if len(header) != 1:
                raise DataFormatError(
                    f"{path}: the table has columns {', '.join(header)}; name the text column (--column)."
                )
            column = header[0]
        if column not in header:
            raise DataFormatError(f"{path}:1: no column {column!r} in the header ({', '.join(header)}).")
        position = header.index(column)
        for row in rows:
            if not row:
                continue
            if len(row) <= position:
                raise DataFormatError(
                    f"{path}:{rows.line_num}: the row has {len(row)} fields, so no {column!r} (field {position + 1})."
                )
            yield row[position]
