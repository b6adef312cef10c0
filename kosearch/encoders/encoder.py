"""The one object the rest of kosearch encodes text with: a SentenceTransformer plus the facts an index must
record about it (display name, fingerprint, dimension, prompts).

Loading sentence-transformers costs seconds (torch, transformers, scikit-learn, datasets) before the first
vector, which is most of a one-shot ``kosearch query``. For the bundled model on the CPU the encoder therefore
starts without it: dimension and prompts come from the folder's config files, queries go through
:mod:`kosearch.encoders.numpy_bert` (the same weights and tokenizer, float32 numpy), and SentenceTransformer is
loaded when something needs it (documents, ``.model``). Once it is loaded, it encodes queries too.

With ``encoder_backend="onnx"`` or ``"onnx-int8"`` (see :mod:`kosearch.encoders.backends`) documents and queries
go through ONNX Runtime instead (:mod:`kosearch.encoders.onnx_runtime`), on the CPU, and torch is imported only
for the one-time export. Float32 ONNX queries of the bundled model still take the numpy path (same vectors, no
session to load); int8 vectors are a family of their own, so int8 encodes queries with the int8 graph too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kosearch.encoders.backends import encoder_backend as lookup_encoder_backend
from kosearch.encoders.backends import vector_family
from kosearch.encoders.bundled import BUNDLED_MODEL
from kosearch.encoders.device import resolve_device
from kosearch.encoders.fingerprint import FINGERPRINT_LENGTH, model_fingerprint
from kosearch.encoders.precision import resolve_precision, torch_dtype
from kosearch.encoders.resolve import hub_snapshot_folder, resolve_model_name
from kosearch.errors import EncoderNotFoundError, KosearchError
from kosearch.memory import return_free_memory

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

    from kosearch.encoders.numpy_bert import NumpyBert
    from kosearch.encoders.onnx_runtime import OnnxSentenceEncoder


def load_sentence_transformer(
    name_or_path: str | os.PathLike[str] | None = None, device: str | None = None
) -> SentenceTransformer:
    """Resolve ``name_or_path`` as :func:`~kosearch.encoders.resolve.resolve_model_name` does and load it in
    float32 on ``device`` (default: auto). Training and evaluation start from here; :class:`Encoder` adds
    float16 on CUDA on top, which is right for inference but not for optimiser state."""
    _, source = resolve_model_name(name_or_path)
    return _load(source, resolve_device(device))


NUMPY_QUERY_LIMIT = 64
"""Most queries encoded per call without SentenceTransformer: numpy answers a few queries seconds sooner
(nothing to import), while torch encodes thousands (an evaluation's query set) up to twice as fast."""


TRIM_AFTER_TEXTS = 1024
"""After encoding this many texts or more in one call, the free pages of glibc's heaps go back to the system
(``kosearch.memory.return_free_memory``; tens of milliseconds against seconds of encoding). Batches of every
sequence length leave freed activations resident otherwise: over calls 2-5 of 8,192 sentences of a build (bf16),
the resident size after a call grew by 0.42 GB without this and 0.09 GB with it, at the same speed
(docs/benchmarks.md, section k). A query's few texts skip it, so a search pays nothing."""


class Encoder:
    """Encode documents and queries into L2-normalised float32 vectors with one model, on one device.

    Prompts come from the model's own config through ``encode_document`` / ``encode_query``, so the bundled
    e5 model gets ``passage: `` / ``query: `` and a model without prompts encodes the raw text. ``precision``
    (see :mod:`kosearch.encoders.precision`) is what the model computes in: ``auto`` is float16 on CUDA (about
    twice the throughput of float32 on tensor cores) and float32 elsewhere; ``fp32``, ``fp16`` and ``bf16``
    ask for one. Vectors are returned as float32 either way. For the bundled model on the CPU, the SentenceTransformer is
    loaded when documents are first encoded, :attr:`model` is read or more than :data:`NUMPY_QUERY_LIMIT` queries
    come at once; queries before that are encoded by :class:`~kosearch.encoders.numpy_bert.NumpyBert` (same
    vectors to float32 rounding, no torch import).

    ``encoder_backend`` (``"torch"``, ``"onnx"`` or ``"onnx-int8"``; see :mod:`kosearch.encoders.backends`)
    chooses what computes the vectors; the ONNX backends run on the CPU and export the model once.

    >>> encoder = Encoder()                       # bundled multilingual-e5-small, auto device
    >>> encoder.encode_queries(["치타가 먹이를 쫓는다"]).shape
    (1, 384)
    >>> Encoder(encoder_backend="onnx-int8").vector_family   # recorded by an index it fills
    'onnx-int8'
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str | None = None,
        batch_size: int = 64,
        encoder_backend: str | None = None,
        precision: str | None = None,
    ):
        backend = lookup_encoder_backend(encoder_backend)
        self.encoder_backend = backend.name
        self.name, self.source = resolve_model_name(model)
        self._onnx = backend.runtime == "onnxruntime"
        self.device = _onnx_device(device, backend.name) if self._onnx else resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        if self._onnx and self.precision != "fp32":
            raise KosearchError(
                f"The {backend.name} encoder backend computes in float32 (or its own int8), not {self.precision}; "
                "leave --precision out, or use --encoder-backend torch."
            )
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._numpy_queries: NumpyBert | None = None
        self._onnx_runtime: OnnxSentenceEncoder | None = None
        # The numpy query path computes in float32; an encoder asked for another precision uses torch throughout.
        self._deferred = (
            not backend.quantized
            and self.precision == "fp32"
            and _numpy_queries_possible(self.name, self.source, self.device)
        )
        if self._onnx:
            _require_onnxruntime(backend.name)
            if self.folder is None:
                raise EncoderNotFoundError(
                    f"The {backend.name} encoder backend needs the model's files on disk, and {self.source!r} is "
                    "neither a local folder nor in the Hugging Face cache. Use --encoder-backend torch."
                )
        elif not self._deferred:
            self._load_model()  # a model that cannot be loaded is refused here, not at the first vector

    @property
    def vector_family(self) -> str | None:
        """None when this encoder's vectors are torch's (to float32 rounding), else the backend that makes its own
        kind (``"onnx-int8"``); see :func:`kosearch.encoders.backends.vector_family`."""
        return vector_family(self.encoder_backend)

    @property
    def model(self) -> SentenceTransformer:
        """The SentenceTransformer itself (loaded on first access for the bundled model on the CPU)."""
        return self._model if self._model is not None else self._load_model()

    def _load_model(self) -> SentenceTransformer:
        dtype = None if self.precision == "fp32" else torch_dtype(self.precision)
        model = _load(self.source, self.device, dtype)
        if dtype is not None:
            model.to(dtype)  # a no-op where the weights were loaded in it; converts any module that was not
        self._model = model
        self._numpy_queries = None
        return model

    def release(self) -> None:
        """Free the loaded model (SentenceTransformer, numpy or ONNX runtime); the next encode loads it again.

        An indexing run calls this before a long merge (``kosearch.ingest``), so the model (releasing the
        bundled model gave back 0.55 GB in bf16 through torch, 0.8 GB through ONNX Runtime with its
        arena; ``bench/bench_build_memory.py --probe``) is not held while the merge builds an index as large
        as the vectors; reloading takes seconds, the merge minutes. The libraries stay imported (torch
        and sentence-transformers keep about 0.6 GB resident, ONNX Runtime 0.15 GB). What this encoder
        records about the model (name, fingerprint, dimension, prompts) is kept, so its vectors do not change.
        """
        self.dimension, self._prompts  # noqa: B018 - read while the model is here, kept after it goes
        self._model = None
        self._numpy_queries = None
        self._onnx_runtime = None
        return_free_memory()

    @cached_property
    def dimension(self) -> int:
        """Length of every vector this encoder returns."""
        if self._onnx and not self._deferred:  # the bundled model's config says it without an ONNX session
            return self._onnx_encoder().dimension
        if self._model is None:
            return int(_read_json(Path(self.source) / "config.json")["hidden_size"])
        return int(embedding_dimension(self._model))

    @property
    def prompts(self) -> dict[str, str]:
        """The model's prompt table (e.g. ``{"query": "query: ", "document": "passage: "}``); may be empty."""
        return dict(self._prompts)

    @cached_property
    def _prompts(self) -> dict[str, str]:
        if self._model is None and self.folder is not None:  # the file SentenceTransformer reads its prompts from
            path = self.folder / "config_sentence_transformers.json"
            return dict(_read_json(path).get("prompts") or {}) if path.is_file() else {}
        return dict(self._model.prompts)

    @cached_property
    def folder(self) -> Path | None:
        """The local folder the weights were loaded from (a hub id's snapshot in the Hugging Face cache)."""
        path = Path(self.source)
        if path.is_dir():
            return path
        return hub_snapshot_folder(self.source, cache_dir=os.environ.get("SENTENCE_TRANSFORMERS_HOME"))

    @cached_property
    def fingerprint(self) -> str:
        """Short hex hash of the files that decide the vectors, plus the prompts; see
        :func:`~kosearch.encoders.fingerprint.model_fingerprint`. Two encoders with equal fingerprints produce
        interchangeable vectors, wherever their folders live."""
        if self.folder is None:  # loaded from somewhere we cannot see; fall back to the name
            return hashlib.sha256(f"hub:{self.source}|{sorted(self.prompts.items())}".encode()).hexdigest()[
                :FINGERPRINT_LENGTH
            ]
        return model_fingerprint(self.folder, self.prompts)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress_bar: bool = False
    ) -> np.ndarray:
        """Vectors for passages to be searched, shape ``(len(texts), dimension)``.

        SentenceTransformer sorts each call's texts by length before batching (and restores the order),
        so pass large lists in one call rather than pre-chunking them: batches then need little padding.
        """
        if self._onnx:
            return self._encode_onnx(texts, "document", batch_size)
        return self._encode(self.model.encode_document, texts, batch_size, show_progress_bar)

    def encode_queries(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress_bar: bool = False
    ) -> np.ndarray:
        """Vectors for search queries (the model's ``query`` prompt), comparable to :meth:`encode_documents`."""
        texts = list(texts)
        if self._model is None and self._onnx_runtime is None and self._deferred and len(texts) <= NUMPY_QUERY_LIMIT:
            prompt = self.prompts.get("query", "")
            return self._numpy_runtime().encode([prompt + text for text in texts], batch_size or self.batch_size)
        if self._onnx:
            return self._encode_onnx(texts, "query", batch_size)
        return self._encode(self.model.encode_query, texts, batch_size, show_progress_bar)

    def warm_up(self) -> None:
        """Load now the runtime that answers queries fastest in a long-lived process (a server, a benchmark).

        Until an ONNX session exists, a few queries of an ONNX backend go through numpy
        (:mod:`kosearch.encoders.numpy_bert`), which needs no session: creating one takes seconds that a
        one-shot ``kosearch query`` should not pay. A process that answers many queries pays them once, here,
        and every query after runs through ONNX Runtime (about 3x faster than numpy for one short Korean query;
        docs/benchmarks.md, "Query encoding through ONNX Runtime"). The torch backend is left as it is: its model
        is loaded at construction, or at the first document or large query batch when a few queries go through
        numpy.
        """
        if self._onnx:
            self._onnx_encoder()

    def _numpy_runtime(self) -> NumpyBert:
        if self._numpy_queries is None:
            from kosearch.encoders.numpy_bert import NumpyBert

            max_length = _read_json(Path(self.source) / "sentence_bert_config.json")["max_seq_length"]
            self._numpy_queries = NumpyBert(self.source, max_seq_length=max_length)
        return self._numpy_queries

    def _encode_onnx(self, texts: Sequence[str], side: str, batch_size: int | None) -> np.ndarray:
        prompt = self.prompts.get(side, "")
        return self._onnx_encoder().encode([prompt + text for text in texts], batch_size or self.batch_size)

    def _onnx_encoder(self) -> OnnxSentenceEncoder:
        if self._onnx_runtime is None:
            from kosearch.encoders.onnx_export import onnx_model_file, read_export_record
            from kosearch.encoders.onnx_runtime import OnnxSentenceEncoder

            assert self.folder is not None
            quantized = vector_family(self.encoder_backend) is not None
            onnx_file = onnx_model_file(self.folder, self.fingerprint, quantized=quantized)
            record = read_export_record(onnx_file)
            self._onnx_runtime = OnnxSentenceEncoder(
                onnx_file, onnx_file.parent / "tokenizer.json", record["max_seq_length"]
            )
        return self._onnx_runtime

    def _encode(
        self, method: Callable[..., np.ndarray], texts: Sequence[str], batch_size: int | None, show_progress_bar: bool
    ) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = method(
            texts,
            batch_size=batch_size or self.batch_size,
            show_progress_bar=show_progress_bar,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        if len(texts) >= TRIM_AFTER_TEXTS:
            return_free_memory()
        if vectors.dtype != np.float32 or self.precision != "fp32":
            # fp16/bf16 vectors were normalised in their own precision (sentence-transformers may already
            # have widened bf16, which numpy lacks): widen, then restore the unit length lost to rounding.
            vectors = vectors.astype(np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return (
            f"Encoder(name={self.name!r}, device={self.device!r}, encoder_backend={self.encoder_backend!r}, "
            f"precision={self.precision!r}, dimension={self.dimension})"
        )


def embedding_dimension(model: SentenceTransformer) -> int | None:
    """``model``'s vector length (None when its modules do not say), by the method's name in this
    sentence-transformers (``get_embedding_dimension`` since 6, ``get_sentence_embedding_dimension`` before)."""
    method = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return method()


def _onnx_device(device: str | None, backend: str) -> str:
    """The ONNX backends run on the CPU (kosearch installs ONNX Runtime's CPU build): auto means cpu there."""
    requested = (device or "auto").strip().lower()
    if requested not in {"auto", "cpu"}:
        raise KosearchError(
            f"The {backend} encoder backend runs on the CPU only, but device {device!r} was asked for. "
            "Use --device cpu (or leave it out), or --encoder-backend torch to encode on the GPU."
        )
    return "cpu"


def _require_onnxruntime(backend: str) -> None:
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        raise KosearchError(
            f"The {backend} encoder backend needs ONNX Runtime: pip install 'kosearch[onnx]' "
            "(onnxruntime and onnx), or use --encoder-backend torch."
        )


def _numpy_queries_possible(name: str, source: str, device: str) -> bool:
    """Only the bundled model, which kosearch itself writes (so its config files are known), and only on the CPU."""
    from kosearch.encoders.numpy_bert import unsupported_reason

    return name == BUNDLED_MODEL and device == "cpu" and unsupported_reason(source) is None


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _load(source: str, device: str, dtype: torch.dtype | None = None) -> SentenceTransformer:
    """The model at ``source``; in ``dtype`` from the start when given, since loading in float32 and then
    converting holds both copies for a moment: the bundled model's peak RSS was 1.53 GB that way and 1.23 GB
    loaded in bfloat16, the same 1.08 GB after (docs/benchmarks.md, "j. Loading in the compute precision")."""
    try:
        from sentence_transformers import SentenceTransformer

        if dtype is None:
            return SentenceTransformer(source, device=device)
        return SentenceTransformer(source, device=device, model_kwargs={"dtype": dtype})
    except Exception as exc:  # hub, filesystem and config errors all mean "cannot use this model"
        where = "local folder" if Path(source).is_dir() else "Hugging Face id"
        raise EncoderNotFoundError(
            f"Could not load the model {source!r} ({where}): {type(exc).__name__}: {exc}. "
            "Without network access only local folders, models already in the Hugging Face cache and the "
            "bundled model (leave --model out) can be loaded."
        ) from exc
