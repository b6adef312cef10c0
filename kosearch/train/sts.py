"""Supervised STS: fit the cosine similarity of sentence pairs to their gold similarity scores.

Pairs from KorSTS (score 0-5, scaled to 0-1). Two losses are offered:

- ``cosent`` (default): CoSENTLoss (Su, 2022) penalises every two pairs of a batch whose cosine order disagrees
  with their gold order. It optimises ranking, which is what the Spearman correlation used to judge STS measures,
  and it does not ask cosines to take absolute values. That matters for the bundled e5 encoder, whose cosines all
  sit in a narrow band near 0.7-1.0: regressing them onto 0-1 first has to stretch the whole space, and CoSENT
  does not, so it is the better default here.
- ``cosine``: CosineSimilarityLoss (Reimers & Gurevych, 2019, Sentence-BERT), mean squared error between cosine
  and score/5, the classic recipe (and the STS half of ``multitask``).

Example::

    from kosearch.train import TrainingConfig, train_sts
    train_sts(TrainingConfig(output="models/sts", dev="sts-dev.tsv", epochs=4), ["sts-train.tsv"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from kosearch.errors import KosearchError
from kosearch.train.config import TrainingConfig
from kosearch.train.trainer import run_training
from kosearch.train.types import Recipe, TrainingPhase, TrainResult
from kosearch.train.datasets import sts_pairs_dataset

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

DEFAULT_LEARNING_RATE = 2e-5
"""Sentence-BERT's STS fine-tuning learning rate."""
STSLoss = Literal["cosent", "cosine"]


def sts_loss(model: SentenceTransformer, name: STSLoss) -> nn.Module:
    """The STS regression loss called ``name`` (see the module docstring for the choice)."""
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, CosineSimilarityLoss

    if name == "cosent":
        return CoSENTLoss(model)
    if name == "cosine":
        return CosineSimilarityLoss(model)
    raise KosearchError(f"Unknown STS loss {name!r}; use 'cosent' or 'cosine'.")


def sts_loss_label(name: STSLoss) -> str:
    return {"cosent": "CoSENTLoss (scale 20)", "cosine": "CosineSimilarityLoss (MSE to score/5)"}[name]


def train_sts(config: TrainingConfig, sts_files: Sequence[str | Path], *, loss: STSLoss = "cosent") -> TrainResult:
    """Fine-tune on the STS pairs of ``sts_files`` with ``loss``."""
    if loss not in ("cosent", "cosine"):
        raise KosearchError(f"Unknown STS loss {loss!r}; use 'cosent' or 'cosine'.")
    dataset, files = sts_pairs_dataset(sts_files)
    recipe = Recipe(
        name="sts",
        summary=f"Supervised fine-tuning on STS pairs with {sts_loss_label(loss)}.",
        data=files,
        parameters={"loss": sts_loss_label(loss)},
    )
    phase = TrainingPhase(
        name="sts",
        train_dataset=dataset,
        loss=lambda model: sts_loss(model, loss),
        learning_rate=config.learning_rate or DEFAULT_LEARNING_RATE,
    )
    return run_training(config, recipe, [phase])
