"""``kosearch evaluate retrieval --mode ...``: dense, lexical and hybrid measured through an index,
for a model through a temporary index over the BEIR corpus (one document per record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from fixtures.eval.tiny_model import build_tiny_model as build_eval_tiny_model
from kosearch_testing import HashingEncoder
from typer.testing import CliRunner

from kosearch.cli.evaluate import app as evaluate_app
from kosearch.data.beir import BeirDataset, CorpusDocument, load_beir
from kosearch.errors import KosearchError
from kosearch.evaluate import MODES, RetrievalResult, evaluate_retrieval, evaluate_retrieval_modes, rank_with_index
from kosearch.evaluate.temporary_index import temporary_index, write_corpus_files
from kosearch.results import Hit

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
BEIR = FIXTURES / "beir_small"

root = typer.Typer()
root.add_typer(evaluate_app, name="evaluate")


@root.callback()
def _root() -> None:
    """Stands in for the kosearch app."""


def _invoke(*args: str):
    return CliRunner().invoke(root, ["evaluate", *args], catch_exceptions=True, env={"COLUMNS": "300"})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    beir = load_beir(BEIR)
    texts = [d.full_text for d in beir.corpus.values()] + list(beir.queries.values()) + ["passage: query:"]
    folder = build_eval_tiny_model(
        tmp_path_factory.mktemp("tiny"), texts, prompts={"query": "query: ", "document": "passage: "}
    )
    return str(folder)


def _self_retrieval() -> BeirDataset:
    """Every corpus text asks for itself: any working route finds each at rank 1."""
    texts = ["서울은 대한민국의 수도이다.", "김치는 배추를 소금에 절여 만든다.", "제주도는 가장 큰 섬이다.", "커피에는 카페인이 들어 있다."]
    corpus = {f"doc/{n}": CorpusDocument(f"doc/{n}", text) for n, text in enumerate(texts)}
    queries = {f"q{n}": text for n, text in enumerate(texts)}
    qrels = {f"q{n}": {f"doc/{n}": 1} for n in range(len(texts))}
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name="self")


class _RecordingIndex:
    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.options: dict | None = None

    def search_batch(self, queries, k=10, **options):
        self.options = options
        return [self.hits for _ in queries]


def _hit(path: str, score: float) -> Hit:
    return Hit(score=score, text="", path=path, line=1, sentence_id=0, start=0, end=0, document_root="/x")


def test_corpus_files_are_one_per_record_named_by_position(tmp_path):
    dataset = load_beir(BEIR)
    names = write_corpus_files(dataset, tmp_path)
    assert list(names.values()) == list(dataset.corpus)
    first_titled = next(doc for doc in dataset.corpus.values() if doc.title)
    name = next(name for name, doc_id in names.items() if doc_id == first_titled.id)
    assert (tmp_path / name).read_text(encoding="utf-8") == first_titled.full_text  # title + text, as exact search


def test_mode_and_group_by_reach_the_search_and_hits_map_through_document_of():
    dataset = _self_retrieval()
    index = _RecordingIndex([_hit("b", 0.9), _hit("a", 0.8), _hit("b", 0.7), _hit("other", 0.6)])
    doc_of = {"a": "doc/0", "b": "doc/1"}
    rankings = rank_with_index(
        index, dataset, mode="lexical", group_by="document", document_of=lambda hit: doc_of.get(hit.path)
    )
    assert index.options == {"mode": "lexical", "group_by": "document"}
    assert rankings["q0"] == ["doc/1", "doc/0"]  # a second unit of doc/1 and an unknown file are skipped
    rank_with_index(index, dataset, document_of=lambda hit: None)
    assert index.options == {}  # None leaves the choice to the index


def test_temporary_index_maps_every_record_back_to_its_id():
    dataset = _self_retrieval()
    (dense,) = evaluate_retrieval_modes(HashingEncoder(), dataset, ["dense"])
    assert dense.source == "temporary index" and dense.mode == "dense"
    assert dense.mrr_at_10 == pytest.approx(100.0) and dense.recall_at_1 == pytest.approx(100.0)
    assert dense.build_seconds > 0


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_lexical_and_hybrid_find_exact_copies_through_the_temporary_index(mode):
    (result,) = evaluate_retrieval_modes(HashingEncoder(), _self_retrieval(), [mode])
    assert result.mode == mode
    assert result.recall_at_1 == pytest.approx(100.0)


def test_one_temporary_index_serves_every_mode(monkeypatch):
    import kosearch.evaluate.temporary_index as module

    built: list[int] = []
    original = module.write_corpus_files

    def counting(dataset, folder):
        built.append(1)
        return original(dataset, folder)

    monkeypatch.setattr(module, "write_corpus_files", counting)
    results = evaluate_retrieval_modes(HashingEncoder(), _self_retrieval(), list(MODES))
    assert [r.mode for r in results] == list(MODES) and built == [1]


def test_group_by_document_gives_distinct_documents():
    (grouped,) = evaluate_retrieval_modes(HashingEncoder(), load_beir(BEIR), ["dense"], group_by="document")
    assert grouped.group_by == "document" and grouped.queries == 5


def test_unknown_mode_and_grouping_are_refused_before_indexing():
    with pytest.raises(KosearchError, match="unknown search mode 'bm25'"):
        evaluate_retrieval_modes(HashingEncoder(), _self_retrieval(), ["bm25"])
    with pytest.raises(KosearchError, match="only grouping is 'document'"):
        evaluate_retrieval_modes(HashingEncoder(), _self_retrieval(), ["dense"], group_by="file")


def test_group_by_over_a_built_corpus_jsonl_index_is_explained(tmp_path):
    with pytest.raises(KosearchError, match="drop --index"):
        evaluate_retrieval_modes(None, BEIR, ["dense"], index=tmp_path / "idx", group_by="document")


def test_cli_modes_give_one_table_with_a_row_per_mode(tiny_model):
    result = _invoke("retrieval", tiny_model, "--data", str(BEIR), "--mode", "dense", "--mode", "lexical", "--mode", "hybrid")
    assert result.exit_code == 0, result.output
    assert "Mode" in result.stdout and "through a temporary index" in result.stdout
    expected = evaluate_retrieval_modes(tiny_model, BEIR, list(MODES))
    for row in expected:
        # rich's table, or tab-separated lines where the output is not a terminal: the mode starts the row
        line = next(line for line in result.stdout.splitlines() if line.replace("│", " ").split()[:1] == [row.mode])
        assert f"{row.mrr_at_10:.2f}" in line and f"{row.ndcg_at_10:.2f}" in line


def test_cli_modes_json_matches_python_api(tiny_model):
    result = _invoke("retrieval", tiny_model, "--data", str(BEIR), "--mode", "lexical", "--mode", "dense", "--json")
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [p["mode"] for p in printed] == ["lexical", "dense"]
    dense = evaluate_retrieval(tiny_model, BEIR, mode="dense")
    for metric in RetrievalResult.METRICS:
        assert printed[1][metric] == pytest.approx(getattr(dense, metric))


def test_cli_without_mode_stays_exact_search(tiny_model):
    result = _invoke("retrieval", tiny_model, "--data", str(BEIR), "--json")
    (printed,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert printed["source"] == "model" and printed["mode"] == ""


def test_cli_unknown_mode_is_a_clear_error(tiny_model):
    result = _invoke("retrieval", tiny_model, "--data", str(BEIR), "--mode", "sparse")
    assert isinstance(result.exception, KosearchError)
    assert "choose from dense, lexical, hybrid" in str(result.exception)


@pytest.mark.slow
def test_bundled_model_all_modes_on_the_small_beir_set():
    """The real encoder through a temporary index: every mode finds the obvious answers of the fixture."""
    results = evaluate_retrieval_modes(None, BEIR, list(MODES), device="cpu")
    by_mode = {r.mode: r for r in results}
    assert set(by_mode) == set(MODES)
    for result in results:
        assert result.queries == 5 and "multilingual-e5-small" in result.model
        assert result.recall_at_10 > 50
    # The fixture's records are single sentences and the index's FAISS store is exact (Flat), so dense
    # through the temporary index must rank exactly like exact search with the same encoder.
    exact = evaluate_retrieval(None, BEIR, device="cpu")
    assert by_mode["dense"].as_row() == pytest.approx(exact.as_row(), abs=1e-6)
