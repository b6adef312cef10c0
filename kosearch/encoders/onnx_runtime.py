"""Run an exported sentence-embedding graph (see :mod:`kosearch.encoders.onnx_export`) with ONNX Runtime.

Neither torch nor transformers is imported: texts are tokenized by ``tokenizers`` from the model's own
``tokenizer.json`` (truncated to the model's ``max_seq_length``, as sentence-transformers truncates), sorted by
length and padded per batch as ``SentenceTransformer.encode`` batches them, and the graph returns the pooled
sentence embedding, which is L2-normalised here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer


def load_tokenizer(path: str | Path, max_seq_length: int) -> Tokenizer:
    """The fast tokenizer at ``path``, truncating to ``max_seq_length`` tokens (specials included), unpadded."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=int(max_seq_length))
    tokenizer.no_padding()
    return tokenizer


def padded_batch(encodings: Sequence[Encoding]) -> dict[str, np.ndarray]:
    """``input_ids`` and ``attention_mask`` (int64, right-padded with id 0 under a zero mask) for the graph."""
    length = max(len(encoding.ids) for encoding in encodings)
    ids = np.zeros((len(encodings), length), dtype=np.int64)
    mask = np.zeros((len(encodings), length), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class OnnxSentenceEncoder:
    """L2-normalised sentence vectors from one ONNX file; prompts are the caller's (prepend them to the texts).

    ``threads`` is ONNX Runtime's intra-op thread count (None: its default, one per physical core).
    """

    def __init__(
        self, onnx_file: str | Path, tokenizer_file: str | Path, max_seq_length: int, threads: int | None = None
    ) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the optimiser's notes are not the user's business
        if threads:
            options.intra_op_num_threads = int(threads)
        self.file = Path(onnx_file)
        self._session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._tokenizer = load_tokenizer(tokenizer_file, max_seq_length)
        width = self._session.get_outputs()[0].shape[-1]  # a name, not a number, if the export left it dynamic
        self.dimension = width if isinstance(width, int) else int(self._run([self._tokenizer.encode("a")]).shape[1])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """``(len(texts), dimension)`` float32 unit vectors, in the order of ``texts``."""
        texts = list(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))  # little padding per batch
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            vectors[rows] = self._run([encodings[i] for i in rows])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _run(self, encodings: Sequence[Encoding]) -> np.ndarray:
        return self._session.run(None, padded_batch(encodings))[0]
