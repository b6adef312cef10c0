"""``kosearch train``: the typer commands parse options into kosearch.train calls and print the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kosearch.cli.train import app
from kosearch.errors import DataFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "train"
sys.path.insert(0, str(FIXTURES))
from tiny_model import build_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-cli") / "model")


def test_every_recipe_is_a_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for recipe in ("tsdae", "simcse", "nli", "sts", "multitask"):
        assert recipe in result.output


def test_sts_command_trains_and_prints_json(tiny_model: Path, tmp_path: Path) -> None:
    output = tmp_path / "cli-sts"
    result = CliRunner().invoke(
        app,
        [
            "sts", "--train", str(FIXTURES / "sts.tsv"), "--loss", "cosine",
            "--model", str(tiny_model), "--output", str(output),
            "--max-steps", "2", "--batch-size", "4", "--eval-steps", "1", "--lr", "1e-3",
            "--dev", str(FIXTURES / "sts.tsv"), "--device", "cpu", "--skip-base-eval", "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["recipe"] == "sts"
    assert summary["steps"] == 2
    assert summary["output"] == str(output)
    assert list(summary["evaluation"]) == ["trained"]
    assert [step for step, _ in summary["phases"][0]["dev_history"]] == [1, 2]
    assert "CosineSimilarityLoss" in (output / "README.md").read_text(encoding="utf-8")


def test_sentences_options_reach_the_recipe(tiny_model: Path, tmp_path: Path) -> None:
    output = tmp_path / "cli-simcse"
    result = CliRunner().invoke(
        app,
        [
            "simcse", "--sentences", str(FIXTURES / "reviews.tsv"), "--column", "review", "--limit", "6",
            "--model", str(tiny_model), "--output", str(output), "--max-steps", "1", "--batch-size", "3",
            "--device", "cpu", "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| `" + str(FIXTURES / "reviews.tsv") + "` | sentences (each its own positive) | 6 |" in (
        output / "README.md"
    ).read_text(encoding="utf-8")


def test_malformed_data_surfaces_as_data_format_error(tiny_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["nli", "--nli", str(FIXTURES / "nli_short_row.tsv"), "--model", str(tiny_model),
         "--output", str(tmp_path / "never")],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, DataFormatError)
    assert "nli_short_row.tsv:3:" in str(result.exception)
