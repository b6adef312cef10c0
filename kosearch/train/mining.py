"""Retrieval-shaped training examples from unlabelled passages, with the corpus's own BM25 as the teacher.

No generator model and no labels: every example is (query, positive passage, hard negative passage) made from
the corpus itself, the shape a retrieval encoder is asked to rank.

- **Inverse cloze** (ICT; Lee, Chang & Toutanova, 2019, "Latent Retrieval for Weakly Supervised Open Domain
  Question Answering"): a sentence of a passage is the query and the rest of the passage its positive. As in the
  paper the sentence is left in the passage for a share of the examples (10%), so the encoder still learns that
  words in common matter.
- **Keyword queries**: the passage's most salient nouns (Kiwi morphemes weighted by tf x idf over the corpus), in
  passage order, as a short query of the kind people type into a search box. Single-sentence passages, which
  give no inverse-cloze example, still give one of these.
- **Question queries** (``question_share``, off by default): a share of the keyword queries is written instead as
  a generic Korean question about the passage's most salient noun(s) ("연말정산은 무엇인가요?", "주차 요금에
  대해 알려줘"), with the particle that the noun's last syllable takes (은/는, 이/가, 을/를). Users ask search boxes
  questions, and a retriever learns the query distribution it is trained on: synthetic queries help most when they
  look like the target queries (Ma et al., 2021, "Zero-shot Neural Passage Retrieval via Domain-targeted Synthetic
  Question Generation"; Dai et al., 2022, Promptagator's few-shot query style), while keyword queries are bags of
  nouns. Templates stand in for the question generator kosearch cannot run on a CPU budget.
- **Round-trip filter** (the consistency filtering of Promptagator; Dai et al., 2022): a query is kept only when
  BM25 over the whole corpus ranks its own passage in the top ``top_k``. Sentences that could have come from
  anywhere ("감사합니다.") are not queries for their passage.
- **BM25 hard negatives** (as in DPR; Karpukhin et al., 2020, and GPL; Wang et al., 2022, which mines them with a
  retriever): the best-ranked other passage that is not a near-duplicate of the positive and does not contain the
  query. GPL then relabels with a cross-encoder; kosearch has none on a CPU budget, so the duplicate checks are
  what keeps false negatives out.

The lexical analysis is kosearch's own (:class:`~kosearch.search.morphemes.MorphemeAnalyzer` with the default
:class:`~kosearch.search.morphemes.LexicalOptions`, :class:`~kosearch.search.bm25.BM25Index`), so the teacher is
the same BM25 that ``kosearch`` hybrid search runs on the index.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from kosearch.search.bm25 import BM25Index
from kosearch.search.morphemes import NOUN_TAGS, LexicalOptions, MorphemeAnalyzer

ICT_KEEP_SENTENCE = 0.1
"""Share of inverse-cloze examples whose positive keeps the query sentence (the ICT paper's 10%)."""
KEYWORDS_PER_QUERY = 4
TOP_K = 10
"""A query is kept when BM25 ranks its passage within this many; hard negatives come from the same list."""
NEAR_DUPLICATE = 0.6
"""Token-set Jaccard similarity above which another passage counts as the same text (never a negative)."""
MIN_QUERY_CHARS = 8

QUESTION_TEMPLATES = (
    "{x}{eun} 무엇인가요?",
    "{x}{i} 뭐야?",
    "{x}에 대해 알려줘",
    "{x}에 대해 알려주세요",
    "{x} 어떻게 해?",
    "{x}{eun} 어떻게 해야 하나요?",
    "{x}{eul} 어떻게 하면 좋을까?",
    "{x} 관련해서 궁금한 게 있어요",
)
"""Generic question forms; ``{eun}`` / ``{i}`` / ``{eul}`` are the particles 은/는, 이/가, 을/를 chosen for ``{x}``."""

QueryKind = Literal["ict", "keywords", "question"]


@dataclass(frozen=True)
class Passage:
    """A passage of a document as the documents stage split it, and where it came from."""

    text: str
    source: str
    """The file's relative path."""


@dataclass(frozen=True)
class TrainingExample:
    query: str
    positive: str
    negative: str
    kind: QueryKind


@dataclass
class MiningReport:
    """How many examples each construction gave and how many the round-trip filter dropped, for the card."""

    passages: int = 0
    made: Counter = field(default_factory=Counter)
    """Kind -> queries made before filtering."""
    kept: Counter = field(default_factory=Counter)
    """Kind -> queries whose passage BM25 ranked in the top ``top_k``."""
    random_negatives: int = 0
    """Examples whose negative is a random passage because BM25 offered no usable one."""

    def summary(self) -> str:
        parts = [f"{kind}: {self.kept[kind]:,} of {self.made[kind]:,} kept" for kind in sorted(self.made)]
        return "; ".join(parts) + f"; {self.random_negatives:,} random negatives"


def mine_examples(
    passages: Sequence[Passage],
    *,
    seed: int = 42,
    top_k: int = TOP_K,
    keywords: int = KEYWORDS_PER_QUERY,
    options: LexicalOptions | None = None,
    question_share: float = 0.0,
) -> tuple[list[TrainingExample], MiningReport]:
    """Inverse-cloze and keyword queries for ``passages``, round-trip filtered, each with a BM25 hard negative.

    ``question_share``: the share of keyword queries written as question queries instead (kind ``question``). The
    choice draws from its own random stream, so the other examples are the same as with 0.

    Deterministic for a given ``seed`` and passage list, so a resumed run trains on the same examples.
    """
    from kosearch.documents.split import get_kiwi

    report = MiningReport(passages=len(passages))
    if len(passages) < 2:
        return [], report
    rng = random.Random(seed)
    question_rng = random.Random(f"question-{seed}")
    analyzer = MorphemeAnalyzer(options or LexicalOptions())
    nouns = MorphemeAnalyzer(LexicalOptions(tags=NOUN_TAGS | {"SL"}, predicate_lemma=False, stopwords=frozenset()))
    split = get_kiwi().split_into_sents(
        [passage.text for passage in passages], return_tokens=True, split_complex=analyzer.options.split_complex
    )
    sentences: list[list[tuple[str, list[str]]]] = []
    passage_tokens: list[list[str]] = []
    passage_nouns: list[list[str]] = []
    for passage, parts in zip(passages, split):
        pieces = []
        tokens: list[str] = []
        noun_tokens: list[str] = []
        for part in parts:
            morphemes = [(token.form, token.tag) for token in part.tokens]
            part_tokens = analyzer.select(morphemes)
            pieces.append((part.text.strip(), part_tokens))
            tokens += part_tokens
            # Surface forms, not Kiwi's lemmas: the keyword query should read as the passage spells it.
            surfaces = [(passage.text[token.start : token.end], token.tag) for token in part.tokens]
            noun_tokens += nouns.select(surfaces)
        sentences.append(pieces)
        passage_tokens.append(tokens)
        passage_nouns.append(noun_tokens)
    index = BM25Index(passage_tokens)
    token_sets = [set(tokens) for tokens in passage_tokens]
    document_frequency = Counter(token for tokens in token_sets for token in tokens)

    candidates: list[tuple[int, QueryKind, str, list[str] | None, str]] = []
    for number, passage in enumerate(passages):
        usable = [i for i, (text, tokens) in enumerate(sentences[number]) if len(text) >= MIN_QUERY_CHARS and tokens]
        if len(sentences[number]) >= 2 and usable:
            chosen = rng.choice(usable)
            query, query_tokens = sentences[number][chosen]
            if rng.random() < ICT_KEEP_SENTENCE:
                positive = passage.text
            else:
                positive = " ".join(text for i, (text, _) in enumerate(sentences[number]) if i != chosen)
            candidates.append((number, "ict", query, query_tokens, positive))
        salient = _salient(passage_nouns[number], document_frequency, len(passages), keywords)
        if len(salient) >= 2:
            if question_share > 0 and question_rng.random() < question_share:
                query = question_query(salient, passage_nouns[number], document_frequency, len(passages), question_rng)
                candidates.append((number, "question", query, None, passage.text))
            else:
                candidates.append((number, "keywords", " ".join(salient), None, passage.text))
    # Keyword queries are analysed like any query kosearch gets (one batched Kiwi call).
    unanalysed = [query for _, _, query, tokens, _ in candidates if tokens is None]
    analysed = iter(analyzer.analyze_batch(unanalysed))
    examples: list[TrainingExample] = []
    for number, kind, query, query_tokens, positive in candidates:
        if query_tokens is None:
            query_tokens = next(analysed)
        report.made[kind] += 1
        ranking = [hit for hit, _ in index.search(query_tokens, top_k)] if query_tokens else []
        if number not in ranking:
            continue
        report.kept[kind] += 1
        negative = _hard_negative(ranking, number, query, passages, token_sets)
        if negative is None:
            report.random_negatives += 1
            negative = _random_negative(number, query, passages, rng)
        examples.append(TrainingExample(query, positive, negative, kind))
    rng.shuffle(examples)
    return examples, report


def _salient(nouns: list[str], document_frequency: Counter, count: int, keep: int) -> list[str]:
    """The ``keep`` nouns with the highest tf x idf, in the order they first appear in the passage."""
    frequency = Counter(noun for noun in nouns if len(noun) >= 2)
    # idf from the corpus's own token counts; a surface form the analyser normalises differently counts as rare.
    if not frequency:
        return []
    weight = {noun: tf * math.log(1 + count / (1 + document_frequency.get(noun, 0))) for noun, tf in frequency.items()}
    best = set(sorted(weight, key=lambda noun: (-weight[noun], noun))[:keep])
    ordered: list[str] = []
    for noun in nouns:
        if noun in best and noun not in ordered:
            ordered.append(noun)
    return ordered


def question_query(
    salient: list[str], nouns: list[str], document_frequency: Counter, count: int, rng: random.Random
) -> str:
    """A generic question about the passage's most salient noun, or its two most salient (in passage order)."""
    subject = _salient(nouns, document_frequency, count, rng.choice((1, 2))) or salient[:1]
    return question_about(" ".join(subject), rng.choice(QUESTION_TEMPLATES))


def question_about(subject: str, template: str) -> str:
    """``template`` filled with ``subject`` and the particles its last syllable takes.

    A subject that does not end in a Hangul syllable (a Latin word, a number) has no reliable particle, so it gets
    a form without one ("... 에 대해 알려줘")."""
    coda = final_consonant(subject)
    if coda is None:
        if any(slot in template for slot in ("{eun}", "{i}", "{eul}")):
            template = "{x}에 대해 알려줘"
        return template.format(x=subject)
    return template.format(
        x=subject, eun="은" if coda else "는", i="이" if coda else "가", eul="을" if coda else "를"
    )


def final_consonant(word: str) -> bool | None:
    """Whether the last syllable of ``word`` has a final consonant (받침); None when it is not a Hangul syllable."""
    if not word:
        return None
    code = ord(word[-1]) - 0xAC00
    if not 0 <= code < 11172:
        return None
    return code % 28 != 0


def _hard_negative(
    ranking: list[int], source: int, query: str, passages: Sequence[Passage], token_sets: list[set[str]]
) -> str | None:
    for hit in ranking:
        if hit == source or query in passages[hit].text or passages[hit].text == passages[source].text:
            continue
        union = token_sets[hit] | token_sets[source]
        if union and len(token_sets[hit] & token_sets[source]) / len(union) > NEAR_DUPLICATE:
            continue
        return passages[hit].text
    return None


def _random_negative(source: int, query: str, passages: Sequence[Passage], rng: random.Random) -> str:
    for _ in range(10):
        pick = rng.randrange(len(passages))
        if pick != source and query not in passages[pick].text:
            return passages[pick].text
    return passages[(source + 1) % len(passages)].text
