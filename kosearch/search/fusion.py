"""One ranking from two: a dense (vector similarity) and a lexical (BM25) score per candidate.

Two rules, both over the union of the candidates either signal returned:

- :func:`convex_fusion`: ``(1 - w) * norm(dense) + w * norm(lexical)``. Each signal's scores are
  normalised over all the candidates: z-scores (``(s - mean) / std``, the default,
  :data:`DEFAULT_NORMALISATION`) or min-max (best -> 1, worst -> 0). With z-scores the dense side's
  std is floored at :data:`DEFAULT_DENSE_STD_FLOOR`, so a dense list whose cosines barely differ is
  not blown up to unit spread and moves the mix less. A candidate the signal did
  not return is scored by it anyway where the caller looked its score up (completion:
  ``lexical_scored``, the BM25 of the dense candidates the lexical list missed), else it takes the
  list's lowest score, an upper bound of its own. Bruch et al. (2023, "An Analysis of Fusion
  Functions for Hybrid Retrieval", ACM TOIS) found the convex combination better than RRF and
  robust once w is set on a little data. For the defaults see :data:`DEFAULT_LEXICAL_WEIGHT`.
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
"""Chosen with :data:`DEFAULT_NORMALISATION` by ``bench/fusion_study.py`` (docs/benchmarks.md, "Hybrid
retrieval after the fusion study"): over six Korean development sets, z-scores over the union of
candidates with w = 0.3, 100 candidates per signal and the BM25 of every dense candidate looked up
give 74.31 mean MRR@10 / 76.16 nDCG@10 (dense-only 73.94 / 75.57, BM25-only 68.59 / 70.47, the
earlier min-max default 73.99 / 75.79). It beats both signals on KorSTS, KLUE-NLI, KorNLI and the
chatbot set, ties dense-only on MRR@10 (and beats it on nDCG@10) on the sample questions at
passage units, and stays below dense-only at sentence units, where lexical matching finds FAQ
questions and headlines rather than answers. The issue's two held-out real question sets, where
BM25 is much stronger relative to dense than here, had their optimum at 0.3-0.5. With BM25 at k1 0.9,
b 0.3 and the dense std floor (:data:`DEFAULT_DENSE_STD_FLOOR`), 0.3 is again the weight chosen in
every leave-one-set-out fold (``bench/fusion_confidence.py``)."""
DEFAULT_DENSE_STD_FLOOR: float | None = 0.01
"""The least std the dense z-score divides by: dense scores become ``(s - mean) / max(std, 0.01)``.

Why: a z-score rescales any list to unit spread, so when the encoder cannot tell the candidates apart
(the bundled e5's cosines over 100-200 candidates have a std of 0.004-0.02; the smaller it is, the more
of the ordering is noise) its tiny differences still get the full dense weight. Below the floor the
dense side keeps its real (small) spread and the lexical signal decides more; at or above it, plain
z-scores. ``bench/fusion_confidence.py`` (docs/benchmarks.md, "Hybrid fusion: noise, losing queries
and a dense std floor"): over the six development sets 75.31 / 76.90 mean MRR@10 / nDCG@10 against
75.05 / 76.64 with plain z-scores, beating both single modes on five sets instead of four, the same
on the sample questions and better on KorNLI and chatbot, whose cosines are the most compressed
(median std 0.008 and 0.005). Chosen leave-one-set-out among 96 forms of this damping (the floor, or
a softer ``(min(std, r) / r) ** alpha``): this one in five of six folds, a floor of 0.015 in the
sixth. Measured for the bundled encoder only: another model's cosines sit in another range, so
``Index.search`` scales this floor by the encoder's cosine spread relative to the bundled one's
(:mod:`kosearch.search.dense_floor`; the bundled encoder's factor is exactly 1). None: plain z-scores."""
DEFAULT_NORMALISATION = "zscore"
"""How each signal's scores are put on one scale before mixing; see :func:`normalise`."""
NORMALISATIONS: tuple[str, ...] = ("zscore", "minmax")
RRF_K = 60
"""Cormack et al.'s constant; it damps the weight of the very first ranks."""


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
    return dict(zip(scores, normalise(list(scores.values()), "minmax")))


def zscore_normalise(scores: Mapping[Key, float]) -> dict[Key, float]:
    """Scores as ``(s - mean) / std`` (population std); all 0.0 if they are all equal."""
    return dict(zip(scores, normalise(list(scores.values()), "zscore")))


def normalise(values: list[float], normalisation: str, std_floor: float | None = None) -> list[float]:
    """One signal's scores of all the candidates, put on a common scale.

    - ``"zscore"``: ``(v - mean) / std``. Unlike min-max it does not stretch a list whose scores
      are nearly equal (dense cosines of e5 often lie within 0.02 of each other) to the full [0, 1],
      nor squash a list with one outlier: a signal that clearly prefers some candidates says so.
      All equal: all 0. With ``std_floor`` the divisor is ``max(std, std_floor)``: a list whose
      scores barely differ keeps its small spread and moves the mix less
      (:data:`DEFAULT_DENSE_STD_FLOOR`).
    - ``"minmax"``: ``(v - min) / (max - min)``; all equal: all 1. ``std_floor`` is not used.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, not {normalisation!r}")
    if std_floor is not None and not std_floor > 0:
        raise ValueError(f"std_floor must be above 0 (or None), not {std_floor}")
    if not values:
        return []
    if normalisation == "zscore":
        mean = math.fsum(values) / len(values)
        spread = math.sqrt(math.fsum((x - mean) ** 2 for x in values) / len(values))
        if std_floor is not None:
            spread = max(spread, std_floor)
        return [(value - mean) / spread if spread > 0 else 0.0 for value in values]
    low, high = min(values), max(values)
    if not high > low:
        return [1.0 for _ in values]
    return [(value - low) / (high - low) for value in values]


def convex_fusion(
    dense: Mapping[Key, float],
    lexical: Mapping[Key, float],
    lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
    k: int | None = None,
    *,
    normalisation: str = DEFAULT_NORMALISATION,
    lexical_scored: Mapping[Key, float] | None = None,
    dense_std_floor: float | None = DEFAULT_DENSE_STD_FLOOR,
) -> list[FusedHit[Key]]:
    """Rank the union of both candidate lists by ``(1 - w) * dense' + w * lexical'`` (' = normalised).

    ``dense`` and ``lexical`` are each signal's own candidate list (key -> raw score).
    ``lexical_scored`` completes the lexical side: the BM25 of candidates outside the lexical list,
    looked up for fusion. When it is given, it must hold every other candidate that shares a term
    with the query, so a candidate in neither mapping scores 0 (no term matches); when it is None,
    such a candidate takes the lexical list's lowest score. A candidate missing from ``dense``
    always takes the dense list's lowest score (an upper bound of its own: it was not in the dense
    top). Each signal is then normalised over the whole union, so both scales come from the same
    candidates, and a lexical list of one or two matches among many non-matching candidates still
    gets a meaningful spread. With z-scores, ``dense_std_floor`` is the least std the dense side is
    divided by (:data:`DEFAULT_DENSE_STD_FLOOR`; None: plain z-scores). ``k`` keeps the best k (all if None).
    """
    if not 0.0 <= lexical_weight <= 1.0:
        raise ValueError(f"lexical_weight must be between 0 and 1, not {lexical_weight}")
    _check_finite(dense, "dense")
    _check_finite(lexical, "lexical")
    _check_finite(lexical_scored or {}, "lexical")
    keys = _union(dense, lexical)
    dense_floor = min(dense.values()) if dense else 0.0
    lexical_known = {**(lexical_scored or {}), **lexical}
    lexical_floor = 0.0 if lexical_scored is not None or not lexical else min(lexical.values())
    dense_norm = normalise([dense.get(key, dense_floor) for key in keys], normalisation, dense_std_floor)
    lexical_norm = normalise([lexical_known.get(key, lexical_floor) for key in keys], normalisation)
    fused = {
        key: (1.0 - lexical_weight) * d + lexical_weight * x for key, d, x in zip(keys, dense_norm, lexical_norm)
    }
    return _ranked(fused, dense, lexical_known, k)


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
