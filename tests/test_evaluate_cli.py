"""``kosearch evaluate`` through typer's CliRunner, mounted on a local app the way kosearch.cli mounts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.eval.tiny_model import build_tiny_model as build_eval_tiny_model
import typer
from typer.testing import CliRunner

from kosearch.cli.evaluate import app as evaluate_app
from kosearch.data.beir import load_beir, sts_to_retrieval
from kosearch.data.sts import read_sts
from kosearch.errors import KosearchError
from kosearch.evaluate import RetrievalResult, STSResult, evaluate_retrieval, evaluate_sts

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
STS = FIXTURES / "sts_small.tsv"
BEIR = FIXTURES / "beir_small"

root = typer.Typer()
root.add_typer(evaluate_app, name="evaluate")


@root.callback()
def _root() -> None:
    """Stands in for the kosearch app."""


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[str, str]:
    """Two different random models (seeds 0 and 1) saved as folders, as a user would name them."""
    texts = [e.sentence1 for e in read_sts(STS)] + [e.sentence2 for e in read_sts(STS)]
    beir = load_beir(BEIR)
    texts += [d.full_text for d in beir.corpus.values()] + list(beir.queries.values())
    build = build_eval_tiny_model
    prompts = {"query": "query: ", "document": "passage: "}
    first = build(tmp_path_factory.mktemp("tiny0"), texts, prompts=prompts, seed=0)
    second = build(tmp_path_factory.mktemp("tiny1"), texts, prompts=prompts, seed=1)
    return str(first), str(second)


def _invoke(*args: str):
    # A wide terminal, so rich does not wrap the ten-column table (and the assertions see whole numbers).
    return CliRunner().invoke(root, ["evaluate", *args], catch_exceptions=True, env={"COLUMNS": "300"})


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_sts_json_matches_python_api(tiny_models):
    result = _invoke("sts", "--model", tiny_models[0], "--data", str(STS), "--json")
    assert result.exit_code == 0, result.output
    (printed,) = _json_lines(result.stdout)
    expected = evaluate_sts(tiny_models[0], STS)
    for metric in STSResult.METRICS + ("avg",):
        assert printed[metric] == pytest.approx(getattr(expected, metric), abs=1e-9)
    assert printed["pairs"] == 16 and printed["side"] == "query"


def test_sts_side_option_reaches_the_encoder(tiny_models):
    result = _invoke("sts", tiny_models[0], "--data", str(STS), "--json", "--side", "document")
    assert result.exit_code == 0, result.output
    (printed,) = _json_lines(result.stdout)
    assert printed["cosine_spearman"] == pytest.approx(evaluate_sts(tiny_models[0], STS, side="document").cosine_spearman)
    assert _invoke("sts", "--data", str(STS), "--side", "passage").exit_code != 0


def test_sts_compare_prints_one_table_with_a_row_per_model_and_differences(tiny_models):
    result = _invoke("sts", "--data", str(STS), "--compare", *tiny_models)
    assert result.exit_code == 0, result.output
    first, second = (evaluate_sts(model, STS) for model in tiny_models)
    for column in ("Cosine Spearman", "Manhattan Pearson", "Avg"):
        assert column in result.stdout
    assert f"{first.cosine_spearman:.2f}" in result.stdout
    assert f"{second.cosine_spearman:.2f}" in result.stdout
    assert f"{second.cosine_spearman - first.cosine_spearman:+.2f}" in result.stdout
    assert "vs " in result.stdout


def test_repeated_model_option_gives_one_json_line_per_model(tiny_models):
    result = _invoke("sts", "--data", str(STS), "-m", tiny_models[0], "-m", tiny_models[1], "--json")
    assert result.exit_code == 0, result.output
    lines = _json_lines(result.stdout)
    assert [line["model"] for line in lines] == [str(Path(m).resolve()) for m in tiny_models]
    assert lines[0]["cosine_spearman"] != lines[1]["cosine_spearman"]


def test_retrieval_on_beir_folder_json_matches_python_api(tiny_models):
    result = _invoke("retrieval", tiny_models[0], "--data", str(BEIR), "--split", "dev", "--json")
    assert result.exit_code == 0, result.output
    (printed,) = _json_lines(result.stdout)
    expected = evaluate_retrieval(tiny_models[0], BEIR, split="dev")
    for metric in RetrievalResult.METRICS:
        assert printed[metric] == pytest.approx(getattr(expected, metric))
    assert (printed["queries"], printed["corpus"], printed["split"]) == (2, 12, "dev")


def test_retrieval_from_sts_writes_beir_and_prints_table(tiny_models, tmp_path):
    out = tmp_path / "paraphrases"
    result = _invoke("retrieval", tiny_models[0], "--from-sts", str(STS), "--write-beir", str(out))
    assert result.exit_code == 0, result.output
    written = load_beir(out)
    built = sts_to_retrieval(read_sts(STS))
    assert written.qrels == built.qrels and written.queries == built.queries
    for column in RetrievalResult.COLUMNS:
        assert column in result.stdout
    expected = evaluate_retrieval(tiny_models[0], built)
    assert f"{expected.mrr_at_10:.2f}" in result.stdout
    assert built.notes[0][:40] in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("retrieval",), "exactly one of --data"),
        (("retrieval", "--data", str(BEIR), "--from-sts", str(STS)), "exactly one of --data"),
        (("retrieval", "--data", str(BEIR), "--write-beir", "x"), "--write-beir writes the set built by --from-sts"),
        (("retrieval", "--from-sts", str(STS), "--index", "somewhere"), "needs the BEIR folder"),
        (("retrieval", "--data", str(BEIR), "--index", "idx", "--model", "m"), "drop --model or --index"),
    ],
)
def test_retrieval_refuses_contradictory_options(args, message):
    result = _invoke(*args)
    assert isinstance(result.exception, KosearchError)
    assert message in str(result.exception)


def test_malformed_sts_file_surfaces_as_data_format_error(tmp_path, tiny_models):
    bad = tmp_path / "bad.tsv"
    bad.write_text("genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\ng\tf\ty\t1\t9\t가\t나\n", encoding="utf-8")
    result = _invoke("sts", tiny_models[0], "--data", str(bad))
    assert isinstance(result.exception, KosearchError)
    assert "line 2: score '9' is outside 0..5" in str(result.exception)
