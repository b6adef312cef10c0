"""The encoder backends (what computes a vector), declared once: the CLI option, the Encoder and the manifest read this.

Not to be confused with the *vector* backend (``faiss`` / ``torch``, where vectors are searched, see
:mod:`kosearch.store`): an encoder backend decides how text becomes a vector.

- ``torch``: sentence-transformers on torch (float32 on the CPU, float16 on CUDA). The default.
- ``onnx``: the same float32 graph run by ONNX Runtime on the CPU, exported once per model by
  :mod:`kosearch.encoders.onnx_export`. Its vectors equal torch's to float32 rounding (cosine >= 0.99999),
  so an index cannot tell them apart and records nothing.
- ``onnx-int8``: that graph with int8 weights and dynamically quantised activations (ONNX Runtime's
  dynamic quantisation, as ``sentence_transformers.backend.export_dynamic_quantized_onnx_model`` applies it).
  Faster, but its vectors differ measurably (cosine to torch about 0.996 on average, 0.98 at worst on NSMC
  reviews), so an index filled with them records it (:func:`vector_family`) and refuses to mix in float vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kosearch.errors import KosearchError

EncoderBackendName = Literal["torch", "onnx", "onnx-int8"]


@dataclass(frozen=True)
class EncoderBackend:
    """One way of computing vectors; ``quantized`` backends make vectors of their own family."""

    name: str
    help: str
    runtime: Literal["torch", "onnxruntime"]
    quantized: bool = False


ENCODER_BACKENDS: dict[str, EncoderBackend] = {
    backend.name: backend
    for backend in (
        EncoderBackend("torch", "sentence-transformers on torch (default)", "torch"),
        EncoderBackend("onnx", "ONNX Runtime, float32 (same vectors as torch), CPU only", "onnxruntime"),
        EncoderBackend(
            "onnx-int8", "ONNX Runtime, int8 dynamic quantisation (faster, slightly different vectors), CPU only",
            "onnxruntime", quantized=True,
        ),
    )
}
DEFAULT_ENCODER_BACKEND = "torch"

ENCODER_BACKEND_HELP = "How text becomes vectors: " + "; ".join(
    f"{backend.name}: {backend.help}" for backend in ENCODER_BACKENDS.values()
) + "."
"""The CLI's help text for ``--encoder-backend``, derived from the table above."""


def encoder_backend(name: str | None) -> EncoderBackend:
    """The backend called ``name`` (None: the default), or a :class:`KosearchError` listing the choices."""
    key = (name or DEFAULT_ENCODER_BACKEND).strip().lower()
    if key not in ENCODER_BACKENDS:
        raise KosearchError(
            f"Unknown encoder backend {name!r}; use one of {', '.join(ENCODER_BACKENDS)} (--encoder-backend)."
        )
    return ENCODER_BACKENDS[key]


def vector_family(name: str | None) -> str | None:
    """What an index records about the backend that made its vectors: None where the vectors are torch's
    (to float32 rounding), else the backend's name. Two backends with the same family give interchangeable
    vectors."""
    backend = encoder_backend(name)
    return backend.name if backend.quantized else None
