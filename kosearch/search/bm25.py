"""BM25 (Robertson et al., 1994; Lucene's form) over tokenised documents: the lexical signal's score.

For a query with terms t (a repeated term counts as often as it appears) and a document d::

    score(d) = sum over t of  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

with ``tf`` the term's count in d, ``|d|`` the document's token count, ``avgdl`` the mean over the
collection, and ``idf`` either

- ``"lucene"`` (default): ``ln(1 + (N - df + 0.5) / (df + 0.5))``, never negative, as in Lucene,
  Elasticsearch and ``bm25s`` (method "lucene", which this module reproduces to float precision;
  tests/test_lexical.py), or
- ``"robertson"``: ``ln((N - df + 0.5) / (df + 0.5))``, raised to 1e-6 where it would be <= 0, as
  SQLite FTS5's ``bm25()`` computes it. FTS5 also multiplies every term by ``k1 + 1`` and negates the
  sum; ``-bm25() == (k1 + 1) * score`` here, so both rank identically (tested).

Lucene dropped the classic ``(k1 + 1)`` factor in version 8 because it scales every score alike; so
does this module. Scores are compared within one query only (fusion normalises them per query).

k1 = 1.2 and b = 0.75 are the usual defaults (Lucene, FTS5, Anserini). On the development sets
(``bench/bench_hybrid.py``, k1 in {0.9, 1.2, 1.5, 2.0} x b in {0.5, 0.75, 0.9, 1.0}) the mean MRR@10
ranged from 63.4 to 66.1 with 65.6 at the defaults; the best, k1 = 1.5 b = 0.5, gained on the 60
sample questions, whose corpus sentences are short (+3.1), and nowhere else by more than 0.1, while
KorSTS and KorNLI preferred b = 0.75. That was the lexical signal alone; the product's hybrid search
(BM25 from per-segment postings, ``kosearch.store.postings``, which take any k1 and b) measured best
at k1 = 0.9, b = 0.3 on the mean of the development sets (``DEFAULT_K1``, ``DEFAULT_B`` below).

Two entry points: :class:`BM25Index`, an in-memory inverted index over a whole collection (postings
as numpy arrays; the development bench and a fallback structure), and :func:`score_candidates`, which
scores a few documents given their tokens and the collection's statistics (for a dense candidate
that the lexical top k missed).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kosearch.ranking import top_k_positions

IdfVariant = Literal["lucene", "robertson"]
DEFAULT_K1 = 0.9
"""The product's k1 (``SearchRequest.bm25_k1``, ``kosearch query --bm25-k1``), chosen by the mean hybrid
MRR@10 over the development sets through the product (``bench/bm25_grid.py``; docs/benchmarks.md,
"Lexical search through segment postings, and BM25 k1 / b through the product")."""
DEFAULT_B = 0.3
"""The product's b (``SearchRequest.bm25_b``, ``kosearch query --bm25-b``); same measurement: weak
length normalisation suits sentence units, whose lengths vary little."""
ROBERTSON_IDF_FLOOR = 1e-6
"""What FTS5 puts in place of an idf <= 0 (a term in half the rows or more)."""


@dataclass(frozen=True)
class BM25Parameters:
    """``k1`` saturates term frequency, ``b`` normalises by document length (0 = not at all)."""

    k1: float = 1.2
    b: float = 0.75
    idf: IdfVariant = "lucene"

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, not k1={self.k1}, b={self.b}")
        if self.idf not in ("lucene", "robertson"):
            raise ValueError(f"idf must be 'lucene' or 'robertson', not {self.idf!r}")


@dataclass(frozen=True)
class CollectionStatistics:
    """What BM25 needs to know about the whole collection besides the documents being scored."""

    document_count: int
    total_length: int
    """Sum of all documents' token counts."""
    document_frequency: Mapping[str, int]
    """Number of documents holding each term (terms absent from the mapping hold 0)."""

    @property
    def average_length(self) -> float:
        return self.total_length / self.document_count if self.document_count else 0.0


def idf(document_frequency: int, document_count: int, variant: IdfVariant = "lucene") -> float:
    """Inverse document frequency of a term found in ``document_frequency`` of ``document_count`` documents."""
    ratio = (document_count - document_frequency + 0.5) / (document_frequency + 0.5)
    if variant == "lucene":
        return math.log1p(ratio)
    value = math.log(ratio)
    return value if value > 0 else ROBERTSON_IDF_FLOOR


def _saturated(tf: np.ndarray, lengths: np.ndarray, average_length: float, parameters: BM25Parameters) -> np.ndarray:
    norm = parameters.k1 * (1.0 - parameters.b + parameters.b * lengths / max(average_length, 1e-12))
    return tf / (tf + norm)


def score_candidates(
    query_tokens: Sequence[str],
    candidates: Sequence[Sequence[str]],
    statistics: CollectionStatistics,
    parameters: BM25Parameters = BM25Parameters(),
) -> np.ndarray:
    """BM25 of each candidate (given by its tokens) for the query, with collection-wide ``statistics``.

    Returns float64 scores in candidate order; a candidate sharing no term with the query scores 0.
    """
    scores = np.zeros(len(candidates), dtype=np.float64)
    if not candidates or not query_tokens:
        return scores
    query_counts = Counter(query_tokens)
    lengths = np.array([len(tokens) for tokens in candidates], dtype=np.float64)
    counts = [Counter(tokens) for tokens in candidates]
    for term, repeats in query_counts.items():
        tf = np.array([count.get(term, 0) for count in counts], dtype=np.float64)
        if not tf.any():
            continue
        weight = repeats * idf(statistics.document_frequency.get(term, 0), statistics.document_count, parameters.idf)
        scores += weight * _saturated(tf, lengths, statistics.average_length, parameters)
    return scores


class BM25Index:
    """An in-memory inverted index: for each term, the documents holding it and how often.

    Documents are numbered 0..n-1 in the order given. Scoring a query touches only the postings of
    its terms, accumulated into one float array over the collection, so its cost is the summed length
    of those postings (the same work FTS5 does), without SQLite's per-row overhead.
    """

    def __init__(self, documents: Iterable[Sequence[str]], parameters: BM25Parameters = BM25Parameters()) -> None:
        self.parameters = parameters
        postings: dict[str, tuple[list[int], list[int]]] = {}
        lengths: list[int] = []
        for number, tokens in enumerate(documents):
            lengths.append(len(tokens))
            for term, count in Counter(tokens).items():
                ids, tfs = postings.setdefault(term, ([], []))
                ids.append(number)
                tfs.append(count)
        self.lengths = np.array(lengths, dtype=np.float64)
        self.statistics = CollectionStatistics(
            document_count=len(lengths),
            total_length=int(self.lengths.sum()),
            document_frequency={term: len(ids) for term, (ids, _) in postings.items()},
        )
        self._postings = {
            term: (np.array(ids, dtype=np.int64), np.array(tfs, dtype=np.float64)) for term, (ids, tfs) in postings.items()
        }

    def __len__(self) -> int:
        return self.statistics.document_count

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 of every document for the query (0 where no term matches), shape ``(len(self),)``."""
        scores = np.zeros(len(self), dtype=np.float64)
        statistics = self.statistics
        for term, repeats in Counter(query_tokens).items():
            posting = self._postings.get(term)
            if posting is None:
                continue
            ids, tf = posting
            weight = repeats * idf(len(ids), statistics.document_count, self.parameters.idf)
            scores[ids] += weight * _saturated(tf, self.lengths[ids], statistics.average_length, self.parameters)
        return scores

    def search(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` best ``(document number, score)`` with a score > 0; ties go to the lower number."""
        if k < 1:
            raise ValueError("k must be at least 1")
        scores = self.scores(query_tokens)
        matched = np.flatnonzero(scores > 0)
        best = matched[top_k_positions(scores[matched], k)]  # matched is ascending: ties go to the lower number
        return [(int(number), float(scores[number])) for number in best]

    def score_documents(self, query_tokens: Sequence[str], numbers: Sequence[int]) -> np.ndarray:
        """BM25 of the given documents only (e.g. dense candidates the lexical top k missed).

        Looks each document up in the (sorted) postings of the query's terms instead of scoring the
        whole collection.
        """
        numbers = np.asarray(numbers, dtype=np.int64)
        scores = np.zeros(len(numbers), dtype=np.float64)
        statistics = self.statistics
        for term, repeats in Counter(query_tokens).items():
            posting = self._postings.get(term)
            if posting is None or not len(numbers):
                continue
            ids, tf = posting
            at = np.minimum(np.searchsorted(ids, numbers), len(ids) - 1)
            held = ids[at] == numbers
            if not held.any():
                continue
            weight = repeats * idf(len(ids), statistics.document_count, self.parameters.idf)
            found = numbers[held]
            scores[held] += weight * _saturated(tf[at[held]], self.lengths[found], statistics.average_length, self.parameters)
        return scores
