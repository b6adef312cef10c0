"""Test doubles shared by the plumbing tests (the real encoder is tested separately)."""

from __future__ import annotations

import hashlib
import zlib

import numpy as np


class HashingEncoder:
    """A deterministic bag-of-character-bigrams encoder with the ``Encoder`` interface.

    Texts that share bigrams get similar vectors, so ranking and mining behave meaningfully,
    and it needs no model: plumbing tests run in milliseconds.
    """

    device = "cpu"

    def __init__(self, dimension: int = 64, name: str = "test/hashing-bigrams") -> None:
        self.dimension = dimension
        self.name = name
        self.prompts: dict[str, str] = {}
        self.fingerprint = hashlib.sha256(f"{name}:{dimension}".encode()).hexdigest()[:16]
        self.calls: list[int] = []

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f" {text} "
            for first, second in zip(padded, padded[1:]):
                vectors[row, zlib.crc32((first + second).encode()) % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def encode_documents(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        return self._encode(list(texts))

    def encode_queries(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        return self._encode(list(texts))
