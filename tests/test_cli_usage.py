"""Usage errors, ``--version`` and error lines through the real entry point (``python -m kosearch``).

A child process, as a user runs it: ``CliRunner`` would catch what escapes ``main()``, which is
exactly where the tracebacks came from (typer now vendors its own click, so ``main()``'s
``except click.ClickException`` no longer matched its usage errors).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kosearch._version import __version__

ROOT = Path(__file__).resolve().parents[1]


def kosearch_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "kosearch", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("query", "some-index", "치타", "-k", "0"), "Invalid value for '-k'"),
        (("query", "some-index", "치타", "-k", "abc"), "Invalid value for '-k'"),
        (("--bogus",), "No such option: --bogus"),
        (("index", "some-folder"), "Missing option '--index'"),
        (("query",), "Missing argument"),
        (("frobnicate",), "No such command"),
    ],
)
def test_usage_errors_print_the_usage_and_exit_2(args, message):
    result = kosearch_cli(*args)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert "Usage:" in result.stderr and message in result.stderr


def test_bare_kosearch_shows_the_help_without_a_traceback():
    result = kosearch_cli()
    assert "Traceback" not in result.stderr
    assert result.returncode == 2  # typer's choice for a group called without a command
    assert "Usage:" in result.stdout and "query" in result.stdout and "index" in result.stdout


def test_version():
    result = kosearch_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"kosearch {__version__}\n"


@pytest.mark.parametrize("blank", ["", " \t "])
def test_an_empty_query_is_a_usage_error_not_a_table_of_headings(blank):
    result = kosearch_cli("query", "some-index", "치타", blank)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert "a query is empty" in result.stderr


def test_kosearch_errors_are_one_line_that_keeps_markup_like_paths(tmp_path):
    missing = tmp_path / "[red]nope"
    result = kosearch_cli("query", str(missing), "치타")
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert result.stderr.startswith("error: no kosearch index in")
    assert str(missing) in result.stderr  # not "…/nope": the file name is text, not a colour tag
