"""Lexical query latency of segment postings (kosearch/store/postings.py) vs SQLite FTS5, and hybrid vs dense.

Corpus: the first N sentence units of NSMC (Kiwi sentences of the reviews in file order, their
morphemes as kosearch's ingest keeps them), analysed once and cached by
``bench/nsmc_sentence_tokens.py`` under ~/.cache/kosearch-bench/nsmc_sentence_tokens. No repetition: the 1M
units are 1M distinct sentences.

Built per size, in this process (times reported):

- FTS5: the table kosearch creates today (``fts5(tokens, tokenize='unicode61 remove_diacritics 0')``
  in a file database, rowid = unit id), all rows inserted in one transaction, then ``optimize``
  (one b-tree per term, FTS5's fastest shape for queries);
- segment postings as one segment (``SegmentPostings.build`` + ``save``) and as ``--segments``
  consecutive segments (what ten commits leave before compaction).

Timed in a fresh subprocess per size (so its RSS is the postings' and nothing built here), one query
at a time, on one thread (torch and FAISS), every method in turn for each query so a burst of load
on the shared machine hits all alike:

- Kiwi analysis of the query (``MorphemeAnalyzer.analyze``): part of every lexical time;
- FTS5 ``SELECT rowid, -bm25(lexical) ... MATCH '"a" OR "b"' ORDER BY bm25(lexical), rowid LIMIT k``;
- ``bm25_search`` over the loaded (memory-mapped) segment files, 1 and ``--segments`` segments;
- dense: the REAL bundled encoder encoding the query, plus a FAISS ``IndexFlatIP`` search over N
  random unit vectors (384 dimensions, the bundled encoder's): an exact search costs the same
  whatever the vectors hold, and encoding 1M sentences takes hours here;
- hybrid = dense + Kiwi + lexical + ``convex_fusion`` of the two candidate lists.

k = 20 candidates per signal by default: what ``Index.search(k=10)`` asks each signal for
(``kosearch.search.hybrid.MIN_CANDIDATES``). Queries: the 200 NSMC reviews held out at the end of
the file (never indexed) and the 60 sample questions. Reported: p50/p95 per method, the ratio of
hybrid p50 to dense p50 (goal <= 1.5), build seconds, bytes on disk, the query process's RSS before
and after loading the postings and after all queries, and whether postings and FTS5 return the
same ids in the same order.

Usage: nice -n 10 python bench/bench_postings.py [--sizes 100000 1000000] [--segments 10] [--k 20]
                                                   [--work /tmp/kosearch-bench-postings] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nsmc_bench_data import machine_load, sample_questions  # noqa: E402
from nsmc_sentence_tokens import CACHE, held_out_queries, sentence_tokens  # noqa: E402

from kosearch.store.postings import SegmentPostings, bm25_search, lexical_file_name  # noqa: E402

DIMENSION = 384


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def folder_bytes(paths) -> int:
    return sum(Path(p).stat().st_size for p in paths)


def build(work: Path, tokens: list[list[str]], segments: int) -> dict:
    """FTS5 database and postings files for one size; their build times and sizes."""
    if work.exists():
        shutil.rmtree(work)
    (work / "one").mkdir(parents=True)
    (work / "many").mkdir()
    ids = np.arange(1, len(tokens) + 1, dtype=np.int64)
    joined = [" ".join(t) for t in tokens]
    stats: dict = {"units": len(tokens), "postings": int(sum(len(set(t)) for t in tokens)), "tokens": int(sum(map(len, tokens)))}

    started = time.perf_counter()
    db = sqlite3.connect(work / "fts5.sqlite")
    db.execute("create virtual table lexical using fts5(tokens, tokenize='unicode61 remove_diacritics 0')")
    db.executemany("insert into lexical(rowid, tokens) values (?, ?)", zip(ids.tolist(), joined))
    db.commit()
    stats["fts5_insert_seconds"] = time.perf_counter() - started
    db.execute("insert into lexical(lexical) values ('optimize')")
    db.commit()
    db.execute("vacuum")
    db.close()
    stats["fts5_build_seconds"] = time.perf_counter() - started
    stats["fts5_bytes"] = (work / "fts5.sqlite").stat().st_size

    started = time.perf_counter()
    segment = SegmentPostings.build(ids, joined)
    stats["postings_build_seconds"] = time.perf_counter() - started
    segment.save(work / "one" / lexical_file_name("segment.000000"))
    stats["postings_build_save_seconds"] = time.perf_counter() - started
    stats["postings_bytes"] = folder_bytes((work / "one").iterdir())
    stats["terms"] = len(segment.term_offsets) - 1
    del segment

    started = time.perf_counter()
    for number, chunk in enumerate(np.array_split(np.arange(len(tokens)), segments)):
        SegmentPostings.build(ids[chunk], [joined[i] for i in chunk]).save(
            work / "many" / lexical_file_name(f"segment.{number:06d}")
        )
    stats[f"postings_{segments}_segments_build_save_seconds"] = time.perf_counter() - started
    stats[f"postings_{segments}_segments_bytes"] = folder_bytes((work / "many").iterdir())

    started = time.perf_counter()
    merged = SegmentPostings.merge([SegmentPostings.load(p) for p in sorted((work / "many").iterdir())])
    stats[f"merge_{segments}_segments_seconds"] = time.perf_counter() - started
    reference = SegmentPostings.load(work / "one" / lexical_file_name("segment.000000"))
    stats["merge_equals_one_build"] = all(
        np.array_equal(getattr(merged, name), getattr(reference, name))
        for name in ("ids", "lengths", "term_bytes", "term_offsets", "post_offsets", "positions", "frequencies")
    )
    return stats


def percentiles(ms: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "mean_ms": float(np.mean(ms))}


def query_phase(work: Path, size: int, k: int, queries: list[str]) -> dict:
    """Runs in a fresh process: load everything, time every method per query (see the module docstring)."""
    import faiss
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    from kosearch.encoders import Encoder
    from kosearch.search.fusion import convex_fusion
    from kosearch.search.morphemes import MorphemeAnalyzer, fts5_match_expression

    result: dict = {"rss_start_mb": rss_mb()}
    analyzer = MorphemeAnalyzer()
    analyzer.analyze("워밍업")
    encoder = Encoder(device="cpu")
    encoder.encode_queries(["워밍업"])
    result["rss_kiwi_encoder_mb"] = rss_mb()

    started = time.perf_counter()
    one = [SegmentPostings.load(p) for p in sorted((work / "one").iterdir())]
    result["postings_load_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    many = [SegmentPostings.load(p) for p in sorted((work / "many").iterdir())]
    result["postings_many_load_seconds"] = time.perf_counter() - started

    rng = np.random.default_rng(0)
    flat = faiss.IndexFlatIP(DIMENSION)
    for start in range(0, size, 100_000):
        block = rng.standard_normal((min(100_000, size - start), DIMENSION), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        flat.add(block)
    db = sqlite3.connect(work / "fts5.sqlite")
    rss_before_queries = rss_mb()
    (work / "query_tokens.json").write_text(
        json.dumps([list(dict.fromkeys(analyzer.analyze(q))) for q in queries], ensure_ascii=False), encoding="utf-8"
    )

    def fts5(tokens: list[str]) -> list[tuple[int, float]]:
        if not tokens:
            return []
        return db.execute(
            "select rowid, -bm25(lexical) from lexical where lexical match ? order by bm25(lexical), rowid limit ?",
            (fts5_match_expression(tokens), k),
        ).fetchall()

    lexical_methods = {
        "fts5": fts5,
        "postings_1_segment": lambda tokens: bm25_search(one, tokens, k),
        f"postings_{len(many)}_segments": lambda tokens: bm25_search(many, tokens, k),
    }
    # warm every path once (page cache, SQLite's caches, numpy)
    for method in lexical_methods.values():
        method(analyzer.analyze(queries[0]))
    times: dict[str, list[float]] = {name: [] for name in ["kiwi", "encode", "faiss", "fusion", *lexical_methods]}
    same_order = {name: 0 for name in lexical_methods if name != "fts5"}
    same_ids = dict(same_order)
    dense_total, hybrid_total = [], {name: [] for name in lexical_methods}
    for position, query in enumerate(queries):
        started = time.perf_counter()
        tokens = list(dict.fromkeys(analyzer.analyze(query)))  # as kosearch.search.hybrid does
        kiwi = time.perf_counter() - started
        started = time.perf_counter()
        vector = encoder.encode_queries([query])
        encode = time.perf_counter() - started
        started = time.perf_counter()
        scores, ids = flat.search(np.ascontiguousarray(vector, dtype=np.float32), k)
        search = time.perf_counter() - started
        dense = {int(i): float(s) for s, i in zip(scores[0], ids[0]) if i >= 0}
        names = list(lexical_methods)
        names = names[position % len(names) :] + names[: position % len(names)]
        found, fusion = {}, []
        for name in names:
            started = time.perf_counter()
            found[name] = lexical_methods[name](tokens)
            times[name].append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            convex_fusion(dense, dict(found[name]))
            fusion.append(time.perf_counter() - started)
        times["kiwi"].append(1000 * kiwi)
        times["encode"].append(1000 * encode)
        times["faiss"].append(1000 * search)
        times["fusion"].append(1000 * float(np.mean(fusion)))
        dense_total.append(1000 * (encode + search))
        for name in lexical_methods:
            hybrid_total[name].append(1000 * (encode + search + kiwi) + times[name][-1] + times["fusion"][-1])
        reference = [unit for unit, _ in found["fts5"]]
        for name in same_order:
            ours = [unit for unit, _ in found[name]]
            same_order[name] += ours == reference
            same_ids[name] += set(ours) == set(reference)
    result["rss_during_queries_mb"] = rss_mb() - rss_before_queries  # torch's buffers too, not only postings
    result["rss_end_mb"] = rss_mb()
    result["queries"] = len(queries)
    result["components"] = {name: percentiles(values) for name, values in times.items()}
    result["lexical_with_analysis"] = {
        name: percentiles([a + b for a, b in zip(times["kiwi"], times[name])]) for name in lexical_methods
    }
    result["dense"] = percentiles(dense_total)
    result["hybrid"] = {
        name: {**percentiles(values), "p50_ratio_to_dense": float(np.percentile(values, 50) / np.percentile(dense_total, 50))}
        for name, values in hybrid_total.items()
    }
    result["hybrid_minus_dense_ms"] = {
        name: float(np.median([h - d for h, d in zip(values, dense_total)])) for name, values in hybrid_total.items()
    }
    result["same_order_as_fts5"] = {name: count / len(queries) for name, count in same_order.items()}
    result["same_ids_as_fts5"] = {name: count / len(queries) for name, count in same_ids.items()}
    return result


def rss_probe(work: Path, layout: str, k: int) -> dict:
    """Runs in a fresh process holding only numpy and the postings: RSS of loading one layout's files
    and of answering every query from them (the mapped pages the queries touch)."""
    tokens = json.loads((work / "query_tokens.json").read_text(encoding="utf-8"))
    bm25_search([SegmentPostings.build([1], ["워밍업"])], ["워밍업"], 1)  # numpy's own first-use allocations
    start = rss_mb()
    started = time.perf_counter()
    segments = [SegmentPostings.load(p) for p in sorted((work / layout).iterdir())]
    seconds = time.perf_counter() - started
    loaded = rss_mb()
    for query in tokens:
        bm25_search(segments, query, k)
    return {"load_seconds": seconds, "rss_load_mb": loaded - start, "rss_after_queries_mb": rss_mb() - start,
            "file_mb": folder_bytes((work / layout).iterdir()) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kosearch-bench-postings"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--query-phase", nargs=2, metavar=("WORK", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--rss-probe", nargs=2, metavar=("WORK", "LAYOUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        print(json.dumps(rss_probe(Path(args.rss_probe[0]), args.rss_probe[1], args.k)))
        return
    queries = held_out_queries() + sample_questions()
    if args.query_phase:
        print(json.dumps(query_phase(Path(args.query_phase[0]), int(args.query_phase[1]), args.k, queries)))
        return

    result: dict = {"load_start": machine_load(), "k": args.k, "segments": args.segments, "sizes": {}}
    print(f"# {result['load_start']}", flush=True)
    started = time.perf_counter()
    tokens = sentence_tokens(max(args.sizes), args.cache, analyse=False)
    print(f"# {len(tokens):,} cached sentence units read in {time.perf_counter() - started:.0f}s", flush=True)
    for size in args.sizes:
        if len(tokens) < size:
            print(f"# only {len(tokens):,} units cached; size {size:,} is {len(tokens):,}", flush=True)
        work = args.work / f"units_{size}"
        stats = build(work, tokens[:size], args.segments)
        print(f"# {size:,}: built {json.dumps(stats)}", flush=True)
        phase = subprocess.run(
            [sys.executable, __file__, "--k", str(args.k), "--query-phase", str(work), str(min(size, len(tokens)))],
            capture_output=True, text=True, check=True,
        )
        entry = {"build": stats, **json.loads(phase.stdout.strip().splitlines()[-1])}
        for layout in ("one", "many"):
            probe = subprocess.run(
                [sys.executable, __file__, "--k", str(args.k), "--rss-probe", str(work), layout],
                capture_output=True, text=True, check=True,
            )
            entry[f"rss_probe_{layout}"] = json.loads(probe.stdout.strip().splitlines()[-1])
        entry["load_after"] = machine_load()
        result["sizes"][str(size)] = entry
        print_size(size, entry)
        shutil.rmtree(work)
    result["load_end"] = machine_load()
    print(f"# {result['load_end']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))


def print_size(size: int, entry: dict) -> None:
    build = entry["build"]
    print(f"\n## {build['units']:,} units ({build['postings']:,} postings, {build['terms']:,} terms), "
          f"{entry['queries']} queries ({entry['load_after']})")
    print("| per query, ms | p50 | p95 |\n|---|---:|---:|")
    for name, cell in entry["components"].items():
        print(f"| {name} | {cell['p50_ms']:.2f} | {cell['p95_ms']:.2f} |")
    for name, cell in entry["lexical_with_analysis"].items():
        print(f"| lexical (Kiwi + {name}) | {cell['p50_ms']:.2f} | {cell['p95_ms']:.2f} |")
    print(f"| dense (encode + FAISS flat) | {entry['dense']['p50_ms']:.2f} | {entry['dense']['p95_ms']:.2f} |")
    for name, cell in entry["hybrid"].items():
        print(f"| hybrid with {name} | {cell['p50_ms']:.2f} | {cell['p95_ms']:.2f} | "
              f"{cell['p50_ratio_to_dense']:.2f}x dense (goal <= 1.5x)")
    print(f"same order as FTS5: {entry['same_order_as_fts5']}; same ids: {entry['same_ids_as_fts5']}")
    for layout in ("one", "many"):
        probe = entry[f"rss_probe_{layout}"]
        print(f"postings ({layout}): {probe['file_mb']:.1f} MB on disk, load {1000 * probe['load_seconds']:.1f} ms, "
              f"RSS +{probe['rss_load_mb']:.1f} MB after load, +{probe['rss_after_queries_mb']:.1f} MB after all queries")
    print(f"hybrid minus dense, median per query: {entry['hybrid_minus_dense_ms']}", flush=True)


if __name__ == "__main__":
    main()
