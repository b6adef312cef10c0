"""``kosearch train RECIPE``: train an encoder with one of :mod:`kosearch.train`'s recipes.

Parsing and printing only; every decision is made in :mod:`kosearch.train`. The trainer's progress bar and logs go
to stderr; the summary table (or ``--json``) to stdout. Every command writes an ordinary sentence-transformers
folder with a README.md model card that ``kosearch index --model FOLDER`` accepts.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from kosearch.cli.output import (
    add_unbroken_column, as_text, emit_json, err, out, plain_row, print_table, printable, show_error
)
from kosearch.errors import KosearchError

from kosearch.train.config import TrainingConfig

if TYPE_CHECKING:
    from kosearch.train import TrainResult

app = typer.Typer(
    help="Train Korean sentence encoders: adapt one to a folder of documents, or TSDAE, SimCSE, NLI, STS, multitask. "
    "Each recipe writes a sentence-transformers model folder with a model card that `kosearch index --model FOLDER` accepts.",
    no_args_is_help=True,
    add_completion=False,
)

# Options of the recipes' own arguments; the options every recipe shares come from TrainingConfig's fields.
JsonOption = typer.Option(False, "--json", help="Print the result as one JSON object.")
ColumnOption = typer.Option(None, "--column", help="Text column of a .tsv/.csv sentences file (e.g. review).")
LimitOption = typer.Option(None, "--limit", min=1, help="Use at most N distinct sentences, in file order.")
SentencesOption = typer.Option(
    ..., "--sentences", "--train", help="Unlabelled sentences: .txt (one per line) or .tsv/.csv[.gz] (repeatable)."
)


@dataclass(frozen=True)
class Default:
    """A command's own default (and help) for a TrainingConfig option: recipes differ in epochs and batch size."""

    value: Any
    help: str | None = None
    minimum: float | None = None
    flags: tuple[str, ...] = ()
    """Replaces the field's flags, e.g. ``--on/--off`` for a boolean whose default this command turns on."""


def training_options(**defaults: Default) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one typer option per :class:`~kosearch.train.TrainingConfig` field, in place of its
    ``config`` parameter, and call it with the ``TrainingConfig`` they make.

    The dataclass is the only place an option is declared (flag, default, help, limits: see
    :mod:`kosearch.train.config`); typer reads commands from their signatures, so the decorator writes the
    signature the command would have had with all the options spelt out. ``defaults`` overrides a field's default
    (and help) for one recipe, e.g. TSDAE's batch size of 8.
    """
    from kosearch.train.config import TrainingConfig, config_fields, config_types

    fields = [item for item in config_fields() if item.metadata.get("cli", True)]
    unknown = set(defaults) - {item.name for item in fields}
    if unknown:
        raise TypeError(f"not TrainingConfig options: {sorted(unknown)}")
    types = config_types()

    def option_parameter(item: dataclasses.Field) -> inspect.Parameter:
        meta = item.metadata
        override = defaults.get(item.name)
        default = item.default if item.default is not dataclasses.MISSING else ...
        if override is not None:
            default = override.value
        annotation = types[item.name]
        if typing.get_origin(annotation) is Literal:
            annotation = str  # TrainingConfig checks the value and says which are allowed
        flags = (override.flags if override is not None else ()) or meta["flags"] or (f"--{item.name.replace('_', '-')}",)
        minimum = override.minimum if override is not None and override.minimum is not None else meta["min"]
        option = typer.Option(
            default,
            *flags,
            help=(override.help if override is not None and override.help else meta["help"]),
            min=minimum,
            max=meta["max"],
            show_default=default not in (None, ...) and not isinstance(default, bool),
        )
        return inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(command, eval_str=True)
        if "config" not in own.parameters:
            raise TypeError(f"{command.__name__} needs a `config: TrainingConfig` parameter to fill")
        parameters: list[inspect.Parameter] = []
        for parameter in own.parameters.values():
            if parameter.name == "config":
                parameters += [option_parameter(item) for item in fields]
            else:
                parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        names = [item.name for item in fields]

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            config = TrainingConfig(**{name: values.pop(name) for name in names})
            return command(config=config, **values)

        wrapper.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return wrapper

    return decorate


@app.command()
@training_options(
    batch_size=Default(
        32, "Queries per batch with --fine-tune (each with its passage and a hard negative; the other passages are "
            "negatives too); without it, texts per encoding batch.",
        minimum=2,
    ),
    max_seq_length=Default(None, "Tokens kept per text (default: planned from the passages and --max-minutes)."),
    freeze_embeddings=Default(
        True, "Keep the word embeddings fixed (default; 3/4 of the bundled e5's weights, most of a CPU step).",
        flags=("--freeze-embeddings/--train-embeddings",),
    ),
    max_minutes=Default(None, "Budget of the whole command in minutes: the map's examples are encoded within it; with "
                              "--fine-tune, steps and sequence length are planned for it."),
)
def adapt(
    documents: Path = typer.Option(
        ..., "--documents", "-d", help="Folder (or file) of the domain's unlabelled documents, any format index reads."
    ),
    text_fields: Optional[list[str]] = typer.Option(
        None, "--text-field", help="CSV/TSV column or JSONL key to read as text (repeatable; default: as index does)."
    ),
    scale: Optional[float] = typer.Option(
        None, "--scale", min=0.0,
        help="Similarity scale = 1 / temperature of the ranking loss, for --fine-tune or the linear map (default 20).",
    ),
    anchor_weight: Optional[float] = typer.Option(
        None, "--anchor-weight", min=0.0,
        help="Weight of the pull towards the base model's embeddings (0: off; default: the recipe's).",
    ),
    hard_negatives: Optional[bool] = typer.Option(
        None, "--hard-negatives/--no-hard-negatives",
        help="Train with a BM25-mined hard negative per query, or with in-batch negatives only (default: the recipe's).",
        show_default=False,
    ),
    question_share: Optional[float] = typer.Option(
        None, "--question-share", min=0.0, max=1.0,
        help="Share of keyword queries written as generic Korean questions (default: the recipe's).",
    ),
    word_weights: Optional[bool] = typer.Option(
        None, "--word-weights/--no-word-weights",
        help="Weight the pooling by the folder's inverse document frequencies (default: the recipe's).",
        show_default=False,
    ),
    fine_tune: Optional[bool] = typer.Option(
        None, "--fine-tune/--no-fine-tune",
        help="Train the encoder itself on queries mined from the folder, instead of the linear map, within "
             "--max-minutes (default: the recipe's).",
        show_default=False,
    ),
    linear_map: Optional[bool] = typer.Option(
        None, "--linear-map/--no-linear-map",
        help="Without --fine-tune: train a linear map after pooling on queries mined from the folder (default: the "
             "recipe's).",
        show_default=False,
    ),
    config: TrainingConfig = None,
    as_json: bool = JsonOption,
) -> None:
    """Adapt an encoder to a folder of unlabelled documents: the folder's token weights and a linear map trained
    on queries mined from it (minutes, the encoder untouched); with --fine-tune instead of the map, training the
    encoder on those queries with BM25 hard negatives, within a time budget."""
    from kosearch.train import train_adapt

    result = _run(
        lambda: train_adapt(
            config, documents, text_fields=text_fields, scale=scale, anchor_weight=anchor_weight,
            hard_negatives=hard_negatives, question_share=question_share, word_weights=word_weights,
            fine_tune=fine_tune, linear_map=linear_map, from_process_start=True,
        )
    )
    _report(result, as_json)


@app.command()
@training_options(batch_size=Default(8, "Sentences per batch (the TSDAE paper used 8)."))
def tsdae(
    sentences: list[Path] = SentencesOption,
    column: Optional[str] = ColumnOption,
    limit: Optional[int] = LimitOption,
    deletion_ratio: float = typer.Option(0.6, "--deletion-ratio", min=0.0, max=0.95, help="Share of words deleted."),
    config: TrainingConfig = None,
    as_json: bool = JsonOption,
) -> None:
    """TSDAE: reconstruct each sentence from the embedding of a copy with most words deleted (unsupervised)."""
    from kosearch.train import train_tsdae

    result = _run(lambda: train_tsdae(config, sentences, column=column, limit=limit, deletion_ratio=deletion_ratio))
    _report(result, as_json)


@app.command()
@training_options(batch_size=Default(64, "Sentences per batch (in-batch negatives).", minimum=2))
def simcse(
    sentences: list[Path] = SentencesOption,
    column: Optional[str] = ColumnOption,
    limit: Optional[int] = LimitOption,
    scale: float = typer.Option(20.0, "--scale", min=0.0, help="Similarity scale = 1 / temperature."),
    config: TrainingConfig = None,
    as_json: bool = JsonOption,
) -> None:
    """Unsupervised SimCSE: each sentence, seen twice through dropout, is its own positive (unsupervised)."""
    from kosearch.train import train_simcse

    _report(_run(lambda: train_simcse(config, sentences, column=column, limit=limit, scale=scale)), as_json)


@app.command()
@training_options(batch_size=Default(32, "Triples per batch.", minimum=2))
def nli(
    nli_files: list[Path] = typer.Option(
        ..., "--nli", "--train", help="NLI file: KorNLI .tsv or KLUE-NLI .json (repeatable)."
    ),
    scale: float = typer.Option(20.0, "--scale", min=0.0, help="Similarity scale = 1 / temperature."),
    config: TrainingConfig = None,
    as_json: bool = JsonOption,
) -> None:
    """Supervised SimCSE on NLI: premise, entailed hypothesis (positive), contradicted one (hard negative)."""
    from kosearch.train import train_nli

    _report(_run(lambda: train_nli(config, nli_files, scale=scale)), as_json)


@app.command()
@training_options(epochs=Default(4.0), batch_size=Default(16, "Pairs per batch.", minimum=2))
def sts(
    sts_files: list[Path] = typer.Option(
        ..., "--sts", "--train", help="STS pairs: KorSTS .tsv or KLUE-STS .json (repeatable)."
    ),
    loss: str = typer.Option("cosent", "--loss", help="cosent (ranking; default) or cosine (MSE regression)."),
    config: TrainingConfig = None,
    as_json: bool = JsonOption,
) -> None:
    """Supervised STS: fit cosine similarity to gold scores (CoSENT or CosineSimilarityLoss)."""
    from kosearch.train import train_sts

    _report(_run(lambda: train_sts(config, sts_files, loss=loss)), as_json)


@app.command()
@training_options(batch_size=Default(32, "Triples or pairs per batch.", minimum=2))
def multitask(
    nli_files: list[Path] = typer.Option(..., "--nli", help="NLI file: KorNLI .tsv or KLUE-NLI .json (repeatable)."),
    sts_files: list[Path] = typer.Option(..., "--sts", help="STS pairs: KorSTS .tsv (repeatable)."),
    sts_loss: str = typer.Option("cosine", "--sts-loss", help="Loss of the STS task: cosine or cosent."),
    sampler: str = typer.Option(
        "proportional", "--sampler", help="proportional (all batches of both) or round_robin (alternate)."
    ),
    sts_phase_epochs: float = typer.Option(
        0.0, "--sts-phase-epochs", min=0.0, help="Epochs of a second, STS-only phase (0: none)."
    ),
    sts_phase_lr: Optional[float] = typer.Option(
        None, "--sts-phase-lr", min=0.0, help="Learning rate of the STS-only phase (default: half of --lr)."
    ),
    scale: float = typer.Option(20.0, "--scale", min=0.0, help="NLI similarity scale = 1 / temperature."),
    config: TrainingConfig = None,
    as_json: bool = JsonOption,
) -> None:
    """NLI (MultipleNegativesRankingLoss) and STS together, optionally then STS alone at a lower rate."""
    from kosearch.train import train_multitask

    result = _run(lambda: train_multitask(
        config,
        nli_files=nli_files,
        sts_files=sts_files,
        scale=scale,
        sts_loss_name=sts_loss,
        sampler=sampler,
        sts_phase_epochs=sts_phase_epochs,
        sts_phase_learning_rate=sts_phase_lr,
    ))
    _report(result, as_json)


def _run(train: Callable[[], TrainResult]) -> TrainResult:
    """Run a recipe with everything it prints sent to stderr: the Hugging Face trainer and tqdm write their log
    lines to stdout, which must hold only the summary (one JSON object with ``--json``, for scripts)."""
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):
        return train()


def _report(result: TrainResult, as_json: bool) -> None:
    if as_json:
        emit_json(_result_dict(result))
        return
    took = f"{result.train_seconds:.0f} s" if result.train_seconds < 60 else f"{result.train_seconds / 60:.1f} min"
    done = (f"{result.steps} steps in {took}" if result.phases
            else f"no training steps (the encoder's weights are the base model's), made in {took}")
    out.print(
        Text.assemble(
            "Trained " if result.phases else "Made ",
            (printable(result.recipe), "bold"),
            printable(f" from {result.base_model}: {done} -> {result.output}"),
        )
    )
    if result.evaluation:
        # Short headers (cos P = cosine Pearson, ...) so the nine columns fit an 80-column terminal or log file;
        # a narrower terminal, or a pipe, gets tab-separated lines instead of cut numbers.
        title = f"STS on {result.evaluation_file} (x100)"
        table = Table(title=as_text(title), box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
        metrics = list(next(iter(result.evaluation.values())))
        headers = [_short_metric(metric) for metric in metrics]
        rows = [(label, [f"{values[metric]:.2f}" for metric in metrics]) for label, values in result.evaluation.items()]
        add_unbroken_column(table, "model", [printable(label) for label, _ in rows])
        for position, header in enumerate(headers):
            add_unbroken_column(table, header, [cells[position] for _, cells in rows], justify="right")
        lines = [printable(title, one_line=True), plain_row("model", *headers)]
        for label, cells in rows:
            table.add_row(as_text(label), *cells)
            lines.append(plain_row(label, *cells))
        print_table(out, table, lines)
    for note in result.notes:
        err.print(as_text(f"note: {note}"))
    out.print(as_text(f"Model card: {result.card}"))


def _short_metric(metric: str) -> str:
    similarity, _, correlation = metric.partition("_")
    return f"{similarity[:3]} {correlation[:1].upper()}" if correlation else similarity


def _result_dict(result: TrainResult) -> dict:
    return {
        "recipe": result.recipe,
        "output": str(result.output),
        "base_model": result.base_model,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 1),
        "evaluation_file": result.evaluation_file,
        "evaluation": result.evaluation,
        "phases": [
            {
                "name": phase.name,
                "steps": phase.steps,
                "train_seconds": round(phase.train_seconds, 1),
                "best_step": phase.best_step,
                "best_dev_spearman": phase.best_dev_spearman,
                "dev_history": phase.dev_history,
                "planned_steps": phase.planned_steps,
                "first_step_seconds": phase.first_step_seconds,
                "median_step_seconds": phase.median_step_seconds,
                "save_seconds": phase.save_seconds,
            }
            for phase in result.phases
        ],
        "card": str(result.card),
        "notes": result.notes,
    }


def main() -> None:
    """Run the train commands on their own (``python -m kosearch.cli.train``), printing errors without tracebacks."""
    try:
        app()
    except KosearchError as error:
        show_error(error)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
