"""Turn whatever names a model into a SentenceTransformer, and encode texts on a chosen prompt side.

Evaluations work on the SentenceTransformer itself, not only through :class:`kosearch.encoders.Encoder`,
because the STS table must see the model's raw embeddings (as sentence-transformers' evaluators and the
published Korean model cards do), while the Encoder always L2-normalises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from kosearch.encoders import Encoder

ModelLike = Union[None, str, Path, "Encoder", "SentenceTransformer"]
"""None or "bundled" (the bundled multilingual-e5-small), a model folder, a Hugging Face id, an Encoder,
or a SentenceTransformer already in memory."""

Side = Literal["document", "query", "none"]
"""Which prompt the model puts before a text: its document prompt (e5: "passage: "), its query prompt
(e5: "query: "), or none (plain ``SentenceTransformer.encode``)."""

SIDES: tuple[str, ...] = ("document", "query", "none")


@dataclass
class EvaluatedModel:
    """A loaded model and the name results are reported under."""

    model: SentenceTransformer
    name: str


def load_model(model: ModelLike = None, device: str | None = None) -> EvaluatedModel:
    """Resolve ``model`` the way the rest of kosearch does (see ``kosearch.encoders``)."""
    from sentence_transformers import SentenceTransformer

    if isinstance(model, SentenceTransformer):
        return EvaluatedModel(model=model, name=_sentence_transformer_name(model))
    inner = getattr(model, "model", None)
    if isinstance(inner, SentenceTransformer):  # a kosearch Encoder
        name = getattr(model, "name", None) or _sentence_transformer_name(inner)
        return EvaluatedModel(model=inner, name=str(name))
    if model is not None and not isinstance(model, (str, Path)):
        raise TypeError(
            f"cannot evaluate a {type(model).__name__}; "
            "pass a model name, a folder, an Encoder or a SentenceTransformer."
        )

    from kosearch.encoders import load_sentence_transformer, resolve_model_name

    name, _ = resolve_model_name(model)  # the display name an index built with this model records
    return EvaluatedModel(model=load_sentence_transformer(model, device=device), name=name)


def encode(
    model: SentenceTransformer,
    texts: Sequence[str],
    side: Side,
    *,
    normalize: bool,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """Encode ``texts`` with the prompt of ``side``, as float32 numpy rows."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, not {side!r}.")
    method = {"document": model.encode_document, "query": model.encode_query, "none": model.encode}[side]
    embeddings: Any = method(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
        convert_to_numpy=True,
        normalize_embeddings=normalize,
    )
    return np.asarray(embeddings, dtype=np.float32)


def _sentence_transformer_name(model: SentenceTransformer) -> str:
    """Best human-readable name of an in-memory model: its base model id, else its transformer's path."""
    base = getattr(getattr(model, "model_card_data", None), "base_model", None)
    if base:
        return str(base)
    try:
        return str(model[0].auto_model.config.name_or_path) or type(model).__name__
    except (AttributeError, IndexError, TypeError, KeyError):
        return type(model).__name__
