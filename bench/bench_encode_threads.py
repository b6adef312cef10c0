"""Query encoding in the calling thread vs a worker thread, one query at a time.

Why this exists: overlapping a hybrid query's encoding (in a worker thread) with its lexical search (in
the calling thread) was tried for issue 11's latency and dropped, because on this machine's torch
(2.13 CPU build, OpenMP) encoding in bf16 became about twice as slow in a worker thread, and stayed slow
in the main thread once a worker had encoded; in fp32 the thread made no difference
(docs/benchmarks.md, "HNSW build depth"). A server that calls ``Index.search`` from a thread pool
(FastAPI's sync endpoints) meets the same effect, so this measures it where it matters: the same
encoder, the sample questions twice, in four orders: main thread only, a worker only, main again after
the worker was used, and alternating.

Usage: python bench/bench_encode_threads.py [--precision bf16|fp32] [--torch-threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nsmc_bench_data import machine_load, percentile, sample_questions  # noqa: E402

from kosearch.encoders import Encoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--torch-threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    queries = sample_questions() * 2
    encoder = Encoder(None, device="cpu", precision=args.precision)
    encoder.encode_queries(["워밍업"])
    pool = ThreadPoolExecutor(1)
    print(f"# precision {args.precision}, {args.torch_threads} torch threads, {len(queries)} queries; {machine_load()}")

    def timed(label: str, encode) -> None:
        times = []
        for query in queries:
            started = time.perf_counter()
            encode(query)
            times.append(1000 * (time.perf_counter() - started))
        print(f"{label}: p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms", flush=True)

    def in_worker(query: str):
        return pool.submit(encoder.encode_queries, [query]).result()

    timed("main thread only", lambda query: encoder.encode_queries([query]))
    timed("worker thread only", in_worker)
    timed("main thread after the worker encoded", lambda query: encoder.encode_queries([query]))
    turn = iter(range(10**9))
    timed("alternating", lambda query: in_worker(query) if next(turn) % 2 else encoder.encode_queries([query]))
    print(f"# {machine_load()}")


if __name__ == "__main__":
    main()
