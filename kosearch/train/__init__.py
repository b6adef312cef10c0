"""Training recipes that turn a base encoder into a kosearch encoder; one recipe per module.

Every recipe ends in an ordinary sentence-transformers folder with a generated README.md model card, written by
:func:`kosearch.train.trainer.run_training`, which trains with sentence-transformers' ``SentenceTransformerTrainer``.
``adapt``'s default trains no encoder weight: it adds the folder's token weights and a linear map trained on vectors
encoded once (:mod:`kosearch.train.linear_map`); ``adapt --fine-tune`` trains the encoder.

=============  ==========================================================  ===============================
recipe         learns from                                                 loss
=============  ==========================================================  ===============================
``adapt``      an unlabelled document folder (mined queries, BM25 teacher)  MultipleNegativesRankingLoss (map)
``tsdae``      unlabelled sentences (denoising auto-encoder)               DenoisingAutoEncoderLoss
``simcse``     unlabelled sentences (dropout views)                        MultipleNegativesRankingLoss
``nli``        NLI triples (supervised SimCSE)                             MultipleNegativesRankingLoss
``sts``        STS pairs                                                   CoSENTLoss / CosineSimilarityLoss
``multitask``  NLI triples + STS pairs, optional STS-only second phase    both of the above
=============  ==========================================================  ===============================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kosearch.train.config import TrainingConfig
from kosearch.train.types import DataFile, PhaseReport, Recipe, TrainingPhase, TrainResult

if TYPE_CHECKING:
    from kosearch.train.adapt import train_adapt
    from kosearch.train.multitask import train_multitask
    from kosearch.train.nli import train_nli
    from kosearch.train.simcse import train_simcse
    from kosearch.train.sts import train_sts
    from kosearch.train.tsdae import train_tsdae

_RECIPE_MODULES = {
    "train_adapt": "adapt",
    "train_tsdae": "tsdae",
    "train_simcse": "simcse",
    "train_nli": "nli",
    "train_sts": "sts",
    "train_multitask": "multitask",
}
"""Recipe function -> module, imported on first use: the recipes import torch, and ``kosearch --help`` (which
builds the train commands from :class:`TrainingConfig`) must not wait for it."""


def __getattr__(name: str) -> Any:
    if name in _RECIPE_MODULES:
        return getattr(importlib.import_module(f"kosearch.train.{_RECIPE_MODULES[name]}"), name)
    if name == "RECIPES":
        return {module: __getattr__(function) for function, module in _RECIPE_MODULES.items()}
    raise AttributeError(f"module 'kosearch.train' has no attribute {name!r}")


__all__ = [
    "RECIPES",
    "DataFile",
    "PhaseReport",
    "Recipe",
    "TrainResult",
    "TrainingConfig",
    "TrainingPhase",
    "train_adapt",
    "train_multitask",
    "train_nli",
    "train_simcse",
    "train_sts",
    "train_tsdae",
]
