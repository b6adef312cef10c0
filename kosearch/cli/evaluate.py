"""``kosearch evaluate``: the STS table and retrieval metrics, for one model or several side by side.

Parsing and printing only; the numbers come from :mod:`kosearch.evaluate`. Tables go to stdout,
progress bars to stderr; ``--json`` prints one JSON object per evaluated model (or index) per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from kosearch.cli.output import (
    DeviceOption, add_unbroken_column, as_text, emit_json, err, out, plain_row, print_table, printable, status
)

app = typer.Typer(
    help="Evaluate encoders: the STS correlation table of Korean model cards, and retrieval metrics "
    "(Recall@1/5/10, MRR@10, nDCG@10) on BEIR-layout sets or on a set built from an STS file.",
    no_args_is_help=True,
    add_completion=False,
)

ModelsArgument = typer.Argument(
    None,
    metavar="MODEL", help="Models to evaluate: 'bundled' (default), a model folder or a Hugging Face id."
)
ModelOption = typer.Option(None, "--model", "-m", help="A model to evaluate (repeatable; same as MODEL arguments).")
CompareOption = typer.Option(
    False, "--compare", help="Several models, one table: adds each model's difference from the first one."
)
BatchSizeOption = typer.Option(32, "--batch-size", min=1, help="Sentences encoded per batch.")
JsonOption = typer.Option(False, "--json", help="Print one JSON object per model instead of a table.")
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bars.")


@app.command()
def sts(
    models: Optional[list[str]] = ModelsArgument,
    data: Path = typer.Option(..., "--data", "-d", help="KorSTS .tsv (e.g. sts-test.tsv) or KLUE-STS .json file."),
    model: Optional[list[str]] = ModelOption,
    compare: bool = CompareOption,
    side: str = typer.Option(
        "query", "--side", help="Prompt for both sentences: query (e5's choice for symmetric tasks), document or none."
    ),
    device: Optional[str] = DeviceOption,
    batch_size: int = BatchSizeOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Cosine, euclidean, manhattan and dot similarity x Pearson, Spearman (x100) and their average."""
    from kosearch.evaluate import SIDES, evaluate_sts

    if side not in SIDES:
        raise typer.BadParameter(f"choose one of {', '.join(SIDES)}", param_hint="--side")
    results, labels = [], []
    for name in _model_names(models, model):
        result = evaluate_sts(
            _model_argument(name),
            data,
            side=side,
            batch_size=batch_size,
            device=device,
            show_progress_bar=_progress(quiet),
        )
        results.append(result)
        labels.append(_label(name, result.model))
        if as_json:
            emit_json(result.to_dict())
    if as_json:
        return
    first = results[0]
    title = f"STS: {data} ({first.pairs:,} pairs, {side} prompt on both sentences)"
    _print_table(title, "Model", first.COLUMNS, list(zip(labels, (r.as_row() for r in results))), compare)
    out.print(_timings(labels, results))


@app.command()
def retrieval(
    models: Optional[list[str]] = ModelsArgument,
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/."),
    split: str = typer.Option("test", "--split", help="Which qrels/<split>.tsv to use."),
    from_sts: Optional[Path] = typer.Option(
        None, "--from-sts", help="Build a paraphrase retrieval set from this STS file instead of --data."
    ),
    write_beir: Optional[Path] = typer.Option(
        None, "--write-beir", help="Also write the --from-sts set to this folder in BEIR layout (to index it later)."
    ),
    index: Optional[list[Path]] = typer.Option(
        None,
        "--index",
        "-i",
        help="Evaluate a built kosearch index instead of a model (repeatable). Build it over the --data folder, "
        "e.g. kosearch index DIR --index PATH --text-field text.",
    ),
    mode: Optional[list[str]] = typer.Option(
        None,
        "--mode",
        help="Search mode: dense, lexical or hybrid (repeatable: one table, a row per mode). A model is then "
        "measured through a temporary index over the corpus (one document per record), as kosearch query searches.",
    ),
    group_by: Optional[str] = typer.Option(
        None, "--group-by", help="'document': at most one hit per document (through a temporary index)."
    ),
    bm25_k1: Optional[float] = typer.Option(None, "--bm25-k1", min=0.0, help="BM25 k1 of the lexical signal (with --mode)."),
    bm25_b: Optional[float] = typer.Option(None, "--bm25-b", min=0.0, max=1.0, help="BM25 b of the lexical signal (with --mode)."),
    lexical_weight: Optional[float] = typer.Option(
        None, "--lexical-weight", min=0.0, max=1.0, help="Lexical weight of hybrid's convex fusion (with --mode)."
    ),
    model: Optional[list[str]] = ModelOption,
    compare: bool = CompareOption,
    device: Optional[str] = DeviceOption,
    batch_size: int = BatchSizeOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Recall@1/5/10, MRR@10 and nDCG@10: exact search with a model, or search through an index per mode."""
    from kosearch.evaluate import retrieval_runs, retrieval_set

    dataset = retrieval_set(data, split=split, from_sts=from_sts, write_beir_to=write_beir)
    if write_beir is not None:
        status(f"wrote the retrieval set to {write_beir} (BEIR layout, split '{dataset.split}')")
    typed = [*(models or []), *(model or [])]
    runs = retrieval_runs(
        dataset,
        models=[(name, _model_argument(name)) for name in typed] or None,
        indexes=index or (),
        modes=mode,
        group_by=group_by,
        device=device,
        batch_size=batch_size,
        show_progress_bar=_progress(quiet),
        announce=None if quiet else status,
        search_options={"bm25_k1": bm25_k1, "bm25_b": bm25_b, "lexical_weight": lexical_weight},
    )
    several = len(index or typed or ["bundled"]) > 1
    results, labels = [], []
    for run in runs:
        name = f"{run.name} ({run.result.model})" if run.through_index else _label(run.name, run.result.model)
        labels.append(_run_label(name, run.result.mode, several_runs=several, by_mode=bool(mode)))
        results.append(run.result)
        if as_json:
            emit_json(run.result.to_dict())
    if as_json:
        return
    first = results[0]
    source = {"model": "exact search", "index": "through the index", "temporary index": "through a temporary index"}
    grouping = ", one hit per document" if group_by else ""
    title = (
        f"Retrieval: {first.data}, split {first.split} "
        f"({first.queries:,} queries, {first.corpus:,} documents, {source[first.source]}{grouping})"
    )
    rows = list(zip(labels, (r.as_row() for r in results)))
    first_column = "Mode" if mode and not several else "Index" if index else "Model"
    _print_table(title, first_column, first.COLUMNS, rows, compare)
    for note in first.notes:
        out.print(as_text(note, "dim"))
    out.print(_timings(labels, results))


def _run_label(name: str, mode: str, *, several_runs: bool, by_mode: bool) -> str:
    """A row's name: the mode alone when one model or index is compared across modes."""
    if not by_mode:
        return name
    return f"{name}: {mode}" if several_runs else mode


def _model_names(positional: Optional[list[str]], repeated: Optional[list[str]]) -> list[str]:
    return [*(positional or []), *(repeated or [])] or ["bundled"]


def _label(typed: str, resolved: str) -> str:
    """What a row is called: the name as typed (paths stay short), the full id for the bundled model."""
    return resolved if typed == "bundled" else typed


def _model_argument(name: str) -> Optional[str]:
    return None if name == "bundled" else name


def _progress(quiet: bool) -> bool:
    # Bars go to stderr, so they never mix with --json on stdout; off when stderr is not a terminal.
    return not quiet and err.is_terminal


def _print_table(
    title: str, first_column: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[float]]], compare: bool
) -> None:
    """A table in a wide enough terminal; otherwise tab-separated lines, so no number or header is cut."""
    table = Table(title=as_text(title), title_justify="left")
    # A model id or folder stays on one line; numbers never break (their headers wrap between words).
    add_unbroken_column(table, first_column, [printable(name) for name, _ in rows], style="bold")
    for column in columns:
        table.add_column(column, justify="right", overflow="fold")
    lines = [printable(title, one_line=True), plain_row(first_column, *columns)]
    baseline = rows[0][1]
    for position, (name, values) in enumerate(rows):
        table.add_row(as_text(name), *(f"{value:.2f}" for value in values))
        lines.append(plain_row(name, *(f"{value:.2f}" for value in values)))
        if compare and position > 0:
            deltas = [value - base for value, base in zip(values, baseline)]
            table.add_row(Text("  vs first row", style="dim"), *(_delta(delta) for delta in deltas))
            lines.append(plain_row("  vs first row", *(f"{delta:+.2f}" for delta in deltas)))
    print_table(out, table, lines)


def _delta(delta: float) -> str:
    colour = "green" if delta > 0 else "red" if delta < 0 else "dim"
    return f"[{colour}]{delta:+.2f}[/]"


def _timings(labels: Sequence[str], results: Sequence[Any]) -> Text:
    timings = "; ".join(f"{label}: {r.seconds:.1f}s" for label, r in zip(labels, results))
    built = getattr(results[0], "build_seconds", 0.0)
    if built:
        timings += f"; building the temporary index: {built:.1f}s"
    return as_text(timings, "dim")
