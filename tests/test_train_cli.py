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


def test_every_command_offers_every_training_config_option() -> None:
    """The options are generated from TrainingConfig's fields, so a new field reaches all five commands at once."""
    from kosearch.cli.train import app as train_app
    from kosearch.train.config import config_fields

    expected = {
        (item.metadata["flags"] or (f"--{item.name.replace('_', '-')}",))[0].lstrip(" /")
        for item in config_fields()
        if item.metadata["cli"]
    }
    for command in train_app.registered_commands:
        import typer.main

        click_command = typer.main.get_command_from_info(
            command, pretty_exceptions_short=True, rich_markup_mode=None
        )
        flags = {name for parameter in click_command.params for name in (*parameter.opts, *parameter.secondary_opts)}
        missing = {flag for flag in expected if flag not in flags}
        assert not missing, (command.callback.__name__, missing)


def test_command_defaults_and_config_fields_meet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A recipe's own default (TSDAE's batch of 8) and the inverted --skip-base-eval reach the TrainingConfig."""
    import kosearch.train

    seen = {}

    def fake_tsdae(config, sentences, **kwargs):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(kosearch.train, "train_tsdae", fake_tsdae, raising=False)
    result = CliRunner().invoke(
        app, ["tsdae", "--sentences", str(FIXTURES / "sentences.txt"), "-o", str(tmp_path / "x"), "--skip-base-eval",
              "--lr", "1e-4", "--precision", "bf16"],
    )
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.batch_size, config.evaluate_base, config.learning_rate, config.precision) == (8, False, 1e-4, "bf16")
    assert config.output == tmp_path / "x" and config.max_seq_length == 128


def test_hf_arguments_come_from_the_config_fields(tmp_path: Path) -> None:
    from kosearch.train.config import TrainingConfig, hf_arguments

    arguments = hf_arguments(TrainingConfig(output=tmp_path, batch_size=7, seed=3, warmup_ratio=0.2))
    assert arguments["per_device_train_batch_size"] == arguments["per_device_eval_batch_size"] == 7
    assert arguments["seed"] == arguments["data_seed"] == 3
    assert arguments["warmup_steps"] == 0.2
    assert arguments["max_steps"] == -1
