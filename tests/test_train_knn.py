"""kosearch.evaluate.knn: k-NN vote accuracy and the held-out NSMC sentiment split."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from kosearch.errors import DataFormatError
from kosearch.evaluate.knn import LabelledSplit, knn_accuracy, knn_predict, nsmc_sentiment_split


def _unit(rows: list[list[float]]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_knn_predict_votes_and_breaks_ties_by_similarity() -> None:
    train = _unit([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    labels = np.array([0, 0, 1, 1])
    test = _unit([[1, 0.05], [0.05, 1], [0.6, 0.5]])
    assert knn_predict(train, labels, test, k=1).tolist() == [0, 1, 0]
    # k=4: every vote is 2-2, so the label whose members are closer in total wins.
    assert knn_predict(train, labels, test, k=4).tolist() == [0, 1, 0]
    # k larger than the training set uses all of it.
    assert knn_predict(train, labels, test, k=50).tolist() == [0, 1, 0]


class _LookupModel:
    """Stands in for a SentenceTransformer: each text maps to a fixed vector."""

    prompts: dict[str, str] = {}

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def encode_document(self, texts, normalize_embeddings=False, **kwargs):
        array = np.asarray([self.vectors[text] for text in texts], dtype=np.float32)
        return _unit(array.tolist()) if normalize_embeddings else array

    encode_query = encode = encode_document


def test_knn_accuracy_counts_correct_votes(monkeypatch: pytest.MonkeyPatch) -> None:
    import kosearch.evaluate.knn as knn
    from kosearch.evaluate.encoding import EvaluatedModel

    vectors = {"좋다": [1, 0], "최고": [0.9, 0.2], "별로": [0, 1], "최악": [0.2, 0.9], "재밌다": [0.8, 0.1], "지루": [0.95, 0.05]}
    monkeypatch.setattr(knn, "load_model", lambda model: EvaluatedModel(_LookupModel(vectors), "lookup"))
    split = LabelledSplit(["좋다", "최고", "별로", "최악"], [1, 1, 0, 0], ["재밌다", "지루"], [1, 0])
    result = knn_accuracy("anything", split, k=1)
    # "지루" (boring, negative) sits next to the positives in this space: one of two right.
    assert result.accuracy == pytest.approx(50.0)
    assert (result.train, result.test, result.k, result.model) == (4, 2, 1, "lookup")


def _write_reviews(path: Path, rows: list[tuple[int, str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("movie_id\treview_id\trating\treview\n")
        for index, (rating, text) in enumerate(rows):
            handle.write(f"1\t{index}\t{rating}\t{text}\n")


def test_nsmc_split_is_balanced_held_out_and_reproducible(tmp_path: Path) -> None:
    path = tmp_path / "reviews.tsv.gz"
    rows = [(10, f"좋은 영화 {i}") for i in range(30)] + [(1, f"나쁜 영화 {i}") for i in range(30)]
    rows += [(6, f"그럭저럭 {i}") for i in range(10)] + [(10, "좋은 영화 0")]  # neutral ratings, a repeat
    _write_reviews(path, rows)
    excluded = {f"좋은 영화 {i}" for i in range(5)}
    split = nsmc_sentiment_split(path, train=20, test=10, exclude=excluded, seed=3)
    assert sorted(split.train_labels) == [0] * 10 + [1] * 10
    assert sorted(split.test_labels) == [0] * 5 + [1] * 5
    texts = split.train_texts + split.test_texts
    assert len(set(texts)) == len(texts) == 30
    assert not set(texts) & excluded
    assert not any(text.startswith("그럭저럭") for text in texts)
    for text, label in zip(texts, split.train_labels + split.test_labels):
        assert label == (1 if text.startswith("좋은") else 0)
    assert nsmc_sentiment_split(path, train=20, test=10, exclude=excluded, seed=3) == split
    with pytest.raises(DataFormatError, match="usable reviews"):
        nsmc_sentiment_split(path, train=60, test=10)
