"""kosearch.data.sentences: unlabelled sentences for TSDAE and SimCSE."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kosearch.data.sentences import read_sentences
from kosearch.errors import DataFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "train"


def test_text_file_one_sentence_per_line_without_blanks() -> None:
    lines = (FIXTURES / "sentences.txt").read_text(encoding="utf-8").splitlines()
    assert read_sentences(FIXTURES / "sentences.txt") == [line.strip() for line in lines if line.strip()]


def test_table_column_limit_and_gzip(tmp_path: Path) -> None:
    source = FIXTURES / "reviews.tsv"
    reviews = [line.split("\t")[3] for line in source.read_text(encoding="utf-8").splitlines()[1:]]
    assert read_sentences(source, column="review") == reviews
    assert read_sentences(source, column="review", limit=3) == reviews[:3]
    packed = tmp_path / "reviews.tsv.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        handle.write(source.read_text(encoding="utf-8"))
    assert read_sentences(packed, column="review", limit=4) == reviews[:4]


def test_duplicates_are_dropped_unless_asked_to_keep(tmp_path: Path) -> None:
    path = tmp_path / "dupes.txt"
    path.write_text("가\n나\n가\n\n다\n", encoding="utf-8")
    assert read_sentences(path) == ["가", "나", "다"]
    assert read_sentences(path, deduplicate=False) == ["가", "나", "가", "다"]
    assert read_sentences(path, limit=2) == ["가", "나"]


def test_errors_say_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="name the text column"):
        read_sentences(FIXTURES / "reviews.tsv")
    with pytest.raises(DataFormatError, match="no column 'text'"):
        read_sentences(FIXTURES / "reviews.tsv", column="text")
    short = tmp_path / "short.tsv"
    short.write_text("id\treview\n1\tok\n2\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"short\.tsv:3: the row has 1 fields"):
        read_sentences(short, column="review")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no non-empty sentences"):
        read_sentences(empty)
    with pytest.raises(DataFormatError, match="no such sentences file"):
        read_sentences(tmp_path / "missing.txt")
