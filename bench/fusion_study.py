"""Which fusion of dense and lexical scores should hybrid search use? Cached scores, many variants, every set.

``bench/bench_hybrid.py`` chose the lexical weight of one fusion (min-max convex) on five sets. Through
the product that fusion lost to dense-only on the sample questions (docs/benchmarks.md, "Retrieval
unit"). This study caches, once per development set, the full dense score matrix (bundled encoder,
queries x documents, vectors cached by ``bench_hybrid.cached_embeddings``) and the full BM25 matrix
(Kiwi morphemes cached by ``bench_hybrid.cached_morphemes``; FTS5's Robertson idf, k1 = 1.2, b = 0.75,
query tokens deduplicated, as ``kosearch.search.hybrid`` queries FTS5), then scores fusion variants
in memory:

- normalisation of each signal before a convex mix ``(1 - w) * dense' + w * lexical'``:
  ``minmax`` over the signal's own candidates (what kosearch did), ``zscore`` over them, ``tmm``
  (theoretical min-max: lexical / its best, dense (s + 1) / (best + 1), Bruch et al. 2023),
  ``ub`` (lexical / the query's BM25 upper bound, the sum of its terms' idf: a partial match scores
  low however it ranks; dense min-max), and rank-based fusion (RRF, weighted RRF);
- the candidate depth N of each signal (10, 20, 50, 100), and whether a candidate only one signal
  returned is scored by the other signal too (``complete``: both sides; ``complete=lexical``: only
  its BM25, what the product can look up cheaply) instead of taking the other list's floor;
- whether each signal is normalised with the statistics of its own list or of the union of candidates;
- query-adaptive weights: w scaled by how much of the query's idf mass the best lexical hit covers;
- how the lexical query is formed (tag sets) and BM25 k1 / b, for the chosen fusion.

``CHOSEN`` is the product's default; it is also run through ``kosearch.search.fusion.convex_fusion``
query by query, which must give the same metrics.

Sets: ``corpora/sample_questions`` at sentence units (its BEIR corpus) and at passage units (corpora/sample
split the way ``kosearch index`` splits it by default; a passage is relevant when it holds a judged
sentence), and the BEIR folders of ``bench/build_devsets.py``. Metrics (x100) are computed here and
checked against ``kosearch.evaluate.ranking.ranking_metrics`` on the dense ranking of every set.

Usage: OMP_NUM_THREADS=1 python bench/fusion_study.py [--sets bench/devsets] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_hybrid import cached_embeddings, cached_morphemes  # noqa: E402

from kosearch.data.beir import load_beir  # noqa: E402
from kosearch.evaluate.ranking import ranking_metrics  # noqa: E402
from kosearch.search.bm25 import BM25Index, BM25Parameters, idf  # noqa: E402
from kosearch.search.morphemes import LexicalOptions, MorphemeAnalyzer  # noqa: E402

SETS = ("sample_sentences", "sample_passages", "korsts", "klue_nli", "kornli", "chatbot")
DEPTH = 10
DISCOUNT = 1.0 / np.log2(np.arange(2, DEPTH + 2))


# ------------------------------------------------------------------------------------------ the sets
@dataclass
class DevSet:
    name: str
    queries: list[str]
    documents: list[str]
    relevant: np.ndarray
    """(queries, documents) bool: judged relevant."""
    dense: np.ndarray
    """(queries, documents) cosine similarity, bundled encoder, query / document prompts."""
    morphemes: dict[bool, tuple[list, list]]
    """split_complex -> (documents' Kiwi (form, tag) lists, queries')."""


def load_sets(folder: Path, names: list[str]) -> list[DevSet]:
    from kosearch.encoders import Encoder

    encoder = Encoder(device="cpu")
    out = []
    for name in names:
        started = time.perf_counter()
        if name == "sample_sentences":
            queries, documents, pairs = _beir(ROOT / "corpora" / "sample_questions")
        elif name == "sample_passages":
            queries, documents, pairs = sample_passages()
        else:
            queries, documents, pairs = _beir(folder / name)
        cache = folder / "_cache" / name
        cache.mkdir(parents=True, exist_ok=True)
        doc_vectors = cached_embeddings(cache, encoder, documents, "corpus")
        query_vectors = cached_embeddings(cache, encoder, queries, "queries")
        relevant = np.zeros((len(queries), len(documents)), dtype=bool)
        for q, d in pairs:
            relevant[q, d] = True
        morphemes = {flag: (cached_morphemes(cache, documents, flag), cached_morphemes(cache, queries, flag)) for flag in (False, True)}
        dense = (query_vectors @ doc_vectors.T).astype(np.float32)
        out.append(DevSet(name, queries, documents, relevant, dense, morphemes))
        print(f"{name}: {len(queries)} queries, {len(documents)} documents ({time.perf_counter() - started:.0f} s)", flush=True)
    return out


def _beir(folder: Path) -> tuple[list[str], list[str], list[tuple[int, int]]]:
    dataset = load_beir(folder)
    doc_ids = list(dataset.corpus)
    position = {doc_id: n for n, doc_id in enumerate(doc_ids)}
    query_ids = dataset.evaluated_query_ids
    pairs = [(q, position[d]) for q, qid in enumerate(query_ids) for d, grade in dataset.qrels[qid].items() if grade > 0 and d in position]
    return [dataset.queries[q] for q in query_ids], [dataset.corpus[d].full_text for d in doc_ids], pairs


def sample_passages() -> tuple[list[str], list[str], list[tuple[int, int]]]:
    """corpora/sample as passage units (kosearch's default split); relevant = holds a judged sentence."""
    from kosearch.documents import Document, iter_documents

    sample = ROOT / "corpora" / "sample"
    dataset = load_beir(ROOT / "corpora" / "sample_questions")
    sentence_at: dict[str, tuple[str, int | None, int, int]] = {}
    for item in iter_documents(sample):
        assert isinstance(item, Document), item
        for number, sentence in enumerate(item.sentences, start=1):
            sentence_at[f"{item.relpath}#{number}"] = (item.relpath, sentence.page, sentence.start, sentence.end)
    passages: list[tuple[str, int | None, int, int]] = []
    texts: list[str] = []
    for item in iter_documents(sample, mode="passage"):
        assert isinstance(item, Document), item
        for passage in item.sentences:
            passages.append((item.relpath, passage.page, passage.start, passage.end))
            texts.append(passage.text)
    query_ids = dataset.evaluated_query_ids
    pairs = []
    for q, qid in enumerate(query_ids):
        for sentence_id in dataset.qrels[qid]:
            path, page, start, end = sentence_at[sentence_id]
            pairs += [(q, d) for d, (p, pg, s, e) in enumerate(passages) if p == path and pg == page and s <= start and end <= e]
    return [dataset.queries[q] for q in query_ids], texts, pairs


# ------------------------------------------------------------------------------------------- lexical
@dataclass
class Lexical:
    scores: np.ndarray
    """(queries, documents) BM25, 0 where no query term occurs."""
    upper: np.ndarray
    """(queries,) the query's BM25 upper bound: sum of its distinct terms' idf (tf -> infinity)."""
    terms: np.ndarray
    """(queries,) distinct query tokens."""


def lexical(dev: DevSet, options: LexicalOptions, parameters: BM25Parameters) -> Lexical:
    analyzer = MorphemeAnalyzer(options)
    doc_m, query_m = dev.morphemes[options.split_complex]
    index = BM25Index([analyzer.select(m) for m in doc_m], parameters)
    stats = index.statistics
    scores = np.zeros(dev.dense.shape, dtype=np.float64)
    upper = np.zeros(len(query_m))
    terms = np.zeros(len(query_m))
    for q, morphemes in enumerate(query_m):
        tokens = list(dict.fromkeys(analyzer.select(morphemes)))  # the product deduplicates
        terms[q] = len(tokens)
        scores[q] = index.scores(tokens)
        upper[q] = sum(idf(stats.document_frequency[t], stats.document_count, parameters.idf) for t in tokens if t in stats.document_frequency)
    return Lexical(scores, upper, terms)


# ------------------------------------------------------------------------------------------- fusion
@dataclass(frozen=True)
class Variant:
    norm: str = "minmax"  # minmax | zscore | tmm | ub | rrf | dense | lexical
    weight: float = 0.3
    depth: int = 20
    complete: bool | str = False
    """True: a candidate only one signal returned gets its real score from the other signal too;
    "lexical": only its real BM25 (a lexical-only candidate gets the dense list's lowest score, an
    upper bound of its own); False: it counts as the other list's floor (0 after min-max)."""
    adaptive: str = ""  # "" | "coverage"
    rrf_k: int = 60
    over_union: bool = False
    """Normalise each signal over the union of candidates (needs ``complete``), not over its own list."""

    @property
    def label(self) -> str:
        if self.norm in ("dense", "lexical"):
            return self.norm
        parts = [self.norm, f"w={self.weight:g}"]
        if self.norm == "rrf":
            parts.append(f"k={self.rrf_k}")
        parts.append(f"N={self.depth}")
        if self.complete:
            parts.append("complete" if self.complete is True else f"complete={self.complete}")
        if self.over_union:
            parts.append("stats=union")
        if self.adaptive:
            parts.append(f"adaptive={self.adaptive}")
        return " ".join(parts)


def ranks(matrix: np.ndarray) -> np.ndarray:
    """0-based rank of every document per row (best 0), ties to the lower index."""
    order = np.argsort(-matrix, axis=1, kind="stable")
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.arange(matrix.shape[1])[None, :].repeat(matrix.shape[0], 0), axis=1)
    return out


MAX_DEPTH = 100


@dataclass
class Prepared:
    """Per query, the union of both signals' top ``MAX_DEPTH`` candidates, as (queries, U) arrays.

    A variant with depth N <= MAX_DEPTH only ever ranks documents inside this union, so working on it
    gives exactly the full-matrix result at a fraction of the cost.
    """

    name: str
    doc: np.ndarray  # document index, -1 = padding
    dense: np.ndarray
    lex: np.ndarray
    dense_rank: np.ndarray
    lex_rank: np.ndarray
    relevant: np.ndarray
    n_relevant: np.ndarray
    upper: np.ndarray  # (queries,) BM25 upper bound of the query
    lex_best: np.ndarray  # (queries,) best BM25 over the whole collection


def prepare(dev: DevSet, lex: Lexical) -> Prepared:
    dense_rank, lex_rank = ranks(dev.dense), ranks(lex.scores)
    members = []
    for q in range(dev.dense.shape[0]):
        top_dense = np.flatnonzero(dense_rank[q] < MAX_DEPTH)
        top_lex = np.flatnonzero((lex_rank[q] < MAX_DEPTH) & (lex.scores[q] > 0))
        members.append(np.union1d(top_dense, top_lex))
    width = max(len(m) for m in members)
    doc = np.full((len(members), width), -1, dtype=np.int64)
    for q, m in enumerate(members):
        doc[q, : len(m)] = m
    safe = np.maximum(doc, 0)
    pad = doc < 0
    take = lambda matrix, fill: np.where(pad, fill, np.take_along_axis(matrix, safe, axis=1))  # noqa: E731
    return Prepared(
        name=dev.name,
        doc=doc,
        dense=take(dev.dense.astype(np.float64), -np.inf),
        lex=take(lex.scores, 0.0),
        dense_rank=take(dense_rank, 10**9),
        lex_rank=np.where(take(lex.scores, 0.0) > 0, take(lex_rank, 10**9), 10**9),
        relevant=take(dev.relevant, False),
        n_relevant=dev.relevant.sum(axis=1),
        upper=lex.upper,
        lex_best=lex.scores.max(axis=1),
    )


def _masked_stats(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    safe = np.where(mask, values, 0.0)
    low = np.where(mask, values, np.inf).min(axis=1)
    high = np.where(mask, values, -np.inf).max(axis=1)
    count = mask.sum(axis=1)
    mean = safe.sum(axis=1) / np.maximum(count, 1)
    var = np.where(mask, (safe - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(count, 1)
    has = count > 0
    return np.where(has, low, 0.0), np.where(has, high, 0.0), mean, np.sqrt(var)


def _normalised(values: np.ndarray, mask: np.ndarray, norm: str, upper: np.ndarray | None, side: str) -> np.ndarray:
    values = np.where(np.isfinite(values), values, 0.0)
    low, high, mean, std = _masked_stats(values, mask)
    if norm == "zscore":
        return (values - mean[:, None]) / np.where(std > 0, std, 1.0)[:, None]
    if norm == "tmm":
        floor = -1.0 if side == "dense" else 0.0
        span = np.where(high > floor, high - floor, 1.0)
        return (values - floor) / span[:, None]
    if norm == "ub" and side == "lexical":
        return values / np.where(upper > 0, upper, 1.0)[:, None]
    span = high - low
    out = (values - low[:, None]) / np.where(span > 0, span, 1.0)[:, None]
    return np.where((span > 0)[:, None], out, 1.0)


def fuse(p: Prepared, v: Variant) -> np.ndarray:
    """Fused scores over the prepared union, -inf where a document is not a candidate of this variant."""
    depth = v.depth or MAX_DEPTH
    assert depth <= MAX_DEPTH
    dense_mask = p.dense_rank < depth
    lex_mask = p.lex_rank < depth
    if v.norm == "dense":
        return np.where(dense_mask, p.dense, -np.inf)
    if v.norm == "lexical":
        return np.where(lex_mask, p.lex, -np.inf)
    union = dense_mask | lex_mask
    if v.norm == "rrf":
        d = np.where(dense_mask, 1.0 / (v.rrf_k + p.dense_rank + 1), 0.0)
        lx = np.where(lex_mask, 1.0 / (v.rrf_k + p.lex_rank + 1), 0.0)
        return np.where(union, (1 - v.weight) * d + v.weight * lx, -np.inf)
    dense_side = "minmax" if v.norm == "ub" else v.norm
    assert v.complete or not v.over_union
    dense_values = p.dense
    if v.complete == "lexical":  # the dense side of a lexical-only candidate: the dense list's floor
        floor = np.where(dense_mask, p.dense, np.inf).min(axis=1, keepdims=True)
        dense_values = np.where(dense_mask, p.dense, floor)
    d = _normalised(dense_values, union if v.over_union else dense_mask, dense_side, None, "dense")
    lx = _normalised(p.lex, union if v.over_union else lex_mask, v.norm, p.upper, "lexical")
    if v.complete == "lexical" and not v.over_union:
        d = np.where(dense_mask, d, np.where(dense_mask, d, np.inf).min(axis=1, keepdims=True))
    if not v.complete:  # a candidate one signal did not return gets that signal's floor
        if v.norm == "zscore":
            d_floor = np.where(dense_mask, d, np.inf).min(axis=1, keepdims=True)
            l_floor = np.where(lex_mask, lx, np.inf).min(axis=1, keepdims=True)
            d = np.where(dense_mask, d, np.where(np.isfinite(d_floor), d_floor, 0.0))
            lx = np.where(lex_mask, lx, np.where(np.isfinite(l_floor), l_floor, 0.0))
        else:
            d = np.where(dense_mask, d, 0.0)
            lx = np.where(lex_mask, lx, 0.0)
    weight = np.full((p.dense.shape[0], 1), v.weight)
    if v.adaptive == "coverage":  # how much of the query's idf mass the best lexical hit holds
        weight = weight * np.clip(p.lex_best / np.where(p.upper > 0, p.upper, 1.0), 0, 1)[:, None]
    return np.where(union, (1 - weight) * d + weight * lx, -np.inf)


def evaluate(p: Prepared, v: Variant) -> dict[str, float]:
    fused = fuse(p, v)
    order = np.lexsort((p.doc, -np.where(np.isfinite(p.dense), p.dense, -1e9), -fused), axis=1)[:, :DEPTH]
    top_scores = np.take_along_axis(fused, order, axis=1)
    gains = (np.take_along_axis(p.relevant, order, axis=1) & np.isfinite(top_scores)).astype(np.float64)
    if gains.shape[1] < DEPTH:
        gains = np.pad(gains, ((0, 0), (0, DEPTH - gains.shape[1])))
    first = np.where(gains.any(axis=1), gains.argmax(axis=1) + 1, 0)
    mrr = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    ideal = np.array([DISCOUNT[: min(n, DEPTH)].sum() for n in p.n_relevant])
    ndcg = (gains * DISCOUNT).sum(axis=1) / ideal
    recall1 = gains[:, 0] / p.n_relevant
    return {"mrr_at_10": 100 * mrr.mean(), "ndcg_at_10": 100 * ndcg.mean(), "recall_at_1": 100 * recall1.mean()}


def check_metrics(dev: DevSet, p: Prepared) -> None:
    """The dense row of the prepared arrays against kosearch.evaluate.ranking on the full matrix."""
    rankings = {}
    for q, row in enumerate(dev.dense):
        order = np.lexsort((np.arange(len(row)), -row))[:DEPTH]
        rankings[str(q)] = [str(d) for d in order]
    qrels = {str(q): {str(d): 1 for d in np.flatnonzero(dev.relevant[q])} for q in range(len(dev.dense))}
    reference = ranking_metrics(rankings, qrels)
    ours = evaluate(p, Variant(norm="dense", depth=MAX_DEPTH))
    for name in ours:
        assert abs(reference[name] - ours[name]) < 1e-6, (dev.name, name, reference[name], ours[name])


# ------------------------------------------------------------------------------------------ the study
def variants() -> list[Variant]:
    out = [Variant(norm="dense", depth=MAX_DEPTH), Variant(norm="lexical", depth=MAX_DEPTH)]
    weights = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    for depth in (10, 20, 50, 100):
        for norm in ("minmax", "zscore", "tmm", "ub"):
            for complete in (False, True):
                for weight in weights + ((0.7, 0.8, 0.9) if norm == "tmm" else ()):
                    out.append(Variant(norm, weight, depth, complete))
        for rrf_k in (1, 10, 20, 60):
            for weight in (0.3, 0.4, 0.5):
                out.append(Variant("rrf", weight, depth, rrf_k=rrf_k))
        for norm in ("minmax", "zscore", "ub"):
            for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
                out.append(Variant(norm, weight, depth, True, adaptive="coverage"))
        for norm in ("minmax", "zscore"):
            for weight in weights:
                out.append(Variant(norm, weight, depth, True, over_union=True))
                out.append(Variant(norm, weight, depth, "lexical", over_union=True))
                out.append(Variant(norm, weight, depth, "lexical"))
            for weight in (0.3, 0.4, 0.5, 0.6):
                out.append(Variant(norm, weight, depth, True, adaptive="coverage", over_union=True))
    return out


CHOSEN = Variant("zscore", 0.3, 100, "lexical", over_union=True)
"""What ``kosearch.search`` does by default (see docs/benchmarks.md for why)."""


def check_product_fusion(p: Prepared, v: Variant = CHOSEN) -> dict[str, float]:
    """The chosen variant through ``kosearch.search.fusion.convex_fusion`` itself, query by query.

    Candidate lists as ``kosearch.search.hybrid`` builds them: each signal's top N, and the BM25 of
    the dense candidates the lexical list missed (those with a query term).
    """
    from kosearch.search.fusion import convex_fusion

    tops = []
    for q in range(p.doc.shape[0]):
        valid = p.doc[q] >= 0
        dense = {int(d): float(s) for d, s, r, ok in zip(p.doc[q], p.dense[q], p.dense_rank[q], valid) if ok and r < v.depth}
        lexical = {int(d): float(s) for d, s, r, ok in zip(p.doc[q], p.lex[q], p.lex_rank[q], valid) if ok and r < v.depth}
        scored = {int(d): float(s) for d, s, ok in zip(p.doc[q], p.lex[q], valid) if ok and int(d) in dense and int(d) not in lexical and s > 0}
        hits = convex_fusion(dense, lexical, lexical_weight=v.weight, normalisation=v.norm, lexical_scored=scored)
        tops.append([hit.key for hit in hits[:DEPTH]])
    relevant = np.zeros((len(tops), DEPTH), dtype=bool)
    for q, keys in enumerate(tops):
        where = {int(d): c for c, d in enumerate(p.doc[q]) if d >= 0}
        for rank, key in enumerate(keys):
            relevant[q, rank] = p.relevant[q, where[key]]
    gains = relevant.astype(np.float64)
    first = np.where(gains.any(axis=1), gains.argmax(axis=1) + 1, 0)
    mrr = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    ideal = np.array([DISCOUNT[: min(n, DEPTH)].sum() for n in p.n_relevant])
    return {"mrr_at_10": 100 * mrr.mean(), "ndcg_at_10": 100 * ((gains * DISCOUNT).sum(axis=1) / ideal).mean()}


TOKEN_VARIANTS: dict[str, LexicalOptions] = {
    "default (kosearch.search.morphemes)": LexicalOptions(),
    "nouns, numbers, Latin only (no VV VA XR)": replace(LexicalOptions(), tags=frozenset({"NNG", "NNP", "NNB", "SN", "SL", "SH", "W_SERIAL", "W_URL", "W_EMAIL", "W_HASHTAG"})),
    "default + NP pronouns": replace(LexicalOptions(), tags=LexicalOptions().tags | {"NP"}),
    "default + MAG MM": replace(LexicalOptions(), tags=LexicalOptions().tags | {"MAG", "MM"}),
    "all morphemes": LexicalOptions(tags=frozenset({"*"}), stopwords=frozenset(), split_complex=False),
}
BM25_GRID = ((1.2, 0.75), (0.9, 0.4), (1.2, 0.5), (1.2, 1.0), (1.5, 0.75), (2.0, 0.75))


def lexical_study(devs: list[DevSet]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """For the chosen fusion: BM25 alone and hybrid, per token choice and per (k1, b)."""
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    settings = [(label, options, BM25Parameters(idf="robertson")) for label, options in TOKEN_VARIANTS.items()]
    settings += [(f"default tokens, k1={k1} b={b}", LexicalOptions(), BM25Parameters(k1=k1, b=b, idf="robertson")) for k1, b in BM25_GRID[1:]]
    for label, options, parameters in settings:
        out[label] = {}
        for dev in devs:
            p = prepare(dev, lexical(dev, options, parameters))
            out[label][dev.name] = {
                "lexical": evaluate(p, Variant(norm="lexical", depth=MAX_DEPTH)),
                "hybrid": evaluate(p, CHOSEN),
            }
        print(f"  lexical setting done: {label}", flush=True)
    return out


def study(prepared: list[Prepared], chosen: list[Variant]) -> dict[str, dict[str, dict[str, float]]]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for v in chosen:
        table[v.label] = {p.name: evaluate(p, v) for p in prepared}
    return table


def summarise(table: dict[str, dict[str, dict[str, float]]], names: list[str]) -> dict[str, dict[str, float]]:
    """Mean MRR@10 / nDCG@10 over sets, sets where the variant beats both signals on both metrics."""
    summary = {}
    for label, per_set in table.items():
        beats = 0
        for name in names:
            ok = all(per_set[name][m] > max(table["dense"][name][m], table["lexical"][name][m]) for m in ("mrr_at_10", "ndcg_at_10"))
            beats += ok
        summary[label] = {
            "mean_mrr": float(np.mean([per_set[n]["mrr_at_10"] for n in names])),
            "mean_ndcg": float(np.mean([per_set[n]["ndcg_at_10"] for n in names])),
            "beats_both": beats,
            "worst_margin_mrr": float(min(per_set[n]["mrr_at_10"] - max(table["dense"][n]["mrr_at_10"], table["lexical"][n]["mrr_at_10"]) for n in names)),
        }
    return summary


def leave_one_out(table: dict[str, dict[str, dict[str, float]]], names: list[str], metric: str) -> list[dict]:
    """For each set: the variant with the best mean ``metric`` over the other sets, scored on that set."""
    rows = []
    candidates = [label for label in table if label not in ("dense", "lexical")]
    for held in names:
        others = [n for n in names if n != held]
        best = max(candidates, key=lambda label: np.mean([table[label][n][metric] for n in others]))
        rows.append({
            "held_out": held, "chosen": best, metric: table[best][held][metric],
            "dense": table["dense"][held][metric], "lexical": table["lexical"][held][metric],
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=Path, default=ROOT / "bench" / "devsets")
    parser.add_argument("--only", nargs="*", default=list(SETS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    devs = load_sets(args.sets, args.only)
    names = [d.name for d in devs]
    default_parameters = BM25Parameters(idf="robertson")  # FTS5's bm25()
    prepared = []
    for dev in devs:
        p = prepare(dev, lexical(dev, LexicalOptions(), default_parameters))
        check_metrics(dev, p)
        prepared.append(p)
    print(f"prepared in {time.perf_counter() - started:.0f} s", flush=True)

    product = {p.name: check_product_fusion(p) for p in prepared}
    table = study(prepared, variants())
    for p in prepared:
        mine, theirs = table[CHOSEN.label][p.name], product[p.name]
        print(f"{p.name}: chosen variant here {mine['mrr_at_10']:.2f} / {mine['ndcg_at_10']:.2f}, "
              f"through kosearch.search.fusion {theirs['mrr_at_10']:.2f} / {theirs['ndcg_at_10']:.2f}", flush=True)
    summary = summarise(table, names)
    ranked = sorted(summary, key=lambda label: (-summary[label]["beats_both"], -summary[label]["mean_mrr"]))
    print("\n| variant | " + " | ".join(names) + " | mean MRR@10 | mean nDCG@10 | sets beating both (MRR & nDCG) |")
    print("|---|" + "---|" * (len(names) + 3))
    shown = ["dense", "lexical", CHOSEN.label] + [label for label in ranked if label != CHOSEN.label]
    for label in shown:
        cells = [f"{table[label][n]['mrr_at_10']:.1f} / {table[label][n]['ndcg_at_10']:.1f}" for n in names]
        s = summary[label]
        print(f"| {label} | " + " | ".join(cells) + f" | {s['mean_mrr']:.2f} | {s['mean_ndcg']:.2f} | {s['beats_both']} |")
    for metric in ("mrr_at_10", "ndcg_at_10"):
        print(f"\nleave one set out, choosing by mean {metric} over the others:")
        for row in leave_one_out(table, names, metric):
            print(f"  {row['held_out']}: {row['chosen']} -> {row[metric]:.2f} (dense {row['dense']:.2f}, lexical {row['lexical']:.2f})")

    lexical_settings = lexical_study(devs)
    print("\n| lexical setting (chosen fusion) | " + " | ".join(names) + " | mean BM25 MRR@10 | mean hybrid MRR@10 | mean hybrid nDCG@10 |")
    print("|---|" + "---|" * (len(names) + 3))
    for label, per_set in lexical_settings.items():
        cells = [f"{per_set[n]['lexical']['mrr_at_10']:.1f} / {per_set[n]['hybrid']['mrr_at_10']:.1f}" for n in names]
        means = [np.mean([per_set[n][side][m] for n in names]) for side, m in (("lexical", "mrr_at_10"), ("hybrid", "mrr_at_10"), ("hybrid", "ndcg_at_10"))]
        print(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(f"{x:.2f}" for x in means) + " |")

    result = {"sets": names, "table": table, "summary": summary, "chosen": CHOSEN.label, "through_product_fusion": product,
              "lexical_settings": lexical_settings,
              "leave_one_out": {m: leave_one_out(table, names, m) for m in ("mrr_at_10", "ndcg_at_10")},
              "load_average_end": os.getloadavg(), "seconds": time.perf_counter() - started}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
