"""Multitask: NLI triples and STS pairs in one run, optionally followed by a short STS-only phase.

The recipe of Korean multitask encoders such as KoSimCSE-multitask and gmatrix-embedding: NLI teaches a broad
notion of paraphrase through in-batch contrast (MultipleNegativesRankingLoss, scale 20), STS calibrates graded
similarity (CosineSimilarityLoss by default). Sentence-transformers' multi-dataset training gets a dict of datasets
and a dict of losses and draws each batch from one dataset: ``proportional`` sampling uses every batch of both
(more STS batches, as KorSTS train is larger than the NLI triples), ``round_robin`` alternates and stops when the
smaller runs out. The optional second phase continues on STS alone at a lower learning rate, which is how those
cards finish, so the last updates are the ones closest to the STS target.

Example::

    from kosearch.train import TrainingConfig, train_multitask
    train_multitask(TrainingConfig(output="models/multitask", dev="sts-dev.tsv"),
                    nli_files=["xnli.dev.ko.tsv", "klue-nli-v1.1_dev.json"], sts_files=["sts-train.tsv"],
                    sts_phase_epochs=1)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from kosearch.errors import KosearchError
from kosearch.train.config import TrainingConfig
from kosearch.train.trainer import run_training
from kosearch.train.types import Recipe, TrainingPhase, TrainResult
from kosearch.train.datasets import nli_triples_dataset, sts_pairs_dataset
from kosearch.train.sts import STSLoss, sts_loss, sts_loss_label

DEFAULT_LEARNING_RATE = 2e-5
DEFAULT_SCALE = 20.0
STS_PHASE_LEARNING_RATE_FACTOR = 0.5
"""Without an explicit rate, the STS-only phase runs at half the joint phase's learning rate."""


def train_multitask(
    config: TrainingConfig,
    *,
    nli_files: Sequence[str | Path],
    sts_files: Sequence[str | Path],
    scale: float = DEFAULT_SCALE,
    sts_loss_name: STSLoss = "cosine",
    sampler: Literal["proportional", "round_robin"] = "proportional",
    sts_phase_epochs: float = 0.0,
    sts_phase_learning_rate: float | None = None,
) -> TrainResult:
    """Train on NLI and STS together; with ``sts_phase_epochs`` > 0, then continue on STS alone."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    if sampler not in ("proportional", "round_robin"):
        raise KosearchError(f"Unknown sampler {sampler!r}; use 'proportional' or 'round_robin'.")
    if sts_phase_epochs < 0:
        raise KosearchError(f"The STS phase needs a non-negative number of epochs, got {sts_phase_epochs}.")
    nli_dataset, nli_data = nli_triples_dataset(nli_files)
    sts_dataset, sts_data = sts_pairs_dataset(sts_files)
    for data in nli_data:
        data.role += " (MultipleNegativesRankingLoss)"
    for data in sts_data:
        data.role += f" ({sts_loss_label(sts_loss_name).split(' ')[0]})"
    learning_rate = config.learning_rate or DEFAULT_LEARNING_RATE
    phases = [
        TrainingPhase(
            name="multitask",
            train_dataset={"nli": nli_dataset, "sts": sts_dataset},
            loss=lambda model: {
                "nli": MultipleNegativesRankingLoss(model, scale=scale),
                "sts": sts_loss(model, sts_loss_name),
            },
            learning_rate=learning_rate,
            # Hard negatives and in-batch negatives both go wrong when a batch repeats a sentence.
            no_duplicates=True,
            multi_dataset_sampler=sampler,
        )
    ]
    parameters = {
        "losses": f"nli: MultipleNegativesRankingLoss (scale {scale:g}); sts: {sts_loss_label(sts_loss_name)}",
        "multi-dataset sampler": sampler,
    }
    if sts_phase_epochs > 0:
        phase_rate = sts_phase_learning_rate or learning_rate * STS_PHASE_LEARNING_RATE_FACTOR
        phases.append(
            TrainingPhase(
                name="sts-continue",
                train_dataset=sts_dataset,
                loss=lambda model: sts_loss(model, sts_loss_name),
                learning_rate=phase_rate,
                epochs=sts_phase_epochs,
            )
        )
        parameters["second phase"] = f"STS only, {sts_phase_epochs:g} epoch(s) at learning rate {phase_rate:g}"
    recipe = Recipe(
        name="multitask",
        summary=(
            "Multitask training on NLI triples (MultipleNegativesRankingLoss) and STS pairs "
            f"({sts_loss_label(sts_loss_name)}) with sentence-transformers' multi-dataset sampling"
            + (", then a second phase on STS alone at a lower learning rate." if sts_phase_epochs > 0 else ".")
        ),
        data=nli_data + sts_data,
        parameters=parameters,
    )
    return run_training(config, recipe, phases)
