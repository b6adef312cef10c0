"""Where a hybrid query's time goes beyond dense and lexical: completion and the candidate depth.

Opens an index built by ``bench/bench_hybrid_latency.py`` (stub document vectors) and times
``Index.search(mode="hybrid")`` for 40 held-out NSMC reviews under four settings, interleaved per
query: 100 or 20 candidates per signal (``hybrid.FUSION_CANDIDATES``), with or without looking up the
BM25 of the dense candidates the lexical list missed (``search.completion``). Query vectors are
encoded once beforehand with the real bundled encoder and served from a cache, so the numbers are
the search's own cost, not the encoder's; dense-only and lexical-only are timed beside them.

Usage: python bench/hybrid_cost_parts.py [--index /tmp/kosearch-bench-hybrid/nsmc_100000_sentence/index]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nsmc_bench_data import StubDocumentEncoder, machine_load, read_reviews  # noqa: E402

import kosearch.search.hybrid as hybrid  # noqa: E402
from kosearch.encoders import Encoder  # noqa: E402
from kosearch.index import Index  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=Path("/tmp/kosearch-bench-hybrid/nsmc_100000_sentence/index"))
    parser.add_argument("--after", type=int, default=100_000, help="queries: the reviews after this many")
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"# {machine_load()}", flush=True)
    real = Encoder(None, device="cpu")
    queries = [review for _, review in read_reviews(args.after + args.queries)][args.after :]
    cached = {query: real.encode_queries([query]) for query in queries}

    class CachedQueries(StubDocumentEncoder):
        def encode_queries(self, texts, **_):
            return np.concatenate([cached[text] for text in texts])

    complete = hybrid.lexical_scores_of
    settings = {
        "hybrid, 100 candidates, completion (default)": (100, complete),
        "hybrid, 100 candidates, no completion": (100, lambda *a, **k: {}),
        "hybrid, 20 candidates, completion": (20, complete),
        "hybrid, 20 candidates, no completion": (20, lambda *a, **k: {}),
    }
    times: dict[str, list[float]] = {name: [] for name in settings}
    times["dense"], times["lexical"] = [], []
    with Index.open(args.index, model=CachedQueries(real)) as index:
        index.search(queries[0], k=10, mode="hybrid")  # warm
        for position, query in enumerate(queries):
            names = list(settings)
            for name in names[position % 4 :] + names[: position % 4]:
                hybrid.FUSION_CANDIDATES, hybrid.lexical_scores_of = settings[name]
                started = time.perf_counter()
                index.search(query, k=10, mode="hybrid")
                times[name].append(1000 * (time.perf_counter() - started))
            for mode in ("dense", "lexical"):
                started = time.perf_counter()
                index.search(query, k=10, mode=mode)
                times[mode].append(1000 * (time.perf_counter() - started))
    hybrid.FUSION_CANDIDATES, hybrid.lexical_scores_of = 100, complete
    print("| search (query vector cached) | p50 ms | p95 ms |\n|---|---:|---:|")
    for name, values in times.items():
        values = sorted(values)
        print(f"| {name} | {statistics.median(values):.1f} | {values[int(0.95 * (len(values) - 1))]:.1f} |")
    print(f"# {machine_load()}")


if __name__ == "__main__":
    main()
