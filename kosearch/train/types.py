"""The records passed between a recipe, the trainer and the model card: what to train, and what came of it.

A recipe builds a :class:`Recipe` (what the card says about it) and :class:`TrainingPhase` objects (what to learn);
:func:`kosearch.train.trainer.run_training` returns a :class:`TrainResult`. Plain data, so :mod:`kosearch.train.card`
can render a card from it without importing the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from torch import nn

LossFactory = Callable[["SentenceTransformer"], "nn.Module | dict[str, nn.Module]"]


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
    column_prompts: dict[str, str] | None = None
    """Column -> name of the base model's prompt it gets ("query", "document"), for asymmetric retrieval training;
    replaces ``prompt_columns``. A name the model has no prompt for leaves that column bare."""
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
    first_step_seconds: float | None = None
    """Wall time of the phase's first optimizer step (optimizer allocation, cold caches)."""
    median_step_seconds: float | None = None
    """Median wall time of the later steps: what a budget plan's measured step is checked against."""
    save_seconds: list[float] = field(default_factory=list)
    """Wall time of each checkpoint the trainer wrote."""


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
