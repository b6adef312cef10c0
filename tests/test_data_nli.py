"""kosearch.data.nli: reading KorNLI TSV / KLUE-NLI JSON and building supervised-SimCSE triples."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kosearch.data.nli import NLI_LABELS, NLIExample, nli_triples, read_nli
from kosearch.errors import DataFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "train"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def test_kornli_tsv_rows_keep_text_label_and_line() -> None:
    path = FIXTURES / "nli.tsv"
    examples = read_nli(path)
    rows = _lines(path)[1:]
    assert len(examples) == sum(1 for row in rows if row.strip())
    for example in examples:
        premise, hypothesis, label = _lines(path)[example.line - 1].split("\t")
        assert (example.premise, example.hypothesis, example.label) == (premise, hypothesis, label)
        assert example.label in NLI_LABELS


def test_klue_json_records_point_at_their_opening_line() -> None:
    path = FIXTURES / "nli.json"
    examples = read_nli(path)
    records = json.loads(path.read_text(encoding="utf-8"))
    assert [(e.premise, e.hypothesis, e.label) for e in examples] == [
        (r["premise"], r["hypothesis"], r["gold_label"]) for r in records
    ]
    lines = _lines(path)
    for example in examples:
        assert lines[example.line - 1].strip() == "{"
        # The record's hypothesis lies between its opening line and the next record.
        following = "\n".join(lines[example.line - 1 : example.line + 5])
        assert example.hypothesis in following


def test_jsonl_and_unlabelled_pairs(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"premise": "비가 온다.", "hypothesis": "날씨가 궂다.", "gold_label": "entailment"},
        {"premise": "비가 온다.", "hypothesis": "해가 쨍쨍하다.", "gold_label": "-"},
        {"premise": "비가 온다.", "hypothesis": "맑은 날이다.", "label": "Contradiction"},
    ]
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    examples = read_nli(path)
    assert [(e.label, e.line) for e in examples] == [("entailment", 1), ("contradiction", 3)]


@pytest.mark.parametrize(
    ("name", "line", "reason"),
    [
        ("nli_bad_label.tsv", 3, "unknown label 'maybe'"),
        ("nli_short_row.tsv", 3, "expected 3 tab-separated fields"),
        ("nli_missing_column.tsv", 1, "no 'sentence2' or 'hypothesis' column"),
        ("nli_missing_key.json", 3, "no text field 'hypothesis'"),
    ],
)
def test_malformed_files_name_file_line_and_reason(name: str, line: int, reason: str) -> None:
    with pytest.raises(DataFormatError) as error:
        read_nli(FIXTURES / name)
    assert f"{FIXTURES / name}:{line}:" in str(error.value)
    assert reason in str(error.value)


def test_broken_json_and_unknown_format(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"premise": "a", "hypothesis": "b", "gold_label": "entailment"},\n  {"premise": \n]', "utf-8")
    with pytest.raises(DataFormatError, match=r"broken\.json:\d+: invalid JSON"):
        read_nli(broken)
    other = tmp_path / "pairs.xml"
    other.write_text("<pairs/>", encoding="utf-8")
    with pytest.raises(DataFormatError, match="cannot tell the NLI format"):
        read_nli(other)
    with pytest.raises(DataFormatError, match="no such NLI file"):
        read_nli(tmp_path / "missing.tsv")


def _example(premise: str, hypothesis: str, label: str) -> NLIExample:
    return NLIExample(premise, hypothesis, label, 0)


def test_triples_pair_entailments_with_contradictions_of_the_same_premise() -> None:
    examples = [
        _example("p1", "e1", "entailment"),
        _example("p1", "n1", "neutral"),
        _example("p1", "c1", "contradiction"),
        _example("p2", "e2a", "entailment"),
        _example("p2", "e2b", "entailment"),
        _example("p2", "c2", "contradiction"),
        _example("p3", "e3", "entailment"),  # no contradiction: no hard negative, no triple
        _example("p4", "c4", "contradiction"),  # no entailment: no positive
    ]
    triples = nli_triples(examples)
    assert [(t.anchor, t.positive, t.negative) for t in triples] == [
        ("p1", "e1", "c1"),
        ("p2", "e2a", "c2"),
        ("p2", "e2b", "c2"),
    ]


def test_fixture_files_give_one_triple_per_premise_with_both_labels() -> None:
    triples = nli_triples(read_nli(FIXTURES / "nli.tsv"))
    with (FIXTURES / "nli.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    premises = {row["sentence1"] for row in rows}
    complete = {p for p in premises if {"entailment", "contradiction"} <= {r["gold_label"] for r in rows if r["sentence1"] == p}}
    assert {t.anchor for t in triples} == complete
    assert all(t.positive != t.negative for t in triples)


@pytest.mark.skipif(not (DATA / "kornli").is_dir(), reason="shared data not present")
def test_real_kornli_and_klue_files_read_completely() -> None:
    kornli = read_nli(DATA / "kornli" / "xnli.dev.ko.tsv")
    klue = read_nli(DATA / "klue" / "klue-nli-v1.1_dev.json")
    # Sizes as documented in shared/data/README.md.
    assert len(kornli) == 2490
    assert len(klue) == 3000
    assert {e.label for e in kornli} == {e.label for e in klue} == set(NLI_LABELS)
    records = json.loads((DATA / "klue" / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))
    assert [e.hypothesis for e in klue] == [r["hypothesis"].strip() for r in records]
