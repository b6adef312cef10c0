"""``kosearch train RECIPE``: train an encoder with one of :mod:`kosearch.train`'s recipes.

Parsing and printing only; every decision is made in :mod:`kosearch.train`. The trainer's progress bar and logs go
to stderr; the summary table (or ``--json``) to stdout. Every command writes an ordinary sentence-transformers
folder with a README.md model card that ``kosearch index --model FOLDER`` accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from kosearch.cli.output import (
    DeviceOption, add_unbroken_column, as_text, emit_json, err, out, plain_row, print_table, printable, show_error
)
from kosearch.errors import KosearchError

if TYPE_CHECKING:
    from kosearch.train import TrainingConfig, TrainResult

app = typer.Typer(
    help="Train Korean sentence encoders (TSDAE, SimCSE, NLI, STS, multitask). Each recipe writes a "
    "sentence-transformers model folder with a model card that `kosearch index --model FOLDER` accepts.",
    no_args_is_help=True,
    add_completion=False,
)

# Options every recipe shares. The recipe defaults for epochs and batch size differ, so those are per command.
ModelOption = typer.Option(
    None, "--model", "-m", help="Base model: 'bundled' (default), a sentence-transformers folder or a HF id."
)
OutputOption = typer.Option(..., "--output", "-o", help="Folder to write the trained model to.")
LearningRateOption = typer.Option(None, "--lr", help="Peak learning rate (default: the recipe's).", min=0.0)
WarmupOption = typer.Option(0.1, "--warmup-ratio", min=0.0, max=0.99, help="Share of steps with linear warm-up.")
MaxSeqOption = typer.Option(128, "--max-seq-length", min=8, help="Tokens kept per sentence.")
SeedOption = typer.Option(42, "--seed", help="Random seed (data order, dropout, new weights).")
EvalStepsOption = typer.Option(100, "--eval-steps", min=1, help="Evaluate on --dev and checkpoint every N steps.")
DevOption = typer.Option(
    None, "--dev", help="STS dev file (KorSTS sts-dev.tsv); the checkpoint with the best cosine Spearman is kept."
)
EvalTestOption = typer.Option(
    None, "--eval-test", help="STS test file for the model card's table (default: the --dev file)."
)
MaxStepsOption = typer.Option(None, "--max-steps", min=1, help="Stop after N optimizer steps (per phase).")
MaxMinutesOption = typer.Option(
    None, "--max-minutes", min=0.01, help="Stop a phase after this many minutes of training (slow or shared machines)."
)
ResumeOption = typer.Option(False, "--resume", help="Continue from the last checkpoint in OUTPUT/checkpoints.")
PrecisionOption = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16 (mixed precision: GPU only).")
KeepCheckpointsOption = typer.Option(
    False, "--keep-checkpoints", help="Keep OUTPUT/checkpoints after success, to extend the run with --resume."
)
FreezeEmbeddingsOption = typer.Option(
    False,
    "--freeze-embeddings",
    help="Do not train the word embeddings: much faster on CPU for large-vocabulary models such as the bundled e5.",
)
SkipBaseOption = typer.Option(False, "--skip-base-eval", help="Do not score the base model for the card.")
JsonOption = typer.Option(False, "--json", help="Print the result as one JSON object.")
ColumnOption = typer.Option(None, "--column", help="Text column of a .tsv/.csv sentences file (e.g. review).")
LimitOption = typer.Option(None, "--limit", min=1, help="Use at most N distinct sentences, in file order.")


def _config(**values) -> TrainingConfig:
    from kosearch.train import TrainingConfig

    return TrainingConfig(
        output=values["output"],
        model=values["model"],
        epochs=values["epochs"],
        batch_size=values["batch_size"],
        learning_rate=values["lr"],
        warmup_ratio=values["warmup_ratio"],
        max_seq_length=values["max_seq_length"],
        seed=values["seed"],
        eval_steps=values["eval_steps"],
        dev=values["dev"],
        eval_test=values["eval_test"],
        max_steps=values["max_steps"],
        max_minutes=values["max_minutes"],
        resume=values["resume"],
        precision=values["precision"],
        device=values["device"],
        keep_checkpoints=values["keep_checkpoints"],
        freeze_embeddings=values["freeze_embeddings"],
        evaluate_base=not values["skip_base_eval"],
    )


@app.command()
def tsdae(
    sentences: list[Path] = typer.Option(
        ..., "--sentences", "--train", help="Unlabelled sentences: .txt (one per line) or .tsv/.csv[.gz] (repeatable)."
    ),
    column: Optional[str] = ColumnOption,
    limit: Optional[int] = LimitOption,
    deletion_ratio: float = typer.Option(0.6, "--deletion-ratio", min=0.0, max=0.95, help="Share of words deleted."),
    output: Path = OutputOption,
    model: Optional[str] = ModelOption,
    epochs: float = typer.Option(1.0, "--epochs", min=0.01),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Sentences per batch (the TSDAE paper used 8)."),
    lr: Optional[float] = LearningRateOption,
    warmup_ratio: float = WarmupOption,
    max_seq_length: int = MaxSeqOption,
    seed: int = SeedOption,
    eval_steps: int = EvalStepsOption,
    dev: Optional[Path] = DevOption,
    eval_test: Optional[Path] = EvalTestOption,
    max_steps: Optional[int] = MaxStepsOption,
    max_minutes: Optional[float] = MaxMinutesOption,
    resume: bool = ResumeOption,
    precision: str = PrecisionOption,
    device: Optional[str] = DeviceOption,
    keep_checkpoints: bool = KeepCheckpointsOption,
    freeze_embeddings: bool = FreezeEmbeddingsOption,
    skip_base_eval: bool = SkipBaseOption,
    as_json: bool = JsonOption,
) -> None:
    """TSDAE: reconstruct each sentence from the embedding of a copy with most words deleted (unsupervised)."""
    from kosearch.train import train_tsdae

    config = _config(**locals())
    _report(train_tsdae(config, sentences, column=column, limit=limit, deletion_ratio=deletion_ratio), as_json)


@app.command()
def simcse(
    sentences: list[Path] = typer.Option(
        ..., "--sentences", "--train", help="Unlabelled sentences: .txt (one per line) or .tsv/.csv[.gz] (repeatable)."
    ),
    column: Optional[str] = ColumnOption,
    limit: Optional[int] = LimitOption,
    scale: float = typer.Option(20.0, "--scale", min=0.0, help="Similarity scale = 1 / temperature."),
    output: Path = OutputOption,
    model: Optional[str] = ModelOption,
    epochs: float = typer.Option(1.0, "--epochs", min=0.01),
    batch_size: int = typer.Option(64, "--batch-size", min=2, help="Sentences per batch (in-batch negatives)."),
    lr: Optional[float] = LearningRateOption,
    warmup_ratio: float = WarmupOption,
    max_seq_length: int = MaxSeqOption,
    seed: int = SeedOption,
    eval_steps: int = EvalStepsOption,
    dev: Optional[Path] = DevOption,
    eval_test: Optional[Path] = EvalTestOption,
    max_steps: Optional[int] = MaxStepsOption,
    max_minutes: Optional[float] = MaxMinutesOption,
    resume: bool = ResumeOption,
    precision: str = PrecisionOption,
    device: Optional[str] = DeviceOption,
    keep_checkpoints: bool = KeepCheckpointsOption,
    freeze_embeddings: bool = FreezeEmbeddingsOption,
    skip_base_eval: bool = SkipBaseOption,
    as_json: bool = JsonOption,
) -> None:
    """Unsupervised SimCSE: each sentence, seen twice through dropout, is its own positive (unsupervised)."""
    from kosearch.train import train_simcse

    config = _config(**locals())
    _report(train_simcse(config, sentences, column=column, limit=limit, scale=scale), as_json)


@app.command()
def nli(
    nli_files: list[Path] = typer.Option(
        ..., "--nli", "--train", help="NLI file: KorNLI .tsv or KLUE-NLI .json (repeatable)."
    ),
    scale: float = typer.Option(20.0, "--scale", min=0.0, help="Similarity scale = 1 / temperature."),
    output: Path = OutputOption,
    model: Optional[str] = ModelOption,
    epochs: float = typer.Option(1.0, "--epochs", min=0.01),
    batch_size: int = typer.Option(32, "--batch-size", min=2, help="Triples per batch."),
    lr: Optional[float] = LearningRateOption,
    warmup_ratio: float = WarmupOption,
    max_seq_length: int = MaxSeqOption,
    seed: int = SeedOption,
    eval_steps: int = EvalStepsOption,
    dev: Optional[Path] = DevOption,
    eval_test: Optional[Path] = EvalTestOption,
    max_steps: Optional[int] = MaxStepsOption,
    max_minutes: Optional[float] = MaxMinutesOption,
    resume: bool = ResumeOption,
    precision: str = PrecisionOption,
    device: Optional[str] = DeviceOption,
    keep_checkpoints: bool = KeepCheckpointsOption,
    freeze_embeddings: bool = FreezeEmbeddingsOption,
    skip_base_eval: bool = SkipBaseOption,
    as_json: bool = JsonOption,
) -> None:
    """Supervised SimCSE on NLI: premise, entailed hypothesis (positive), contradicted one (hard negative)."""
    from kosearch.train import train_nli

    config = _config(**locals())
    _report(train_nli(config, nli_files, scale=scale), as_json)


@app.command()
def sts(
    sts_files: list[Path] = typer.Option(
        ..., "--sts", "--train", help="STS pairs: KorSTS .tsv or KLUE-STS .json (repeatable)."
    ),
    loss: str = typer.Option("cosent", "--loss", help="cosent (ranking; default) or cosine (MSE regression)."),
    output: Path = OutputOption,
    model: Optional[str] = ModelOption,
    epochs: float = typer.Option(4.0, "--epochs", min=0.01),
    batch_size: int = typer.Option(16, "--batch-size", min=2, help="Pairs per batch."),
    lr: Optional[float] = LearningRateOption,
    warmup_ratio: float = WarmupOption,
    max_seq_length: int = MaxSeqOption,
    seed: int = SeedOption,
    eval_steps: int = EvalStepsOption,
    dev: Optional[Path] = DevOption,
    eval_test: Optional[Path] = EvalTestOption,
    max_steps: Optional[int] = MaxStepsOption,
    max_minutes: Optional[float] = MaxMinutesOption,
    resume: bool = ResumeOption,
    precision: str = PrecisionOption,
    device: Optional[str] = DeviceOption,
    keep_checkpoints: bool = KeepCheckpointsOption,
    freeze_embeddings: bool = FreezeEmbeddingsOption,
    skip_base_eval: bool = SkipBaseOption,
    as_json: bool = JsonOption,
) -> None:
    """Supervised STS: fit cosine similarity to gold scores (CoSENT or CosineSimilarityLoss)."""
    from kosearch.train import train_sts

    config = _config(**locals())
    _report(train_sts(config, sts_files, loss=loss), as_json)


@app.command()
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
    output: Path = OutputOption,
    model: Optional[str] = ModelOption,
    epochs: float = typer.Option(1.0, "--epochs", min=0.01),
    batch_size: int = typer.Option(32, "--batch-size", min=2, help="Triples or pairs per batch."),
    lr: Optional[float] = LearningRateOption,
    warmup_ratio: float = WarmupOption,
    max_seq_length: int = MaxSeqOption,
    seed: int = SeedOption,
    eval_steps: int = EvalStepsOption,
    dev: Optional[Path] = DevOption,
    eval_test: Optional[Path] = EvalTestOption,
    max_steps: Optional[int] = MaxStepsOption,
    max_minutes: Optional[float] = MaxMinutesOption,
    resume: bool = ResumeOption,
    precision: str = PrecisionOption,
    device: Optional[str] = DeviceOption,
    keep_checkpoints: bool = KeepCheckpointsOption,
    freeze_embeddings: bool = FreezeEmbeddingsOption,
    skip_base_eval: bool = SkipBaseOption,
    as_json: bool = JsonOption,
) -> None:
    """NLI (MultipleNegativesRankingLoss) and STS together, optionally then STS alone at a lower rate."""
    from kosearch.train import train_multitask

    config = _config(**locals())
    result = train_multitask(
        config,
        nli_files=nli_files,
        sts_files=sts_files,
        scale=scale,
        sts_loss_name=sts_loss,
        sampler=sampler,
        sts_phase_epochs=sts_phase_epochs,
        sts_phase_learning_rate=sts_phase_lr,
    )
    _report(result, as_json)


def _report(result: TrainResult, as_json: bool) -> None:
    if as_json:
        emit_json(_result_dict(result))
        return
    out.print(
        Text.assemble(
            "Trained ",
            (printable(result.recipe), "bold"),
            printable(
                f" from {result.base_model}: {result.steps} steps in "
                f"{result.train_seconds / 60:.1f} min -> {result.output}"
            ),
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
