"""A linear map after pooling, trained on the folder's mined queries: the encoder's output bent towards the domain.

Fine-tuning the whole encoder on the queries :mod:`kosearch.train.mining` makes (BM25 as the teacher) helped one
development set and hurt the other, and it takes the whole budget. A linear map ``W`` on the sentence vectors is a
much smaller change: the transformer runs once over the examples (no backward pass through it), and ``W`` trains on
the cached vectors in seconds (encoding them takes the minutes) with the loss the fine-tuning uses
(``MultipleNegativesRankingLoss``: each query must rank its passage above its hard negative and every other passage
of the batch), pulled back towards an anchor (``l2 * ||W - anchor||^2``) so it changes only what the examples ask for.

The anchor, where ``W`` starts, is a whitening of the examples' own vectors, shrunk and without subtracting their mean
(:func:`shrunk_whitening`). Before it the map started at the identity: it kept KorSTS but gained less (through a
kosearch index over the token weights, dense nDCG@10 +0.21 on the chatbot set and +1.42 on NSMC). Centred whitening
alone lifted NSMC and the chatbot set more in a screen, and cost KorSTS 1.1 and 2.2 points. Started from and held
near the uncentred shrunk whitening, the trained map gained more than the identity-anchored one on both sets and
both seeds, and kept KorSTS within half a point of the base model's (docs/training.md, "The map anchored at a
whitening", where the screen of ``bench/adapt_linear.py`` over ``l2``, passes and shrinkage is too).

The map is sentence-transformers' own ``Dense`` module (no bias, identity activation) followed by ``Normalize``,
so the adapted folder loads in ``SentenceTransformer`` and kosearch's ONNX export as any other. Unlike the token
weights it is an ordinary trainable module: another recipe started from the folder (``--model runs/law``) trains it
with the encoder, and saves what it trained.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kosearch.encoders.encoder import embedding_dimension
from kosearch.train.mining import TrainingExample

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

MAP_L2 = 1.0
"""Pull of the map towards its anchor (:func:`shrunk_whitening`). Screened from the identity (docs/training.md, "A
trained linear map"): 0.3 to 3 a plateau, 0 overfits, 10 keeps the map at its start; and from the anchor ("The map
anchored at a whitening")."""
MAP_ANCHOR_SHRINKAGE = 10.0
"""Shrinkage ``s`` of the whitening the map starts from and is pulled towards (:func:`shrunk_whitening`): each
direction's variance gets ``s`` times the mean variance added before it is divided out. Taken from the centred
whitening of session 7, where 10 was the one that kept NSMC's KorSTS within the 1-point limit on its own
(docs/training.md, "Whitening fitted on the folder"); the anchor's own screen is in "The map anchored at a
whitening"."""
MAP_EPOCHS = 4
MAP_BATCH = 128
MAP_LEARNING_RATE = 1e-3
MAP_SCALE = 20.0
"""Similarity scale of the loss (``MultipleNegativesRankingLoss``'s default, as the fine-tuning uses)."""
MAP_EXAMPLES = 8000
"""At most this many mined examples are encoded (a seeded sample), to bound the time: 8,000 took about 3.5 minutes on
the 2-core development machine. All 23,098 of the NSMC folder gave no more in the screen (dense +0.43 over the
weights, against +0.62 with 8,000, both with the map anchored at the identity) for twice the encoding time."""
MAP_PASSAGES = 20000
"""At most this many of the folder's passages (a seeded sample) are mined for the map's examples: mining runs Kiwi
and a BM25 round trip over every passage it is given, before any budget check can stop it, and 20,000 passages
give more examples than :data:`MAP_EXAMPLES` (NSMC: 23,098). The token weights count every passage."""
_FIRST_CHUNK = 32
"""Examples encoded first, alone, to measure the speed before a budget check has to rely on it."""
_ENCODE_CHUNK = 256


@dataclass(frozen=True)
class ExampleVectors:
    """Unit vectors of mined examples, row by row, as the model encodes them for search (``encode_query`` for the
    query, ``encode_document`` for the passages); ``positive_ids`` / ``negative_ids`` number the passage texts, so
    that one passage in two roles in a batch is not taken for a negative of itself."""

    queries: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray
    positive_ids: np.ndarray
    negative_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.queries)

    def distinct_passages(self) -> np.ndarray:
        """The vector of each distinct passage once (positives and negatives), in passage-id order."""
        ids = np.concatenate([self.positive_ids, self.negative_ids])
        rows = np.concatenate([self.positives, self.negatives])
        _, first = np.unique(ids, return_index=True)
        return rows[first]


def encode_examples(
    model: SentenceTransformer, examples: Sequence[TrainingExample], *, deadline: float | None = None,
    reserve_texts: int = 0, batch_size: int = 64, show_progress_bar: bool = True,
) -> ExampleVectors:
    """Encode ``examples`` as :class:`ExampleVectors`, each distinct passage text once.

    ``deadline`` (a ``time.perf_counter()`` value): stop before a chunk of examples that, with ``reserve_texts`` more
    texts encoded afterwards at the speed measured so far (what the run still encodes after the map, e.g. its final
    STS rows), would end after it; the examples encoded by then are returned (possibly none). The first chunk is
    small and always runs when the deadline has not passed: it measures the speed.
    """
    from tqdm.auto import tqdm

    vectors: dict[str, np.ndarray] = {}
    rows: list[tuple[np.ndarray, str, str]] = []
    seconds_per_text: float | None = None
    start = 0
    with tqdm(total=len(examples), desc="Encoding the linear map's examples", unit="example",
              disable=not show_progress_bar) as progress:
        while start < len(examples):
            chunk = examples[start:start + (_FIRST_CHUNK if start == 0 else _ENCODE_CHUNK)]
            new = sorted({text for example in chunk for text in (example.positive, example.negative)} - vectors.keys())
            if deadline is not None:
                texts = len(chunk) + len(new) + reserve_texts
                expected = 0.0 if seconds_per_text is None else seconds_per_text * texts
                if time.perf_counter() + expected > deadline:
                    break
            tick = time.perf_counter()
            queries = model.encode_query([example.query for example in chunk], batch_size=batch_size,
                                         convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
            if new:
                encoded = model.encode_document(new, batch_size=batch_size, convert_to_numpy=True,
                                                normalize_embeddings=True, show_progress_bar=False)
                vectors.update(zip(new, encoded))
            rows.extend((query, example.positive, example.negative) for query, example in zip(queries, chunk))
            seconds_per_text = (time.perf_counter() - tick) / (len(chunk) + len(new))
            start += len(chunk)
            progress.update(len(chunk))
    ids = {text: number for number, text in enumerate(vectors)}
    width = len(rows[0][0]) if rows else int(embedding_dimension(model) or 0)

    def stack(parts: list[np.ndarray]) -> np.ndarray:
        return np.vstack(parts).astype(np.float32) if parts else np.zeros((0, width), dtype=np.float32)

    return ExampleVectors(
        queries=stack([row[0] for row in rows]),
        positives=stack([vectors[row[1]] for row in rows]),
        negatives=stack([vectors[row[2]] for row in rows]),
        positive_ids=np.array([ids[row[1]] for row in rows], dtype=np.int64),
        negative_ids=np.array([ids[row[2]] for row in rows], dtype=np.int64),
    )


def train_linear_map(
    queries: np.ndarray, positives: np.ndarray, negatives: np.ndarray, *, positive_ids: np.ndarray | None = None,
    negative_ids: np.ndarray | None = None, anchor: np.ndarray | None = None, l2: float = MAP_L2,
    epochs: int = MAP_EPOCHS, batch: int = MAP_BATCH, learning_rate: float = MAP_LEARNING_RATE,
    scale: float = MAP_SCALE, seed: int = 42,
) -> np.ndarray:
    """The ``d x d`` matrix ``W`` (vectors map as ``x @ W``) that ranks each query's positive first among its
    batch's positives and negatives, starting from ``anchor`` (default: the identity) and pulled back to it with
    ``l2 * ||W - anchor||^2``. Deterministic for a seed.

    The ranking term is ``MultipleNegativesRankingLoss``'s (a test checks it against
    ``compute_loss_from_embeddings``), except that a candidate with the same passage id as the row's positive is
    left out, as the fine-tuning's ``NO_DUPLICATES`` batches leave it out. It is computed here, not through
    ``SentenceTransformerTrainer``, because the trainer would run the transformer again at every step: the point of
    the map is that it trains on vectors encoded once. A batch smaller than ``batch`` at the end of a pass is
    dropped; fewer examples than ``batch`` make one batch.

    Raises:
        ValueError: no examples.
    """
    import torch

    if len(queries) == 0:
        raise ValueError("no examples to train the linear map on")
    if (positive_ids is None) != (negative_ids is None):
        raise ValueError("pass both positive_ids and negative_ids, or neither")
    q, p, n = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for x in (queries, positives, negatives))
    ids = None
    if positive_ids is not None and negative_ids is not None:
        ids = tuple(torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)) for x in (positive_ids, negative_ids))
    if anchor is not None and anchor.shape != (q.shape[1], q.shape[1]):
        raise ValueError(f"the anchor is {anchor.shape}, and the vectors need {(q.shape[1], q.shape[1])}")
    origin = torch.eye(q.shape[1]) if anchor is None else torch.from_numpy(np.array(anchor, dtype=np.float32))
    matrix = origin.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([matrix], lr=learning_rate)
    size = min(batch, len(q))
    rng = random.Random(seed)
    order = list(range(len(q)))
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order) - size + 1, size):
            rows = order[start:start + size]
            logits = ranking_logits(q[rows] @ matrix, p[rows] @ matrix, n[rows] @ matrix, scale,
                                    ids=(ids[0][rows], ids[1][rows]) if ids is not None else None)
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(rows)))
            loss = loss + l2 * ((matrix - origin) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return matrix.detach().numpy()


def shrunk_whitening(vectors: np.ndarray, shrinkage: float = MAP_ANCHOR_SHRINKAGE) -> np.ndarray:
    """The symmetric whitening matrix of ``vectors``' covariance with shrinkage, ``U (L + s mean(L))^-1/2 U^T``
    (U, L: the covariance's eigenvectors and eigenvalues), scaled to the identity's norm, for ``x @ W``.

    Why: within a domain, the bundled e5's vectors differ from each other mostly along a few directions (what the
    domain's text varies in most, e.g. a review's sentiment), so those decide cosine rankings. Dividing each
    direction of the spread by its standard deviation (Su et al., 2021, whitening) lets the others count too.
    Applied without subtracting the mean (the matrix has no bias, so the map stays a plain ``Dense``), it evens out
    how the vectors *differ* and leaves the direction they all share in place: cosines stay high (over 2,000 of the
    NSMC folder's passages the mean pairwise cosine goes from 0.86 to 0.88), where centred whitening sends them to
    about 0. The centred whitening of the session-7 screen lifted in-domain retrieval but cost KorSTS; this
    uncentred one is only the map's start and pull. The symmetric form (ZCA) keeps the axes, so a large ``s`` gives
    the identity back; the norm is the identity's (``sqrt(d)``): cosine does not see a scale, but the ``l2`` pull
    does.

    The shrinkage must be more than 0: a covariance of fewer vectors than dimensions has empty directions, and the
    direction the vectors share is one of them (it is not in their spread), so full whitening would divide it by
    zero and send every vector to the same point. With ``s > 0`` an empty direction gets at most
    ``sqrt(1 + max(L) / (s mean(L)))`` times the gain of the widest one.

    Raises:
        ValueError: not a 2-d array of at least two finite vectors, or a shrinkage of 0 or less.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ValueError(f"whitening needs a 2-d array of at least two vectors, not shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError("whitening needs finite vectors; these hold NaN or infinity")
    if not shrinkage > 0:
        raise ValueError(f"the shrinkage must be more than 0, not {shrinkage}")
    values, axes = np.linalg.eigh(np.cov(vectors.T))
    values = np.clip(values, 0.0, None)
    if not values.any():  # identical vectors: nothing to even out
        return np.eye(len(values))
    matrix = (axes / np.sqrt(values + shrinkage * values.mean())) @ axes.T
    return matrix * np.sqrt(len(matrix) / np.sum(matrix * matrix))


def ranking_logits(
    queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, scale: float, *,
    ids: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``scale`` x cosine of each query with every positive and negative of the batch (positives first): the
    logits of ``MultipleNegativesRankingLoss``, whose target for row ``i`` is column ``i``.

    ``ids``: (positive ids, negative ids) of the batch's passages; a column other than ``i`` that holds row ``i``'s
    own positive passage gets ``-inf``, so the query is not asked to rank its passage below itself."""
    import torch

    anchors = torch.nn.functional.normalize(queries, dim=1)
    candidates = torch.nn.functional.normalize(torch.cat([positives, negatives]), dim=1)
    logits = scale * anchors @ candidates.T
    if ids is not None:
        positive, negative = ids
        duplicate = torch.cat([positive, negative])[None, :] == positive[:, None]
        rows = torch.arange(len(positive))
        duplicate[rows, rows] = False
        logits = logits.masked_fill(duplicate, float("-inf"))
    return logits


def linear_map_problem(model: SentenceTransformer) -> str | None:
    """Why a linear map cannot go into ``model``, or None when it can: a second map on top of one that
    :func:`add_linear_map` put there would be trained on what the first already bent. A model's own ``Dense``
    projection (e.g. a distilled model's down-projection, with bias or activation) is not such a map."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense

    for module in model:
        if (isinstance(module, Dense) and module.linear.bias is None and module.linear.in_features ==
                module.linear.out_features and isinstance(module.activation_function, torch.nn.Identity)):
            return "it already has a linear map after pooling (a square Dense without bias, as train adapt adds)"
    return None


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
