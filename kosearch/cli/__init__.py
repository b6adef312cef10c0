"""The ``kosearch`` command line: parsing and printing around ``kosearch.Index``, nothing more."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from kosearch.cli.output import (
    DeviceOption,
    EncoderBackendOption,
    EncoderProcessOption,
    VectorStoreOption,
    PrecisionOption,
    add_unbroken_column,
    as_text,
    emit_json,
    err,
    markup_safe,
    out,
    plain_row,
    print_table,
    printable,
    show_error,
    status,
    warn,
)
from kosearch import RayOptions
from kosearch.errors import IndexNotFoundError, KosearchError
from kosearch.notices import show_notices

if TYPE_CHECKING:
    from kosearch.index import Index
    from kosearch import SkippedFile
    from kosearch.results import Hit, IndexedSentence, IngestReport

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
TEXT_ROOM = 24
"""Cells a sentence column needs beyond its longest word; a narrower terminal gets plain lines."""


def _print_version(value: bool) -> None:
    if value:
        from kosearch._version import __version__

        out.print(f"kosearch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the kosearch version and exit."
    ),
) -> None:
    """Korean semantic search: index document folders, query them, mine paraphrases, train and evaluate encoders."""


@app.command()
def index(
    documents: Path = typer.Argument(..., help="Folder (or single file) of documents to index."),
    index_path: Path = typer.Option(..., "--index", "-i", help="Index folder to create or update."),
    model: Optional[str] = ModelOption,
    device: Optional[str] = DeviceOption,
    encoder_backend: Optional[str] = EncoderBackendOption,
    encoder_process: Optional[str] = EncoderProcessOption,
    text_field: Optional[list[str]] = typer.Option(
        None, "--text-field", help="Column/field holding text in CSV, TSV and JSONL files (repeatable)."
    ),
    unit: Optional[str] = typer.Option(
        None,
        "--unit",
        help="What a hit is: 'sentence', or 'passage' (consecutive sentences). A new index takes the "
        "default; an existing one keeps the unit it was made with.",
    ),
    mode: Optional[str] = typer.Option(None, "--mode", hidden=True, help="Old name of --unit."),
    field: Optional[list[str]] = typer.Option(
        None,
        "--field",
        help="CSV/TSV/JSONL column to keep as typed metadata for --where filters (repeatable); by "
        "default every column that is not indexed as text is kept.",
    ),
    faiss_factory: str = typer.Option("Flat", help="FAISS index_factory string for a new index."),
    vector_store: Optional[str] = VectorStoreOption,
    prune: bool = typer.Option(True, help="Remove files that disappeared from the folder."),
    lexical: Optional[bool] = typer.Option(
        None,
        "--lexical/--no-lexical",
        help="Keep a lexical index (BM25 over Kiwi morphemes) for hybrid search (default). --no-lexical "
        "builds a new index without one: dense search only, faster to build.",
        show_default=False,
    ),
    precision: Optional[str] = PrecisionOption,
    ray: Optional[str] = typer.Option(
        None,
        "--ray",
        help="Read, split and encode on a Ray cluster: 'auto' (this machine's cluster, else a local one) or "
        "the cluster's address. This process still writes the index. Needs the ray extra: pip install kosearch\\[ray].",
    ),
    ray_workers: Optional[int] = typer.Option(
        None, "--ray-workers", min=1, help="Encoding actors with --ray (default: one per GPU, else one per 2 CPUs)."
    ),
    as_json: bool = JsonOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display and no status lines."),
) -> None:
    """Index a document folder (creating the index, or updating it: only changed files are re-encoded).

    Glob patterns listed in the folder's .kosearchignore file are left out. A folder with nothing to
    index is not an error: the command warns on stderr and exits 0.
    """
    if not documents.exists():
        raise KosearchError(f"{documents} does not exist")
    try:
        if ray is None and ray_workers is not None:
            raise KosearchError("--ray-workers needs --ray (auto, or the Ray cluster's address)")
        ray_options = None if ray is None else RayOptions(address=ray, encode_workers=ray_workers)
        if ray_options is not None:
            ray_options.require_ray()
        from kosearch.index import encoder_process_for

        encoder_process = encoder_process_for(documents, encoder_process)  # auto: by the folder's size
        with _open_for_indexing(
            index_path, model, device, encoder_backend, faiss_factory, quiet, vector_store, precision, encoder_process
        ) as idx:
            if not quiet:
                encoder = idx.encoder
                status(
                    f"kosearch indexing {documents} with {encoder.name} on {encoder.device}"
                    + _backend_note(encoder)
                )
            with _ingest_progress(quiet) as progress:
                report = idx.add_folder(
                    documents, text_fields=text_field, unit=unit or mode, metadata_fields=field, prune=prune,
                    lexical=lexical, progress=progress, ray=ray_options,
                )
            info = idx.info()
    except KeyboardInterrupt:
        err.print("interrupted; the index keeps its last checkpoint (run the same command again to finish)")
        raise typer.Exit(130) from None
    if as_json:
        emit_json({**report.to_dict(), "index": info.path, "sentences_total": info.sentences})
    else:
        out.print(
            as_text(
                f"Indexed {documents} into {index_path}: {report.files_added} added, {report.files_updated} "
                f"updated, {report.files_unchanged} unchanged, {report.files_removed} removed files; "
                f"{report.sentences_added} sentences encoded in {report.seconds:.1f}s; "
                f"{info.sentences} sentences in the index."
            )
        )
        _print_skipped(report.skipped)
        for warning in report.warnings:
            warn(warning)
    _warn_if_nothing_indexed(documents, report, info.sentences)


def _open_for_indexing(
    index_path: Path,
    model: Optional[str],
    device: Optional[str],
    encoder_backend: Optional[str],
    faiss_factory: str,
    quiet: bool,
    vector_store: Optional[str] = None,
    precision: Optional[str] = None,
    encoder_process: Optional[str] = None,
) -> Index:
    """``Index.open_or_create``, saying which encoder is being loaded before the (slow) load starts."""
    from kosearch.index import Index

    say = (lambda name: None) if quiet else (lambda name: _say_loading(name, device))
    options = dict(
        device=device, encoder_backend=encoder_backend, vector_store=vector_store, precision=precision,
        encoder_process=encoder_process,
    )
    if model is not None:
        say(model)
        return Index.open_or_create(index_path, model, faiss_factory=faiss_factory, **options)
    try:
        idx = Index.open(index_path, writable=True, **options)  # the encoder loads on first use
    except IndexNotFoundError:
        say("bundled")
        return Index.create(index_path, None, faiss_factory=faiss_factory, **options)
    say(idx.info().model)
    return idx


def _backend_note(encoder) -> str:
    """`` (encoder backend onnx)`` when the vectors are not computed by torch, which is the default."""
    backend = getattr(encoder, "encoder_backend", "torch")
    notes = [] if backend == "torch" else [f"encoder backend {backend}"]
    if getattr(encoder, "in_child_process", False):  # --encoder-process child
        notes.append("in a child process")
    return "".join(f" ({note})" for note in notes)


def _say_loading(name: str, device: Optional[str]) -> None:
    where = f" on {device}" if device else ""
    status(f"loading encoder {name}{where}…")


def _warn_if_nothing_indexed(documents: Path, report: IngestReport, sentences_in_index: int) -> None:
    """An empty result usually means a wrong folder or a too-broad .kosearchignore: say so."""
    read = report.files_added + report.files_updated + report.files_unchanged
    if read == 0 and report.skipped:
        warn(
            f"nothing indexed from {documents}: all {len(report.skipped)} file(s) found were skipped "
            "(reasons listed above, and in `kosearch info`)."
        )
    elif read == 0:
        warn(
            f"no documents found in {documents}: kosearch reads files with a known extension "
            "(such as .txt, .md, .csv, .tsv, .jsonl) and leaves out hidden files and the patterns in "
            "the folder's .kosearchignore. Check the path and that file."
        )
    elif sentences_in_index == 0:
        warn(f"the files in {documents} held no sentences to index; the index is empty.")


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
            # The column is a markup template: the file name must not be read as markup.
            self._progress.update(task, completed=sentences, files=files, current=markup_safe(current))

        return update

    def __exit__(self, *exc_info: object) -> None:
        if not self._quiet:
            self._progress.stop()


def _print_skipped(skipped: list[SkippedFile]) -> None:
    if not skipped:
        return
    title = f"Skipped {len(skipped)} file(s)"
    table = Table(title=title, title_justify="left")
    add_unbroken_column(table, "file", [printable(item.path, one_line=True) for item in skipped])
    table.add_column("reason", overflow="fold")
    for item in skipped:
        table.add_row(Text(printable(item.path, one_line=True)), as_text(item.reason))
    lines = [f"{title}:", *(plain_row(item.path, item.reason) for item in skipped)]
    print_table(err, table, lines, room=TEXT_ROOM // 2)


@app.command()
def query(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    queries: Optional[list[str]] = typer.Argument(
        None, metavar="QUERY", help="Query text(s). Without any, an interactive prompt opens."
    ),
    k: int = typer.Option(10, "-k", "--top-k", min=1, help="Hits per query."),
    context: int = typer.Option(0, "--context", "-c", min=0, help="Neighbouring sentences to show."),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="dense, lexical or hybrid (default: hybrid when the index has a lexical index)."
    ),
    where: Optional[list[str]] = typer.Option(
        None, "--where", "-w", help="Filter applied before ranking, e.g. \"format = 'pdf'\", \"rating >= 9\" (repeatable: all must hold)."
    ),
    group_by: Optional[str] = typer.Option(None, "--group-by", help="'document': one hit (its best unit) per document."),
    fusion: str = typer.Option("convex", "--fusion", help="How hybrid mode fuses: convex or rrf."),
    lexical_weight: Optional[float] = typer.Option(
        None, "--lexical-weight", help="Weight of the lexical score in convex fusion (0..1, default 0.3)."
    ),
    bm25_k1: Optional[float] = typer.Option(
        None, "--bm25-k1", min=0.0, help="BM25 term-frequency saturation of the lexical signal (default: the measured one, see docs/benchmarks.md)."
    ),
    bm25_b: Optional[float] = typer.Option(
        None, "--bm25-b", min=0.0, max=1.0, help="BM25 length normalisation, 0 (none) to 1 (full) (default: the measured one)."
    ),
    model: Optional[str] = ModelOption,
    device: Optional[str] = DeviceOption,
    encoder_backend: Optional[str] = EncoderBackendOption,
    as_json: bool = JsonOption,
) -> None:
    """Search an index: one-shot with QUERY arguments, or interactively (empty line or Ctrl-D quits).

    Results are a table in a terminal and tab-separated lines (rank, score, file:line, sentence)
    when stdout is piped. With --json, each query's result is one JSON object on its own line.
    """
    from kosearch.index import Index

    if queries and any(not text.strip() for text in queries):
        raise typer.BadParameter(
            "a query is empty; give the words to search for, e.g. '치타가 먹이를 쫓는다' "
            "(with no QUERY at all, an interactive prompt opens).",
            param_hint="QUERY",
        )
    if model is not None:
        _say_loading(model, device)
    with Index.open(index_path, model, device=device, encoder_backend=encoder_backend) as idx:
        _warn_if_empty(idx, index_path)
        if model is None:
            _say_loading(idx.info().model, device)
        options = dict(
            k=k, context=context, mode=mode, where=where or None, group_by=group_by, fusion=fusion,
            lexical_weight=lexical_weight, bm25_k1=bm25_k1, bm25_b=bm25_b,
        )
        encoder = idx.encoder  # load the model before the first prompt, not after it
        if queries:
            for text, hits in zip(queries, idx.search_batch(queries, **options)):
                _print_hits(text, hits, as_json)
            return
        interactive = sys.stdin.isatty()
        if interactive and not as_json:
            status(
                f"kosearch: {idx.info().sentences:,} sentences, encoder {encoder.name} on {encoder.device}"
                f"{_backend_note(encoder)}; "
                "empty line or Ctrl-D quits."
            )
        for text in _read_queries(interactive):
            _print_hits(text, idx.search(text, **options), as_json)


def _warn_if_empty(idx: Index, index_path: Path) -> None:
    if len(idx) == 0:
        warn(
            f"index {index_path} holds no sentences, so no query can find anything; "
            f"index documents into it first: kosearch index DOCS --index {index_path}"
        )


def _read_queries(interactive: bool) -> Iterator[str]:
    """Lines from the prompt (or stdin) until an empty line, end of input or Ctrl-C."""
    while True:
        try:
            line = out.input("[bold cyan]query>[/] ") if interactive else input()
        except (EOFError, KeyboardInterrupt):
            return
        line = line.strip()
        if not line:
            return
        yield line


def _print_hits(text: str, hits: list[Hit], as_json: bool) -> None:
    if as_json:
        emit_json({"query": text, "hits": [hit.to_dict() for hit in hits]})
        return
    if not hits:
        out.print(as_text(f"「{text}」: no hits"))
        return
    table = Table(title=as_text(f"「{text}」"), title_justify="left", show_lines=False)
    add_unbroken_column(table, "#", [str(len(hits))], justify="right", style="dim")
    add_unbroken_column(table, "score", [f"{hit.score:.3f}" for hit in hits], justify="right")
    table.add_column("sentence", overflow="fold")
    # A path:line stays on one line (to be copied as it is); where it cannot, print_table prints lines.
    add_unbroken_column(table, "file:line", [_where(hit) for hit in hits], style="cyan")
    lines = [f"query: {printable(text, one_line=True)}", plain_row("#", "score", "file:line", "sentence")]
    for rank, hit in enumerate(hits, 1):
        where = _where(hit)
        table.add_row(str(rank), f"{hit.score:.3f}", _sentence_with_context(hit), as_text(where))
        lines.append(plain_row(rank, f"{hit.score:.3f}", where, hit.text))
        lines.extend(plain_row("", "", "before", sentence) for sentence in hit.context_before)
        lines.extend(plain_row("", "", "after", sentence) for sentence in hit.context_after)
    print_table(out, table, lines, room=TEXT_ROOM)


def _where(sentence: Hit | IndexedSentence) -> str:
    return printable(sentence.location, one_line=True)


def _sentence_with_context(hit: Hit) -> Text:
    text = _highlighted(hit)
    if not (hit.context_before or hit.context_after):
        return text
    parts = [as_text(" ".join(hit.context_before), "dim"), text, as_text(" ".join(hit.context_after), "dim")]
    return Text(" ").join(part for part in parts if part.plain)


def _highlighted(hit: Hit) -> Text:
    """The hit's text (its best sentence first, when it is a passage) with the query's morphemes in bold."""
    start, end = hit.best_sentence or (0, len(hit.text))
    shown = Text()
    for piece_start, piece_end, style in ((start, end, ""), (0, start, "dim"), (end, len(hit.text), "dim")):
        if piece_end <= piece_start:
            continue
        piece = _styled(hit.text, piece_start, piece_end, hit.highlights, style)
        if shown.plain:
            shown.append(" … " if style else "")
        shown.append_text(piece)
    return shown


def _styled(text: str, start: int, end: int, spans, style: str) -> Text:
    # Escaped piece by piece, so a span's offsets stay right even where printable() rewrites characters.
    shown = Text(style=style)
    position = start
    for span_start, span_end in spans:
        span_start, span_end = max(span_start, start), min(span_end, end)
        if span_end <= span_start:
            continue
        shown.append(printable(text[position:span_start]))
        shown.append(printable(text[span_start:span_end]), style="bold")
        position = span_end
    shown.append(printable(text[position:end]))
    return shown


@app.command()
def paraphrases(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    top: int = typer.Option(20, "--top", "-n", min=1, help="How many pairs to report."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Only pairs scoring at least this."),
    neighbours: int = typer.Option(10, "--neighbours", min=1, help="Nearest neighbours searched per sentence."),
    as_json: bool = JsonOption,
) -> None:
    """The most similar sentence pairs inside an index (exact duplicates reported once).

    A table in a terminal; tab-separated lines (score, file:line A, sentence A, file:line B,
    sentence B) when stdout is piped.
    """
    from kosearch.index import Index

    with Index.open(index_path) as idx:
        _warn_if_empty(idx, index_path)
        pairs = idx.paraphrases(top=top, min_score=min_score, neighbours=neighbours)
    if as_json:
        emit_json([pair.to_dict() for pair in pairs])
        return
    if not pairs:
        out.print("No paraphrase pairs" + (f" scoring at least {min_score}." if min_score is not None else "."))
        return
    title = f"Top {len(pairs)} paraphrase pairs"
    table = Table(title=title, title_justify="left")
    add_unbroken_column(table, "score", [f"{pair.score:.3f}" for pair in pairs], justify="right")
    table.add_column("sentence A", overflow="fold")
    table.add_column("sentence B", overflow="fold")
    add_unbroken_column(table, "where", [_where(s) for pair in pairs for s in (pair.a, pair.b)], style="cyan")
    lines = [title, plain_row("score", "file:line A", "sentence A", "file:line B", "sentence B")]
    for pair in pairs:
        a, b = _with_copies(pair.a.text, pair.copies_a), _with_copies(pair.b.text, pair.copies_b)
        where_a, where_b = _where(pair.a), _where(pair.b)
        table.add_row(f"{pair.score:.3f}", a, b, as_text(f"{where_a}\n{where_b}"))
        lines.append(plain_row(f"{pair.score:.3f}", where_a, a.plain, where_b, b.plain))
    print_table(out, table, lines, room=TEXT_ROOM)


def _with_copies(sentence: str, copies: int) -> Text:
    shown = as_text(sentence)
    if copies > 1:
        shown.append(f" (x{copies})", style="dim")
    return shown


@app.command()
def info(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    as_json: bool = JsonOption,
) -> None:
    """Model, dimension, documents, sentences, unit, lexical index, size and skipped files of an index."""
    from kosearch.index import Index

    with Index.open(index_path) as idx:
        summary = idx.info()
    if as_json:
        emit_json(summary.to_dict())
        return
    title = f"kosearch index {summary.path}"
    table = Table(show_header=False, title=as_text(title), title_justify="left")
    table.add_column(style="bold", overflow="fold")
    table.add_column(overflow="fold")
    rows = [
        ("model", summary.model),
        ("fingerprint", summary.fingerprint),
        ("dimension", str(summary.dimension)),
        *([("encoder backend", summary.encoder_backend)] if summary.encoder_backend else []),
        ("prompts", json.dumps(summary.prompts, ensure_ascii=False)),
        ("vectors", _vectors_line(summary)),
        ("documents", f"{summary.documents:,}"),
        ("sentences", f"{summary.sentences:,}"),
        ("segments", _segments_line(summary)),
        ("unit", summary.unit or "none yet (the first `kosearch index` run decides)"),
        ("lexical index", _lexical_summary(summary.lexical)),
        ("size", f"{summary.size_bytes / 1e6:.1f} MB"),
        ("roots", "\n".join(summary.roots)),
        ("created", summary.created),
        ("updated", summary.updated),
        ("kosearch", summary.kosearch_version),
        ("skipped files", str(len(summary.skipped))),
    ]
    for key, value in rows:
        table.add_row(key, as_text(value))
    lines = [printable(title, one_line=True)]
    for key, value in rows:
        values = summary.roots if key == "roots" else value.split("\n") if key == "segments" else [value]
        lines.extend(plain_row(key, single) for single in values)
    print_table(out, table, lines)
    _print_skipped(summary.skipped)


def _vectors_line(summary) -> str:
    """``faiss (Flat)``, or where a database keeps them: ``qdrant (local, collection kosearch)``."""
    if summary.vector_store != "faiss":
        return summary.vector_store
    return f"{summary.vector_backend} ({summary.faiss_factory})"


def _recall_text(entry: dict) -> str:
    """``recall@10 0.982 with ties, 0.929 by ids``; only by ids for a segment measured before ties
    were counted; ``""`` for an exact segment."""
    ties, by_ids = entry.get("recall_at_10"), entry.get("recall_at_10_ids")
    if ties is None and by_ids is None:
        return ""
    if ties is None:
        return f"recall@10 {by_ids:.3f} by ids (ties not counted)"
    return f"recall@10 {ties:.3f} with ties" + (f", {by_ids:.3f} by ids" if by_ids is not None else "")


def _segments_line(summary) -> str:
    """``3 (deleted vectors 120) segment.000004 1,000,000 HNSW32 recall@10 0.982 with ties, 0.929 by ids; ...``"""
    parts = []
    for entry in summary.segment_details:
        recall = _recall_text(entry)
        parts.append(f"{entry['name']} {entry['count']:,} {entry['factory']}" + (f" {recall}" if recall else ""))
    head = f"{summary.segments} (deleted vectors {summary.deleted_vectors:,})"
    return "\n".join([head, *parts])


@app.command()
def remove(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    paths: list[str] = typer.Argument(
        ..., metavar="PATH_OR_GLOB",
        help="Files to take out, relative to the indexed folder ('old/2019/*.txt'; a folder means all "
        "under it; quote globs so the shell leaves them alone), or paths on disk inside it.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Take documents out of an index (their vectors and rows, in one commit).

    A removed file still in its folder comes back the next time the folder is indexed; move it
    away or list it in .kosearchignore. `kosearch compact` then gives the disk space back.
    Exits 1 when nothing matched.
    """
    from kosearch.index import Index

    with Index.open(index_path, writable=True) as idx:
        report = idx.remove(paths)
        total = idx.info().sentences
    if as_json:
        emit_json({**report.to_dict(), "index": str(index_path), "sentences_total": total})
    else:
        for pattern in report.unmatched:
            warn(f"no indexed document matches {pattern}")
        out.print(
            as_text(
                f"Removed {report.documents} documents ({report.sentences} sentences) from {index_path}; "
                f"{total} sentences in the index."
            )
        )
    if report.documents == 0:
        raise typer.Exit(1)


@app.command()
def compact(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    as_json: bool = JsonOption,
) -> None:
    """Give back the disk space of removed documents and merge the index's files."""
    from kosearch.index import Index

    with Index.open(index_path, writable=True) as idx:
        report = idx.compact()
        after = idx.info()
    if as_json:
        emit_json({"index": after.path, **report.to_dict(), "sentences": after.sentences,
                   "segment_details": after.segment_details})
        return
    ann = ", ".join(
        f"{entry['factory']}" + (f" ({_recall_text(entry)})" if _recall_text(entry) else "")
        for entry in after.segment_details
    )
    out.print(
        as_text(
            f"Compacted {index_path}: {report.segments_before} -> {report.segments_after} segments, "
            f"{report.vectors_dropped:,} deleted vectors dropped, {report.bytes_before / 1e6:.1f} MB -> "
            f"{report.bytes_after / 1e6:.1f} MB in {report.seconds:.1f} s; {after.sentences:,} sentences"
            + (f"; {ann}" if ann else "") + "."
        )
    )


@app.command()
def check(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder."),
    repair: bool = typer.Option(
        False, "--repair", help="Rebuild what can be rebuilt from the rows: lost vectors (encoded again with the "
        "index's encoder), lexical postings, counts; remove files no manifest names.",
    ),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="With --repair: the index's encoder, if it is not where the manifest says."
    ),
    device: Optional[str] = DeviceOption,
    as_json: bool = JsonOption,
) -> None:
    """Verify every file and row of an index; say exactly what is wrong and how to repair it.

    Exits 0 when the index is healthy (warnings, such as files left by a killed run, allowed), 1 when
    something is wrong (after --repair: when something could not be repaired).
    """
    from kosearch.index import Index

    report = Index.repair(index_path, model, device=device) if repair else Index.check(index_path)
    if as_json:
        emit_json(report.to_dict())
    else:
        for action in report.repaired:
            out.print(as_text(f"repaired: {action}"))
        for finding in report.findings:
            line = f"{finding.severity}: [{finding.kind}] {finding.message}"
            advice = finding.repair if not finding.repairable or repair else f"--repair will {finding.repair}"
            out.print(as_text(f"{line}\n    -> {advice}"))
        counts = ", ".join(f"{key.replace('_', ' ')}: {value:,}" for key, value in report.counts.items())
        problems = len(report.errors)
        verdict = "healthy" if report.healthy else f"{problems} problem{'s' if problems != 1 else ''}"
        hint = "" if report.healthy or repair or not all(f.repairable for f in report.errors) else (
            f"; run `kosearch check {index_path} --repair`"
        )
        out.print(as_text(f"{index_path}: {verdict} ({counts}){hint}."))
    if not report.healthy:
        raise typer.Exit(1)


def _lexical_summary(options: Optional[dict]) -> str:
    """One line for ``info``: whether the index has a lexical index, and what its tokens are."""
    if options is None:
        return "none (dense search only; `kosearch index` without --no-lexical adds it)"
    parts = [f"BM25 over Kiwi morphemes, tags {' '.join(options.get('tags', []))}"]
    parts += [name for name, value in options.items() if value is True]
    if options.get("stopwords"):
        parts.append(f"{len(options['stopwords'])} stopwords")
    return "; ".join(parts)


def _mount_subcommands() -> None:
    """The evaluate and train command groups, and serve, live in their own modules."""
    from kosearch.cli.evaluate import app as evaluate_app
    from kosearch.cli.serve import serve
    from kosearch.cli.train import app as train_app

    app.command()(serve)
    app.add_typer(evaluate_app, name="evaluate", help="Evaluate encoders (STS table, retrieval metrics).")
    app.add_typer(train_app, name="train", help="Train domain encoders (adapt to a folder; TSDAE, SimCSE, NLI, STS, multitask).")


def main() -> None:
    """Console-script entry point.

    typer runs in standalone mode, so usage errors (an unknown option, ``-k 0``, a missing
    argument) print typer's usual usage message and exit with 2, whichever click the installed
    typer uses (recent typer vendors its own, whose exceptions are not ``click``'s). Errors kosearch
    raises on purpose become one ``error: ...`` line and exit code 1.
    """
    # Model loading draws its own per-weight progress bars; kosearch shows its own progress.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    show_notices(lambda text: err.print(text, style="dim", markup=False, highlight=False))  # e.g. first-use conversion
    try:
        app()
    except KosearchError as error:
        show_error(error)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None


_mount_subcommands()
