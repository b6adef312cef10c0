"""Encode NSMC reviews with the real bundled encoder into a resumable on-disk vector cache.

Benchmarks of the store (ANN recall, query latency, open time, paraphrase mining at up to 1M) need
real embedding vectors: random vectors have no cluster structure, so ANN recall measured on them
says nothing about Korean text. Encoding 1M reviews takes hours on this CPU, so this script does it
once, in chunks (``chunk_NNNN.npy`` of ``--chunk`` reviews, float32, L2-normalised, file order of
``nsmc_bench_data.read_reviews``) that later runs reuse; a killed run resumes at the next chunk.

    nice -n 19 python bench/encode_nsmc_vectors.py --out ~/.cache/kosearch-bench/nsmc_vectors --limit 1000000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nsmc_bench_data import read_reviews  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default=None, help="encoder precision (e.g. bf16: 3-5x faster on AMX CPUs)")
    args = parser.parse_args()
    from kosearch.encoders import Encoder

    reviews = [text for _, text in read_reviews(args.limit)]
    args.out.mkdir(parents=True, exist_ok=True)
    encoder = Encoder(None, precision=args.precision)
    for number, start in enumerate(range(0, len(reviews), args.chunk)):
        path = args.out / f"chunk_{number:04d}.npy"
        if path.exists():
            continue
        began = time.perf_counter()
        vectors = encoder.encode_documents(reviews[start : start + args.chunk], batch_size=args.batch_size)
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, np.asarray(vectors, dtype=np.float32))
        os.replace(temporary, path)
        rate = (min(len(reviews), start + args.chunk) - start) / (time.perf_counter() - began)
        print(f"{path.name}: reviews {start}..{start + args.chunk} at {rate:.0f}/s", flush=True)


if __name__ == "__main__":
    main()
