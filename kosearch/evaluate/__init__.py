"""Measure encoders the way Korean model cards and retrieval benchmarks do.

- :mod:`~kosearch.evaluate.sts`: the STS correlation table (cosine, euclidean, manhattan, dot x Pearson,
  Spearman) and a sentence-transformers evaluator for training.
- :mod:`~kosearch.evaluate.retrieval`: Recall@k, MRR@10, nDCG@10 on BEIR-layout sets, through a model
  (exact search) or a built index, per search mode (dense, lexical, hybrid); metric definitions in
  :mod:`~kosearch.evaluate.ranking`; the sets in :mod:`~kosearch.evaluate.retrieval_sets`, the index a
  model is measured through in :mod:`~kosearch.evaluate.temporary_index`, which measurements one call
  makes (models or indexes, per mode) in :mod:`~kosearch.evaluate.retrieval_runs`.
- :mod:`~kosearch.evaluate.encoding`: how a model name becomes a model, and which prompt side encodes.
"""

from kosearch.evaluate.encoding import SIDES, ModelLike, Side
from kosearch.evaluate.ranking import ranking_metrics
from kosearch.evaluate.retrieval import (
    MODES,
    RetrievalResult,
    evaluate_retrieval,
    evaluate_retrieval_modes,
    rank_with_index,
    rank_with_model,
)
from kosearch.evaluate.retrieval_runs import RetrievalRun, retrieval_runs
from kosearch.evaluate.retrieval_sets import retrieval_set
from kosearch.evaluate.sts import KorSTSEvaluator, STSResult, evaluate_sts, sts_correlations

__all__ = [
    "KorSTSEvaluator",
    "ModelLike",
    "RetrievalResult",
    "RetrievalRun",
    "STSResult",
    "Side",
    "MODES",
    "SIDES",
    "evaluate_retrieval",
    "evaluate_retrieval_modes",
    "evaluate_sts",
    "rank_with_index",
    "rank_with_model",
    "ranking_metrics",
    "retrieval_runs",
    "retrieval_set",
    "sts_correlations",
]
