"""TSDAE: learn sentence embeddings by reconstructing a sentence from its embedding after deleting most of its words.

Wang, Reimers & Gurevych (2021), "TSDAE: Using Transformer-based Sequential Denoising Auto-Encoder for Unsupervised
Sentence Embedding Learning". Each sentence loses 60% of its words (deletion noise, the paper's best setting); the
encoder embeds what is left and a transformer decoder, attending only to that one vector, must regenerate the
original. The decoder shares the encoder's weights (``tie_encoder_decoder``), so the only new parameters are its
cross-attention layers. Like SimCSE it needs only unlabelled in-domain text.

Words are whitespace tokens: for Korean these are eojeol (a word with its particles), so deletion removes whole
eojeol, the unit Korean spacing marks.

The decoder is built by sentence-transformers' ``DenoisingAutoEncoderLoss`` from the base model's own folder
(``AutoModelForCausalLM``): for the bundled encoder, a BERT with XLM-R's vocabulary, that is ``BertLMHeadModel``
with cross-attention added. Its cross-attention weights live in the loss, not in the model folder, so
:class:`DecoderCheckpoint` saves them next to each trainer checkpoint and puts them back on ``--resume``.

Example::

    from kosearch.train import TrainingConfig, train_tsdae
    train_tsdae(TrainingConfig(output="models/tsdae-nsmc"), ["nsmc_reviews.tsv.gz"], column="review", limit=20_000)
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import TrainerCallback

from kosearch.errors import KosearchError
from kosearch.train.config import TrainingConfig
from kosearch.train.trainer import run_training
from kosearch.train.types import Recipe, TrainingPhase, TrainResult
from kosearch.train.datasets import load_sentences

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_LEARNING_RATE = 3e-5
"""The TSDAE paper's learning rate."""
DEFAULT_DELETION_RATIO = 0.6
"""Share of words deleted from each input: 0.6 was the best of the paper's noise settings."""
DECODER_STATE_FILE = "tsdae_decoder.pt"


def delete_words(sentence: str, ratio: float, rng: random.Random) -> str:
    """Drop each whitespace word with probability ``ratio``, keeping at least one so no input is empty."""
    words = sentence.split()
    if not words:
        return sentence
    kept = [word for word in words if rng.random() >= ratio]
    if not kept:
        kept = [rng.choice(words)]
    return " ".join(kept)


def denoising_dataset(sentences: Sequence[str], *, ratio: float, seed: int) -> Dataset:
    """(noisy, text) pairs: the damaged input first, the sentence to reconstruct second, as the loss expects.

    The noise is drawn once from ``seed`` rather than per epoch, so a run and its resumed continuation see the same
    inputs.
    """
    from datasets import Dataset

    rng = random.Random(seed)
    return Dataset.from_dict({"noisy": [delete_words(text, ratio, rng) for text in sentences], "text": list(sentences)})


def denoising_loss(model: SentenceTransformer) -> nn.Module:
    """sentence-transformers' DenoisingAutoEncoderLoss with the decoder tied to the encoder.

    With ``tie_encoder_decoder=True`` the loss builds its decoder from the encoder's own folder, the only decoder
    whose weights can be shared; the model must therefore have been loaded from a folder holding its config,
    weights and tokenizer (every kosearch and sentence-transformers model folder does).
    """
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

    source = getattr(model.transformers_model.config, "_name_or_path", "")
    if not source or not Path(source).is_dir():
        raise KosearchError(
            f"TSDAE builds its decoder from the base model's folder, but the model came from {source!r}, "
            "which is not a local folder. Save the model to a folder first and pass that folder as --model."
        )
    return DenoisingAutoEncoderLoss(model, tie_encoder_decoder=True)


def decoder_checkpoint_callbacks(loss: nn.Module) -> list[Any]:
    return [DecoderCheckpoint(loss)]


def _decoder_only_state(loss: nn.Module) -> dict[str, Any]:
    encoder_ids = {id(parameter) for parameter in loss.encoder.parameters()}
    return {
        name: parameter.detach().cpu()
        for name, parameter in loss.decoder.named_parameters()
        if id(parameter) not in encoder_ids
    }


class DecoderCheckpoint(TrainerCallback):
    """Saves the decoder's own (untied) weights with every checkpoint and restores them when training resumes.

    The trainer checkpoints the model, not the loss, so without this a resumed TSDAE run would restart the
    decoder's cross-attention from random weights.
    """

    def __init__(self, loss: nn.Module) -> None:
        self.loss = loss

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            torch.save(_decoder_only_state(self.loss), folder / DECODER_STATE_FILE)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:
            return
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}" / DECODER_STATE_FILE
        if path.is_file():
            self.loss.decoder.load_state_dict(torch.load(path, weights_only=True), strict=False)
            logger.info("Restored the TSDAE decoder from %s", path)
        else:
            logger.warning("No TSDAE decoder state at %s; its cross-attention restarts from scratch.", path)


def train_tsdae(
    config: TrainingConfig,
    sentences: Sequence[str | Path],
    *,
    column: str | None = None,
    limit: int | None = None,
    deletion_ratio: float = DEFAULT_DELETION_RATIO,
) -> TrainResult:
    """Train with TSDAE on the sentences of ``sentences`` (see :func:`kosearch.data.sentences.read_sentences`)."""
    if not 0.0 <= deletion_ratio < 1.0:
        raise KosearchError(f"The deletion ratio must be in [0, 1), got {deletion_ratio}.")
    texts, files = load_sentences(sentences, column=column, limit=limit, role="sentences (reconstructed)")
    recipe = Recipe(
        name="tsdae",
        summary=(
            "TSDAE (Wang et al., 2021): a tied transformer decoder reconstructs each sentence from the embedding of a "
            f"copy with {deletion_ratio:.0%} of its words deleted (DenoisingAutoEncoderLoss)."
        ),
        data=files,
        parameters={
            "loss": "DenoisingAutoEncoderLoss (tied decoder)",
            "deletion ratio": deletion_ratio,
            "text column": column,
        },
    )
    phase = TrainingPhase(
        name="tsdae",
        train_dataset=denoising_dataset(texts, ratio=deletion_ratio, seed=config.seed),
        loss=denoising_loss,
        learning_rate=config.learning_rate or DEFAULT_LEARNING_RATE,
        # Only the encoder's input carries the prompt: the decoder reconstructs the sentence itself.
        prompt_columns=["noisy"],
        callbacks=decoder_checkpoint_callbacks,
    )
    return run_training(config, recipe, [phase])
