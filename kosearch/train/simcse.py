"""Unsupervised SimCSE: the same sentence encoded twice, with different dropout, is its own positive.

Gao, Yao & Chen (2021), "SimCSE: Simple Contrastive Learning of Sentence Embeddings". Each batch of N sentences is
passed through the encoder twice; MultipleNegativesRankingLoss pulls each sentence's two dropout views together and
pushes it away from the other N-1 sentences (in-batch negatives). Scale 20 is the paper's temperature 0.05. It needs
only raw in-domain text, so it adapts an encoder to a corpus (e.g. movie reviews) without labels.

Example::

    from kosearch.train import TrainingConfig, train_simcse
    train_simcse(TrainingConfig(output="models/simcse-nsmc", dev="sts-dev.tsv"),
                 ["nsmc_reviews.tsv.gz"], column="review", limit=20_000)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kosearch.train.config import TrainingConfig
from kosearch.train.trainer import run_training
from kosearch.train.types import Recipe, TrainingPhase, TrainResult
from kosearch.train.datasets import load_sentences, sentence_pairs_dataset

DEFAULT_LEARNING_RATE = 3e-5
"""The SimCSE paper's unsupervised BERT-base learning rate."""
DEFAULT_SCALE = 20.0
"""1 / temperature 0.05, as in the paper."""


def train_simcse(
    config: TrainingConfig,
    sentences: Sequence[str | Path],
    *,
    column: str | None = None,
    limit: int | None = None,
    scale: float = DEFAULT_SCALE,
) -> TrainResult:
    """Train with unsupervised SimCSE on the sentences of ``sentences`` (see :func:`kosearch.data.read_sentences`)."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    texts, files = load_sentences(sentences, column=column, limit=limit, role="sentences (each its own positive)")
    recipe = Recipe(
        name="simcse",
        summary=(
            "Unsupervised SimCSE (Gao et al., 2021): every sentence is encoded twice with dropout and the two views "
            "are pulled together against in-batch negatives (MultipleNegativesRankingLoss)."
        ),
        data=files,
        parameters={"loss": f"MultipleNegativesRankingLoss (scale {scale:g})", "text column": column},
    )
    phase = TrainingPhase(
        name="simcse",
        train_dataset=sentence_pairs_dataset(texts),
        loss=lambda model: MultipleNegativesRankingLoss(model, scale=scale),
        learning_rate=config.learning_rate or DEFAULT_LEARNING_RATE,
        no_duplicates=True,
    )
    return run_training(config, recipe, [phase])
