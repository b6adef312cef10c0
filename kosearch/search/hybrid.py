"""One query, three ways to rank (dense, lexical, hybrid), filters first, hits as documents or units.

The steps, each in its own module:

1. the filter (:mod:`kosearch.search.filters`) becomes SQL, and the ids of the units it lets
   through; both signals then search only inside them, so k hits come back whenever k units match;
2. candidates from each signal: the dense one from the vector store, the lexical one from the
   index's postings files (BM25 over Kiwi morphemes, :mod:`kosearch.search.morphemes` and
   :mod:`kosearch.store.postings`, with ``bm25_k1`` and ``bm25_b``);
3. completion (:mod:`kosearch.search.completion`): the BM25 of the dense candidates the lexical list
   missed, so fusion mixes real scores instead of guessing them;
4. fusion (:mod:`kosearch.search.fusion`): convex mix of z-score normalised scores (default, lexical
   weight 0.3; the dense std floored at ``fusion.DEFAULT_DENSE_STD_FLOOR`` scaled to the encoder's own
   cosine spread, :mod:`kosearch.search.dense_floor`) or reciprocal rank fusion;
5. grouping by document (:mod:`kosearch.search.grouping`): at most one unit per document;
6. hits with every signal's score and the query's morphemes highlighted (:mod:`kosearch.search.highlight`).

Each signal returns at least ``MIN_CANDIDATES`` candidates, and for the convex fusion of hybrid mode at
least ``FUSION_CANDIDATES`` (RRF keeps ``MIN_CANDIDATES``, where it measured better; docs/benchmarks.md,
"Hybrid retrieval after the fusion study").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kosearch.errors import KosearchError
from kosearch.results import Hit
from kosearch.search.filters import Filter, WhereSpec
from kosearch.search.completion import lexical_scores_of
from kosearch.search.fusion import DEFAULT_DENSE_STD_FLOOR, DEFAULT_LEXICAL_WEIGHT, FusedHit, convex_fusion, reciprocal_rank_fusion
from kosearch.search.grouping import first_per_document
from kosearch.search.dense import dense_candidates
from kosearch.search.highlight import Marks, mark_hits
from kosearch.search.bm25 import DEFAULT_B, DEFAULT_K1
from kosearch.search.morphemes import LexicalOptions, MorphemeAnalyzer
from kosearch.store import IndexStore

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[str, ...] = ("dense", "lexical", "hybrid")
FUSIONS: tuple[str, ...] = ("convex", "rrf")
GROUPS: tuple[str, ...] = ("document",)
MIN_CANDIDATES = 20
FUSION_CANDIDATES = 100
"""Candidates each signal hands to fusion. Measured with ``bench/fusion_study.py`` (six sets, the
default fusion): 100 against 20 per signal gives 74.31 / 76.16 mean MRR@10 / nDCG@10 against
74.25 / 76.09, and beats BM25-only on the chatbot set where 20 did not (7.08 vs 6.86 MRR@10;
BM25 alone 6.97). It costs little: FTS5 scores every matching row to rank its top anyway, a flat FAISS scan
is the same for k = 100, and only the top k hits get highlights and rows."""


@dataclass(frozen=True)
class SearchRequest:
    """Everything about a query but its text; checked once for a whole batch.

    The one declaration of the search options: ``Index.search`` and ``Index.search_batch`` take
    these fields as keywords, the CLI's ``query`` options map onto them.
    """

    k: int = 10
    """How many hits (documents, with ``group_by="document"``)."""
    context: int = 0
    """Neighbouring units of the same file to return on each side of a hit."""
    mode: str | None = None
    """``"dense"`` (vector similarity), ``"lexical"`` (BM25 over Kiwi morphemes) or ``"hybrid"`` (both,
    fused); None is hybrid when the index has a lexical index, else dense."""
    where: WhereSpec = None
    """A filter applied before ranking: ``"format = 'pdf'"``, a list of such strings, or
    ``{"rating": {">=": 9}}`` (see :mod:`kosearch.search.filters`)."""
    group_by: str | None = None
    """``"document"``: at most one hit (its best unit) per document."""
    fusion: str = "convex"
    """``"convex"`` (z-score normalised scores mixed by ``lexical_weight``) or ``"rrf"`` (ranks)."""
    lexical_weight: float | None = None
    """Weight of the lexical score in convex fusion, 0..1; None: ``DEFAULT_LEXICAL_WEIGHT``."""
    bm25_k1: float | None = None
    """BM25's term-frequency saturation (>= 0) for the lexical signal; None: ``bm25.DEFAULT_K1``."""
    bm25_b: float | None = None
    """BM25's length normalisation, 0 (none) ..1 (full); None: ``bm25.DEFAULT_B``."""


def resolve_mode(store: IndexStore, mode: str | None) -> str:
    """The mode a query runs in: the one asked for, else hybrid when the index has a lexical index."""
    if mode is None:
        return "hybrid" if store.has_lexical else "dense"
    if mode not in MODES:
        raise KosearchError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    if mode != "dense" and not store.has_lexical:
        raise KosearchError(
            f"index {store.folder} has no lexical index (it was made by an older kosearch, or with --no-lexical), so mode "
            f"{mode!r} cannot run; run `kosearch index DOCS --index {store.folder}` again to add it, "
            f"or use --mode dense"
        )
    return mode


def analyzer_for(store: IndexStore) -> MorphemeAnalyzer:
    """An analyzer with the options the index's documents were analysed with."""
    return MorphemeAnalyzer(LexicalOptions.from_dict(store.manifest.get("lexical") or {}))


def search(
    store: IndexStore,
    queries: Sequence[str],
    encode_queries: Callable[[list[str]], np.ndarray],
    request: SearchRequest,
    dense_std_floor: Callable[[], float | None] | None = None,
) -> list[list[Hit]]:
    """Ranked hits for each query (see the module docstring for the steps).

    ``dense_std_floor`` gives the floor of the dense z-score in convex fusion for the encoder that made
    ``encode_queries``'s vectors (:func:`kosearch.search.dense_floor.dense_std_floor`); it is called only
    when a query is fused that way, so a lexical or dense search measures nothing. None: the fixed
    ``fusion.DEFAULT_DENSE_STD_FLOOR``.

    Every step reads the same generation of the index (``store.reading()``), so an id one step
    finds is a row the next step can read, whatever a writer commits meanwhile.
    """
    with store.reading():
        return _search(store, queries, encode_queries, request, dense_std_floor)


def _search(
    store: IndexStore,
    queries: Sequence[str],
    encode_queries: Callable[[list[str]], np.ndarray],
    request: SearchRequest,
    dense_std_floor: Callable[[], float | None] | None = None,
) -> list[list[Hit]]:
    if request.k < 1:
        raise ValueError("k must be at least 1")
    if request.context < 0:
        raise ValueError("context must be at least 0")
    if request.fusion not in FUSIONS:
        raise KosearchError(f"unknown fusion {request.fusion!r}; use one of {', '.join(FUSIONS)}")
    if request.group_by is not None and request.group_by not in GROUPS:
        raise KosearchError(f"cannot group hits by {request.group_by!r}; use 'document' (or nothing)")
    weight = DEFAULT_LEXICAL_WEIGHT if request.lexical_weight is None else float(request.lexical_weight)
    if not 0.0 <= weight <= 1.0:
        raise KosearchError(f"the lexical weight must be between 0 and 1, not {weight}")
    k1 = DEFAULT_K1 if request.bm25_k1 is None else float(request.bm25_k1)
    b = DEFAULT_B if request.bm25_b is None else float(request.bm25_b)
    if not k1 >= 0.0:
        raise KosearchError(f"BM25's k1 must be 0 or more, not {k1}")
    if not 0.0 <= b <= 1.0:
        raise KosearchError(f"BM25's b must be between 0 and 1, not {b}")
    mode = resolve_mode(store, request.mode)
    where_sql, parameters = Filter.parse(request.where).to_sql()
    filtered = where_sql != "1"
    allowed = store.allowed_ids(where_sql, parameters) if filtered else None
    if (allowed is not None and len(allowed) == 0) or store.count() == 0:
        return [[] for _ in queries]
    analyzer = analyzer_for(store) if mode != "dense" or store.has_lexical else None
    query_tokens = [_unique(analyzer.analyze(q)) if analyzer else [] for q in queries]
    vectors = encode_queries(list(queries)) if mode != "lexical" else None
    floor = DEFAULT_DENSE_STD_FLOOR
    if mode == "hybrid" and request.fusion == "convex" and dense_std_floor is not None:
        floor = dense_std_floor()
    total = len(allowed) if allowed is not None else store.count()
    results: list[list[Hit]] = []
    for position, query in enumerate(queries):
        wanted = max(request.k, MIN_CANDIDATES)
        while True:  # grouping may need more candidates to fill k documents
            ranked = _ranked(
                store, mode, request.fusion, weight, wanted,
                None if vectors is None else vectors[position : position + 1],
                query_tokens[position], allowed, (k1, b), floor,
            )
            if request.group_by == "document":
                documents = store.unit_documents([hit.key for hit in ranked])
                chosen = first_per_document(ranked, documents, request.k)
                if len(chosen) >= request.k or wanted >= total:
                    break
                wanted *= 4
            else:
                chosen = ranked[: request.k]
                break
        results.append(_hits(store, chosen, mode, query_tokens[position], analyzer, request.context))
    return results


def _ranked(
    store: IndexStore,
    mode: str,
    fusion: str,
    weight: float,
    candidates: int,
    vector: np.ndarray | None,
    tokens: list[str],
    allowed: np.ndarray | None,
    bm25: tuple[float, float],
    dense_std_floor: float | None = DEFAULT_DENSE_STD_FLOOR,
) -> list[FusedHit[int]]:
    """The fused candidates of one query, best first. ``dense_std_floor`` goes to convex fusion
    (bench/bm25_grid.py passes None to rank with plain z-scores in the same run)."""
    dense: dict[int, float] = {}
    lexical: dict[int, float] = {}
    if mode == "hybrid" and fusion == "convex":  # RRF measured better at 20 (73.38 vs 73.12 at 100)
        candidates = max(candidates, FUSION_CANDIDATES)
    k1, b = bm25
    if vector is not None:
        dense = dense_candidates(store, vector, candidates, allowed)
    if mode != "dense":
        lexical = dict(store.lexical_search(tokens, candidates, allowed, k1=k1, b=b))
    if mode == "dense":
        return [FusedHit(key, score, score, None) for key, score in sorted(dense.items(), key=lambda kv: (-kv[1], kv[0]))]
    if mode == "lexical":
        return [FusedHit(key, score, None, score) for key, score in sorted(lexical.items(), key=lambda kv: (-kv[1], kv[0]))]
    if fusion == "rrf":
        return reciprocal_rank_fusion(dense, lexical)
    scored = lexical_scores_of(store, tokens, [key for key in dense if key not in lexical], k1=k1, b=b)
    return convex_fusion(dense, lexical, lexical_weight=weight, lexical_scored=scored, dense_std_floor=dense_std_floor)


def _hits(
    store: IndexStore,
    chosen: list[FusedHit[int]],
    mode: str,
    tokens: list[str],
    analyzer: MorphemeAnalyzer | None,
    context: int,
) -> list[Hit]:
    rows = store.units_by_id([hit.key for hit in chosen])
    found = [(fused, rows[fused.key]) for fused in chosen if fused.key in rows]
    passages = store.manifest.get("unit") == "passage"
    if analyzer is not None and (tokens or passages):
        marks = mark_hits([row.text for _, row in found], tokens, analyzer, sentences=passages)
    else:
        marks = [Marks((), None)] * len(found)
    hits: list[Hit] = []
    for (fused, row), mark in zip(found, marks):
        before, after = store.neighbours(row.sentence_id, context, context) if context else ([], [])
        hits.append(
            Hit(
                score=float(fused.score),
                text=row.text,
                path=row.path,
                line=row.line,
                sentence_id=row.sentence_id,
                start=row.start,
                end=row.end,
                document_root=row.document_root,
                context_before=tuple(before),
                context_after=tuple(after),
                page=row.page,
                dense_score=fused.dense_score,
                lexical_score=fused.lexical_score,
                fused_score=float(fused.score) if mode == "hybrid" else None,
                mode=mode,
                highlights=mark.highlights,
                best_sentence=mark.best_sentence,
                fields=dict(row.fields),
            )
        )
    return hits


def _unique(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(tokens))
