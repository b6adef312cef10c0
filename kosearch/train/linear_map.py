"""A linear map after pooling, trained on the folder's mined queries: the encoder's output bent towards the domain.

Fine-tuning the whole encoder on the queries :mod:`kosearch.train.mining` makes (BM25 as the teacher) helped one
development set and hurt the other, and it takes the whole budget. A linear map ``W`` on the sentence vectors is a
much smaller change: the transformer runs once over the examples (no backward pass through it), ``W`` starts at the
identity and is pulled back towards it (``l2 * ||W - I||^2``), and it trains on the cached vectors in seconds with
the loss the fine-tuning uses (``MultipleNegativesRankingLoss``: each query must rank its passage above its hard
negative and every other passage of the batch). Whitening, another linear map fitted on the domain's vectors,
lifted in-domain retrieval more but cost general similarity (KorSTS -1 to -2); the trained map asks only for what
the examples show.

Measured (docs/training.md, "A trained linear map"): through a kosearch index, the bundled e5 with the folder's
token weights and this map against the weights alone, dense nDCG@10 chatbot +0.19 and NSMC +1.42, hybrid +0.05 and
+0.63, KorSTS -0.63 and -0.29 (still above the base model's). In the screen (``bench/adapt_linear.py``) every
``l2`` from 0.3 to 3 with 1 to 8 passes gained on both sets; ``l2`` 0 overfitted the examples (NSMC -4.3 after 8
passes) and ``l2`` 10 kept the map at the identity.

The map is sentence-transformers' own ``Dense`` module (no bias, identity activation) followed by ``Normalize``,
so the adapted folder loads in ``SentenceTransformer`` and kosearch's ONNX export as any other.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from kosearch.train.mining import TrainingExample

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MAP_L2 = 1.0
"""Pull of the map towards the identity; see the module docstring for the measurement."""
MAP_EPOCHS = 4
MAP_BATCH = 128
MAP_LEARNING_RATE = 1e-3
MAP_SCALE = 20.0
"""Similarity scale of the loss (``MultipleNegativesRankingLoss``'s default, as the fine-tuning uses)."""
MAP_EXAMPLES = 8000
"""At most this many mined examples are encoded (a seeded sample), to bound the time: 8,000 took about 3.5 minutes on
the 2-core development machine."""
_ENCODE_CHUNK = 256


def encode_examples(
    model: SentenceTransformer, examples: Sequence[TrainingExample], *, deadline: float | None = None,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors of each example's query (query prompt), positive and negative (document prompt).

    ``deadline`` (a ``time.perf_counter()`` value): stop before a chunk of examples that would end after it, so
    a budget is kept; the examples encoded by then are returned (possibly none: then arrays of shape (0, 0)).
    """
    prompts = model.prompts
    query_prompt, document_prompt = prompts.get("query", ""), prompts.get("document", "")
    parts: list[np.ndarray] = []
    chunk_seconds = 0.0
    for start in range(0, len(examples), _ENCODE_CHUNK):
        if deadline is not None and time.perf_counter() + chunk_seconds > deadline:
            break
        tick = time.perf_counter()
        chunk = examples[start:start + _ENCODE_CHUNK]
        queries = [query_prompt + example.query for example in chunk]
        documents = [document_prompt + text for example in chunk for text in (example.positive, example.negative)]
        vectors = [
            model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                         show_progress_bar=False)
            for texts in (queries, documents)
        ]
        parts.append(np.hstack([vectors[0], vectors[1].reshape(len(chunk), -1)]))
        chunk_seconds = time.perf_counter() - tick
    if not parts:
        empty = np.zeros((0, 0), dtype=np.float32)
        return empty, empty, empty
    rows = np.vstack(parts).astype(np.float32)
    width = rows.shape[1] // 3
    return rows[:, :width], rows[:, width:2 * width], rows[:, 2 * width:]


def train_linear_map(
    queries: np.ndarray, positives: np.ndarray, negatives: np.ndarray, *, l2: float = MAP_L2,
    epochs: int = MAP_EPOCHS, batch: int = MAP_BATCH, learning_rate: float = MAP_LEARNING_RATE,
    scale: float = MAP_SCALE, seed: int = 42,
) -> np.ndarray:
    """The ``d x d`` matrix ``W`` (vectors map as ``x @ W``) that ranks each query's positive first among its
    batch's positives and negatives, from the identity, with ``l2 * ||W - I||^2``. Deterministic for a seed.
    A batch smaller than ``batch`` at the end of a pass is dropped; fewer examples than ``batch`` make one batch."""
    import torch

    q, p, n = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for x in (queries, positives, negatives))
    identity = torch.eye(q.shape[1])
    matrix = identity.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([matrix], lr=learning_rate)
    size = min(batch, len(q))
    rng = random.Random(seed)
    order = list(range(len(q)))
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order) - size + 1, size):
            rows = order[start:start + size]
            anchors = torch.nn.functional.normalize(q[rows] @ matrix, dim=1)
            candidates = torch.nn.functional.normalize(torch.cat([p[rows], n[rows]]) @ matrix, dim=1)
            loss = torch.nn.functional.cross_entropy(scale * anchors @ candidates.T, torch.arange(len(rows)))
            loss = loss + l2 * ((matrix - identity) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return matrix.detach().numpy()


def add_linear_map(model: SentenceTransformer, matrix: np.ndarray) -> None:
    """Append ``Dense`` (weight ``matrix.T``, no bias, identity activation) and ``Normalize`` to ``model``; a
    ``Normalize`` goes first when the model does not end with one, as the map was trained on unit vectors."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    dimension = matrix.shape[0]
    dense = Dense(dimension, dimension, bias=False, activation_function=torch.nn.Identity(),
                  init_weight=torch.from_numpy(np.ascontiguousarray(matrix.T, dtype=np.float32)))
    tail = [dense, Normalize()]
    if not isinstance(list(model)[-1], Normalize):
        tail.insert(0, Normalize())
    for module in tail:
        model.append(module.to(model.device))
