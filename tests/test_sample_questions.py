"""corpora/sample_questions stays a faithful BEIR build of its questions.jsonl over corpora/sample.

The committed BEIR folder is what benchmarks read; questions.jsonl is what people edit. These tests
rebuild the set the way ``bench/build_devsets.py`` does (which refuses a judgement whose sentence is
not in the corpus) and compare it with the committed files, so an edit to the corpus, the splitter
or the questions that is not followed by a rebuild fails here instead of skewing a benchmark.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from kosearch.data.beir import load_beir

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "corpora" / "sample_questions"


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


def _records() -> list[dict]:
    lines = (QUESTIONS / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def rebuilt():
    return _bench_module("build_devsets").sample_questions()  # SystemExit if a judged sentence is gone


def test_every_judgement_resolves_and_the_committed_folder_is_the_rebuild(rebuilt) -> None:
    committed = load_beir(QUESTIONS)
    records = _records()
    assert list(committed.queries.values()) == [record["question"] for record in records]
    assert committed.queries == rebuilt.queries
    assert committed.qrels == rebuilt.qrels
    assert {doc_id: doc.text for doc_id, doc in committed.corpus.items()} == {doc_id: doc.text for doc_id, doc in rebuilt.corpus.items()}
    # A judgement is a (file, exact sentence) pair; a sentence that occurs twice in one file is judged at both places.
    for query_id, record in zip(committed.queries, records):
        judged = {(doc_id.split("#")[0], committed.corpus[doc_id].text) for doc_id in committed.qrels[query_id]}
        assert judged == {(r["file"], r["sentence"]) for r in record["relevant"]}


def test_questions_are_distinct_and_batches_are_numbered() -> None:
    records = _records()
    assert len({record["question"] for record in records}) == len(records)
    batches = [record.get("batch", 1) for record in records]
    assert set(batches) <= {1, 2}
    assert batches == sorted(batches), "a batch's questions are contiguous (q1-q60, then q61-...)"


def test_latency_benchmarks_keep_the_first_batch_only() -> None:
    first = [record["question"] for record in _records() if record.get("batch", 1) == 1]
    assert _bench_module("nsmc_bench_data").sample_questions() == first
    assert len(_bench_module("nsmc_bench_data").sample_questions((1, 2))) == len(_records())
