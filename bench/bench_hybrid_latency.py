"""Query latency of lexical and hybrid search next to dense-only, and filtered search, at 100k-1M units.

What is timed is ``Index.search(query, k=10, mode=...)`` end to end, one query at a time, as a user
calls it: the query's Kiwi analysis (lexical, hybrid), its encoding by the REAL bundled encoder
(dense, hybrid), the FAISS search, the FTS5 BM25 query, fusion, and building the hits. The three
modes run interleaved for each query (rotating which goes first), so a burst of load on the shared
machine hits all of them alike.

The index holds the first N NSMC reviews (one review per line, dealt into 100 files; units are Kiwi
sentences by default, ``--unit passage`` for passages). Its stored vectors come from a stub encoder (random unit vectors; ``nsmc_bench_data.
StubDocumentEncoder``): encoding 1M sentences with the real model takes hours here, and an exact
(Flat) search costs the same whatever the vectors hold. Everything else of the ingest is real (Kiwi
splitting and morphemes, FTS5 postings), and its time is reported. Built indexes are kept under
``--work`` and reused (delete the folder to rebuild).

Filters (``--filters``): ``path = 'part_007.txt'`` (1% of units) and ``path GLOB 'part_01?.txt'`` (10%),
applied before ranking; reported: hits returned (must be k) and latency, next to unfiltered.

Queries: 200 NSMC reviews after the indexed ones (never indexed) and the 60 sample questions.

An existing index (``--index PATH``, e.g. the real-encoder 1.23M NSMC index that ``bench/bench_segments.py
--encoder real`` builds): no build, its own encoder (real vectors, its ANN segment as compacted), the queries of
``--queries-file`` (a JSON list of strings, e.g. that bench's held-out reviews) and the sample questions, the same
interleaved timing. ``--precision`` sets the query encoder's precision (bf16 on CPUs with AMX); ``--encoder-backend``
its backend (``onnx``: ONNX Runtime in float32, the same vectors as torch's; each index is then warmed with
``Index.warm_up`` so that queries run through the ONNX session, as in ``kosearch serve``).

Usage: python bench/bench_hybrid_latency.py [--sizes 100000 1000000] [--queries 260] [--filters]
                                            [--work /tmp/kosearch-bench-hybrid] [--out result.json]
       python bench/bench_hybrid_latency.py --index runs/b1m/index [--index another/index ...]
                                            --queries-file runs/b1m/queries.json
                                            [--precision bf16] [--encoder-backend torch --encoder-backend onnx]
                                            [--filters] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nsmc_bench_data import (  # noqa: E402
    StubDocumentEncoder,
    machine_load,
    percentile,
    read_reviews,
    sample_questions,
    write_parts,
)

from kosearch.encoders import Encoder  # noqa: E402
from kosearch.index import Index  # noqa: E402

MODES = ("dense", "lexical", "hybrid")
FILTERS = {"1%": "path = 'part_007.txt'", "10%": "path GLOB 'part_01?.txt'"}
HELD_OUT = 200


def build(folder: Path, reviews: list[str], real: Encoder, unit: str = "sentence") -> dict:
    """Index ``reviews`` at ``folder`` (stub document vectors); returns the build's timings."""
    documents = folder / "documents"
    write_parts(reviews, documents)
    stub = StubDocumentEncoder(real)
    started = time.perf_counter()
    with Index.create(folder / "index", model=stub) as index:
        report = index.add_folder(documents, unit=unit)
    seconds = time.perf_counter() - started
    stats = {
        "reviews": len(reviews),
        "unit": unit,
        "units": report.sentences_added,
        "ingest_seconds": seconds,
        "stub_encoding_seconds": stub.seconds,
        "built": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (folder / "build.json").write_text(json.dumps(stats, indent=2))
    return stats


def time_queries(
    index: Index | dict[str, Index], queries: list[str], k: int, where: str | None, modes: tuple[str, ...] = MODES
) -> dict:
    """Per mode: latencies (ms) of every query, and how many hits each returned. ``index`` may be several
    indexes by name (``--index`` given more than once): then every query runs on each of them in turn
    (rotating which goes first) and the result is per index."""
    indexes = index if isinstance(index, dict) else {"": index}
    names = list(indexes)
    times = {name: {mode: [] for mode in modes} for name in names}
    returned = {name: {mode: [] for mode in modes} for name in names}
    for position, query in enumerate(queries):
        for name in names[position % len(names) :] + names[: position % len(names)]:
            order = modes[position % len(modes) :] + modes[: position % len(modes)]
            for mode in order:
                started = time.perf_counter()
                hits = indexes[name].search(query, k=k, mode=mode, where=where)
                times[name][mode].append(1000 * (time.perf_counter() - started))
                returned[name][mode].append(len(hits))
    result = {
        name: {
            mode: {
                "p50_ms": percentile(times[name][mode], 50),
                "p95_ms": percentile(times[name][mode], 95),
                "mean_ms": sum(times[name][mode]) / len(times[name][mode]),
                "min_hits": min(returned[name][mode]),
                "mean_hits": sum(returned[name][mode]) / len(returned[name][mode]),
            }
            for mode in modes
        }
        for name in names
    }
    return result if isinstance(index, dict) else result[""]


def encoding_only(real: Encoder, queries: list[str]) -> dict:
    times = []
    for query in queries:
        started = time.perf_counter()
        real.encode_queries([query])
        times.append(1000 * (time.perf_counter() - started))
    return {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=HELD_OUT + 60, help="at most 200 reviews + 60 questions")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--filters", action="store_true", help="also time the 1%% and 10%% filters")
    parser.add_argument("--work", type=Path, default=Path("/tmp/kosearch-bench-hybrid"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--unit", choices=("sentence", "passage"), default="sentence",
                        help="unit of the index (sentence: the issue's 100k / 1M sentences)")
    parser.add_argument(
        "--torch-threads", type=int, default=1,
        help="torch threads for query encoding (1: on an oversubscribed machine 2 threads spin-wait, ~8x slower)",
    )
    parser.add_argument("--index", type=Path, action="append",
                        help="time this existing index instead of building --sizes; more than once: interleaved, one table each")
    parser.add_argument("--queries-file", type=Path, help="with --index: a JSON list of query strings")
    parser.add_argument("--filter", action="append", default=[], metavar="NAME=WHERE",
                        help="with --index and --filters: the filters to time (default: the built indexes' 1%%/10%%)")
    parser.add_argument("--precision", help="query encoder precision (fp32, bf16, auto); default: the product's")
    parser.add_argument("--encoder-backend", action="append", default=None, metavar="BACKEND",
                        help="with --index: the query encoder's backend (torch, onnx); more than once: each index is "
                             "opened once per backend and all are timed interleaved, one table each")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    if args.index is not None:
        time_existing(args)
        return

    started = time.perf_counter()
    result: dict = {"load_start": machine_load(), "k": args.k, "torch_threads": args.torch_threads, "sizes": {}}
    print(f"# {machine_load()}", flush=True)
    all_reviews = [review for _, review in read_reviews(max(args.sizes) + HELD_OUT)]
    real = Encoder(None, device="cpu")
    for size in args.sizes:
        indexed, held_out = all_reviews[:size], all_reviews[size : size + HELD_OUT]
        if len(indexed) < size:
            print(f"# only {len(indexed):,} reviews in NSMC; size {size:,} is {len(indexed):,}", flush=True)
        queries = (held_out + sample_questions())[: args.queries]
        folder = args.work / f"nsmc_{size}_{args.unit}"
        if (folder / "build.json").is_file():
            stats = json.loads((folder / "build.json").read_text())
            stats["reused"] = True
        else:
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            stats = build(folder, indexed, real, args.unit)
        print(f"# {size:,} reviews -> {stats['units']:,} units, ingest {stats['ingest_seconds']:.0f}s "
              f"(stub vectors {stats['stub_encoding_seconds']:.0f}s){' (reused)' if stats.get('reused') else ''}",
              flush=True)
        entry: dict = {"build": stats, "queries": len(queries)}
        with Index.open(folder / "index", model=StubDocumentEncoder(real)) as index:
            index.search(queries[0], k=args.k, mode="hybrid")  # warm: Kiwi, page cache, FAISS
            entry["encode_query_only"] = encoding_only(real, queries[:50])
            entry["unfiltered"] = time_queries(index, queries, args.k, None)
            print(f"# unfiltered: {json.dumps(entry['unfiltered'])}", flush=True)
            if args.filters:
                entry["filtered"] = {name: time_queries(index, queries, args.k, where) for name, where in FILTERS.items()}
        entry["load_after"] = machine_load()
        result["sizes"][str(size)] = entry
        print_size(size, entry, args.k)
    result["seconds"] = time.perf_counter() - started
    result["load_end"] = machine_load()
    print(f"# done in {result['seconds']:.0f}s; {result['load_end']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))


def time_existing(args: argparse.Namespace) -> None:
    """``--index``: the modes on indexes that are already built, each with its own encoder; several
    indexes are timed query by query in turn, so load falls on all alike."""
    started = time.perf_counter()
    queries = json.loads(args.queries_file.read_text()) if args.queries_file else []
    queries = [*queries, *sample_questions()]
    modes = MODES
    print(f"# {machine_load()}", flush=True)
    opened: dict[str, Index] = {}
    try:
        backends = args.encoder_backend or [None]
        for path in dict.fromkeys(str(path) for path in args.index):  # a path given twice is timed once
            for backend in dict.fromkeys(backends):
                name = path if len(backends) == 1 else f"{path} [{backend or 'default'}]"
                precision = None if backend and backend.startswith("onnx") else args.precision  # ONNX is float32
                opened[name] = Index.open(path, precision=precision, encoder_backend=backend)
        entries: dict[str, dict] = {}
        for name, index in opened.items():
            info = index.info()
            entries[name] = {
                "build": {"units": info.sentences, "index": name, "segments": info.segment_details},
                "queries": len(queries),
            }
            index.warm_up()  # the encoder's query runtime (an ONNX session), Kiwi, postings, FAISS
            index.search(queries[0], k=args.k, mode="hybrid")  # page cache
            entries[name]["encoder"] = {"backend": index.encoder.encoder_backend, "precision": index.encoder.precision}
            entries[name]["encode_query_only"] = encoding_only(index.encoder, queries[:50])
        for name, table in time_queries(opened, queries, args.k, None, modes).items():
            entries[name]["unfiltered"] = table
            print(f"# {name} unfiltered: {json.dumps(table)}", flush=True)
        if args.filters:
            filters = dict(item.split("=", 1) for item in args.filter) if args.filter else FILTERS
            for label, where in filters.items():
                for name, table in time_queries(opened, queries, args.k, where, modes).items():
                    entries[name].setdefault("filtered", {})[label] = table
    finally:
        for index in opened.values():
            index.close()
    for name, entry in entries.items():
        entry["load_after"] = machine_load()
        print(f"\n# {name}")
        print_size(entry["build"]["units"], entry, args.k, modes)
    result = {"k": args.k, "torch_threads": args.torch_threads, "precision": args.precision,
              "seconds": time.perf_counter() - started, "indexes": entries}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))


def print_size(size: int, entry: dict, k: int, modes: tuple[str, ...] = MODES) -> None:
    units = entry["build"]["units"]
    dense = entry["unfiltered"]["dense"]["p50_ms"]
    print(f"\n## {size:,} reviews, {units:,} units, {entry['queries']} queries, k={k} ({entry['load_after']})")
    print(f"query encoding alone (real encoder): p50 {entry['encode_query_only']['p50_ms']:.1f} ms, "
          f"p95 {entry['encode_query_only']['p95_ms']:.1f} ms")
    print("| filter | mode | p50 ms | p95 ms | p50 / dense unfiltered p50 | hits returned (min / mean) |")
    print("|---|---|---:|---:|---:|---:|")
    rows = [("none", entry["unfiltered"])] + [(name, table) for name, table in entry.get("filtered", {}).items()]
    for name, table in rows:
        for mode in modes:
            cell = table[mode]
            print(f"| {name} | {mode} | {cell['p50_ms']:.1f} | {cell['p95_ms']:.1f} | {cell['p50_ms'] / dense:.2f}x "
                  f"| {cell['min_hits']} / {cell['mean_hits']:.1f} |")
    hybrid = entry["unfiltered"]["hybrid"]["p50_ms"]
    print(f"hybrid p50 / dense p50 = {hybrid / dense:.2f}x (goal: at most 1.5x)", flush=True)


if __name__ == "__main__":
    main()
