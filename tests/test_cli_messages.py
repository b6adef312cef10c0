"""The words a user needs: which encoder is loading (before the slow load), and warnings on empty input.

In-process through typer's ``CliRunner`` with the hashing test encoder (no model to load); the
real entry point is exercised by test_cli_usage.py and test_cli_output.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import kosearch
import kosearch.cli as cli
import kosearch.cli.output as output
import kosearch.index
from kosearch_testing import HashingEncoder


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli.app, list(args), input=input)


@pytest.fixture
def loads(monkeypatch) -> list[tuple[str | None, str]]:
    """Every encoder load, as (model asked for, what stderr said before it), with the hashing encoder."""
    status_lines = io.StringIO()
    monkeypatch.setattr(output, "err", Console(file=status_lines, width=200))
    seen: list[tuple[str | None, str]] = []

    def load(model, device, encoder_backend=None, precision=None, encoder_process=None):
        seen.append((None if model is None else str(model), status_lines.getvalue()))
        return HashingEncoder()

    monkeypatch.setattr(kosearch.index, "_as_encoder", load)
    return seen


@pytest.fixture
def hashing(monkeypatch) -> None:
    monkeypatch.setattr(kosearch.index, "_as_encoder", lambda model, device, encoder_backend=None, precision=None, encoder_process=None: HashingEncoder())


@pytest.fixture
def corpus(tmp_path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "animals.txt").write_text("치타가 먹이를 쫓는다.\n사자는 무리를 지어 사냥한다.\n", encoding="utf-8")
    return docs


def test_each_command_says_which_encoder_it_loads_before_loading_it(tmp_path, corpus, loads):
    index = str(tmp_path / "idx")
    assert invoke("index", str(corpus), "--index", index).exit_code == 0
    assert invoke("index", str(corpus), "--index", index).exit_code == 0
    assert invoke("query", index, "치타").exit_code == 0
    assert invoke("query", index, input="치타\n\n").exit_code == 0  # the prompt's path
    assert invoke("query", index, "치타", "--model", "some/model", "--device", "cpu").exit_code == 0
    before = [said.splitlines()[-1] for _, said in loads]
    assert before == [
        "loading encoder bundled…",  # a new index, no --model
        "loading encoder test/hashing-bigrams…",  # the encoder the index names
        "loading encoder test/hashing-bigrams…",
        "loading encoder test/hashing-bigrams…",
        "loading encoder some/model on cpu…",
    ]


def test_quiet_indexing_prints_no_status(tmp_path, corpus, loads):
    assert invoke("index", str(corpus), "--index", str(tmp_path / "idx"), "--quiet").exit_code == 0
    assert loads == [(None, "")]


def test_indexing_an_empty_folder_warns_and_still_succeeds(tmp_path, hashing):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("index", str(empty), "--index", str(tmp_path / "idx"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sentences_total"] == 0
    assert "warning: no documents found in" in result.stderr and ".kosearchignore" in result.stderr


def test_indexing_a_folder_of_unreadable_files_says_nothing_was_indexed(tmp_path, hashing):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.txt").write_bytes(b"")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 50)
    result = invoke("index", str(docs), "--index", str(tmp_path / "idx"))
    assert result.exit_code == 0, result.output
    assert "all 2 file(s) found were skipped" in result.stderr


def test_querying_an_empty_index_warns_instead_of_printing_headings(tmp_path, hashing):
    index = tmp_path / "idx"
    with kosearch.Index.create(index, HashingEncoder()):
        pass
    result = invoke("query", str(index), "치타")
    assert result.exit_code == 0, result.output
    assert "holds no sentences" in result.stderr
    assert "score" not in result.stdout and "no hits" in result.stdout

