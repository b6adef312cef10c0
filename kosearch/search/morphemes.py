"""Korean text to lexical tokens: Kiwi morphemes, filtered by part of speech, for BM25.

Korean glues particles and endings to words (은행은 / 은행을 / 은행에서), so whitespace words almost
never repeat between a question and the sentence that answers it. Kiwi's morphological analysis
separates the stem from what is glued to it; keeping only the morphemes that carry content turns all
three forms into the token ``은행``.

Which morphemes to keep was measured (``python bench/bench_hybrid.py``; BM25 k1=1.2 b=0.75 over the
five development sets of docs/benchmarks.md, "Hybrid retrieval: development measurements"). MRR@10
x100 on the 60 questions over corpora/sample (the one set of real questions) and the mean over all
five sets, adding one choice per line:

=====================================================  =========  ====
tokens                                                 questions  mean
=====================================================  =========  ====
whitespace words (no analysis)                         29.4       49.2
nouns NNG NNP                                          54.0       59.1
+ numbers, Latin, hanja SN SL SH                       54.5       60.3
+ XR roots                                             54.5       60.6
+ VV VA stems                                          59.3       64.2
+ Kiwi's patterns W_SERIAL W_URL W_EMAIL W_HASHTAG     58.5       64.0
+ bound nouns NNB                                      60.2       64.8
+ interrogatives dropped (:data:`INTERROGATIVE_STOPWORDS`) 61.3   65.0
+ Kiwi ``split_complex``                               62.0       65.4
+ VV VA as lemmas, 닫 -> 닫다 (the default)            62.9       65.6
=====================================================  =========  ====

Tried and left out: all morphemes, particles and endings included (57.8 / 65.0: they help the
sentence-pair sets, whose sentences end alike, and hurt questions, whose endings differ from their
answers', and they put nearly every row in the postings of 이/는/을); Kiwi's own stop list
(61.5 / 64.5); light predicates 있/되/하/같 dropped too (63.2 / 65.5); pronouns NP (62.9 / 66.2: the
gain is all on KorSTS and the translated KorNLI, whose 그/그녀 "he/she" match between paraphrases;
none on questions); adverbs and determiners MAG MM (62.5 / 65.7); suffixes XSN XSV XSA
(63.8 / 65.7); syllable bigrams of nouns (60.1 / 65.4); Latin case kept (no change). Differences
below a point on the 60 questions are one or two questions; the choices above were kept when they
were principled and did not lose on any set by more than that.

The W_* patterns cost 0.8 on the questions: one question (햇살동 주민센터 연락처) ranks its answer
second instead of first because the phone number in it adds three tokens to the answer's length.
They are kept: phone numbers, dates and versions are what a user copies into a search box.

Tokens are normalised so that one token is one run of letters and digits: Latin is lower-cased,
thousands separators inside numbers are dropped (``1,000`` -> ``1000``), and anything else that is
not a letter or a digit splits a morpheme (``02-1234-5678`` -> ``02 1234 5678``). That is exactly
how SQLite FTS5's ``unicode61 remove_diacritics 0`` tokenizer reads the space-joined tokens back
(tested), so postings stored in FTS5 hold the same terms this module produces for a query.

Kiwi is the one instance the documents stage loads for sentence splitting
(:func:`kosearch.documents.split.get_kiwi`), made on first use; :meth:`MorphemeAnalyzer.analyze_batch`
hands a whole list to Kiwi in one call, which spreads it over Kiwi's worker threads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

NOUN_TAGS = frozenset({"NNG", "NNP"})
"""General and proper nouns: what a question and its answer share most often."""
BOUND_NOUN_TAGS = frozenset({"NNB"})
"""Bound nouns, mostly units after numbers (10시, 300원, 두 명), which factual questions ask about."""
SYMBOL_TAGS = frozenset({"SN", "SL", "SH"})
"""Numbers, Latin-script words and hanja: names, codes and figures a user types as they are."""
ROOT_TAGS = frozenset({"XR"})
"""Roots of 하다-adjectives (깨끗 in 깨끗하다), which Kiwi does not tag as VA."""
PREDICATE_TAGS = frozenset({"VV", "VA"})
"""Verb and adjective stems (열 in 여나요, 닫 in 닫습니다): what happens, often the point of a question."""
SERIAL_TAGS = frozenset({"W_SERIAL", "W_URL", "W_EMAIL", "W_HASHTAG"})
"""Kiwi's patterns: phone numbers, dates, versions, URLs, e-mail addresses, hashtags."""
DEFAULT_TAGS = NOUN_TAGS | BOUND_NOUN_TAGS | SYMBOL_TAGS | ROOT_TAGS | PREDICATE_TAGS | SERIAL_TAGS
INTERROGATIVE_STOPWORDS = frozenset(
    {"어떻/VA", "얼마/NNG", "며칠/NNG", "어디/NP", "언제/NP", "무엇/NP", "뭐/NP", "누구/NP"}
)
"""Question words (``form/TAG``, the tag without Kiwi's irregular-conjugation suffix) that fall under a
kept tag: a question has them, the sentence that answers it does not, so as tokens they only find
other questions."""

_NOT_ALNUM = re.compile(r"[^\w]|_", re.UNICODE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_HANGUL_SYLLABLE = re.compile(r"^[\uac00-\ud7a3]+$")


@dataclass(frozen=True)
class LexicalOptions:
    """What :class:`MorphemeAnalyzer` keeps; saved with an index so queries are analysed like its documents.

    - ``tags``: Kiwi part-of-speech tags whose morphemes become tokens ("*" keeps every morpheme).
      Kiwi marks irregular conjugations with a suffix (``VV-R``, ``VA-I``); tags are compared without it.
    - ``predicate_lemma``: write verb and adjective stems as dictionary forms (``먹`` -> ``먹다``), which
      keeps the stem ``피`` (피다, to bloom) apart from the noun ``피`` (blood).
    - ``lowercase``: fold the case of Latin letters (``GPU``, ``gpu`` and ``Gpu`` match).
    - ``noun_bigrams``: also emit the syllable bigrams of nouns of three or more syllables, so a
      compound Kiwi keeps whole (연립방정식) still meets its parts (방정식 -> 방정, 정식).
    - ``stopwords``: ``form/TAG`` entries dropped even when their tag is kept.
    - ``split_complex``: Kiwi's option to split derived words into their parts (고마움 -> 고맙 + 음,
      so a noun formed from a verb meets the verb).
    """

    tags: frozenset[str] = DEFAULT_TAGS
    predicate_lemma: bool = True
    lowercase: bool = True
    noun_bigrams: bool = False
    stopwords: frozenset[str] = INTERROGATIVE_STOPWORDS
    split_complex: bool = True

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["tags"] = sorted(self.tags)
        values["stopwords"] = sorted(self.stopwords)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LexicalOptions:
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        for name in ("tags", "stopwords"):
            if name in known:
                known[name] = frozenset(known[name])
        return cls(**known)


@dataclass
class MorphemeAnalyzer:
    """Korean text -> lexical tokens, the same way for stored sentences and for queries.

    >>> analyzer = MorphemeAnalyzer()
    >>> analyzer.analyze("은행에서 돈을 찾았어요")
    ['은행', '돈', '찾다']
    """

    options: LexicalOptions = field(default_factory=LexicalOptions)
    kiwi: Kiwi | None = field(default=None, repr=False, compare=False)
    """Kiwi instance to use; None takes the process-wide one the documents stage uses."""
    _shared: bool = field(default=False, init=False, repr=False, compare=False)
    """Whether ``kiwi`` is the process-wide instance this analyzer took (``release`` lets it go)."""

    def analyze(self, text: str) -> list[str]:
        """Tokens of one text (a query): Kiwi on the calling thread."""
        tokens = self._kiwi().tokenize(text, split_complex=self.options.split_complex)
        return self.select((token.form, token.tag) for token in tokens)

    def analyze_batch(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokens of many texts, in order; one Kiwi call, so Kiwi's worker threads share the work."""
        texts = list(texts)
        if not texts:
            return []
        analysed = self._kiwi().tokenize(texts, split_complex=self.options.split_complex)
        return [self.select((token.form, token.tag) for token in tokens) for tokens in analysed]

    def select(self, morphemes: Iterable[tuple[str, str]]) -> list[str]:
        """Tokens from Kiwi's ``(form, tag)`` pairs: filtering and normalisation without analysis.

        Separate from :meth:`analyze` so that one analysis can be filtered in several ways (the bench
        compares tag sets on a single Kiwi pass).
        """
        options = self.options
        keep_all = "*" in options.tags
        tokens: list[str] = []
        for form, tag in morphemes:
            base_tag = tag.split("-", 1)[0]
            if (not keep_all and base_tag not in options.tags) or f"{form}/{base_tag}" in options.stopwords:
                continue
            for token in _normalised(form, base_tag, options.lowercase):
                if options.predicate_lemma and base_tag in PREDICATE_TAGS:
                    token += "다"
                tokens.append(token)
                if options.noun_bigrams and base_tag in NOUN_TAGS and len(token) >= 3 and _HANGUL_SYLLABLE.match(token):
                    tokens.extend(token[i : i + 2] for i in range(len(token) - 1))
        return tokens

    def release(self) -> None:
        """Drop Kiwi (this analyzer's and the process-wide one); the next analysis loads it again.

        An indexing run calls this before a long merge (``kosearch.ingest``): releasing Kiwi gave back
        0.22 GB (``bench/bench_build_memory.py --probe``).
        An analyzer given its own Kiwi instance keeps it (its owner decides when it goes)."""
        from kosearch.documents.split import release_kiwi

        if self._shared:
            self.kiwi, self._shared = None, False
        release_kiwi()

    def _kiwi(self) -> Kiwi:
        if self.kiwi is None:
            from kosearch.documents.split import get_kiwi

            self.kiwi, self._shared = get_kiwi(), True
        return self.kiwi


def _normalised(form: str, tag: str, lowercase: bool) -> Iterator[str]:
    if tag == "SN":
        form = _THOUSANDS.sub("", form)
    if lowercase:
        form = form.lower()
    for piece in _NOT_ALNUM.split(form):
        if piece:
            yield piece


def fts5_match_expression(tokens: Sequence[str]) -> str:
    """An FTS5 MATCH expression finding rows with any of ``tokens`` (each quoted, so none is an operator).

    Tokens come from :class:`MorphemeAnalyzer`, runs of letters and digits, so they hold no double quote;
    a repeated token stays repeated, as BM25 counts a repeated query term twice.
    """
    return " OR ".join(f'"{token}"' for token in tokens)
