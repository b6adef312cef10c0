"""What every recipe shares: its settings, the trainer it runs, checkpoints and resuming, and the finished folder.

A recipe file only decides *what* to learn (datasets and losses, see :class:`TrainingPhase`); *how* it is trained
is decided here once, so that every kosearch encoder comes out of the same sentence-transformers
``SentenceTransformerTrainer`` with the same evaluation, checkpointing and model card. The result is an ordinary
sentence-transformers folder that ``kosearch index --model FOLDER`` and ``SentenceTransformer(FOLDER)`` accept.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kosearch.errors import KosearchError

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator
    from torch import nn

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "bf16"]
LossFactory = Callable[["SentenceTransformer"], "nn.Module | dict[str, nn.Module]"]

DEV_EVALUATOR_NAME = "sts-dev"
BEST_MODEL_METRIC = f"eval_{DEV_EVALUATOR_NAME}_spearman_cosine"
"""The trainer keeps the checkpoint with the best dev cosine Spearman, the number STS tables lead with."""

CHECKPOINTS_FOLDER = "checkpoints"
_PHASE_DONE_FOLDER = "final"


@dataclass
class TrainingConfig:
    """The knobs every recipe has; recipe-specific ones (noise ratio, loss scale, ...) are arguments of the recipe."""

    output: Path
    """Folder the trained model is written to (checkpoints go to ``output/checkpoints`` while training)."""
    model: str | None = None
    """Base model: None or "bundled" for kosearch's bundled multilingual-e5-small, else a folder or a HF id."""
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float | None = None
    """None takes the recipe's own default (each recipe's paper uses a different one)."""
    warmup_ratio: float = 0.1
    max_seq_length: int | None = 128
    """Token limit per sentence; None keeps the base model's. Short limits are what make CPU training feasible."""
    seed: int = 42
    eval_steps: int = 100
    """Evaluate on ``dev`` (and write a checkpoint) every this many optimizer steps."""
    dev: Path | None = None
    """STS file scored during training; the checkpoint with the best cosine Spearman on it is the one kept."""
    eval_test: Path | None = None
    """STS file for the final table in the model card; without it the card reports ``dev``."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides ``epochs``); per phase for multi-phase recipes."""
    max_minutes: float | None = None
    """Stop a phase once it has trained this long (checked after each step; a checkpoint and, with ``dev``, an
    evaluation are made at the stop). For shared or slow machines where steps per minute are hard to predict."""
    resume: bool = False
    """Continue from the last checkpoint under ``output/checkpoints`` instead of refusing to touch ``output``."""
    precision: Precision = "fp32"
    """fp16/bf16 mixed precision on a CUDA GPU; on CPU it is ignored (with a note in the log and the card)."""
    device: str | None = None
    keep_checkpoints: bool = False
    """Leave ``output/checkpoints`` after success (to extend the run later with ``--resume``); removed otherwise."""
    freeze_embeddings: bool = False
    """Keep the input word embeddings fixed. For a large-vocabulary base (the bundled e5 has 250k tokens, 96M of
    its 118M weights) this skips most of the optimizer's work, which on a CPU is a large share of each step, and
    the few thousand training sentences touch only a sliver of the vocabulary anyway."""
    evaluate_base: bool = True
    """Score the base model too, so the card shows what training changed."""
    logging_steps: int = 10
    extra_notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.dev = Path(self.dev) if self.dev is not None else None
        self.eval_test = Path(self.eval_test) if self.eval_test is not None else None
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise KosearchError(f"precision must be fp32, fp16 or bf16, not {self.precision!r}.")
        for name in ("batch_size", "eval_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise KosearchError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise KosearchError(f"max-steps must be at least 1, got {self.max_steps}.")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise KosearchError(f"max-minutes must be positive, got {self.max_minutes}.")
        if self.epochs <= 0:
            raise KosearchError(f"epochs must be positive, got {self.epochs}.")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise KosearchError(f"warmup-ratio must be in [0, 1), got {self.warmup_ratio}.")

    @property
    def checkpoint_dir(self) -> Path:
        return self.output / CHECKPOINTS_FOLDER


@dataclass
class DataFile:
    """One input file of a run and how many training examples it gave, for the model card."""

    path: str
    role: str
    """What it was used for, e.g. "NLI triples (MultipleNegativesRankingLoss)"."""
    examples: int


@dataclass
class TrainingPhase:
    """One call of ``SentenceTransformerTrainer.train``: a dataset (or a dict of them) and its loss(es).

    Most recipes have one phase; ``multitask`` may add a second, continuing on STS at a lower learning rate.
    """

    name: str
    train_dataset: Dataset | dict[str, Dataset]
    loss: LossFactory
    """Built from the model at the start of the phase, so a phase resumed in a new process gets a fresh loss."""
    learning_rate: float
    epochs: float | None = None
    """None: the run's ``epochs``."""
    prompt_columns: Sequence[str] | None = None
    """Columns that get the training prompt; None: all text columns."""
    no_duplicates: bool = False
    """In-batch-negative losses must not see the same text twice in a batch (it would be a false negative)."""
    multi_dataset_sampler: Literal["proportional", "round_robin"] = "proportional"
    callbacks: Callable[[Any], list[Any]] | None = None
    """Given the built loss, the ``TrainerCallback``s the phase needs (e.g. to checkpoint state kept in the loss)."""


@dataclass
class Recipe:
    """What the model card says about how a model was made."""

    name: str
    summary: str
    """One or two sentences: the method and the paper it comes from."""
    data: list[DataFile]
    parameters: dict[str, Any] = field(default_factory=dict)
    """Recipe-specific settings (loss scale, noise ratio, ...) to list next to the common ones."""


@dataclass
class PhaseReport:
    name: str
    steps: int
    train_seconds: float
    best_step: int | None
    best_dev_spearman: float | None
    """Best dev cosine Spearman x100 over the evaluations of this phase."""
    dev_history: list[tuple[int, float]]
    """(step, dev cosine Spearman x100) for every evaluation during the phase."""
    planned_steps: int = 0
    """Steps the schedule was planned for; more than ``steps`` when a time limit ended the phase early."""


@dataclass
class TrainResult:
    """What a finished run produced and how it scored; the same numbers the model card shows."""

    output: Path
    recipe: str
    base_model: str
    phases: list[PhaseReport]
    train_seconds: float
    evaluation_file: str | None
    evaluation: dict[str, dict[str, float]]
    """Model label ("base", "trained") -> metric name -> value (x100), on ``evaluation_file``."""
    card: Path
    notes: list[str]

    @property
    def steps(self) -> int:
        return sum(phase.steps for phase in self.phases)


def resolve_base_model(config: TrainingConfig) -> SentenceTransformer:
    """Load the base model through kosearch's resolver, so "bundled"/None means what it means everywhere else."""
    from kosearch.encoders import load_sentence_transformer

    model = load_sentence_transformer(config.model, device=config.device)
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    return model


def base_model_label(config: TrainingConfig) -> str:
    if config.model in (None, "bundled"):
        from kosearch.encoders import BUNDLED_MODEL

        return str(BUNDLED_MODEL)
    return str(config.model)


DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
"""The prompt names ``SentenceTransformer.encode_document`` looks for, in its order."""


def training_prompt(model: SentenceTransformer) -> str | None:
    """The prompt to train with: the one ``encode_document`` applies, on every side, or none.

    The bundled e5 encoder was trained to see "passage: " or "query: " in front of every text. kosearch's recipes
    learn symmetric similarity (STS, NLI, SimCSE, TSDAE); kosearch indexes documents with the document prompt, so
    training with that prompt on both sides adapts exactly the representation that is stored; dev evaluation
    uses the same side. (``kosearch evaluate sts`` defaults to the query side, the e5 card's STS setting; the
    cards written by the recipes say which side their table is on.) Models without prompts are trained
    on the bare text. The prompts themselves are kept unchanged in the saved config.
    """
    for name in DOCUMENT_PROMPT_NAMES:
        if model.prompts.get(name):
            return model.prompts[name]
    return None


def run_training(config: TrainingConfig, recipe: Recipe, phases: Sequence[TrainingPhase]) -> TrainResult:
    """Train ``phases`` in order on the base model, then save, evaluate and write the model card.

    Raises:
        KosearchError: the output folder already holds a model or checkpoints and ``resume`` is off, or ``resume``
            is on and there is nothing to resume.
    """
    from transformers import set_seed

    _check_output(config, [phase.name for phase in phases])
    notes = list(config.extra_notes)
    use_cuda = _cuda_available(config.device)
    fp16, bf16 = _mixed_precision(config.precision, use_cuda, notes)
    set_seed(config.seed)
    model = resolve_base_model(config)
    prompt = training_prompt(model)
    if prompt:
        notes.append(f"Trained with the base model's document prompt {prompt!r} in front of every sentence.")
    evaluation_file = config.eval_test or config.dev
    evaluation: dict[str, dict[str, float]] = {}
    if evaluation_file is not None and config.evaluate_base:
        evaluation["base"] = _evaluate_sts(model, evaluation_file, config.batch_size)
    dev_evaluator = _dev_evaluator(config.dev, config.batch_size) if config.dev is not None else None

    reports: list[PhaseReport] = []
    started = time.perf_counter()
    for index, phase in enumerate(phases):
        is_last = index == len(phases) - 1
        done_folder = config.checkpoint_dir / phase.name / _PHASE_DONE_FOLDER
        if not is_last and config.resume and (done_folder / "modules.json").is_file():
            logger.info("Phase %r finished in an earlier run; continuing from %s", phase.name, done_folder)
            model = _reload(done_folder, config)
            reports.append(PhaseReport(phase.name, 0, 0.0, None, None, [], 0))
            continue
        reports.append(_train_phase(config, phase, model, dev_evaluator, prompt, fp16, bf16))
        if not is_last:
            model.save(str(done_folder), create_model_card=False)
    train_seconds = time.perf_counter() - started
    for report in reports:
        if report.steps and report.planned_steps > report.steps:
            notes.append(
                f"Phase {report.name!r} stopped by the time limit after {report.steps} of {report.planned_steps} "
                "planned steps (the learning-rate schedule was planned for all of them)."
            )

    config.output.mkdir(parents=True, exist_ok=True)
    model.save(str(config.output), create_model_card=False)
    if evaluation_file is not None:
        evaluation["trained"] = _evaluate_sts(model, evaluation_file, config.batch_size)
    if not config.keep_checkpoints:
        shutil.rmtree(config.checkpoint_dir, ignore_errors=True)

    from kosearch.train.card import ModelCard, write_model_card

    result = TrainResult(
        output=config.output,
        recipe=recipe.name,
        base_model=base_model_label(config),
        phases=reports,
        train_seconds=train_seconds,
        evaluation_file=str(evaluation_file) if evaluation_file else None,
        evaluation=evaluation,
        card=config.output / "README.md",
        notes=notes,
    )
    card = ModelCard(
        recipe=recipe,
        result=result,
        parameters=_card_parameters(config, phases, prompt),
        hardware=describe_hardware(use_cuda),
        finished=datetime.now(timezone.utc),
    )
    write_model_card(config.output, card)
    return result


def _train_phase(
    config: TrainingConfig,
    phase: TrainingPhase,
    model: SentenceTransformer,
    dev_evaluator: BaseEvaluator | None,
    prompt: str | None,
    fp16: bool,
    bf16: bool,
) -> PhaseReport:
    from sentence_transformers import SentenceTransformerTrainer
    from transformers.trainer_utils import get_last_checkpoint

    phase_dir = config.checkpoint_dir / phase.name
    checkpoint = None
    if config.resume and phase_dir.is_dir():
        checkpoint = get_last_checkpoint(str(phase_dir))
    if checkpoint:
        logger.info("Resuming phase %r from %s", phase.name, checkpoint)
    args = _training_arguments(config, phase, phase_dir, prompt, fp16, bf16, with_dev=dev_evaluator is not None)
    loss = phase.loss(model)
    callbacks = phase.callbacks(loss) if phase.callbacks else []
    if config.max_minutes is not None:
        callbacks.append(_time_limit_callback(config.max_minutes * 60, with_dev=dev_evaluator is not None))
    if config.freeze_embeddings:
        # After building the loss: TSDAE's tied decoder replaces the encoder's parameters with its own.
        model.transformers_model.get_input_embeddings().weight.requires_grad_(False)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=phase.train_dataset,
        loss=loss,
        evaluator=dev_evaluator,
        callbacks=callbacks,
    )
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    history = [
        (int(entry["step"]), 100.0 * float(entry[BEST_MODEL_METRIC]))
        for entry in trainer.state.log_history
        if BEST_MODEL_METRIC in entry
    ]
    best_step = None
    if trainer.state.best_model_checkpoint:
        best_step = int(trainer.state.best_model_checkpoint.rsplit("-", 1)[-1])
    best = max((score for _, score in history), default=None)
    return PhaseReport(
        phase.name, trainer.state.global_step, seconds, best_step, best, history, int(trainer.state.max_steps)
    )


def _time_limit_callback(seconds: float, *, with_dev: bool) -> Any:
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        """Ends training after ``seconds`` of it, with a final checkpoint (and evaluation) at the stopping step."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() - self.started >= seconds and not control.should_training_stop:
                logger.warning("Time limit of %.1f min reached at step %d; stopping.", seconds / 60, state.global_step)
                control.should_training_stop = True
                control.should_save = True
                control.should_evaluate = with_dev
            return control

    return TimeLimit()


def _training_arguments(
    config: TrainingConfig,
    phase: TrainingPhase,
    phase_dir: Path,
    prompt: str | None,
    fp16: bool,
    bf16: bool,
    *,
    with_dev: bool,
) -> Any:
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers

    prompts: str | dict[str, str] | None = None
    if prompt:
        prompts = prompt if phase.prompt_columns is None else {column: prompt for column in phase.prompt_columns}
    return SentenceTransformerTrainingArguments(
        output_dir=str(phase_dir),
        num_train_epochs=phase.epochs if phase.epochs is not None else config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=phase.learning_rate,
        # transformers 5 reads a float below 1 in warmup_steps as a ratio of the total steps.
        warmup_steps=config.warmup_ratio,
        seed=config.seed,
        data_seed=config.seed,
        fp16=fp16,
        bf16=bf16,
        use_cpu=config.device == "cpu",
        prompts=prompts,
        batch_sampler=BatchSamplers.NO_DUPLICATES if phase.no_duplicates else BatchSamplers.BATCH_SAMPLER,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers(phase.multi_dataset_sampler),
        eval_strategy="steps" if with_dev else "no",
        eval_steps=config.eval_steps if with_dev else None,
        save_strategy="steps",
        save_steps=config.eval_steps,
        # The best checkpoint and the newest one: enough to pick the best model and to resume.
        save_total_limit=2,
        load_best_model_at_end=with_dev,
        metric_for_best_model=BEST_MODEL_METRIC if with_dev else None,
        greater_is_better=True if with_dev else None,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
    )


def _dev_evaluator(path: Path, batch_size: int) -> BaseEvaluator:
    from kosearch.evaluate import KorSTSEvaluator

    # The document side, as training_prompt: what is trained is what is measured.
    return KorSTSEvaluator.from_file(path, name=DEV_EVALUATOR_NAME, side="document", batch_size=batch_size)


def _evaluate_sts(model: SentenceTransformer, path: Path, batch_size: int) -> dict[str, float]:
    from kosearch.evaluate import STSResult, evaluate_sts

    result = evaluate_sts(model, path, side="document", batch_size=batch_size, show_progress_bar=True)
    return {metric: float(getattr(result, metric)) for metric in (*STSResult.METRICS, "avg")}


def _reload(folder: Path, config: TrainingConfig) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device=config.device)
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    return model


def _check_output(config: TrainingConfig, phase_names: Sequence[str]) -> None:
    has_model = (config.output / "modules.json").is_file()
    has_checkpoints = config.checkpoint_dir.is_dir() and any(config.checkpoint_dir.iterdir())
    if config.resume:
        resumable = any(
            (config.checkpoint_dir / name).is_dir() and any((config.checkpoint_dir / name).glob("checkpoint-*"))
            or (config.checkpoint_dir / name / _PHASE_DONE_FOLDER / "modules.json").is_file()
            for name in phase_names
        )
        if not resumable:
            raise KosearchError(
                f"Nothing to resume in {config.checkpoint_dir}: no checkpoint was written there. "
                "Run again without --resume (or pass --keep-checkpoints next time to extend a finished run)."
            )
        return
    if has_model or has_checkpoints:
        raise KosearchError(
            f"{config.output} already holds a model or training checkpoints. Pass --resume to continue that run, "
            "or choose another --output."
        )


def _cuda_available(device: str | None) -> bool:
    import torch

    if device is not None and not device.startswith("cuda"):
        return False
    return torch.cuda.is_available()


def _mixed_precision(precision: Precision, use_cuda: bool, notes: list[str]) -> tuple[bool, bool]:
    if precision == "fp32":
        return False, False
    if not use_cuda:
        note = f"{precision} was requested but there is no CUDA GPU; trained in fp32 (mixed precision is GPU-only)."
        logger.warning(note)
        notes.append(note)
        return False, False
    import torch

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        note = "bf16 was requested but this GPU does not support it; trained with fp16 instead."
        logger.warning(note)
        notes.append(note)
        return True, False
    return precision == "fp16", precision == "bf16"


def describe_hardware(use_cuda: bool) -> str:
    """One line naming what the model was trained on, because training time means nothing without it."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = _cpu_model_name() or platform.machine()
    text = f"{cpu}, {cores} CPU cores, torch {torch.__version__}"
    if use_cuda:
        text = f"{torch.cuda.get_device_name(0)} GPU; " + text
    return text


def _cpu_model_name() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return platform.processor() or None
    return None


def _card_parameters(config: TrainingConfig, phases: Sequence[TrainingPhase], prompt: str | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "epochs": config.epochs,
        "batch size": config.batch_size,
        "learning rate": ", ".join(f"{phase.name}: {phase.learning_rate:g}" for phase in phases),
        "warm-up ratio": config.warmup_ratio,
        "max sequence length": config.max_seq_length,
        "seed": config.seed,
        "max steps": config.max_steps,
        "time limit": f"{config.max_minutes:g} min per phase" if config.max_minutes else None,
        "precision": config.precision,
        "dev evaluation every": f"{config.eval_steps} steps" if config.dev else None,
        "training prompt": repr(prompt) if prompt else None,
        "word embeddings": "frozen" if config.freeze_embeddings else "trained",
    }
    for phase in phases:
        if phase.epochs is not None and len(phases) > 1:
            parameters[f"epochs ({phase.name})"] = phase.epochs
    return {key: value for key, value in parameters.items() if value is not None}
