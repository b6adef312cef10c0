"""Loading the model a recipe starts from, the prompt it is trained with, and saving what it made.

Base models go through kosearch's own resolver (:func:`kosearch.encoders.load_sentence_transformer`), so
``--model bundled`` (or no ``--model``) means the same encoder in ``kosearch train`` as in ``kosearch index``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from kosearch.train.word_weights import freeze_word_weights

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from kosearch.train.config import TrainingConfig

DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
"""The prompt names ``SentenceTransformer.encode_document`` looks for, in its order."""


def resolve_base_model(config: TrainingConfig) -> SentenceTransformer:
    """Load the base model through kosearch's resolver, so "bundled"/None means what it means everywhere else."""
    from kosearch.encoders import load_sentence_transformer

    model = load_sentence_transformer(config.model, device=config.device)
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    freeze_word_weights(model)  # an adapted folder's token weights are statistics, never trained
    return model


def reload_model(folder: Path, config: TrainingConfig) -> SentenceTransformer:
    """A model folder written by an earlier phase, with this run's device and sequence length."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device=config.device)
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    freeze_word_weights(model)
    return model


def base_model_label(config: TrainingConfig) -> str:
    """The base model's name as the card and the summary print it (the bundled model's full id, not "bundled")."""
    if config.model in (None, "bundled"):
        from kosearch.encoders import BUNDLED_MODEL

        return str(BUNDLED_MODEL)
    return str(config.model)


def training_prompt(model: SentenceTransformer) -> str | None:
    """The prompt to train with: the one ``encode_document`` applies, on every side, or none.

    The bundled e5 encoder was trained to see "passage: " or "query: " in front of every text. kosearch's recipes
    learn symmetric similarity (STS, NLI, SimCSE, TSDAE); kosearch indexes documents with the document prompt, so
    training with that prompt on both sides adapts exactly the representation that is stored; dev evaluation
    uses the same side. (``kosearch evaluate sts`` defaults to the query side, the e5 card's STS setting; the
    cards written by the recipes say which side their table is on.) Models without prompts are trained
    on the bare text. The prompts themselves are kept unchanged in the saved config.
    """
    for name in DOCUMENT_PROMPT_NAMES:
        if model.prompts.get(name):
            return model.prompts[name]
    return None


def save_model(model: SentenceTransformer, folder: Path) -> None:
    """``model.save`` into ``folder``, its weight files as readable as the files saved beside them.

    safetensors writes ``*.safetensors`` (the model's and each module's) owner-only, so a model trained by one user
    or service account could not be loaded by the index or service of another, while its other files could. They
    get the permissions of the ``modules.json`` the same save wrote (the process's umask, without changing it);
    a file that cannot be changed is left as it is, with a warning, as the model itself is saved."""
    model.save(str(folder), create_model_card=False)
    mode = (folder / "modules.json").stat().st_mode & 0o777
    for weights in folder.rglob("*.safetensors"):
        if weights.is_file() and not weights.is_symlink():
            try:
                weights.chmod(mode)
            except OSError as error:
                logging.getLogger(__name__).warning("could not make %s readable like the rest: %s", weights, error)
