"""The ``kosearch`` command line: parsing and printing around ``kosearch.Index``, nothing more."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kosearch.cli.output import DeviceOption, emit_json, err, out
from kosearch.errors import KosearchError
from kosearch.notices import show_notices

app = typer.Typer(
    name="kosearch",
    help="Korean semantic search: index document folders, query them, mine paraphrases, "
    "train and evaluate encoders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ModelOption = typer.Option(
    None, "--model", "-m", help="Encoder: a local model folder, a Hugging Face id, or 'bundled' (default)."
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


@app.command()
def index(
    documents: Path = typer.Argument(..., help="Folder (or single file) of documents to index."),
    index_path: Path = typer.Option(..., "--index", "-i", help="Index folder to create or update."),
    model: Optional[str] = ModelOption,
    device: Optional[str] = DeviceOption,
    text_field: Optional[list[str]] = typer.Option(
        None, "--text-field", help="Column/field holding text in CSV, TSV and JSONL files (repeatable)."
    ),
    mode: str = typer.Option("sentence", help="Index units: 'sentence' or 'passage'."),
    faiss_factory: str = typer.Option("Flat", help="FAISS index_factory string for a new index."),
    prune: bool = typer.Option(True, help="Remove files that disappeared from the folder."),
    as_json: bool = JsonOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Index a document folder (creating the index, or updating it: only changed files are re-encoded).

    Glob patterns listed in the folder's .kosearchignore file are left out.
    """
    from kosearch.index import Index

    if not documents.exists():
        raise KosearchError(f"{documents} does not exist")
    with Index.open_or_create(index_path, model, device=device, faiss_factory=faiss_factory) as idx:
        if not quiet:
            err.print(f"[bold]kosearch[/] indexing {documents} with {idx.encoder.name} on {idx.encoder.device}")
        with _ingest_progress(quiet) as progress:
            report = idx.add_folder(documents, text_fields=text_field, mode=mode, prune=prune, progress=progress)
        info = idx.info()
    if as_json:
        emit_json({**report.to_dict(), "index": info.path, "sentences_total": info.sentences})
        return
    out.print(
        f"Indexed {documents} into {index_path}: {report.files_added} added, {report.files_updated} "
        f"updated, {report.files_unchanged} unchanged, {report.files_removed} removed files; "
        f"{report.sentences_added} sentences encoded in {report.seconds:.1f}s; "
        f"{info.sentences} sentences in the index."
    )
    _print_skipped(report.skipped)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}")


class _ingest_progress:
    """A live line on stderr: files read, sentences encoded, current file."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet or not err.is_terminal

    def __enter__(self):
        if self._quiet:
            return None
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[files]} files, {task.completed:,.0f} sentences encoded"),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[current]}"),
            console=err,
            transient=True,
        )
        self._progress.start()
        task = self._progress.add_task("index", total=None, files=0, current="")

        def update(files: int, sentences: int, current: str) -> None:
            self._progress.update(task, completed=sentences, files=files, current=current)

        return update

    def __exit__(self, *exc_info: object) -> None:
        if not self._quiet:
            self._progress.stop()


def _print_skipped(skipped: list) -> None:
    if not skipped:
        return
    table = Table(title=f"Skipped {len(skipped)} file(s)", title_justify="left")
    table.add_column("file")
    table.add_column("reason")
    for item in skipped:
        table.add_row(item.path, item.reason)
    err.print(table)


@app.command()
def query(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    queries: Optional[list[str]] = typer.Argument(
        None, metavar="[QUERY]...", help="Query text(s). Without any, an interactive prompt opens."
    ),
    k: int = typer.Option(10, "-k", "--top-k", min=1, help="Hits per query."),
    context: int = typer.Option(0, "--context", "-c", min=0, help="Neighbouring sentences to show."),
    model: Optional[str] = ModelOption,
    device: Optional[str] = DeviceOption,
    as_json: bool = JsonOption,
) -> None:
    """Search an index: one-shot with QUERY arguments, or interactively (empty line or Ctrl-D quits).

    With --json, each query's result is one JSON object on its own line.
    """
    from kosearch.index import Index

    with Index.open(index_path, model, device=device) as idx:
        if queries:
            for text, hits in zip(queries, idx.search_batch(queries, k=k, context=context)):
                _print_hits(text, hits, as_json)
            return
        idx.encoder  # load the model before the first prompt, not after it
        interactive = sys.stdin.isatty()
        if interactive and not as_json:
            err.print(f"[bold]kosearch[/] {idx.info().sentences:,} sentences; empty line or Ctrl-D quits.")
        while True:
            try:
                text = out.input("[bold cyan]query>[/] ") if interactive else input()
            except (EOFError, KeyboardInterrupt):
                break
            text = text.strip()
            if not text:
                break
            _print_hits(text, idx.search(text, k=k, context=context), as_json)


def _print_hits(text: str, hits: list, as_json: bool) -> None:
    if as_json:
        emit_json({"query": text, "hits": [hit.to_dict() for hit in hits]})
        return
    table = Table(title=f"「{text}」", title_justify="left", show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("score", justify="right")
    table.add_column("sentence")
    table.add_column("file:line", style="cyan")
    for rank, hit in enumerate(hits, 1):
        sentence = hit.text
        if hit.context_before or hit.context_after:
            before = " ".join(hit.context_before)
            after = " ".join(hit.context_after)
            sentence = f"[dim]{before}[/] [bold]{hit.text}[/] [dim]{after}[/]".strip()
        table.add_row(str(rank), f"{hit.score:.3f}", sentence, f"{hit.path}:{hit.line}")
    out.print(table)


@app.command()
def paraphrases(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    top: int = typer.Option(20, "--top", "-n", min=1, help="How many pairs to report."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Only pairs scoring at least this."),
    neighbours: int = typer.Option(10, "--neighbours", min=1, help="Nearest neighbours searched per sentence."),
    as_json: bool = JsonOption,
) -> None:
    """The most similar sentence pairs inside an index (exact duplicates reported once)."""
    from kosearch.index import Index

    with Index.open(index_path) as idx:
        pairs = idx.paraphrases(top=top, min_score=min_score, neighbours=neighbours)
    if as_json:
        emit_json([pair.to_dict() for pair in pairs])
        return
    table = Table(title=f"Top {len(pairs)} paraphrase pairs", title_justify="left")
    table.add_column("score", justify="right")
    table.add_column("sentence A")
    table.add_column("sentence B")
    table.add_column("where", style="cyan")
    for pair in pairs:
        a = pair.a.text + (f" [dim](x{pair.copies_a})[/]" if pair.copies_a > 1 else "")
        b = pair.b.text + (f" [dim](x{pair.copies_b})[/]" if pair.copies_b > 1 else "")
        table.add_row(f"{pair.score:.3f}", a, b, f"{pair.a.path}:{pair.a.line}\n{pair.b.path}:{pair.b.line}")
    out.print(table)


@app.command()
def info(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    as_json: bool = JsonOption,
) -> None:
    """Model, dimension, documents, sentences, size and skipped files of an index."""
    from kosearch.index import Index

    with Index.open(index_path) as idx:
        summary = idx.info()
    if as_json:
        emit_json(summary.to_dict())
        return
    table = Table(show_header=False, title=f"kosearch index {summary.path}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("model", summary.model),
        ("fingerprint", summary.fingerprint),
        ("dimension", str(summary.dimension)),
        ("prompts", json.dumps(summary.prompts, ensure_ascii=False)),
        ("vectors", f"{summary.vector_backend} ({summary.faiss_factory})"),
        ("documents", f"{summary.documents:,}"),
        ("sentences", f"{summary.sentences:,}"),
        ("size", f"{summary.size_bytes / 1e6:.1f} MB"),
        ("roots", "\n".join(summary.roots)),
        ("created", summary.created),
        ("updated", summary.updated),
        ("kosearch", summary.kosearch_version),
        ("skipped files", str(len(summary.skipped))),
    ]
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)
    _print_skipped(summary.skipped)


def _mount_subcommands() -> None:
    """The evaluate and train command groups live in their own modules."""
    from kosearch.cli.evaluate import app as evaluate_app
    from kosearch.cli.train import app as train_app

    app.add_typer(evaluate_app, name="evaluate", help="Evaluate encoders (STS table, retrieval metrics).")
    app.add_typer(train_app, name="train", help="Train domain encoders (TSDAE, SimCSE, NLI, STS, multitask).")


def main() -> None:
    """Console-script entry point: known errors become one clear line and exit code 1."""
    # Model loading draws its own per-weight progress bars; kosearch shows its own progress.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    show_notices(lambda text: err.print(text, style="dim", markup=False, highlight=False))  # e.g. first-use conversion
    try:
        app(standalone_mode=False)
    except KosearchError as error:
        err.print(f"[bold red]error:[/] {error}")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted; the index keeps its last checkpoint")
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as error:  # click's own usage errors arrive here in non-standalone mode
        import click

        if isinstance(error, click.ClickException):
            error.show()
            raise SystemExit(error.exit_code) from None
        raise


_mount_subcommands()
