"""Where a hit matched: the query's morphemes as character spans of the hit, and its best sentence.

A hit's text is analysed again with Kiwi (which gives each morpheme's character offsets), each
morpheme is normalised the way the lexical index normalises it, and the morphemes that equal one
of the query's tokens become spans. So a query's ``은행`` marks ``은행`` in ``은행에서``, and a
query's ``찾다`` marks the stem ``찾`` in ``찾았어요``: what is bold is what the lexical signal matched.
For a passage, the sentence holding the most distinct query tokens (ties: the first) is its best
sentence, the one a terminal shows first.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from kosearch.search.morphemes import MorphemeAnalyzer

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

Span = tuple[int, int]


def query_token_spans(text: str, query_tokens: Collection[str], analyzer: MorphemeAnalyzer) -> list[tuple[Span, str]]:
    """``((start, end), token)`` for every morpheme of ``text`` whose token is one of ``query_tokens``."""
    if not text or not query_tokens:
        return []
    wanted = set(query_tokens)
    kiwi = _kiwi(analyzer)
    found: list[tuple[Span, str]] = []
    for token in kiwi.tokenize(text, split_complex=analyzer.options.split_complex):
        for normalised in analyzer.select([(token.form, token.tag)]):
            if normalised in wanted:
                found.append(((token.start, token.start + token.len), normalised))
                break
    return found


def highlights(text: str, query_tokens: Collection[str], analyzer: MorphemeAnalyzer) -> tuple[Span, ...]:
    """Character spans of ``text`` holding the query's morphemes, in order, overlapping ones merged."""
    spans = sorted(span for span, _ in query_token_spans(text, query_tokens, analyzer))
    merged: list[Span] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def best_sentence(text: str, query_tokens: Collection[str], analyzer: MorphemeAnalyzer) -> Span | None:
    """The span of the sentence of ``text`` with the most distinct query tokens; None if ``text`` is one sentence."""
    sentences = [(s.start, s.end) for s in _kiwi(analyzer).split_into_sents(text)]
    if len(sentences) < 2:
        return None
    matches = query_token_spans(text, query_tokens, analyzer)

    def distinct_tokens(span: Span) -> int:
        return len({token for (start, _), token in matches if span[0] <= start < span[1]})

    return max(sentences, key=lambda span: (distinct_tokens(span), -span[0]))


def _kiwi(analyzer: MorphemeAnalyzer) -> Kiwi:
    if analyzer.kiwi is None:
        from kosearch.documents.split import get_kiwi

        analyzer.kiwi = get_kiwi()
    return analyzer.kiwi
