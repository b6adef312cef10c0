"""Dense vs. lexical (BM25 over Kiwi morphemes) vs. hybrid retrieval on the development sets.

For every BEIR folder built by ``bench/build_devsets.py`` (and ``corpora/sample_questions``):

1. dense: the bundled encoder (query prompt for queries, document prompt for the corpus), exact
   cosine search; embeddings are cached as .npy next to the set (keyed by encoder fingerprint and
   a hash of the texts);
2. lexical: BM25 (``kosearch.search.bm25``, k1=1.2 b=0.75 unless varied) over the tokens of each
   tag set of ``VARIANTS`` (one Kiwi pass per text, cached; variants filter it), then a k1 x b grid
   for the chosen tokens; and for those tokens the same ranking by ``bm25s`` and by SQLite FTS5's
   ``bm25()`` (top-10 agreement with kosearch's BM25, and their metrics);
3. hybrid: each signal's top ``--candidates`` (default 100), fused by the min-max convex mix for
   lexical weights 0.1..0.9 (``convex_fusion(..., normalisation="minmax")``, kosearch's default until
   ``bench/fusion_study.py`` replaced it) and by RRF (k=60).

Metrics come from ``kosearch.evaluate.ranking`` (which agree with sentence-transformers'
evaluator): MRR@10, nDCG@10, Recall@1, Recall@10, x100. The summary picks the lexical weight with
the best mean MRR@10 over the sets and the one with the smallest worst-case regret.

Usage: python bench/bench_hybrid.py [--sets bench/devsets] [--candidates 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kosearch.data.beir import BeirDataset, load_beir  # noqa: E402
from kosearch.evaluate.ranking import ranking_metrics  # noqa: E402
from kosearch.search.bm25 import BM25Index, BM25Parameters  # noqa: E402
from kosearch.search.fusion import convex_fusion, reciprocal_rank_fusion  # noqa: E402
from kosearch.search.morphemes import (  # noqa: E402
    BOUND_NOUN_TAGS,
    NOUN_TAGS,
    PREDICATE_TAGS,
    ROOT_TAGS,
    SERIAL_TAGS,
    SYMBOL_TAGS,
    LexicalOptions,
    MorphemeAnalyzer,
    fts5_match_expression,
)

SET_ORDER = ("sample_questions", "korsts", "klue_nli", "kornli", "chatbot")
WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
METRICS = ("mrr_at_10", "ndcg_at_10", "recall_at_1", "recall_at_10")
HEADERS = ("MRR@10", "nDCG@10", "R@1", "R@10")
DEPTH = 10

WHITESPACE = "whitespace words"
NONE: frozenset[str] = frozenset()
DEFAULT = LexicalOptions()
LIGHT_PREDICATES = frozenset({"있/VV", "있/VA", "되/VV", "하/VV", "같/VA", "그렇/VA", "이렇/VA", "저렇/VA"})


def kiwi_stopwords() -> frozenset[str]:
    """Kiwi's own default stop list (``kiwipiepy.utils.Stopwords``), as ``form/TAG`` entries."""
    from kiwipiepy.utils import Stopwords

    return frozenset(f"{form}/{tag}" for form, tag in Stopwords().stopwords)


def cumulative_tag_sets() -> dict[str, LexicalOptions]:
    steps = [
        ("nouns NNG NNP", NOUN_TAGS),
        ("+ SN SL SH", SYMBOL_TAGS),
        ("+ XR", ROOT_TAGS),
        ("+ VV VA stems", PREDICATE_TAGS),
        ("+ W_SERIAL W_URL W_EMAIL W_HASHTAG", SERIAL_TAGS),
        ("+ NNB (default tags)", BOUND_NOUN_TAGS),
    ]
    tags: frozenset[str] = frozenset()
    out: dict[str, LexicalOptions] = {}
    for label, added in steps:
        tags = tags | added
        out[label] = LexicalOptions(tags=tags, stopwords=NONE, split_complex=False, predicate_lemma=False)
    return out


VARIANTS: dict[str, LexicalOptions] = {
    **cumulative_tag_sets(),
    "+ interrogatives stop list": replace(DEFAULT, split_complex=False, predicate_lemma=False),
    "+ Kiwi split_complex": replace(DEFAULT, predicate_lemma=False),
    "+ VV VA as lemmas, 먹 -> 먹다 (= default)": DEFAULT,
    "default, light predicates (있 되 하 같 그렇...) stopped too": replace(DEFAULT, stopwords=DEFAULT.stopwords | LIGHT_PREDICATES),
    "default + Kiwi's stop list": replace(DEFAULT, stopwords=DEFAULT.stopwords | kiwi_stopwords()),
    "default + NR": replace(DEFAULT, tags=DEFAULT.tags | {"NR"}),
    "default + NP": replace(DEFAULT, tags=DEFAULT.tags | {"NP"}),
    "default + MAG MM": replace(DEFAULT, tags=DEFAULT.tags | {"MAG", "MM"}),
    "default + VX VCN": replace(DEFAULT, tags=DEFAULT.tags | {"VX", "VCN"}),
    "default + XSN XSV XSA": replace(DEFAULT, tags=DEFAULT.tags | {"XSN", "XSV", "XSA"}),
    "default + noun syllable bigrams": replace(DEFAULT, noun_bigrams=True),
    "default, Latin case kept": replace(DEFAULT, lowercase=False),
    "all morphemes": LexicalOptions(tags=frozenset({"*"}), stopwords=NONE, split_complex=False),
}
GRID_K1 = (0.9, 1.2, 1.5, 2.0)
GRID_B = (0.5, 0.75, 0.9, 1.0)


# ----------------------------------------------------------------------------------------- caches
def text_hash(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def cached_embeddings(folder: Path, encoder, texts: list[str], side: str) -> np.ndarray:
    path = folder / f"emb_{encoder.fingerprint}_{side}_{text_hash(texts)}.npy"
    if path.is_file():
        return np.load(path)
    started = time.perf_counter()
    method = encoder.encode_queries if side == "queries" else encoder.encode_documents
    vectors = method(texts)
    np.save(path, vectors)
    print(f"  encoded {len(texts)} {side} in {time.perf_counter() - started:.0f} s", flush=True)
    return vectors


def cached_morphemes(folder: Path, texts: list[str], split_complex: bool = False) -> list[list[tuple[str, str]]]:
    import kiwipiepy

    suffix = "_complex" if split_complex else ""
    path = folder / f"kiwi_{kiwipiepy.__version__}{suffix}_{text_hash(texts)}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    from kosearch.documents.split import get_kiwi

    started = time.perf_counter()
    analysed = [
        [(token.form, token.tag) for token in tokens] for tokens in get_kiwi().tokenize(texts, split_complex=split_complex)
    ]
    path.write_bytes(pickle.dumps(analysed))
    print(f"  Kiwi analysed {len(texts)} texts in {time.perf_counter() - started:.1f} s", flush=True)
    return analysed


# --------------------------------------------------------------------------------------- rankings
def dense_candidates(queries: np.ndarray, documents: np.ndarray, depth: int) -> list[list[tuple[int, float]]]:
    """Exact cosine top ``depth`` per query, ties by corpus order."""
    out: list[list[tuple[int, float]]] = []
    depth = min(depth, len(documents))
    for start in range(0, len(queries), 256):
        scores = queries[start : start + 256] @ documents.T
        for row in scores:
            threshold = np.partition(row, len(row) - depth)[len(row) - depth]
            cand = np.flatnonzero(row >= threshold)
            order = np.lexsort((cand, -row[cand]))[:depth]
            out.append([(int(cand[i]), float(row[cand[i]])) for i in order])
    return out


def lexical_candidates(index: BM25Index, query_tokens: list[list[str]], depth: int) -> list[list[tuple[int, float]]]:
    return [index.search(tokens, depth) if tokens else [] for tokens in query_tokens]


def metrics_of(dataset: BeirDataset, query_ids: list[str], doc_ids: list[str], ranked: list[list[int]]) -> dict[str, float]:
    rankings = {qid: [doc_ids[i] for i in row[:DEPTH]] for qid, row in zip(query_ids, ranked)}
    return ranking_metrics(rankings, dataset.qrels)


def fused_rankings(
    dense: list[list[tuple[int, float]]], lexical: list[list[tuple[int, float]]], fuse: Callable
) -> list[list[int]]:
    return [[hit.key for hit in fuse(dict(d), dict(lx))[:DEPTH]] for d, lx in zip(dense, lexical)]


# ---------------------------------------------------------------------------------- other engines
def bm25s_rankings(corpus_tokens: list[list[str]], query_tokens: list[list[str]], k1: float, b: float) -> list[list[int]]:
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(corpus_tokens, show_progress=False)
    ranked: list[list[int]] = []
    for tokens in query_tokens:
        known = [token for token in tokens if token in retriever.vocab_dict]
        if not known:
            ranked.append([])
            continue
        scores = retriever.get_scores(known)
        cand = np.flatnonzero(scores > 0)
        order = np.lexsort((cand, -scores[cand]))[:DEPTH]
        ranked.append(cand[order].tolist())
    return ranked


def fts5_rankings(corpus_tokens: list[list[str]], query_tokens: list[list[str]]) -> list[list[int]]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE lexical USING fts5(tokens, tokenize='unicode61 remove_diacritics 0')")
    db.executemany("INSERT INTO lexical(rowid, tokens) VALUES (?, ?)", ((n + 1, " ".join(t)) for n, t in enumerate(corpus_tokens)))
    ranked: list[list[int]] = []
    for tokens in query_tokens:
        if not tokens:
            ranked.append([])
            continue
        rows = db.execute(
            "SELECT rowid FROM lexical WHERE lexical MATCH ? ORDER BY bm25(lexical), rowid LIMIT ?",
            (fts5_match_expression(tokens), DEPTH),
        ).fetchall()
        ranked.append([rowid - 1 for (rowid,) in rows])
    db.close()
    return ranked


# ------------------------------------------------------------------------------------------ report
def row(name: str, values: dict[str, float]) -> str:
    return f"| {name} | " + " | ".join(f"{values[m]:.1f}" for m in METRICS) + " |"


def table_header(first: str) -> str:
    return f"| {first} | " + " | ".join(HEADERS) + " |\n|---|" + "---|" * len(HEADERS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=Path, default=ROOT / "bench" / "devsets")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--tokens-only", action="store_true", help="only the token comparison (quick)")
    parser.add_argument("--skip-engines", action="store_true", help="leave out the bm25s / FTS5 comparison")
    args = parser.parse_args()

    from kosearch.encoders import Encoder

    print(f"load average at start: {os.getloadavg()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    started_all = time.perf_counter()
    encoder = Encoder(device="cpu")
    folders = {"sample_questions": ROOT / "corpora" / "sample_questions"}
    folders.update({name: args.sets / name for name in SET_ORDER[1:] if (args.sets / name).is_dir()})
    results: dict[str, dict] = {}
    default_options = DEFAULT
    for name, folder in folders.items():
        dataset = load_beir(folder)
        query_ids = dataset.evaluated_query_ids
        doc_ids = list(dataset.corpus)
        doc_texts = [dataset.corpus[d].full_text for d in doc_ids]
        query_texts = [dataset.queries[q] for q in query_ids]
        print(f"{name}: {len(query_ids)} queries, {len(doc_ids)} documents", flush=True)
        cache = args.sets / "_cache" / name
        cache.mkdir(parents=True, exist_ok=True)
        doc_vectors = cached_embeddings(cache, encoder, doc_texts, "corpus")
        query_vectors = cached_embeddings(cache, encoder, query_texts, "queries")
        analyses = {
            flag: (cached_morphemes(cache, doc_texts, flag), cached_morphemes(cache, query_texts, flag)) for flag in (False, True)
        }

        result: dict = {"queries": len(query_ids), "documents": len(doc_ids), "lexical": {}, "grid": {}, "engines": {}}
        dense = dense_candidates(query_vectors, doc_vectors, args.candidates)
        result["dense"] = metrics_of(dataset, query_ids, doc_ids, [[i for i, _ in hits] for hits in dense])

        whitespace_index = BM25Index([text.split() for text in doc_texts])
        result["lexical"][WHITESPACE] = metrics_of(
            dataset, query_ids, doc_ids,
            [[i for i, _ in hits] for hits in lexical_candidates(whitespace_index, [q.split() for q in query_texts], DEPTH)],
        )
        token_cache: dict[LexicalOptions, tuple[list[list[str]], list[list[str]]]] = {}
        for label, options in VARIANTS.items():
            analyzer = MorphemeAnalyzer(options)
            doc_morphemes, query_morphemes = analyses[options.split_complex]
            corpus_tokens = [analyzer.select(m) for m in doc_morphemes]
            query_tokens = [analyzer.select(m) for m in query_morphemes]
            token_cache[options] = (corpus_tokens, query_tokens)
            index = BM25Index(corpus_tokens)
            ranked = [[i for i, _ in hits] for hits in lexical_candidates(index, query_tokens, DEPTH)]
            result["lexical"][label] = metrics_of(dataset, query_ids, doc_ids, ranked)
        if default_options not in token_cache:
            analyzer = MorphemeAnalyzer(default_options)
            doc_morphemes, query_morphemes = analyses[default_options.split_complex]
            token_cache[default_options] = ([analyzer.select(m) for m in doc_morphemes], [analyzer.select(m) for m in query_morphemes])
        corpus_tokens, query_tokens = token_cache[default_options]
        if args.tokens_only:
            results[name] = result
            continue
        for k1 in GRID_K1:
            for b in GRID_B:
                for idf_variant in ("lucene", "robertson") if (k1, b) == (1.2, 0.75) else ("lucene",):
                    params = BM25Parameters(k1=k1, b=b, idf=idf_variant)
                    index = BM25Index(corpus_tokens, params)
                    ranked = [[i for i, _ in hits] for hits in lexical_candidates(index, query_tokens, DEPTH)]
                    result["grid"][f"k1={k1} b={b} idf={idf_variant}"] = metrics_of(dataset, query_ids, doc_ids, ranked)

        index = BM25Index(corpus_tokens)
        lexical = lexical_candidates(index, query_tokens, args.candidates)
        ours = [[i for i, _ in hits[:DEPTH]] for hits in lexical]
        result["bm25"] = metrics_of(dataset, query_ids, doc_ids, ours)
        if not args.skip_engines:
            robertson = BM25Index(corpus_tokens, BM25Parameters(idf="robertson"))
            ours_robertson = [[i for i, _ in hits] for hits in lexical_candidates(robertson, query_tokens, DEPTH)]
            engines = {
                "bm25s (lucene, k1=1.2 b=0.75)": (bm25s_rankings(corpus_tokens, query_tokens, 1.2, 0.75), ours),
                "SQLite FTS5 bm25()": (fts5_rankings(corpus_tokens, query_tokens), ours_robertson),
            }
            for label, (ranked, reference) in engines.items():
                same = sum(1 for a, r in zip(ranked, reference) if a == r) / len(reference)
                result["engines"][label] = {**metrics_of(dataset, query_ids, doc_ids, ranked), "same_top10": 100 * same}
            result["engines"]["kosearch bm25, robertson idf"] = metrics_of(dataset, query_ids, doc_ids, ours_robertson)

        result["convex"] = {
            f"{w:.1f}": metrics_of(
                dataset, query_ids, doc_ids,
                fused_rankings(dense, lexical, lambda d, lx, w=w: convex_fusion(d, lx, lexical_weight=w, normalisation="minmax")),
            )
            for w in WEIGHTS
        }
        result["rrf"] = metrics_of(dataset, query_ids, doc_ids, fused_rankings(dense, lexical, reciprocal_rank_fusion))
        if args.candidates != 20:
            short = [hits[:20] for hits in dense], [hits[:20] for hits in lexical]
            result["convex_20_candidates"] = {
                f"{w:.1f}": metrics_of(
                    dataset, query_ids, doc_ids,
                    fused_rankings(*short, lambda d, lx, w=w: convex_fusion(d, lx, lexical_weight=w, normalisation="minmax")),
                )
                for w in (0.3, 0.5)
            }
        results[name] = result
        print(f"  dense MRR@10 {result['dense']['mrr_at_10']:.1f}, bm25 {result['bm25']['mrr_at_10']:.1f}, "
              f"convex 0.3 {result['convex']['0.3']['mrr_at_10']:.1f}, rrf {result['rrf']['mrr_at_10']:.1f}", flush=True)

    report(results)
    print(f"\ntotal {time.perf_counter() - started_all:.0f} s; load average at end: {os.getloadavg()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


def mean_over_sets(results: dict[str, dict], pick: Callable[[dict], dict[str, float]], metric: str) -> float:
    return sum(pick(r)[metric] for r in results.values()) / len(results)


def report(results: dict[str, dict]) -> None:
    names = list(results)
    full = "convex" in results[names[0]]
    for metric, header in zip(METRICS, HEADERS) if full else ():
        print(f"\n### {header} per set (x100)\n")
        print("| method | " + " | ".join(names) + " | mean |\n|---|" + "---|" * (len(names) + 1))
        lines: list[tuple[str, Callable[[dict], dict[str, float]]]] = [("dense", lambda r: r["dense"])]
        lines.append(("BM25 (default tokens)", lambda r: r["bm25"]))
        lines += [(f"convex w_lex={w}", lambda r, w=w: r["convex"][w]) for w in results[names[0]]["convex"]]
        lines.append(("RRF k=60", lambda r: r["rrf"]))
        for label, pick in lines:
            values = [pick(results[n])[metric] for n in names]
            print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {sum(values) / len(values):.1f} |")

    print("\n### Lexical tokens (BM25 k1=1.2 b=0.75), MRR@10 per set\n")
    print("| tokens | " + " | ".join(names) + " | mean |\n|---|" + "---|" * (len(names) + 1))
    for label in results[names[0]]["lexical"]:
        values = [results[n]["lexical"][label]["mrr_at_10"] for n in names]
        print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {sum(values) / len(values):.1f} |")

    if not full:
        return
    print("\n### BM25 parameters (default tokens), MRR@10 per set\n")
    print("| parameters | " + " | ".join(names) + " | mean |\n|---|" + "---|" * (len(names) + 1))
    for label in results[names[0]]["grid"]:
        values = [results[n]["grid"][label]["mrr_at_10"] for n in names]
        print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {sum(values) / len(values):.1f} |")

    if results[names[0]]["engines"]:
        print("\n### Engines on the same tokens: MRR@10 / top-10 identical to kosearch's BM25 (same idf), % of queries\n")
        print("| engine | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        for label in results[names[0]]["engines"]:
            cells = []
            for n in names:
                e = results[n]["engines"][label]
                cells.append(f"{e['mrr_at_10']:.1f}" + (f" / {e['same_top10']:.1f}%" if "same_top10" in e else ""))
            print(f"| {label} | " + " | ".join(cells) + " |")

    if "convex_20_candidates" in results[names[0]]:
        print("\n### Candidate depth: convex MRR@10 with 20 vs. all candidates per signal\n")
        print("| setting | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        for w in ("0.3", "0.5"):
            print(f"| w={w}, 20 candidates | " + " | ".join(f"{results[n]['convex_20_candidates'][w]['mrr_at_10']:.1f}" for n in names) + " |")
            print(f"| w={w}, full depth | " + " | ".join(f"{results[n]['convex'][w]['mrr_at_10']:.1f}" for n in names) + " |")

    print("\n### Choosing the lexical weight\n")
    print("| w_lex | mean MRR@10 | worst regret MRR@10 | mean nDCG@10 | worst regret nDCG@10 | sets beating both dense and BM25 (MRR@10) |\n|---|---|---|---|---|---|")
    for w in results[names[0]]["convex"]:
        cells = []
        for metric in ("mrr_at_10", "ndcg_at_10"):
            mean = mean_over_sets(results, lambda r, w=w: r["convex"][w], metric)
            regret = max(max(v[metric] for v in r["convex"].values()) - r["convex"][w][metric] for r in results.values())
            cells += [f"{mean:.2f}", f"{regret:.2f}"]
        beats = sum(1 for r in results.values() if r["convex"][w]["mrr_at_10"] > max(r["dense"]["mrr_at_10"], r["bm25"]["mrr_at_10"]))
        print(f"| {w} | " + " | ".join(cells) + f" | {beats} of {len(results)} |")


if __name__ == "__main__":
    main()
