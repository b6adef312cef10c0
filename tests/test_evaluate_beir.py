"""kosearch.data.beir: BEIR folders in and out, and the paraphrase retrieval set built from STS pairs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kosearch.data.beir import BeirDataset, CorpusDocument, load_beir, sts_to_retrieval, write_beir
from kosearch.data.sts import STSExample, read_sts
from kosearch.errors import DataFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
BEIR = FIXTURES / "beir_small"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_load_reads_corpus_queries_and_positive_qrels():
    dataset = load_beir(BEIR)
    corpus_records = _jsonl(BEIR / "corpus.jsonl")
    assert list(dataset.corpus) == [r["_id"] for r in corpus_records]
    assert [doc.line for doc in dataset.corpus.values()] == list(range(1, len(corpus_records) + 1))
    assert dataset.corpus["d02"].full_text == "음식 김치는 배추를 소금에 절여 만든다."
    assert dataset.corpus["d01"].full_text == "서울은 대한민국의 수도이다."  # empty title adds no space
    assert dataset.queries["q1"] == "한국의 수도는 어디인가?"
    # qrels/test.tsv judges q1-d06 with 0: not relevant, so it is dropped; q6 has no judgement at all.
    assert dataset.qrels["q1"] == {"d01": 1}
    assert dataset.qrels["q3"] == {"d02": 1, "d08": 1, "d12": 1}
    assert dataset.evaluated_query_ids == ["q1", "q2", "q3", "q4", "q5"]
    assert dataset.corpus_path == BEIR / "corpus.jsonl"


def test_split_picks_the_qrels_file_and_keeps_grades():
    dev = load_beir(BEIR, split="dev")
    assert dev.split == "dev"
    assert dev.qrels == {"q1": {"d01": 1}, "q5": {"d10": 2, "d05": 1}}


def test_unknown_split_lists_the_available_ones():
    with pytest.raises(DataFormatError, match=r"no qrels/train.tsv .*available splits: dev, test"):
        load_beir(BEIR, split="train")


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(BEIR, tmp_path / "beir"))


@pytest.mark.parametrize(
    ("file", "append", "message"),
    [
        ("corpus.jsonl", '{"_id": "d99", "title": ""}\n', "corpus.jsonl: line 13: the record has no text field 'text'"),
        ("corpus.jsonl", '{"_id": "d01", "text": "again"}\n', "line 13: _id 'd01' repeats line 1"),
        ("corpus.jsonl", "{not json\n", "corpus.jsonl: line 13: invalid JSON"),
        ("queries.jsonl", '{"text": "no id"}\n', "queries.jsonl: line 7: the record has no '_id'"),
        ("qrels/test.tsv", "q1\td01\n", "test.tsv: line 11: expected 3 tab-separated columns"),
        ("qrels/test.tsv", "q1\td01\tyes\n", "test.tsv: line 11: score 'yes' is not a number"),
        ("qrels/test.tsv", "q9\td01\t1\n", "line 11: query-id 'q9' is not in queries.jsonl"),
        ("qrels/test.tsv", "q1\td99\t1\n", "line 11: corpus-id 'd99' is not in corpus.jsonl"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, file, append, message):
    folder = _copy(tmp_path)
    with open(folder / file, "a", encoding="utf-8") as handle:
        handle.write(append)
    with pytest.raises(DataFormatError) as caught:
        load_beir(folder)
    assert message in str(caught.value)


def test_missing_corpus_is_explained(tmp_path):
    folder = _copy(tmp_path)
    (folder / "corpus.jsonl").unlink()
    with pytest.raises(DataFormatError, match="no corpus.jsonl; a BEIR folder holds"):
        load_beir(folder)


def test_write_then_load_round_trip(tmp_path):
    original = load_beir(BEIR)
    written = write_beir(original, tmp_path / "copy")
    again = load_beir(written)
    assert again.corpus == original.corpus  # ids, titles, texts and line numbers
    assert again.queries == original.queries
    assert again.qrels == original.qrels
    header = (written / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "query-id\tcorpus-id\tscore"
    # Korean is written as text, not \u escapes, so the files stay readable.
    assert "서울은" in (written / "corpus.jsonl").read_text(encoding="utf-8")


def test_write_uses_the_requested_split(tmp_path):
    write_beir(load_beir(BEIR), tmp_path / "out", split="dev")
    assert load_beir(tmp_path / "out", split="dev").qrels == load_beir(BEIR).qrels


def test_sts_to_retrieval_queries_corpus_and_threshold():
    pairs = [
        STSExample("A", "A1", 4.0, 2),  # exactly the threshold: relevant
        STSExample("A", "B", 3.99, 3),
        STSExample("B", "A1", 5.0, 4),
        STSExample("C", "B", 1.0, 5),  # C has no paraphrase: a query without judgements
        STSExample("A", "A2", 4.5, 6),
    ]
    dataset = sts_to_retrieval(pairs)
    assert dataset.queries == {"q1": "A", "q2": "B", "q3": "C"}
    assert {doc.id: doc.text for doc in dataset.corpus.values()} == {"d1": "A1", "d2": "B", "d3": "A2"}
    # B is also a corpus sentence, identical to query q2: with the identical-text rule it is relevant too.
    assert dataset.qrels == {"q1": {"d1": 1, "d3": 1}, "q2": {"d1": 1, "d2": 1}}
    assert dataset.evaluated_query_ids == ["q1", "q2"]
    assert "5 STS pairs: 2 of 3 distinct sentence1" in dataset.notes[0]
    assert "1 query also finds its own text" in dataset.notes[0]


def test_identical_text_rule_can_be_switched_off_and_never_creates_queries():
    pairs = [STSExample("A", "B", 4.5, 2), STSExample("B", "C", 4.5, 3), STSExample("D", "D", 3.0, 4)]
    assert sts_to_retrieval(pairs, identical_is_relevant=False).qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    with_rule = sts_to_retrieval(pairs)
    assert with_rule.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1, "d1": 1}}
    # D's identical copy is in the corpus, but D has no gold paraphrase, so it stays unevaluated.
    assert "q3" not in with_rule.qrels


def test_sts_fixture_to_beir_and_back(tmp_path):
    examples = read_sts(FIXTURES / "sts_small.tsv")
    dataset = sts_to_retrieval(examples, name="fixture")
    assert len(dataset.queries) == len({e.sentence1 for e in examples})
    assert len(dataset.corpus) == len({e.sentence2 for e in examples})
    gold = {(e.sentence1, e.sentence2) for e in examples if e.score >= 4}
    text_of = {doc.id: doc.text for doc in dataset.corpus.values()}
    judged = {(dataset.queries[q], text_of[d]) for q, docs in dataset.qrels.items() for d in docs}
    identical = {(q, d) for q, d in judged if q == d}
    assert judged - identical == gold
    assert identical == {("남자가 기타를 연주하고 있다.", "남자가 기타를 연주하고 있다.")}

    loaded = load_beir(write_beir(dataset, tmp_path / "sts-beir"))
    assert loaded.qrels == dataset.qrels
    assert {k: v.text for k, v in loaded.corpus.items()} == text_of
    assert loaded.queries == dataset.queries


def test_in_memory_dataset_has_no_corpus_path():
    dataset = BeirDataset(corpus={"d": CorpusDocument("d", "x")}, queries={"q": "y"}, qrels={"q": {"d": 1}})
    assert dataset.corpus_path is None
