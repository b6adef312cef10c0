"""Does a deeper HNSW build (efConstruction) buy a shallower, faster search at the same recall?

The 1.23M NSMC segment needs efSearch 1024 for recall@10 0.959 with ties, built at FAISS's default
efConstruction 40, and its query latency misses the 25 ms goal mostly by encoding plus that search. A
better-connected graph (higher efConstruction) is the standard remedy (Malkov and Yashunin, "Efficient and
robust approximate nearest neighbor search using HNSW graphs", TPAMI 2020, section 4): it costs build time
once and saves search time on every query.

For each efConstruction this builds the product's segment index with ``kosearch.store.ann.build_index``
(the product's own build and tuning: HNSW32, 256 held-out tuning queries, the shallowest efSearch reaching
recall@10 with ties of 0.97), from the first N real NSMC review vectors, then measures on queries the build
never saw (held-out reviews, the last ``--queries`` of the cache): recall@10 with ties and by ids at every
efSearch step, and single-query search latency (one thread, queries interleaved across the indexes, so
load falls on all alike). Printed per efConstruction: build seconds, the efSearch the tuning picked, and
the search p50 there; plus, for each recall level, the cheapest efSearch and its p50.

Usage: KOSEARCH_NSMC_VECTORS=runs/mine-cache/nsmc_vectors_bf16 python bench/ann_ef_construction.py \
           --size 200000 --ef-construction 40 80 160 [--queries 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nsmc_bench_data import machine_load, percentile  # noqa: E402
from nsmc_vectors import load_real, split_base_and_queries  # noqa: E402

from kosearch.store import ann  # noqa: E402

STEPS = (64, 96, 128, 192, 256, 384, 512, 768, 1024)


def build(base: np.ndarray, ef_construction: int, threads: int) -> tuple[faiss.Index, float]:
    ann.EF_CONSTRUCTION = ef_construction
    faiss.omp_set_num_threads(threads)
    started = time.perf_counter()
    index = ann.build_index(np.arange(len(base), dtype=np.int64), base, ann.ANN_FACTORY)
    return index, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--ef-construction", type=int, nargs="+", default=[40, 80, 160])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    real = load_real(limit=args.size + args.queries)
    base, queries = split_base_and_queries(real, args.queries)
    base = base[: args.size]
    result: dict = {"size": len(base), "queries": len(queries), "load_start": machine_load(), "builds": {}}
    print(f"# {len(base):,} base vectors, {len(queries)} held-out queries; {machine_load()}", flush=True)
    truth = ann.ExactAnswers(np.arange(len(base), dtype=np.int64), base, queries, 10)
    indexes = {}
    for efc in args.ef_construction:
        index, seconds = build(base, efc, args.build_threads)
        picked = ann.search_depth(index)["efSearch"]
        indexes[efc] = index
        result["builds"][efc] = {"build_s": seconds, "tuned_ef_search": picked, "load": machine_load()}
        print(f"# efConstruction {efc}: build {seconds:.1f}s, tuning picked efSearch {picked}", flush=True)

    faiss.omp_set_num_threads(1)
    for efc, index in indexes.items():
        inner = faiss.downcast_index(index.index)
        rows = {}
        for ef in STEPS:
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef
            _, found = index.search(queries, truth.depth, params=params)
            recall = truth.recall(found)
            rows[ef] = {"recall_ties": recall.with_ties, "recall_ids": recall.by_ids, "times_ms": []}
        result["builds"][efc]["steps"] = rows
        inner.hnsw.efSearch = result["builds"][efc]["tuned_ef_search"]
    # latency: one query at a time, the indexes and depths interleaved per query
    for position in range(len(queries)):
        query = queries[position : position + 1]
        for efc, index in indexes.items():
            for ef in STEPS:
                params = faiss.SearchParametersHNSW()
                params.efSearch = ef
                started = time.perf_counter()
                index.search(query, 10, params=params)
                result["builds"][efc]["steps"][ef]["times_ms"].append(1000 * (time.perf_counter() - started))
    print(f"\n## {len(base):,} vectors, {len(queries)} held-out queries ({machine_load()})")
    print("| efConstruction | build s | tuned efSearch | efSearch | recall@10 ties | by ids | search p50 ms | p95 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for efc, entry in result["builds"].items():
        for ef, row in entry["steps"].items():
            times = row.pop("times_ms")
            row["p50_ms"], row["p95_ms"] = percentile(times, 50), percentile(times, 95)
            print(f"| {efc} | {entry['build_s']:.1f} | {entry['tuned_ef_search']} | {ef} | {row['recall_ties']:.4f} "
                  f"| {row['recall_ids']:.4f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} |")
    print("\ncheapest efSearch reaching each held-out recall (with ties):")
    for level in (0.90, 0.93, 0.95, 0.97):
        cells = []
        for efc, entry in result["builds"].items():
            ok = [(ef, row) for ef, row in entry["steps"].items() if row["recall_ties"] >= level]
            cells.append(f"efC {efc}: " + (f"ef {ok[0][0]} ({ok[0][1]['p50_ms']:.2f} ms)" if ok else "not reached"))
        print(f"  {level:.2f}: " + "; ".join(cells))
    result["load_end"] = machine_load()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
