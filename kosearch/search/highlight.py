"""Where a hit matched: the query's morphemes as character spans of the hit, and its best sentence.

A hit's text is analysed again with Kiwi (which gives each morpheme's character offsets), each
morpheme is normalised the way the lexical index normalises it, and the morphemes that equal one
of the query's tokens become spans. So a query's ``은행`` marks ``은행`` in ``은행에서``, and a
query's ``찾다`` marks the stem ``찾`` in ``찾았어요``: what is bold is what the lexical signal matched.
For a passage, the sentence holding the most distinct query tokens (ties: the first) is its best
sentence, the one a terminal shows first; sentences are the groups of Kiwi's ``sent_position``, the
same split the documents stage makes.

All hits of one query are analysed in a single Kiwi call (:func:`mark_hits`), which Kiwi spreads
over its worker threads: one call per hit cost about 8 ms each on the 2-core development machine,
most of a lexical query's time (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kosearch.search.morphemes import MorphemeAnalyzer

if TYPE_CHECKING:
    from kiwipiepy import Kiwi, Token

Span = tuple[int, int]


@dataclass(frozen=True)
class Marks:
    """What a hit shows: the query's morphemes in its text, and (for a passage) its best sentence."""

    highlights: tuple[Span, ...]
    """Character spans of the text holding the query's morphemes, in order, overlapping ones merged."""
    best_sentence: Span | None
    """The span of the sentence with the most distinct query tokens; None for a one-sentence text."""


def mark_hits(
    texts: Sequence[str], query_tokens: Collection[str], analyzer: MorphemeAnalyzer, *, sentences: bool = True
) -> list[Marks]:
    """:class:`Marks` for each of ``texts`` (one query's hits), from one Kiwi analysis of all of them.

    ``sentences=False`` leaves ``best_sentence`` None (sentence units: a hit is one sentence already).
    """
    if not texts or (not query_tokens and not sentences):
        return [Marks((), None) for _ in texts]
    wanted = set(query_tokens)
    analysed = _kiwi(analyzer).tokenize(list(texts), split_complex=analyzer.options.split_complex)
    marks: list[Marks] = []
    for tokens in analysed:
        matches = _matches(tokens, wanted, analyzer) if wanted else []
        best = _best_sentence(tokens, matches) if sentences else None
        marks.append(Marks(_merged(span for span, _ in matches), best))
    return marks


def _matches(tokens: Sequence[Token], wanted: set[str], analyzer: MorphemeAnalyzer) -> list[tuple[Span, str]]:
    """``((start, end), token)`` for every morpheme whose normalised token is one of ``wanted``."""
    found: list[tuple[Span, str]] = []
    for token in tokens:
        for normalised in analyzer.select([(token.form, token.tag)]):
            if normalised in wanted:
                found.append(((token.start, token.start + token.len), normalised))
                break
    return found


def _merged(spans) -> tuple[Span, ...]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _best_sentence(tokens: Sequence[Token], matches: list[tuple[Span, str]]) -> Span | None:
    bounds: dict[int, list[int]] = {}
    for token in tokens:
        low_high = bounds.setdefault(token.sent_position, [token.start, token.start + token.len])
        low_high[0] = min(low_high[0], token.start)
        low_high[1] = max(low_high[1], token.start + token.len)
    sentences = sorted((low, high) for low, high in bounds.values())
    if len(sentences) < 2:
        return None

    def distinct_tokens(span: Span) -> int:
        return len({token for (start, _), token in matches if span[0] <= start < span[1]})

    return max(sentences, key=lambda span: (distinct_tokens(span), -span[0]))


def _kiwi(analyzer: MorphemeAnalyzer) -> Kiwi:
    if analyzer.kiwi is None:
        from kosearch.documents.split import get_kiwi

        analyzer.kiwi = get_kiwi()
    return analyzer.kiwi
