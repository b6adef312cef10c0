"""One ranking from two: a dense (vector similarity) and a lexical (BM25) score per candidate.

Two rules, both over the union of the candidates either signal returned:

- :func:`convex_fusion`: ``(1 - w) * minmax(dense) + w * minmax(lexical)``. Each signal's scores are
  min-max normalised over that signal's own candidates (best -> 1, worst -> 0; a signal whose
  candidates all score alike gives them all 1), and a candidate the signal did not return counts 0.
  Bruch et al. (2023, "An Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS) found this
  convex combination better than RRF and robust once w is set on a little data. The default
  ``DEFAULT_LEXICAL_WEIGHT`` was chosen on kosearch's development sets (docs/benchmarks.md).
- :func:`reciprocal_rank_fusion`: ``sum 1 / (k + rank)`` over the signals that returned the
  candidate (Cormack et al., 2009, SIGIR; k = 60 as there). It uses ranks only, so it needs no
  normalisation and no weight, at the cost of ignoring how far apart scores are.

Ties are broken deterministically: by fused score, then the dense score (the model's judgement),
then the lexical score, then the candidate's key in ascending order. Within one signal, ranks for
RRF follow that signal's score, ties by key.

Every :class:`FusedHit` keeps both input scores (None where a signal did not return the candidate),
so a caller can show why a hit ranks where it does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key", int, str)

DEFAULT_LEXICAL_WEIGHT = 0.3
RRF_K = 60


@dataclass(frozen=True)
class FusedHit(Generic[Key]):
    """A candidate's place in the fused ranking and the scores it came from."""

    key: Key
    score: float
    """The fused score the ranking is sorted by."""
    dense_score: float | None
    """Raw dense similarity; None if the dense search did not return this candidate."""
    lexical_score: float | None
    """Raw BM25 score; None if the lexical search did not return this candidate."""


def minmax_normalise(scores: Mapping[Key, float]) -> dict[Key, float]:
    """Scores mapped linearly onto [0, 1] (best 1, worst 0); all 1.0 if they are all equal."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if not high > low:
        return dict.fromkeys(scores, 1.0)
    span = high - low
    return {key: (value - low) / span for key, value in scores.items()}


def convex_fusion(
    dense: Mapping[Key, float],
    lexical: Mapping[Key, float],
    lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
    k: int | None = None,
) -> list[FusedHit[Key]]:
    """Rank the union of both candidate sets by ``(1 - w) * dense' + w * lexical'`` (' = min-max normalised).

    ``dense`` and ``lexical`` map a candidate's key to that signal's raw score; give only the
    candidates a signal actually found (a lexical candidate without any matching term has no
    business in ``lexical``). ``k`` keeps the best k (all if None).
    """
    if not 0.0 <= lexical_weight <= 1.0:
        raise ValueError(f"lexical_weight must be between 0 and 1, not {lexical_weight}")
    _check_finite(dense, "dense")
    _check_finite(lexical, "lexical")
    dense_norm, lexical_norm = minmax_normalise(dense), minmax_normalise(lexical)
    fused = {
        key: (1.0 - lexical_weight) * dense_norm.get(key, 0.0) + lexical_weight * lexical_norm.get(key, 0.0)
        for key in _union(dense, lexical)
    }
    return _ranked(fused, dense, lexical, k)


def reciprocal_rank_fusion(
    dense: Mapping[Key, float], lexical: Mapping[Key, float], rrf_k: int = RRF_K, k: int | None = None
) -> list[FusedHit[Key]]:
    """Rank the union of both candidate sets by ``sum 1 / (rrf_k + rank)``, rank 1 = a signal's best."""
    if rrf_k < 0:
        raise ValueError(f"rrf_k must be >= 0, not {rrf_k}")
    _check_finite(dense, "dense")
    _check_finite(lexical, "lexical")
    fused = dict.fromkeys(_union(dense, lexical), 0.0)
    for scores in (dense, lexical):
        for rank, key in enumerate(sorted(scores, key=lambda key: (-scores[key], key)), start=1):
            fused[key] += 1.0 / (rrf_k + rank)
    return _ranked(fused, dense, lexical, k)


def _union(dense: Mapping[Key, float], lexical: Mapping[Key, float]) -> list[Key]:
    return list(dict.fromkeys([*dense, *lexical]))


def _ranked(
    fused: Mapping[Key, float], dense: Mapping[Key, float], lexical: Mapping[Key, float], k: int | None
) -> list[FusedHit[Key]]:
    if k is not None and k < 1:
        raise ValueError("k must be at least 1")
    order = sorted(
        fused,
        key=lambda key: (-fused[key], -dense.get(key, -math.inf), -lexical.get(key, -math.inf), key),
    )
    return [FusedHit(key, fused[key], dense.get(key), lexical.get(key)) for key in order[:k]]


def _check_finite(scores: Mapping[Key, float], name: str) -> None:
    for key, value in scores.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} score of {key!r} is {value}; fusion needs finite scores")
