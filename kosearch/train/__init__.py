"""Training recipes that turn a base encoder into a kosearch encoder; one recipe per module.

Every recipe ends in an ordinary sentence-transformers folder with a generated README.md model card, trained by
sentence-transformers' ``SentenceTransformerTrainer`` through :func:`kosearch.train.common.run_training`.

=============  ==========================================================  ===============================
recipe         learns from                                                 loss
=============  ==========================================================  ===============================
``tsdae``      unlabelled sentences (denoising auto-encoder)               DenoisingAutoEncoderLoss
``simcse``     unlabelled sentences (dropout views)                        MultipleNegativesRankingLoss
``nli``        NLI triples (supervised SimCSE)                             MultipleNegativesRankingLoss
``sts``        STS pairs                                                   CoSENTLoss / CosineSimilarityLoss
``multitask``  NLI triples + STS pairs, optional STS-only second phase    both of the above
=============  ==========================================================  ===============================
"""

from kosearch.train.common import DataFile, PhaseReport, Recipe, TrainingConfig, TrainingPhase, TrainResult
from kosearch.train.multitask import train_multitask
from kosearch.train.nli import train_nli
from kosearch.train.simcse import train_simcse
from kosearch.train.sts import train_sts
from kosearch.train.tsdae import train_tsdae

RECIPES = {
    "tsdae": train_tsdae,
    "simcse": train_simcse,
    "nli": train_nli,
    "sts": train_sts,
    "multitask": train_multitask,
}

__all__ = [
    "RECIPES",
    "DataFile",
    "PhaseReport",
    "Recipe",
    "TrainResult",
    "TrainingConfig",
    "TrainingPhase",
    "train_multitask",
    "train_nli",
    "train_simcse",
    "train_sts",
    "train_tsdae",
]
