"""The README.md model card of a trained encoder: how it was made and how it scores, generated from the run itself.

A model folder travels without its training log; the card is what tells the next person which base model, data,
settings and hardware produced it and what it gains over its base. Everything in it comes from the
:class:`~kosearch.train.types.TrainResult` of the run and the run's
:class:`~kosearch.train.config.TrainingConfig` (whose fields name their own card rows), never typed by hand.

Paths and notes can hold a document folder's file names, so they are written as literal text, never as Markdown
or HTML: code spans and fences longer than any backtick run in them, every other special character escaped.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kosearch.textclean import escape_path
from kosearch.train.config import TrainingConfig, card_rows
from kosearch.train.types import Recipe, TrainingPhase, TrainResult


@dataclass
class ModelCard:
    recipe: Recipe
    result: TrainResult
    parameters: dict[str, Any]
    hardware: str
    finished: datetime


def card_parameters(config: TrainingConfig, phases: Sequence[TrainingPhase], prompt: str | None) -> dict[str, Any]:
    """The settings table: every config field that declares a card label, plus what only the run knows.

    ``prompt``: the training prompt(s) as the card should show them (e.g. ``'passage: '``), None for none.
    """
    if not phases:
        return {"training": "none of the encoder: its weights are the base model's (the rows below say what the "
                            "recipe added)"}
    parameters: dict[str, Any] = {
        "learning rate": ", ".join(f"{phase.name}: {phase.learning_rate:g}" for phase in phases),
        **card_rows(config),
    }
    if prompt:
        parameters["training prompt"] = prompt
    for phase in phases:
        if phase.epochs is not None and len(phases) > 1:
            parameters[f"epochs ({phase.name})"] = phase.epochs
    return parameters


def write_model_card(folder: Path, card: ModelCard) -> Path:
    """Write ``folder/README.md`` (replacing any card the base model had) and return its path."""
    path = Path(folder) / "README.md"
    path.write_text(render_model_card(card), encoding="utf-8")
    return path


def render_model_card(card: ModelCard) -> str:
    result = card.result
    # Paths as printable, valid Unicode (a name's non-UTF-8 bytes and control characters as \xHH): the card is
    # UTF-8 text, and a folder name from a Windows zip would otherwise fail to write after the whole run.
    base_model, output = escape_path(result.base_model), escape_path(str(result.output))
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "language:",
        "- ko",
        "tags:",
        "- sentence-transformers",
        "- sentence-similarity",
        "- kosearch",
        f"- kosearch-{card.recipe.name}",
        f"base_model: {json.dumps(base_model)}",  # ASCII with \\u escapes: YAML refuses some raw characters
        "---",
        "",
        f"# kosearch `{card.recipe.name}` encoder",
        "",
        f"{'Trained' if result.phases else 'Made'} by `kosearch train {card.recipe.name}` from "
        f"**{literal(base_model)}**. {card.recipe.summary}",
        "",
        "## Use",
        "",
        *_fenced("bash", [f"kosearch index FOLDER --model {shlex.quote(output)}"]),
        "",
        *_fenced("python", [
            "from sentence_transformers import SentenceTransformer",
            "",
            f"model = SentenceTransformer({json.dumps(output, ensure_ascii=False)})",
            'embeddings = model.encode_document(["오늘 날씨가 좋다.", "날씨가 맑다."])',
        ]),
        "",
        "## Evaluation",
        "",
    ]
    lines += _evaluation_section(result)
    lines += ["", "## Training data", "", "| file | used as | examples |", "|---|---|---:|"]
    for data in card.recipe.data:
        lines.append(f"| {code(str(data.path), in_table=True)} | {data.role} | {data.examples:,} |")
    lines += ["", "## Training", "", "| setting | value |", "|---|---|"]
    lines.append(f"| recipe | `{card.recipe.name}` |")
    lines.append(f"| base model | {code(result.base_model, in_table=True)} |")
    for key, value in {**card.parameters, **card.recipe.parameters}.items():
        if value is None:
            continue
        lines.append(f"| {key} | {_format_value(value)} |")
    lines.append(f"| optimizer steps | {result.steps:,} |")
    batch_size = card.parameters.get("batch size")
    if isinstance(batch_size, int):
        # What the model actually saw; "epochs" alone overstates it when --max-steps or a time limit ended the run.
        lines.append(f"| training examples seen | {result.steps * batch_size:,} (steps x batch size) |")
    lines.append(f"| training time | {_format_duration(result.train_seconds)} |")
    lines.append(f"| hardware | {card.hardware} |")
    lines.append(f"| finished | {card.finished.strftime('%Y-%m-%d %H:%M UTC')} |")
    lines += _dev_section(result)
    if result.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {literal(note)}" for note in result.notes]
    lines += [
        "",
        "## Framework",
        "",
        ("Trained with sentence-transformers' `SentenceTransformerTrainer`; the folder" if result.phases
         else "Written with sentence-transformers, the encoder's weights untouched; the folder")
        + " is an ordinary sentence-transformers model.",
        "",
    ]
    return "\n".join(lines)


def _evaluation_section(result: TrainResult) -> list[str]:
    if not result.evaluation or result.evaluation_file is None:
        return ["Not evaluated: no `--dev` or `--eval-test` STS file was given."]
    columns = _metric_columns(result.evaluation)
    header = "| model | " + " | ".join(_column_title(column) for column in columns) + " |"
    lines = [
        f"KorSTS-style STS on {code(result.evaluation_file)}: Pearson and Spearman correlation x100 "
        "between gold scores and each similarity of the two sentence embeddings, both encoded on the document side "
        "(the model's document prompt, as in training); `kosearch evaluate sts --model FOLDER` scores the query side.",
        "",
        header,
        "|---|" + "---:|" * len(columns),
    ]
    for label, metrics in result.evaluation.items():
        if label == "base":
            name = f"base ({code(result.base_model, in_table=True)})"
        else:
            name = f"**{literal(label, in_table=True)}**"
        cells = [_format_score(metrics.get(column)) for column in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "base" not in result.evaluation:
        lines += ["", "The base model was not scored in this run (`--skip-base-eval`)."]
    return lines


def _metric_columns(evaluation: dict[str, dict[str, float]]) -> list[str]:
    """Every metric any row has, in the order the evaluation reported them (the STS cards' column order)."""
    keys: list[str] = []
    for metrics in evaluation.values():
        keys += [key for key in metrics if key not in keys]
    return keys


def _column_title(key: str) -> str:
    return key.replace("_", " ")


def _dev_section(result: TrainResult) -> list[str]:
    lines: list[str] = []
    for phase in result.phases:
        if not phase.dev_history:
            continue
        if not lines:
            lines += ["", "## Dev evaluation during training", ""]
        best = f"; best at step {phase.best_step} (kept)" if phase.best_step is not None else ""
        lines.append(f"Phase `{phase.name}`, dev cosine Spearman x100 by step{best}:")
        lines.append("")
        lines.append("| step | " + " | ".join(str(step) for step, _ in phase.dev_history) + " |")
        lines.append("|---|" + "---:|" * len(phase.dev_history))
        lines.append("| spearman | " + " | ".join(f"{score:.2f}" for _, score in phase.dev_history) + " |")
        lines.append("")
    return lines[:-1] if lines else lines


def _format_score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return literal(str(value), in_table=True)


_ALWAYS_ESCAPED = frozenset("`[]<>~&")
"""What can start Markdown or HTML anywhere mid-line: code, links and images (``[``; ``(`` and ``!`` mean nothing
without it), autolinks and tags, strikethrough, entities."""


def literal(text: str, *, in_table: bool = False) -> str:
    """``text`` as Markdown that renders as itself, mid-line (after ``- `` or in a table cell, where kosearch puts
    it; GitHub's autolinking of bare ``www.`` names and e-mail addresses is not prevented).

    Escaped: :data:`_ALWAYS_ESCAPED`; ``|`` in a table cell; ``*`` unless spaces surround it and ``_`` unless it
    sits inside a word or between spaces (where neither can open or close emphasis, so ``idf ** 1`` and
    ``2024_판결`` stay as they are); ``\\`` before punctuation or at the end. Line breaks show as ``\\n``, and a lone
    surrogate as ``\\udcXX``, so the card stays one valid UTF-8 line per note."""
    text = text.replace("\r", "\\r").replace("\n", "\\n").encode("utf-8", "backslashreplace").decode("utf-8")

    def escaped(match: re.Match[str]) -> str:
        run, (start, end) = match.group(), match.span()
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if run[0] == "*":
            inert = before.isspace() and after.isspace()
        elif run[0] == "_":
            inert = (before.isalnum() and after.isalnum()) or (before.isspace() and after.isspace())
        elif run == "\\":
            inert = end < len(text) and (after.isalnum() or after.isspace() or not after.isascii())
        else:
            inert = run == "|" and not in_table
        return run if inert else "".join("\\" + char for char in run)

    return _MARKUP_RUNS.sub(escaped, text)


_MARKUP_RUNS = re.compile(r"\*+|_+|[`\[\]<>~&|\\]")


def code(path: str, *, in_table: bool = False) -> str:
    """``path`` as a one-line code span, printed as ``kosearch index`` prints paths (:func:`escape_path`: bytes that
    are not UTF-8 and control characters as ``\\xHH``), delimited by more backticks than any run inside it
    (CommonMark), with ``|`` escaped in a table cell (GitHub's tables split on it even inside code)."""
    text = escape_path(path)
    if in_table:
        text = text.replace("|", "\\|")
    fence = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(language: str, lines: list[str]) -> list[str]:
    """A fenced code block whose fence is longer than any backtick run in ``lines``, so none of them closes it."""
    fence = "`" * max(3, max(map(_longest_backtick_run, lines), default=0) + 1)
    return [f"{fence}{language}", *lines, fence]


def _format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{seconds:.1f} s"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
