"""Measure encoders the way Korean model cards and retrieval benchmarks do.

- :mod:`~kosearch.evaluate.sts`: the STS correlation table (cosine, euclidean, manhattan, dot x Pearson,
  Spearman) and a sentence-transformers evaluator for training.
- :mod:`~kosearch.evaluate.retrieval`: Recall@k, MRR@10, nDCG@10 on BEIR-layout sets, through a model
  (exact search) or a built index; metric definitions in :mod:`~kosearch.evaluate.ranking`.
- :mod:`~kosearch.evaluate.encoding`: how a model name becomes a model, and which prompt side encodes.
"""

from kosearch.evaluate.encoding import ModelLike, Side
from kosearch.evaluate.ranking import ranking_metrics
from kosearch.evaluate.retrieval import RetrievalResult, evaluate_retrieval, rank_with_index, rank_with_model
from kosearch.evaluate.sts import KorSTSEvaluator, STSResult, evaluate_sts, sts_correlations

__all__ = [
    "KorSTSEvaluator",
    "ModelLike",
    "RetrievalResult",
    "STSResult",
    "Side",
    "evaluate_retrieval",
    "evaluate_sts",
    "rank_with_index",
    "rank_with_model",
    "ranking_metrics",
    "sts_correlations",
]
