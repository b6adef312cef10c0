"""The settings every recipe shares, declared once: :class:`TrainingConfig` and what each field means.

Each field carries its own documentation in its ``metadata`` (help text, command-line flag, limits, the Hugging
Face ``TrainingArguments`` it becomes, its label in the model card), the way Hugging Face declares
``TrainingArguments`` itself. Everything that shows or passes on a setting is derived from these fields, not
written next to them:

- the ``kosearch train`` options: :func:`kosearch.cli.train` builds them with :func:`cli_options`;
- the ``SentenceTransformerTrainingArguments``: :func:`hf_arguments` gives the fields that map one to one, and the
  trainer (:mod:`kosearch.train.trainer`) adds only what depends on the phase (learning rate, prompts, sampler);
- the model card's settings table: :func:`card_parameters` in :mod:`kosearch.train.card`.

A recipe-specific knob (TSDAE's deletion ratio, SimCSE's scale) is an argument of that recipe, not a field here.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kosearch.encoders.precision import PRECISIONS, Precision
from kosearch.errors import KosearchError

CHECKPOINTS_FOLDER = "checkpoints"


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # noqa: A002 - the word every CLI and HF metadata uses
    flags: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    hf: tuple[str, ...] = (),
    to_hf: Callable[[Any], Any] | None = None,
    card: str | None = None,
    to_card: Callable[[Any, Any], Any] | None = None,
    cli: bool = True,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A :class:`TrainingConfig` field with everything the CLI, the trainer and the card need to know about it.

    Args:
        help: one line for ``--help`` (the field's docstring may say more).
        flags: command-line names; default ``--field-name``. A boolean may be ``--on/--off``.
        minimum, maximum: limits the command line enforces (``__post_init__`` checks the ones that matter
            for the Python API too).
        hf: the ``TrainingArguments`` names the value is passed to unchanged (or through ``to_hf``).
        card: label in the model card's settings table; None leaves it out. ``to_card(value, config)`` may
            reword the value (None: leave the row out).
        cli: False for fields only the Python API sets.
    """
    metadata = {
        "help": help,
        "flags": flags,
        "min": minimum,
        "max": maximum,
        "hf": hf,
        "to_hf": to_hf,
        "card": card,
        "to_card": to_card,
        "cli": cli,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _minus_one_if_none(value: int | None) -> int:
    return -1 if value is None else value


@dataclass
class TrainingConfig:
    """The knobs every recipe has; recipe-specific ones (noise ratio, loss scale, ...) are arguments of the recipe."""

    output: Path = setting(help="Folder to write the trained model to.", flags=("--output", "-o"))
    """Folder the trained model is written to (checkpoints go to ``output/checkpoints`` while training)."""
    model: str | None = setting(
        None, help="Base model: 'bundled' (default), a sentence-transformers folder or a HF id.", flags=("--model", "-m")
    )
    """Base model: None or "bundled" for kosearch's bundled multilingual-e5-small, else a folder or a HF id."""
    epochs: float = setting(1.0, help="Passes over the training data.", minimum=0.01, hf=("num_train_epochs",), card="epochs")
    batch_size: int = setting(
        32,
        help="Examples per batch.",
        minimum=1,
        hf=("per_device_train_batch_size", "per_device_eval_batch_size"),
        card="batch size",
    )
    learning_rate: float | None = setting(
        None, help="Peak learning rate (default: the recipe's).", flags=("--lr",), minimum=0.0
    )
    """None takes the recipe's own default (each recipe's paper uses a different one). The card lists the rate of
    every phase, so it has no row here."""
    warmup_ratio: float = setting(
        0.1,
        help="Share of steps with linear warm-up.",
        minimum=0.0,
        maximum=0.99,
        # transformers 5 reads a float below 1 in warmup_steps as a ratio of the total steps.
        hf=("warmup_steps",),
        card="warm-up ratio",
    )
    max_seq_length: int | None = setting(128, help="Tokens kept per sentence.", minimum=8, card="max sequence length")
    """Token limit per sentence; None keeps the base model's. Short limits are what make CPU training feasible."""
    seed: int = setting(42, help="Random seed (data order, dropout, new weights).", hf=("seed", "data_seed"), card="seed")
    eval_steps: int = setting(
        100,
        help="Evaluate on --dev and checkpoint every N steps.",
        minimum=1,
        card="dev evaluation every",
        to_card=lambda steps, config: f"{steps} steps" if config.dev else None,
    )
    """Evaluate on ``dev`` (and write a checkpoint) every this many optimizer steps."""
    dev: Path | None = setting(
        None, help="STS dev file (KorSTS sts-dev.tsv); the checkpoint with the best cosine Spearman is kept."
    )
    """STS file scored during training; the checkpoint with the best cosine Spearman on it is the one kept."""
    eval_test: Path | None = setting(None, help="STS test file for the model card's table (default: the --dev file).")
    """STS file for the final table in the model card; without it the card reports ``dev``."""
    max_steps: int | None = setting(
        None,
        help="Stop after N optimizer steps (per phase).",
        minimum=1,
        hf=("max_steps",),
        to_hf=_minus_one_if_none,
        card="max steps",
    )
    """Stop after this many optimizer steps (overrides ``epochs``); per phase for multi-phase recipes."""
    max_minutes: float | None = setting(
        None,
        help="Stop a phase after this many minutes of training (slow or shared machines).",
        minimum=0.01,
        card="time limit",
        to_card=lambda minutes, config: f"{minutes:g} min per phase" if minutes else None,
    )
    """Stop a phase once it has trained this long (checked after each step; a checkpoint and, with ``dev``, an
    evaluation are made at the stop). For shared or slow machines where steps per minute are hard to predict."""
    resume: bool = setting(False, help="Continue from the last checkpoint in OUTPUT/checkpoints.")
    """Continue from the last checkpoint under ``output/checkpoints`` instead of refusing to touch ``output``."""
    precision: Precision = setting(
        "auto", help="auto, fp32, fp16 or bf16 mixed precision (auto: bf16 on a CPU with AMX, else fp32)."
    )
    """Mixed precision (autocast; the weights and the optimizer stay float32). ``auto`` is bf16 on a CPU with
    AMX-BF16, where a training step of the bundled e5 took about half the time of fp32 at the same loss
    (``bench/bench_train_precision.py``), and fp32 elsewhere, GPUs included (their mixed precision is opt-in,
    unmeasured here). fp16 is GPU-only. The card's notes say what the run used (see
    :func:`kosearch.train.hardware.mixed_precision`)."""
    device: str | None = setting(None, help="cpu, cuda, cuda:1, ... (default: CUDA when present).")
    keep_checkpoints: bool = setting(
        False, help="Keep OUTPUT/checkpoints after success, to extend the run with --resume."
    )
    """Leave ``output/checkpoints`` after success (to extend the run later with ``--resume``); removed otherwise."""
    freeze_embeddings: bool = setting(
        False,
        help="Do not train the word embeddings: much faster on CPU for large-vocabulary models such as the bundled e5.",
        card="word embeddings",
        to_card=lambda frozen, config: "frozen" if frozen else "trained",
    )
    """Keep the input word embeddings fixed. For a large-vocabulary base (the bundled e5 has 250k tokens, 96M of
    its 118M weights) this skips most of the optimizer's work, which on a CPU is a large share of each step, and
    the few thousand training sentences touch only a sliver of the vocabulary anyway."""
    evaluate_base: bool = setting(
        True,
        help="Do not score the base model (the card then shows the trained model alone).",
        # Only the "off" flag: scoring the base is the default, so "--evaluate-base" would do nothing.
        flags=(" /--skip-base-eval",),
    )
    """Score the base model too, so the card shows what training changed."""
    logging_steps: int = setting(10, help="Log the training loss every N steps.", minimum=1, hf=("logging_steps",))
    extra_notes: list[str] = setting(help="", cli=False, default_factory=list)
    """Lines a recipe adds to the card's notes (e.g. what its budget planner decided)."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.dev = Path(self.dev) if self.dev is not None else None
        self.eval_test = Path(self.eval_test) if self.eval_test is not None else None
        if self.precision not in PRECISIONS:
            raise KosearchError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}.")
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


def config_fields() -> list[dataclasses.Field]:
    """The fields of :class:`TrainingConfig`, in declaration order."""
    return list(dataclasses.fields(TrainingConfig))


def config_types() -> dict[str, Any]:
    """Field name -> resolved type (the module uses postponed annotations, so ``Field.type`` is a string)."""
    return typing.get_type_hints(TrainingConfig)


def hf_arguments(config: TrainingConfig) -> dict[str, Any]:
    """The ``TrainingArguments`` keywords that come straight from ``config`` (declared by each field's ``hf``)."""
    arguments: dict[str, Any] = {}
    for item in config_fields():
        value = getattr(config, item.name)
        convert = item.metadata.get("to_hf")
        for name in item.metadata.get("hf", ()):
            arguments[name] = convert(value) if convert else value
    return arguments


def card_rows(config: TrainingConfig) -> dict[str, Any]:
    """Model-card label -> value for the fields that declare a ``card`` label, without the ones that are unset."""
    rows: dict[str, Any] = {}
    for item in config_fields():
        label = item.metadata.get("card")
        if not label:
            continue
        value = getattr(config, item.name)
        reword = item.metadata.get("to_card")
        if reword is not None:
            value = reword(value, config)
        if value is not None:
            rows[label] = value
    return rows
