"""Encode a few texts with a BERT + mean-pooling folder in numpy, so that ``kosearch query`` need not import torch.

A one-shot query spends almost all its time before the first vector: importing torch, transformers and
sentence-transformers (which in turn imports scikit-learn, datasets and accelerate) takes ten seconds or more,
against a few milliseconds to run one short sentence through multilingual-e5-small. This module runs the same
forward pass with numpy, which kosearch imports anyway, over the same files that ``SentenceTransformer(folder)``
reads: ``tokenizer.json`` through ``tokenizers`` and ``model.safetensors`` memory-mapped (only the rows of the
word-embedding table that a text uses are read, a few kB instead of 384 MB).

It is the BERT encoder exactly as ``transformers.BertModel`` computes it in float32 (post-LayerNorm blocks,
absolute positions from 0, token type 0, erf GELU), followed by mean pooling over every non-padding token and L2
normalisation: sentence-transformers' ``Transformer`` -> ``Pooling(mean, include_prompt)`` -> ``Normalize``.
Vectors agree with sentence-transformers' to float32 rounding (cosine >= 0.99999 in
tests/test_encoders.py::test_numpy_bert_matches_sentence_transformers); anything else (another architecture,
pooling or weight format) is refused by :func:`unsupported_reason` and left to sentence-transformers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
_ST_MODULE_KINDS = ("Transformer", "Pooling", "Normalize")
_ATTENTION_BYTES = 1 << 28
"""Batches of long texts are cut so that one layer's attention scores stay under 256 MB."""
_MASKED = np.float32(np.finfo(np.float32).min)
"""Added to the attention scores of padding keys, as ``BertModel``'s extended attention mask does."""


def unsupported_reason(folder: str | Path) -> str | None:
    """Why :class:`NumpyBert` cannot reproduce ``SentenceTransformer(folder)``, or None when it can."""
    folder = Path(folder)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable configuration ({exc})"
    kinds = tuple(str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules)
    if kinds != _ST_MODULE_KINDS or [module.get("path") for module in modules][:2] != ["", "1_Pooling"]:
        return f"modules {kinds} are not Transformer, Pooling, Normalize"
    expected = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    for key, value in expected.items():
        if config.get(key, "absolute" if key == "position_embedding_type" else None) != value:
            return f"config.json {key} is {config.get(key)!r}, not {value!r}"
    if not _is_mean_pooling(pooling):
        return "pooling is not a mean over all tokens"
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / TOKENIZER_FILE).is_file():
        return f"no {WEIGHTS_FILE} or {TOKENIZER_FILE}"
    return None


def _is_mean_pooling(pooling: Mapping) -> bool:
    if not pooling.get("include_prompt", True):
        return False
    if "pooling_mode" in pooling:  # sentence-transformers >= 6
        return pooling["pooling_mode"] == "mean"
    modes = {key for key, value in pooling.items() if key.startswith("pooling_mode_") and value}
    return modes == {"pooling_mode_mean_tokens"}


class NumpyBert:
    """L2-normalised mean-pooled BERT vectors of texts, computed in float32 numpy.

    ``max_seq_length`` counts special tokens, as sentence-transformers' does; prompts are the caller's business
    (prepend them to the texts, as ``encode_query`` does).
    """

    def __init__(self, folder: str | Path, max_seq_length: int) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.dimension = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._eps = np.float32(config.get("layer_norm_eps", 1e-12))
        self._layers_count = int(config["num_hidden_layers"])
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        limit = min(int(max_seq_length), int(config["max_position_embeddings"]))
        self._tokenizer.enable_truncation(max_length=limit)
        self._tokenizer.no_padding()
        self._file = safe_open(str(folder / WEIGHTS_FILE), framework="np")
        self._prefix = "bert." if "bert.embeddings.word_embeddings.weight" in self._file.keys() else ""
        self._word = self._file.get_slice(self._prefix + "embeddings.word_embeddings.weight")
        self._positions = self._tensor("embeddings.position_embeddings.weight")
        self._token_type = self._tensor("embeddings.token_type_embeddings.weight")[0]
        self._embedding_norm = (self._tensor("embeddings.LayerNorm.weight"), self._tensor("embeddings.LayerNorm.bias"))
        self._layers: list[dict[str, np.ndarray]] | None = None

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), dimension)`` float32 unit vectors; texts are batched by length, as sentence-transformers does."""
        texts = list(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        start = 0
        while start < len(order):
            longest = len(encodings[order[start]].ids)  # the batch's first text is its longest
            fitting = max(1, _ATTENTION_BYTES // (4 * self._heads * longest * longest))
            rows = order[start : start + min(batch_size, fitting)]
            vectors[rows] = self._forward([encodings[i].ids for i in rows])
            start += len(rows)
        return vectors

    # -- the forward pass ---------------------------------------------------------------------------

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        length = max(len(ids) for ids in batch)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, ids in enumerate(batch):
            mask[row, : len(ids)] = 1.0
        hidden = self._embed(batch, length)
        key_bias = ((1.0 - mask) * _MASKED)[:, None, None, :]
        for layer in self._layer_weights():
            hidden = self._block(hidden, key_bias, layer)
        pooled = (hidden * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _embed(self, batch: list[list[int]], length: int) -> np.ndarray:
        used = sorted({token for ids in batch for token in ids})
        rows = {token: self._word[token : token + 1][0].astype(np.float32) for token in used}  # only these rows are read
        words = np.zeros((len(batch), length, self.dimension), dtype=np.float32)
        for row, ids in enumerate(batch):
            words[row, : len(ids)] = [rows[token] for token in ids]
        words[:, :, :] += self._positions[:length] + self._token_type  # padding rows are masked out later
        return _layer_norm(words, *self._embedding_norm, self._eps)

    def _block(self, hidden: np.ndarray, key_bias: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
        batch, length, width = hidden.shape
        head = width // self._heads

        def heads(x: np.ndarray) -> np.ndarray:
            return x.reshape(batch, length, self._heads, head).transpose(0, 2, 1, 3)

        query = heads(_linear(hidden, w["q.w"], w["q.b"]))
        key = heads(_linear(hidden, w["k.w"], w["k.b"]))
        value = heads(_linear(hidden, w["v.w"], w["v.b"]))
        scores = query @ key.transpose(0, 1, 3, 2) * np.float32(1.0 / np.sqrt(head)) + key_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch, length, width)
        hidden = _layer_norm(hidden + _linear(context, w["ao.w"], w["ao.b"]), w["aln.w"], w["aln.b"], self._eps)
        inner = _gelu(_linear(hidden, w["fi.w"], w["fi.b"]))
        return _layer_norm(hidden + _linear(inner, w["fo.w"], w["fo.b"]), w["oln.w"], w["oln.b"], self._eps)

    def _layer_weights(self) -> list[dict[str, np.ndarray]]:
        if self._layers is None:
            names = {
                "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
                "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
            }
            self._layers = [
                {
                    f"{short}.{part[0]}": self._tensor(f"encoder.layer.{layer}.{name}.{part}")
                    for short, name in names.items()
                    for part in ("weight", "bias")
                }
                for layer in range(self._layers_count)
            ]
        return self._layers

    def _tensor(self, name: str) -> np.ndarray:
        return np.ascontiguousarray(self._file.get_tensor(self._prefix + name), dtype=np.float32)


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    # As one 2-D product: numpy hands that to BLAS, whereas a stacked (3-D @ 2-D) product may loop in C.
    flat = x.reshape(-1, x.shape[-1]) @ weight.T
    return (flat + bias).reshape(*x.shape[:-1], weight.shape[0])


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: np.float32) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """``x * Phi(x)`` with the exact (erf) normal CDF, as ``BertModel``'s ``"gelu"``: ``0.5 * x * erfc(-x / sqrt 2)``."""
    return (0.5 * x * _erfc(-x.astype(np.float64) / np.sqrt(2.0))).astype(np.float32)


def _erfc(z: np.ndarray) -> np.ndarray:
    """Complementary error function, fractional error below 1.2e-7 everywhere (Numerical Recipes' ``erfcc``,
    a Chebyshev fit), which is float32 precision; numpy has no erf and scipy.special takes a second to import."""
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    value = t * np.exp(-a * a + poly)
    return np.where(z >= 0, value, 2.0 - value)
