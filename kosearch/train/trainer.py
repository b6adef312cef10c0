"""How every recipe is trained: sentence-transformers' ``SentenceTransformerTrainer``, phase by phase, then the folder.

A recipe file only decides *what* to learn (datasets and losses, see :class:`~kosearch.train.types.TrainingPhase`);
*how* it is trained is decided here once, so that every kosearch encoder comes out of the same trainer with the
same evaluation, checkpointing (:mod:`kosearch.train.checkpoints`), time limit and progress lines
(:mod:`kosearch.train.callbacks`) and model card (:mod:`kosearch.train.card`). The result is an ordinary
sentence-transformers folder that ``kosearch index --model FOLDER`` and ``SentenceTransformer(FOLDER)`` accept.

The trainer's arguments come from :class:`~kosearch.train.config.TrainingConfig` through
:func:`~kosearch.train.config.hf_arguments`; only what depends on the phase or the run is set here.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kosearch.train.checkpoints import check_output, finished_phase_folder, last_checkpoint, phase_folder
from kosearch.train.config import TrainingConfig, hf_arguments
from kosearch.train.hardware import cuda_available, describe_hardware, mixed_precision
from kosearch.train.models import base_model_label, reload_model, resolve_base_model, save_model, training_prompt
from kosearch.train.types import PhaseReport, Recipe, TrainingPhase, TrainResult

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator

logger = logging.getLogger(__name__)

DEV_EVALUATOR_NAME = "sts-dev"
BEST_MODEL_METRIC = f"eval_{DEV_EVALUATOR_NAME}_spearman_cosine"
"""The trainer keeps the checkpoint with the best dev cosine Spearman, the number STS tables lead with."""


def run_training(
    config: TrainingConfig,
    recipe: Recipe,
    phases: Sequence[TrainingPhase],
    *,
    model: SentenceTransformer | None = None,
    base_evaluation: dict[str, float] | None = None,
    prepared_seconds: float = 0.0,
) -> TrainResult:
    """Train ``phases`` in order on the base model, then save, evaluate and write the model card.

    ``model``: the base model, when the recipe had to load it already (to plan its budget); else it is loaded
    from ``config.model``. ``base_evaluation``: the card's STS row for the base, when the recipe scored it before
    changing ``model`` without training (``adapt``'s token weights), so the row is the base model's own.
    ``prepared_seconds``: time the recipe already spent making ``model`` without a phase (``adapt``'s token weights
    and linear map); it is counted in the result's ``train_seconds``, so the card's training time is the time the
    model took to make, not 0 for a model made without training steps.

    Raises:
        KosearchError: the output folder already holds a model or checkpoints and ``resume`` is off, or ``resume``
            is on and there is nothing to resume.
    """
    from transformers import set_seed

    from kosearch.train.card import ModelCard, card_parameters, write_model_card

    check_output(config, [phase.name for phase in phases])
    notes = list(config.extra_notes)
    use_cuda = cuda_available(config.device)
    fp16, bf16 = mixed_precision(config.precision, use_cuda, notes)
    set_seed(config.seed)
    if model is None:
        model = resolve_base_model(config)
    prompt = training_prompt(model)
    prompt_label = repr(prompt) if prompt else None
    column_prompts = next((phase.column_prompts for phase in phases if phase.column_prompts), None)
    if not phases:
        prompt_label = None  # nothing trained: no training prompt to report
    elif column_prompts:
        shown = {column: model.prompts.get(name, "") for column, name in column_prompts.items()}
        prompt_label = ", ".join(f"{column}: {text!r}" for column, text in shown.items())
        notes.append(f"Trained with the base model's own prompts per column ({prompt_label}).")
    elif prompt:
        notes.append(f"Trained with the base model's document prompt {prompt!r} in front of every sentence.")
    evaluation_file = config.eval_test or config.dev
    evaluation: dict[str, dict[str, float]] = {}
    if base_evaluation is None:
        base_evaluation = base_sts_evaluation(model, config)
    if base_evaluation is not None:
        evaluation["base"] = base_evaluation
    dev_evaluator = _dev_evaluator(config.dev, config.batch_size) if config.dev is not None else None

    reports: list[PhaseReport] = []
    started = time.perf_counter()
    for index, phase in enumerate(phases):
        is_last = index == len(phases) - 1
        done_folder = finished_phase_folder(config, phase.name)
        if not is_last and config.resume and (done_folder / "modules.json").is_file():
            logger.info("Phase %r finished in an earlier run; continuing from %s", phase.name, done_folder)
            model = reload_model(done_folder, config)
            reports.append(PhaseReport(phase.name, 0, 0.0, None, None, [], 0))
            continue
        reports.append(_train_phase(config, phase, model, dev_evaluator, prompt, fp16, bf16))
        if not is_last:
            model.save(str(done_folder), create_model_card=False)
    train_seconds = time.perf_counter() - started + prepared_seconds
    for report in reports:
        if report.median_step_seconds is not None:
            notes.append(
                f"Phase {report.name!r} took {report.train_seconds / 60:.1f} min: {report.steps} steps, "
                f"{report.median_step_seconds:.2f} s per step (median; the first took {report.first_step_seconds:.2f} s)"
                + (f", {len(report.save_seconds)} checkpoint(s) in {sum(report.save_seconds):.1f} s." if report.save_seconds
                   else ".")
            )
        if report.steps and report.planned_steps > report.steps:
            notes.append(
                f"Phase {report.name!r} stopped by the time limit after {report.steps} of {report.planned_steps} "
                "planned steps (the learning-rate schedule was planned for all of them)."
            )

    config.output.mkdir(parents=True, exist_ok=True)
    save_model(model, config.output)
    if evaluation_file is not None:
        evaluation["trained"] = _evaluate_sts(model, evaluation_file, config.batch_size)
    if not config.keep_checkpoints:
        shutil.rmtree(config.checkpoint_dir, ignore_errors=True)

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
        parameters=card_parameters(config, phases, prompt_label),
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

    from kosearch.train.callbacks import Progress, StepClock, TimeLimit

    checkpoint = last_checkpoint(config, phase.name)
    if checkpoint:
        logger.info("Resuming phase %r from %s", phase.name, checkpoint)
    with_dev = dev_evaluator is not None
    args = training_arguments(
        config, phase, phase_folder(config, phase.name), prompt, fp16, bf16, with_dev=with_dev, model_prompts=model.prompts
    )
    loss = phase.loss(model)
    callbacks = phase.callbacks(loss) if phase.callbacks else []
    seconds = config.max_minutes * 60 if config.max_minutes is not None else None
    if seconds is not None:
        callbacks.append(TimeLimit(seconds, with_dev=with_dev))
    callbacks.append(Progress(seconds))
    clock = StepClock()
    callbacks.append(clock)
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
    seconds_taken = time.perf_counter() - started
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
        phase.name, trainer.state.global_step, seconds_taken, best_step, best, history, int(trainer.state.max_steps),
        first_step_seconds=clock.first_step, median_step_seconds=clock.median_step, save_seconds=clock.save_seconds,
    )


def training_arguments(
    config: TrainingConfig,
    phase: TrainingPhase,
    phase_dir: Path,
    prompt: str | None,
    fp16: bool,
    bf16: bool,
    *,
    with_dev: bool,
    model_prompts: dict[str, str] | None = None,
) -> Any:
    """``SentenceTransformerTrainingArguments`` for one phase: the config's own fields plus the phase's choices."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers

    prompts: str | dict[str, str] | None = None
    if phase.column_prompts is not None:
        named = {column: (model_prompts or {}).get(name) for column, name in phase.column_prompts.items()}
        prompts = {column: text for column, text in named.items() if text} or None
    elif prompt:
        prompts = prompt if phase.prompt_columns is None else {column: prompt for column in phase.prompt_columns}
    arguments = hf_arguments(config)
    if phase.epochs is not None:
        arguments["num_train_epochs"] = phase.epochs
    return SentenceTransformerTrainingArguments(
        **arguments,
        output_dir=str(phase_dir),
        learning_rate=phase.learning_rate,
        fp16=fp16,
        bf16=bf16,
        # bf16 autocast on a CPU needs use_cpu: transformers otherwise looks for a GPU that supports it.
        use_cpu=config.device == "cpu" or not cuda_available(config.device),
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
        logging_first_step=True,
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
    )


def _dev_evaluator(path: Path, batch_size: int) -> BaseEvaluator:
    from kosearch.evaluate import KorSTSEvaluator

    # The document side, as training_prompt: what is trained is what is measured.
    return KorSTSEvaluator.from_file(path, name=DEV_EVALUATOR_NAME, side="document", batch_size=batch_size)


def base_sts_evaluation(model: SentenceTransformer, config: TrainingConfig) -> dict[str, float] | None:
    """The card's STS row for ``model`` as the base, or None when the run scores no STS file or skips the base."""
    evaluation_file = config.eval_test or config.dev
    if evaluation_file is None or not config.evaluate_base:
        return None
    return _evaluate_sts(model, evaluation_file, config.batch_size)


def _evaluate_sts(model: SentenceTransformer, path: Path, batch_size: int) -> dict[str, float]:
    from kosearch.evaluate import STSResult, evaluate_sts

    result = evaluate_sts(model, path, side="document", batch_size=batch_size, show_progress_bar=True)
    return {metric: float(getattr(result, metric)) for metric in (*STSResult.METRICS, "avg")}
