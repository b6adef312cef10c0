"""kosearch.data.sts: KorSTS TSV and KLUE-STS JSON reading, and the errors malformed files raise."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kosearch.data.sts import STSExample, read_sts
from kosearch.errors import DataFormatError, KosearchError

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
KORSTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "korsts"
HEADER = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_korsts_tsv_fixture_with_quotes_kept():
    examples = read_sts(FIXTURES / "sts_small.tsv")
    # Compare with an independent reading of the same file: the csv module, QUOTE_NONE, columns by position.
    with open(FIXTURES / "sts_small.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    assert [(e.sentence1, e.sentence2, e.score) for e in examples] == [(r[5], r[6], float(r[4])) for r in rows]
    assert [e.line for e in examples] == list(range(2, len(rows) + 2))
    assert any('"' in e.sentence1 for e in examples), "the fixture must exercise bare quote marks"


def test_reads_klue_sts_json_real_label_and_record_lines():
    examples = read_sts(FIXTURES / "klue_sts_small.json")
    records = json.loads((FIXTURES / "klue_sts_small.json").read_text(encoding="utf-8"))
    assert [(e.sentence1, e.sentence2, e.score) for e in examples] == [
        (r["sentence1"], r["sentence2"], r["labels"]["real-label"]) for r in records
    ]
    lines = (FIXTURES / "klue_sts_small.json").read_text(encoding="utf-8").split("\n")
    # Each example's line is where its record's "{" opens.
    assert all(lines[e.line - 1].strip() == "{" for e in examples)
    assert len({e.line for e in examples}) == len(examples)


def test_reads_json_lines_with_flat_score(tmp_path):
    records = [{"sentence1": "가", "sentence2": "나", "score": 1.5}, {"sentence1": "다", "sentence2": "라", "score": 4}]
    path = _write(tmp_path, "pairs.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    assert read_sts(path) == [STSExample("가", "나", 1.5, 1), STSExample("다", "라", 4.0, 2)]


def test_format_detected_from_content_for_unknown_extension(tmp_path):
    path = _write(tmp_path, "pairs.data", json.dumps([{"sentence1": "가", "sentence2": "나", "labels": {"real-label": 2}}]))
    assert read_sts(path)[0].score == 2.0
    path = _write(tmp_path, "pairs2.data", HEADER + "g\tf\ty\t1\t3.5\t가\t나\n")
    assert read_sts(path)[0].score == 3.5


def test_column_order_follows_header(tmp_path):
    path = _write(tmp_path, "reordered.tsv", "sentence2\tscore\tsentence1\n둘\t2.0\t하나\n")
    assert read_sts(path) == [STSExample("하나", "둘", 2.0, 2)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("g\tf\ty\t1\t2.0", "line 3: expected 7 tab-separated columns, found 5"),
        ("g\tf\ty\t1\tabc\t가\t나", "line 3: score 'abc' is not a number"),
        ("g\tf\ty\t1\t5.5\t가\t나", "line 3: score '5.5' is outside 0..5"),
        ("g\tf\ty\t1\t-0.1\t가\t나", "line 3: score '-0.1' is outside 0..5"),
        ("g\tf\ty\t1\tnan\t가\t나", "line 3: score 'nan' is outside 0..5"),
        ("g\tf\ty\t1\t2.0\t \t나", "line 3: sentence1 is empty"),
    ],
)
def test_malformed_tsv_rows_name_file_line_and_reason(tmp_path, row, message):
    path = _write(tmp_path, "bad.tsv", HEADER + "g\tf\ty\t0\t1.0\t가\t나\n" + row + "\n")
    with pytest.raises(DataFormatError) as caught:
        read_sts(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_header_without_required_columns_is_rejected(tmp_path):
    path = _write(tmp_path, "noheader.tsv", "g\tf\ty\t0\t1.0\t가\t나\n")
    with pytest.raises(DataFormatError, match="line 1: the header must name the columns"):
        read_sts(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[\n  {"sentence1": "가", "sentence2": "나", "labels": {"real-label": 1}},\n  {"sentence1": "가"}\n]',
         "line 3: the record has no text field 'sentence2'"),
        ('[\n  {"sentence1": "가", "sentence2": "나", "labels": {}}\n]', "line 2: the record has no score"),
        ('[\n  {"sentence1": "가", "sentence2": "나", "labels": {"real-label": "x"}}\n]', "line 2: score 'x' is not a number"),
        ('[\n  {"sentence1": "가", "sentence2": "나", "score": 1},\n  {"sentence1": "가",,}\n]', "line 3: invalid JSON"),
        ('[\n  {"sentence1": "가", "sentence2": "나", "score": 1}\n  {"sentence1": "가"}\n]', "line 3: invalid JSON"),
        ('[\n  "just a string"\n]', "line 2: expected a JSON object, found str"),
    ],
)
def test_malformed_json_records_name_their_line(tmp_path, text, message):
    path = _write(tmp_path, "bad.json", text)
    with pytest.raises(DataFormatError) as caught:
        read_sts(path)
    assert message in str(caught.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(KosearchError, match="does not exist"):
        read_sts(tmp_path / "nope.tsv")
    with pytest.raises(DataFormatError, match="holds no sentence pairs"):
        read_sts(_write(tmp_path, "empty.tsv", HEADER))


@pytest.mark.skipif(not KORSTS.is_dir(), reason="shared KorSTS data not present")
@pytest.mark.parametrize(("name", "pairs"), [("sts-train.tsv", 5749), ("sts-dev.tsv", 1500), ("sts-test.tsv", 1379)])
def test_reads_every_korsts_split(name, pairs):
    examples = read_sts(KORSTS / name)
    assert len(examples) == pairs  # the counts the data README states
    assert all(0.0 <= e.score <= 5.0 for e in examples)
