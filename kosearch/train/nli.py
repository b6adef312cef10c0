"""Supervised SimCSE on NLI: a premise's entailed hypothesis is its positive, the contradicted one a hard negative.

Gao, Yao & Chen (2021), "SimCSE", supervised variant. Triples (premise, entailment, contradiction) from KorNLI or
KLUE-NLI (:func:`kosearch.data.nli.nli_triples`) go to MultipleNegativesRankingLoss with scale 20 (temperature
0.05): each premise must rank its entailment above every other hypothesis in the batch, including all the hard
negatives. This is the recipe behind KoSimCSE-style Korean encoders.

Example::

    from kosearch.train import TrainingConfig, train_nli
    train_nli(TrainingConfig(output="models/nli"), ["xnli.dev.ko.tsv", "klue-nli-v1.1_dev.json"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kosearch.train.config import TrainingConfig
from kosearch.train.trainer import run_training
from kosearch.train.types import Recipe, TrainingPhase, TrainResult
from kosearch.train.datasets import nli_triples_dataset

DEFAULT_LEARNING_RATE = 5e-5
"""The SimCSE paper's supervised BERT-base learning rate."""
DEFAULT_SCALE = 20.0


def train_nli(config: TrainingConfig, nli_files: Sequence[str | Path], *, scale: float = DEFAULT_SCALE) -> TrainResult:
    """Train with supervised SimCSE on the NLI triples of ``nli_files``."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    dataset, files = nli_triples_dataset(nli_files)
    recipe = Recipe(
        name="nli",
        summary=(
            "Supervised SimCSE (Gao et al., 2021) on NLI triples: premise as anchor, entailed hypothesis as positive, "
            "contradicted hypothesis as hard negative, with in-batch negatives (MultipleNegativesRankingLoss)."
        ),
        data=files,
        parameters={"loss": f"MultipleNegativesRankingLoss (scale {scale:g})"},
    )
    phase = TrainingPhase(
        name="nli",
        train_dataset=dataset,
        loss=lambda model: MultipleNegativesRankingLoss(model, scale=scale),
        learning_rate=config.learning_rate or DEFAULT_LEARNING_RATE,
        no_duplicates=True,
    )
    return run_training(config, recipe, [phase])
