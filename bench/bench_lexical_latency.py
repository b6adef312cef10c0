"""Lexical query latency at scale: SQLite FTS5 bm25() vs. bm25s vs. kosearch's numpy postings, next to dense.

Corpus: the first N NSMC reviews (each review one unit, ~1.4 sentences), analysed once by
``MorphemeAnalyzer.analyze_batch`` (time reported: the ingest cost of the lexical signal); tokens
are cached under bench/devsets/_cache/nsmc in chunks of 100,000. Sizes above ``--analysed``
reviews repeat the analysed ones (``--analysed 100000 --sizes 1000000``: ten copies), which keeps
every term's share of documents, so posting lengths, and with them the cost of a query, grow as
they would with more reviews; it saves analysing 900,000 reviews on a shared 2-core machine.
Queries: 200 reviews held out at the end of the file, plus the 60 sample questions; each query is
timed one at a time, on one thread (``--threads``):

- Kiwi analysis of the query (``MorphemeAnalyzer.analyze``);
- FTS5: ``SELECT rowid, bm25(t) FROM t WHERE t MATCH '"a" OR "b" ...' ORDER BY bm25(t) LIMIT k`` on
  a file database (page cache warm), for a contentless table (the text lives in the metadata
  table already) with ``detail=full`` and, at the first size, ``detail=column`` (smaller in
  principle, but ``bm25()`` returns 0 for every row there, so it cannot rank); build time and
  size are reported;
- the same, dropping query terms found in more than 5% of the rows (one ``fts5vocab`` lookup);
- bm25s ``get_scores`` + top k, and :class:`kosearch.search.bm25.BM25Index.search`;
- dense reference: a FAISS ``IndexFlatIP`` of N random unit vectors (384 dimensions, the bundled
  encoder's) searched for k, plus the bundled encoder's time to encode one query;
- fusion of two 100-candidate lists (``convex_fusion``).

Per query, dense = encode + FAISS search; hybrid = dense + Kiwi + lexical search + fusion. The
summary gives p50/p95 of those per-query sums and the ratio of hybrid to dense p50.

Usage: python bench/bench_lexical_latency.py [--analysed 100000] [--sizes 100000 1000000] [--k 100] [--out result.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NSMC = ROOT.parent / "shared" / "data" / "nsmc" / "nsmc_reviews.tsv.gz"
sys.path.insert(0, str(ROOT))

from kosearch.search.bm25 import BM25Index, BM25Parameters  # noqa: E402
from kosearch.search.fusion import convex_fusion  # noqa: E402
from kosearch.search.morphemes import MorphemeAnalyzer, fts5_match_expression  # noqa: E402

HELD_OUT = 200
INGEST_SAMPLE = 20000
"""Reviews analysed to time Kiwi's ingest speed when the corpus's tokens are all cached."""
COMMON_TERM_SHARE = 0.05


def read_reviews() -> list[str]:
    reviews: list[str] = []
    with gzip.open(NSMC, "rt", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            review = line.rstrip("\n").split("\t", 3)[-1].strip()
            if review:
                reviews.append(review)
    return reviews


CHUNK = 100000


def cached_tokens(analyzer: MorphemeAnalyzer, reviews: list[str], cache: Path) -> tuple[list[list[str]], float | None]:
    """Tokens of every review, cached in chunks of CHUNK reviews (one space-joined line each), and the
    analysis time of the chunks not cached (None if all were)."""
    cache.mkdir(parents=True, exist_ok=True)
    tokens: list[list[str]] = []
    seconds, analysed = 0.0, 0
    for number, start in enumerate(range(0, len(reviews), CHUNK)):
        chunk = reviews[start : start + CHUNK]
        path = cache / f"chunk_{number:04d}.txt"
        lines = path.read_text(encoding="utf-8").split("\n") if path.is_file() else []
        if len(lines) < len(chunk):
            started = time.perf_counter()
            chunk_tokens = analyzer.analyze_batch(chunk)
            seconds += time.perf_counter() - started
            analysed += len(chunk)
            if len(chunk) == CHUNK:
                path.write_text("\n".join(" ".join(t) for t in chunk_tokens), encoding="utf-8")
            tokens.extend(chunk_tokens)
        else:
            tokens.extend(line.split() for line in lines[: len(chunk)])
    return tokens, (seconds, analysed) if analysed else None


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))],
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


def timed(function, queries) -> tuple[list[float], list]:
    """Seconds per call, and the calls' results."""
    samples, outputs = [], []
    for query in queries:
        started = time.perf_counter()
        outputs.append(function(query))
        samples.append(time.perf_counter() - started)
    return samples, outputs


def build_fts5(path: Path, tokens: list[list[str]], detail: str) -> tuple[sqlite3.Connection, float]:
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    started = time.perf_counter()
    db.execute(
        f"CREATE VIRTUAL TABLE lexical USING fts5(tokens, content='', detail={detail}, "
        "tokenize='unicode61 remove_diacritics 0')"
    )
    db.executemany("INSERT INTO lexical(rowid, tokens) VALUES (?, ?)", ((n + 1, " ".join(t)) for n, t in enumerate(tokens)))
    db.commit()
    db.execute("INSERT INTO lexical(lexical) VALUES ('optimize')")
    db.commit()
    seconds = time.perf_counter() - started
    db.execute("CREATE VIRTUAL TABLE vocabulary USING fts5vocab(lexical, 'row')")
    return db, seconds


def fts5_search(db: sqlite3.Connection, tokens: list[str], k: int) -> list[tuple[int, float]]:
    if not tokens:
        return []
    return db.execute(
        "SELECT rowid, bm25(lexical) FROM lexical WHERE lexical MATCH ? ORDER BY bm25(lexical) LIMIT ?",
        (fts5_match_expression(tokens), k),
    ).fetchall()


def fts5_search_pruned(db: sqlite3.Connection, tokens: list[str], k: int, rows: int) -> list[tuple[int, float]]:
    """Drop terms in more than COMMON_TERM_SHARE of the rows (keep the rarest if all are common)."""
    if not tokens:
        return []
    distinct = sorted(set(tokens))
    marks = ",".join("?" * len(distinct))
    df = dict(db.execute(f"SELECT term, doc FROM vocabulary WHERE term IN ({marks})", distinct).fetchall())
    kept = [t for t in tokens if df.get(t, 0) <= COMMON_TERM_SHARE * rows]
    if not kept:
        kept = [min(distinct, key=lambda t: df.get(t, 0))]
    return fts5_search(db, kept, k)


def top10_overlap(a: list[list[int]], b: list[list[int]]) -> float:
    shares = [len(set(x[:10]) & set(y[:10])) / len(x[:10]) for x, y in zip(a, b) if x]
    return float(np.mean(shares)) if shares else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--analysed", type=int, default=100000, help="reviews analysed by Kiwi; larger sizes repeat them")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100000, 1000000])
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch and FAISS threads for the timings")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} cores", flush=True)
    import bm25s
    import faiss
    import torch

    from kosearch.encoders import Encoder

    # One query at a time on one thread each: on a shared machine, OpenMP threads waiting for each
    # other turn milliseconds into hundreds (measured: 650 ms to encode one query with 2 threads
    # under load 7). A server answering concurrent queries gives each about one core anyway.
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    results: dict = {"k": args.k, "threads": args.threads, "load_average_start": os.getloadavg(), "sizes": {}}

    analyzer = MorphemeAnalyzer()
    reviews = read_reviews()
    held_out, pool = reviews[-HELD_OUT:], reviews[:-HELD_OUT]
    from nsmc_bench_data import sample_questions as hand_written  # batch 1: the 60 questions these timings used

    sample_questions = hand_written()
    query_texts = held_out + sample_questions
    results["queries"] = len(query_texts)
    analyzer.analyze("워밍업")  # load Kiwi outside the timings
    kiwi_samples, query_tokens = timed(analyzer.analyze, query_texts)
    results["kiwi_per_query"] = percentiles(kiwi_samples)
    print(f"Kiwi per query: {results['kiwi_per_query']}", flush=True)
    encoder = Encoder(device="cpu")
    encoder.encode_queries(["워밍업"])
    encode_samples, _ = timed(lambda text: encoder.encode_queries([text]), query_texts)
    results["encode_query"] = percentiles(encode_samples)
    print(f"encode one query: {results['encode_query']}", flush=True)

    analysed, seconds = cached_tokens(analyzer, pool[: args.analysed], ROOT / "bench" / "devsets" / "_cache" / "nsmc")
    if seconds is None:  # all cached: time a fresh batch instead
        fresh = pool[args.analysed : args.analysed + INGEST_SAMPLE]
        started = time.perf_counter()
        analyzer.analyze_batch(fresh)
        seconds = (time.perf_counter() - started, len(fresh))
    took, count = seconds
    results["kiwi_ingest"] = {"reviews": count, "seconds": took, "reviews_per_second": count / took}
    print(f"Kiwi ingest: {results['kiwi_ingest']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="kosearch-lexical-"))
    rng = np.random.default_rng(0)
    fusion_dense = {n: float(1 - n / 1000) for n in range(args.k)}
    fusion_lexical = {n + args.k // 2: float(args.k - n) for n in range(args.k)}
    fusion_samples, _ = timed(lambda _: convex_fusion(fusion_dense, fusion_lexical), range(len(query_texts)))
    results["fusion"] = percentiles(fusion_samples)

    for number, size in enumerate(args.sizes):
        tokens = [analysed[n % len(analysed)] for n in range(size)]
        entry: dict = {"documents": size, "repeated": size > len(analysed), "mean_tokens": float(np.mean([len(t) for t in tokens]))}
        print(f"\n{size} reviews, {entry['mean_tokens']:.1f} tokens each", flush=True)
        lexical: dict[str, list[float]] = {}

        vectors = rng.standard_normal((size, 384), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        flat = faiss.IndexFlatIP(384)
        flat.add(vectors)
        del vectors
        probes = rng.standard_normal((len(query_texts), 384), dtype=np.float32)
        probes /= np.linalg.norm(probes, axis=1, keepdims=True)
        faiss_samples, _ = timed(lambda v: flat.search(v[None, :], args.k), probes)
        entry["faiss_flat_search"] = percentiles(faiss_samples)
        print(f"  FAISS flat search k={args.k}: {entry['faiss_flat_search']}", flush=True)
        del flat

        started = time.perf_counter()
        index = BM25Index(tokens, BM25Parameters(idf="robertson"))  # FTS5's idf, to compare results
        entry["numpy_postings_build_seconds"] = time.perf_counter() - started
        lexical["numpy postings"], ours = timed(lambda q: [n + 1 for n, _ in index.search(q, args.k)], query_tokens)
        del index

        for detail in ("full", "column") if number == 0 else ("full",):
            path = work / f"lexical_{size}_{detail}.db"
            db, build = build_fts5(path, tokens, detail)
            fts5_search(db, query_tokens[0], args.k)
            label = "FTS5" if detail == "full" else "FTS5 detail=column"
            lexical[label], found = timed(lambda q: [r for r, _ in fts5_search(db, q, args.k)], query_tokens)
            lexical[f"{label}, terms in > 5% of rows dropped"], pruned = timed(
                lambda q: [r for r, _ in fts5_search_pruned(db, q, args.k, size)], query_tokens
            )
            entry[f"fts5_{detail}"] = {
                "build_seconds": build,
                "megabytes": path.stat().st_size / 2**20,
                "top10_overlap_with_numpy_postings": top10_overlap(found, ours),
                "top10_overlap_pruned_vs_full": top10_overlap(found, pruned),
            }
            print(f"  FTS5 detail={detail}: {entry[f'fts5_{detail}']}", flush=True)
            db.close()
            path.unlink()

        started = time.perf_counter()
        retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        retriever.index(tokens, show_progress=False)
        entry["bm25s_build_seconds"] = time.perf_counter() - started

        def bm25s_search(q: list[str]) -> np.ndarray:
            known = [t for t in q if t in retriever.vocab_dict]
            if not known:
                return np.array([], dtype=np.int64)
            scores = retriever.get_scores(known)
            top = np.argpartition(-scores, args.k)[: args.k]
            return top[np.argsort(-scores[top])]

        lexical["bm25s"], _ = timed(bm25s_search, query_tokens)
        del retriever

        dense_total = [e + f for e, f in zip(encode_samples, faiss_samples)]
        entry["dense"] = percentiles(dense_total)
        entry["lexical"] = {label: percentiles(samples) for label, samples in lexical.items()}
        entry["hybrid"] = {}
        for label, samples in lexical.items():
            total = [d + k + s + f for d, k, s, f in zip(dense_total, kiwi_samples, samples, fusion_samples)]
            entry["hybrid"][label] = {**percentiles(total), "p50_ratio_to_dense": statistics.median(total) / statistics.median(dense_total)}
        print(f"  dense {entry['dense']}", flush=True)
        for label in lexical:
            print(f"  {label}: lexical {entry['lexical'][label]}, hybrid {entry['hybrid'][label]}", flush=True)
        results["sizes"][str(size)] = entry

    results["load_average_end"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
