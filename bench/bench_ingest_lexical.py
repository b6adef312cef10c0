"""Ingest time with the lexical index against without it: same documents, same run, real bundled encoder.

The lexical index costs a Kiwi morphological analysis of every unit and its FTS5 postings, written
in the same transaction as the unit's row (``kosearch.ingest``). The budget: at most 10% more ingest
time than dense-only.

"Without" is the product's own switch, ``Index.add_folder(..., lexical=False)`` (``IngestOptions.lexical``,
``kosearch index --no-lexical``): no Kiwi analysis of the units and no FTS5 table. Runs alternate
without / with / with / without (``--rounds`` times), each into a fresh index over the same reviews,
so slow drifts of the shared machine's load fall on both sides alike; the ratio compares the medians,
and each round's own ratio (its two "with" over its two "without") is printed too.

Usage: python bench/bench_ingest_lexical.py [--reviews 3000] [--rounds 1] [--torch-threads 1] [--out result.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nsmc_bench_data import machine_load, read_reviews, write_parts  # noqa: E402

from kosearch.encoders import Encoder  # noqa: E402
from kosearch.index import Index  # noqa: E402


def one_run(encoder: Encoder, documents: Path, lexical: bool, unit: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="kosearch-bench-ingest-") as scratch:
        started, cpu_started = time.perf_counter(), time.process_time()
        with Index.create(Path(scratch) / "index", model=encoder) as index:
            report = index.add_folder(documents, lexical=lexical, unit=unit)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        lexical_rows = _lexical_rows(Path(scratch) / "index")
    return {"lexical": lexical, "seconds": seconds, "cpu_seconds": cpu_seconds, "units": report.sentences_added,
            "lexical_rows": lexical_rows}


def _lexical_rows(folder: Path) -> int:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(folder / "metadata.sqlite")) as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            fts = next((t for t in tables if "lexical" in t and not t.endswith(("_data", "_idx", "_docsize", "_config", "_content"))), None)
            return int(db.execute(f'SELECT count(*) FROM "{fts}"').fetchone()[0]) if fts else -1
    except sqlite3.Error:
        return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1, help="each round: without, with, with, without")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--torch-threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--unit", choices=("sentence", "passage"), default=None, help="unit of the index (default: kosearch's)")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    print(f"# {machine_load()}", flush=True)
    encoder = Encoder(None, device="cpu")
    encoder.encode_documents(["예열"])  # load the model before timing
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="kosearch-bench-docs-") as scratch:
        documents = Path(scratch) / "nsmc"
        write_parts([review for _, review in read_reviews(args.reviews)], documents, parts=10)
        for _ in range(args.rounds):
            for lexical in (False, True, True, False):
                run = one_run(encoder, documents, lexical, args.unit)
                runs.append(run)
                print(f"# {'with' if lexical else 'without'} lexical: {run['seconds']:.1f}s wall, {run['cpu_seconds']:.1f}s CPU, {run['units']:,} units, "
                      f"lexical rows {run['lexical_rows']}", flush=True)
    cpu_without = statistics.median(r["cpu_seconds"] for r in runs if not r["lexical"])
    cpu_with = statistics.median(r["cpu_seconds"] for r in runs if r["lexical"])
    without = statistics.median(r["seconds"] for r in runs if not r["lexical"])
    with_lexical = statistics.median(r["seconds"] for r in runs if r["lexical"])
    units = runs[0]["units"]
    threads = f", torch threads {args.torch_threads}" if args.torch_threads else ""
    print(f"\n{args.reviews:,} NSMC reviews, {units:,} {args.unit or 'default'} units, real bundled encoder{threads} ({machine_load()})")
    print("'without' = add_folder(lexical=False): no Kiwi morphemes, no FTS5 table")
    per_round = []
    for start in range(0, len(runs), 4):
        block = runs[start : start + 4]
        with_s = sum(r["seconds"] for r in block if r["lexical"])
        without_s = sum(r["seconds"] for r in block if not r["lexical"])
        per_round.append(with_s / without_s)
        print(f"round {start // 4 + 1}: with / without = {with_s / without_s:.3f}x")
    print("| ingest | median s | units/s |")
    print("|---|---:|---:|")
    print(f"| without lexical index | {without:.1f} | {units / without:.0f} |")
    print(f"| with lexical index | {with_lexical:.1f} | {units / with_lexical:.0f} |")
    print(f"with / without = {with_lexical / without:.3f}x wall (budget: at most 1.10x)")
    print(f"CPU time of the process (all threads), medians: without {cpu_without:.1f}s, with {cpu_with:.1f}s, "
          f"with / without = {cpu_with / cpu_without:.3f}x (less sensitive to other jobs' load than wall time)")
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "ratio": with_lexical / without, "cpu_ratio": cpu_with / cpu_without,
                                        "per_round": per_round,
                                        "reviews": args.reviews, "unit": args.unit, "torch_threads": args.torch_threads,
                                        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                                        "load_end": machine_load()}, indent=2))


if __name__ == "__main__":
    main()
