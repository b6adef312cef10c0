"""k-nearest-neighbour classification accuracy: does the embedding space put same-label texts next to each other?

An in-domain check for unsupervised domain adaptation (TSDAE, SimCSE on NSMC reviews): no classifier is trained,
each held-out text takes the majority label of its ``k`` most cosine-similar labelled texts. If adaptation made the
encoder notice what matters in the domain (here, whether a review liked the film), accuracy goes up. The NSMC split
follows the corpus's own convention: ratings 1-4 are negative, 9-10 positive, 5-8 left out as ambiguous.

Example::

    from kosearch.evaluate.knn import knn_accuracy, nsmc_sentiment_split
    split = nsmc_sentiment_split("../shared/data/nsmc/nsmc_reviews.tsv.gz", train=2000, test=1000)
    knn_accuracy(None, split, k=10).accuracy        # None = the bundled encoder
"""

from __future__ import annotations

import csv
import gzip
import random
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kosearch.errors import DataFormatError
from kosearch.evaluate.encoding import ModelLike, Side, encode, load_model

NEGATIVE_RATINGS = range(1, 5)
POSITIVE_RATINGS = range(9, 11)


@dataclass
class LabelledSplit:
    """Labelled texts to vote with (``train``) and to classify (``test``)."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]


@dataclass
class KNNResult:
    accuracy: float
    """Share of test texts whose k-NN vote matches their label, x100."""
    k: int
    train: int
    test: int
    majority_baseline: float
    """Accuracy x100 of always answering the most frequent training label: what 'no signal' scores."""
    model: str = ""
    side: str = "document"
    seconds: float = 0.0


def knn_accuracy(
    model: ModelLike,
    split: LabelledSplit,
    *,
    k: int = 10,
    side: Side = "document",
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
) -> KNNResult:
    """Classify ``split.test_texts`` by majority vote of their ``k`` nearest training texts (cosine similarity).

    A tied vote goes to the label whose tied neighbours are more similar in total, so the result does not depend on
    label order.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    if not split.train_texts or not split.test_texts:
        raise ValueError("k-NN accuracy needs training and test texts.")
    started = time.perf_counter()
    loaded = load_model(model)
    train = encode(loaded.model, split.train_texts, side, normalize=True, batch_size=batch_size,
                   show_progress_bar=show_progress_bar)
    test = encode(loaded.model, split.test_texts, side, normalize=True, batch_size=batch_size,
                  show_progress_bar=show_progress_bar)
    predictions = knn_predict(train, np.asarray(split.train_labels), test, k=k)
    accuracy = 100.0 * float(np.mean(predictions == np.asarray(split.test_labels)))
    labels, counts = np.unique(np.asarray(split.train_labels), return_counts=True)
    majority = labels[np.argmax(counts)]
    baseline = 100.0 * float(np.mean(np.asarray(split.test_labels) == majority))
    return KNNResult(
        accuracy=accuracy,
        k=k,
        train=len(split.train_texts),
        test=len(split.test_texts),
        majority_baseline=baseline,
        model=loaded.name,
        side=side,
        seconds=time.perf_counter() - started,
    )


def knn_predict(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, *, k: int) -> np.ndarray:
    """Majority label of each test row's ``k`` most similar (dot product of normalised rows) training rows."""
    k = min(k, len(train))
    similarities = test @ train.T
    nearest = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    classes = np.unique(train_labels)
    predictions = np.empty(len(test), dtype=train_labels.dtype)
    for row, neighbours in enumerate(nearest):
        votes = train_labels[neighbours]
        weights = similarities[row, neighbours]
        counts = np.array([(votes == label).sum() for label in classes])
        totals = np.array([weights[votes == label].sum() for label in classes])
        best = np.lexsort((totals, counts))[-1]  # most votes, then most total similarity
        predictions[row] = classes[best]
    return predictions


def nsmc_sentiment_split(
    path: str | Path,
    *,
    train: int = 2000,
    test: int = 1000,
    exclude: Collection[str] = (),
    seed: int = 0,
    text_column: str = "review",
    rating_column: str = "rating",
) -> LabelledSplit:
    """A balanced sentiment sample of NSMC reviews (label 1: rating 9-10, label 0: rating 1-4).

    Reviews in ``exclude`` (e.g. the sentences an encoder was trained on) and repeated texts are skipped, so the
    measure is on unseen text. Each part holds half positive, half negative reviews, so chance is 50%.
    """
    if train < 2 or test < 2:
        raise ValueError("need at least two training and two test reviews.")
    excluded = set(exclude)
    by_label: dict[int, list[str]] = {0: [], 1: []}
    seen: set[str] = set()
    for text, rating in _rated_texts(Path(path), text_column, rating_column):
        text = text.strip()
        if not text or text in excluded or text in seen:
            continue
        seen.add(text)
        if rating in NEGATIVE_RATINGS:
            by_label[0].append(text)
        elif rating in POSITIVE_RATINGS:
            by_label[1].append(text)
    rng = random.Random(seed)
    per_label_train, per_label_test = train // 2, test // 2
    parts: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for label, texts in by_label.items():
        needed = per_label_train + per_label_test
        if len(texts) < needed:
            raise DataFormatError(f"{path}: only {len(texts)} usable reviews with label {label}; {needed} needed.")
        chosen = rng.sample(texts, needed)
        parts["train"] += [(text, label) for text in chosen[:per_label_train]]
        parts["test"] += [(text, label) for text in chosen[per_label_train:]]
    for rows in parts.values():
        rng.shuffle(rows)
    return LabelledSplit(
        train_texts=[text for text, _ in parts["train"]],
        train_labels=[label for _, label in parts["train"]],
        test_texts=[text for text, _ in parts["test"]],
        test_labels=[label for _, label in parts["test"]],
    )


def _rated_texts(path: Path, text_column: str, rating_column: str) -> Sequence[tuple[str, int]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    rows_out: list[tuple[str, int]] = []
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, [])
        for column in (text_column, rating_column):
            if column not in header:
                raise DataFormatError(f"{path}:1: no column {column!r} in the header ({', '.join(header)}).")
        text_at, rating_at = header.index(text_column), header.index(rating_column)
        for row in rows:
            if len(row) <= max(text_at, rating_at):
                raise DataFormatError(f"{path}:{rows.line_num}: the row has {len(row)} fields, expected {len(header)}.")
            try:
                rating = int(row[rating_at])
            except ValueError:
                raise DataFormatError(f"{path}:{rows.line_num}: rating {row[rating_at]!r} is not a number.") from None
            rows_out.append((row[text_at], rating))
    return rows_out
