"""ANN by size: where an approximate index beats a flat scan, and what it costs in recall.

For each base size, builds Flat, HNSW32 and IVF (SQ8 and PQ48, nlist ~ 4 sqrt(N)) through
``kosearch.store.ann.build_index`` (which tunes efSearch / nprobe to recall@10 >= 0.95 on stored
vectors), then measures on *held-out* real reviews and on the encoded sample questions:
recall@10 against exact search, single-query latency p50/p95 with 1 and 2 FAISS threads, build
time (training + adding + tuning), file size; plus a small efSearch / nprobe sweep. Flat is the
baseline of the same run: latency ratios are Flat / ANN.

Vectors are real (``nsmc_vectors.py``); sizes beyond what has been encoded are filled with the
labelled synthetic extension, and every row says how many of its vectors are real. The run is
bounded: a factory is skipped at a size when its build, extrapolated from the previous size,
would not fit in what is left of ``--budget`` seconds.

    python bench/bench_ann.py --sizes 10000 30000 100000 300000 1000000 --budget 840
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# On a shared, oversubscribed machine OpenMP's default spin-waiting makes 2-thread searches 100x
# slower than 1-thread ones (measured: 20 ms vs 0.15 ms at load 10); passive waiting is the fair
# setting. It must be set before FAISS loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nsmc_bench_data import machine_load, percentile  # noqa: E402
from nsmc_vectors import base_of_size, encoded_questions, load_real, split_base_and_queries  # noqa: E402

from kosearch.store import ann  # noqa: E402


def exact_neighbours(base: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    return flat.search(queries, k)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f[f >= 0], t)) / len(t) for f, t in zip(found, truth)]))


def latencies(index: faiss.Index, queries: np.ndarray, threads: int, repeat: int) -> tuple[float, float]:
    faiss.omp_set_num_threads(threads)
    params = ann.search_parameters(index, None)
    times = []
    for query in queries[:repeat]:
        started = time.perf_counter()
        index.search(query[None, :], 10, params=params)
        times.append((time.perf_counter() - started) * 1000)
    faiss.omp_set_num_threads(2)
    return percentile(times, 50), percentile(times, 95)


OPEN_MMAP = """
import sys, time, faiss
def rss(): return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) / 1024
before = rss(); started = time.perf_counter()
index = faiss.read_index(sys.argv[1], faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
print(time.perf_counter() - started, rss() - before)
"""


def file_bytes_and_mmap_open(index: faiss.Index) -> tuple[int, float, float]:
    """File size, and seconds + extra RSS (MB) to open it memory-mapped in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.faiss"
        faiss.write_index(index, str(path))
        done = subprocess.run([sys.executable, "-c", OPEN_MMAP, str(path)], capture_output=True, text=True, check=True)
        seconds, megabytes = map(float, done.stdout.split())
        return path.stat().st_size, seconds, megabytes


def set_depth(index: faiss.Index, value: int) -> None:
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = value
    else:
        faiss.extract_index_ivf(index).nprobe = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000, 1_000_000])
    parser.add_argument("--factories", nargs="+", default=["HNSW32", "IVF,SQ8"])
    parser.add_argument("--holdout", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=200, help="single queries timed per setting")
    parser.add_argument("--budget", type=float, default=840.0, help="seconds for the whole run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    began = time.perf_counter()

    real = load_real()
    real_base, held_out = split_base_and_queries(real, args.holdout)
    questions = encoded_questions()
    query_sets = {"held-out reviews": held_out, "questions": questions}
    print(f"# {len(real)} real vectors encoded; base pool {len(real_base)}, {len(held_out)} held-out reviews, "
          f"{len(questions)} questions; {machine_load()}", flush=True)

    rows, build_seconds = [], {}
    for size in args.sizes:
        base, real_count = base_of_size(real_base, size)
        ids = np.arange(size, dtype=np.int64)
        truth = {name: exact_neighbours(base, q) for name, q in query_sets.items() if len(q)}
        flat_ms = None
        for factory in ["Flat", *args.factories]:
            concrete = factory.replace("IVF,", f"IVF{ann.ivf_lists(size)},")
            left = args.budget - (time.perf_counter() - began)
            previous = build_seconds.get(factory)
            estimate = 0 if previous is None else previous[1] * (size / previous[0]) * 1.3
            if estimate > left - 30:
                print(f"  skip {concrete} at {size}: build estimated {estimate:.0f}s, {left:.0f}s left", flush=True)
                continue
            started = time.perf_counter()
            index = ann.build_index(ids, base, concrete)
            built = time.perf_counter() - started
            build_seconds[factory] = (size, built)
            row = {
                "size": size, "real": real_count, "factory": concrete, "build_s": round(built, 2),
                "depth": ann.search_depth(index),
                "recall": {name: round(recall(index.search(query_sets[name], 10,
                                                           params=ann.search_parameters(index, None))[1], t), 4)
                           for name, t in truth.items()},
            }
            row["bytes"], row["open_mmap_s"], row["open_mmap_rss_mb"] = file_bytes_and_mmap_open(index)
            row["p50_1t"], row["p95_1t"] = latencies(index, held_out, 1, args.repeat)
            row["p50_2t"], row["p95_2t"] = latencies(index, held_out, 2, args.repeat)
            if factory == "Flat":
                flat_ms = row["p50_1t"]
            row["flat_over_ann_p50"] = round(flat_ms / row["p50_1t"], 2)
            sweep = {}
            if factory != "Flat":
                tuned = next(iter(row["depth"].values()))
                values = (16, 32, 64, 128, 256) if "HNSW" in factory else (4, 8, 16, 32, 64, 128)
                for value in values:
                    set_depth(index, value)
                    params = ann.search_parameters(index, None)
                    sweep[value] = tuple(round(recall(index.search(query_sets[name], 10, params=params)[1], t), 4)
                                         for name, t in truth.items())
                    sweep[value] += (round(latencies(index, held_out, 1, 100)[0], 3),)
                set_depth(index, tuned)
            row["sweep"] = sweep
            rows.append(row)
            print(json.dumps(row), flush=True)
            del index

    print(f"\n# {machine_load()}, {time.perf_counter() - began:.0f}s total")
    print("| N (real) | index | tuned | build s | MB | recall@10 held-out / questions | p50/p95 ms 1 thread | "
          "p50/p95 ms 2 threads | Flat p50 / this | mmap open s / +RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rec = " / ".join(f"{v:.3f}" for v in r["recall"].values())
        depth = ",".join(f"{k}={v}" for k, v in r["depth"].items()) or "exact"
        print(f"| {r['size']:,} ({r['real']:,}) | {r['factory']} | {depth} | {r['build_s']:.1f} | "
              f"{r['bytes'] / 1e6:.0f} | {rec} | {r['p50_1t']:.2f}/{r['p95_1t']:.2f} | "
              f"{r['p50_2t']:.2f}/{r['p95_2t']:.2f} | {r['flat_over_ann_p50']:.1f}x | "
              f"{r['open_mmap_s']:.2f} / {r['open_mmap_rss_mb']:.0f} |")
    print("\nsweeps (efSearch or nprobe: recall@10 held-out reviews / questions, p50 ms 1 thread):")
    for r in rows:
        if r["sweep"]:
            print(f"  {r['size']:,} {r['factory']}: "
                  + "; ".join(f"{k}: {' / '.join(f'{x:.3f}' for x in v[:-1])} {v[-1]:.2f}ms" for k, v in r["sweep"].items()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
