"""CPU encoding speed and KorSTS cost of the encoder backends: torch float32 vs ONNX Runtime float32 vs int8.

All three are kosearch ``Encoder``s of the bundled model on the CPU (``encoder_backend="torch"``, ``"onnx"``,
``"onnx-int8"``), in one process, on the same texts:

1. **Throughput**: ``encode_documents`` (``passage: `` prompt, batch 64) of the first ``--reviews`` NSMC reviews,
   dealt into ``--chunks`` equal chunks; each chunk is encoded by every backend in turn, the order rotating from
   chunk to chunk, so a burst of load from other processes on this shared machine falls on all three alike.
   Reported: sentences/s per backend (total texts / total seconds) and the ratio to torch.
2. **Agreement**: cosine of each backend's document vectors to torch's (mean, 1st percentile, minimum).
3. **KorSTS test**: cosine Spearman x100 of each backend with ``query: `` on both sentences (as
   ``kosearch evaluate sts`` scores it, :func:`kosearch.evaluate.sts.sts_correlations`), and the loss against
   torch. Also ``int8 x torch``: sentence 1 encoded by int8, sentence 2 by torch, what a float query against an
   int8 index (or the reverse) costs.

Exports (once per machine) happen in a warm-up before anything is timed. Load average is printed at start and end.

Usage: python bench/bench_onnx.py [--reviews 2000] [--chunks 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
KORSTS_TEST = ROOT.parent / "shared" / "data" / "korsts" / "sts-test.tsv"
BACKENDS = ("torch", "onnx", "onnx-int8")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from nsmc_bench_data import read_reviews

    from kosearch.data.sts import read_sts
    from kosearch.encoders import Encoder
    from kosearch.evaluate.sts import sts_correlations

    print(f"load average at start: {_load()}; {os.cpu_count()} cores", flush=True)
    reviews = [text for _, text in read_reviews(args.reviews)]
    encoders = {name: Encoder(device="cpu", batch_size=args.batch_size, encoder_backend=name) for name in BACKENDS}
    for encoder in encoders.values():  # export, load, first-call costs: not what is measured
        encoder.encode_documents(reviews[:8])
        encoder.encode_queries(reviews[:80])
    import onnxruntime
    import torch

    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}")

    chunks = np.array_split(np.arange(len(reviews)), args.chunks)
    seconds = dict.fromkeys(BACKENDS, 0.0)
    vectors = {name: np.zeros((len(reviews), 384), dtype=np.float32) for name in BACKENDS}
    for number, rows in enumerate(chunks):
        texts = [reviews[i] for i in rows]
        order = BACKENDS[number % 3 :] + BACKENDS[: number % 3]
        for name in order:
            started = time.perf_counter()
            vectors[name][rows] = encoders[name].encode_documents(texts)
            seconds[name] += time.perf_counter() - started
        print(f"  chunk {number + 1}/{len(chunks)} ({', '.join(order)}): load {_load()}", flush=True)

    results: dict = {"reviews": len(reviews), "chunks": args.chunks, "batch_size": args.batch_size, "backends": {}}
    print(f"\nthroughput, {len(reviews)} NSMC reviews, encode_documents, batch {args.batch_size}:")
    for name in BACKENDS:
        rate = len(reviews) / seconds[name]
        cosine = np.einsum("ij,ij->i", vectors[name].astype(np.float64), vectors["torch"].astype(np.float64))
        results["backends"][name] = {
            "seconds": seconds[name],
            "sentences_per_s": rate,
            "speedup_vs_torch": seconds["torch"] / seconds[name],
            "cosine_to_torch_mean": float(cosine.mean()),
            "cosine_to_torch_p01": float(np.percentile(cosine, 1)),
            "cosine_to_torch_min": float(cosine.min()),
        }
        print(
            f"  {name:10s} {rate:7.1f} sentences/s  x{seconds['torch'] / seconds[name]:.2f} vs torch;  cosine to torch "
            f"mean {cosine.mean():.6f}, p1 {np.percentile(cosine, 1):.6f}, min {cosine.min():.6f}"
        )

    pairs = read_sts(KORSTS_TEST)
    sentences = sorted({s for pair in pairs for s in (pair.sentence1, pair.sentence2)})
    position = {sentence: row for row, sentence in enumerate(sentences)}
    first = [position[pair.sentence1] for pair in pairs]
    second = [position[pair.sentence2] for pair in pairs]
    gold = [pair.score for pair in pairs]
    sts_vectors = {}
    print(f"\nKorSTS test ({len(pairs)} pairs, {len(sentences)} sentences, query: on both), cosine Spearman x100:")
    for name in BACKENDS:
        started = time.perf_counter()
        sts_vectors[name] = encoders[name].encode_queries(sentences)
        spent = time.perf_counter() - started
        spearman = sts_correlations(sts_vectors[name][first], sts_vectors[name][second], gold).cosine_spearman
        results["backends"][name]["korsts_spearman"] = spearman
        results["backends"][name]["korsts_seconds"] = spent
    base = results["backends"]["torch"]["korsts_spearman"]
    for name in BACKENDS:
        spearman = results["backends"][name]["korsts_spearman"]
        spent = results["backends"][name]["korsts_seconds"]
        print(f"  {name:10s} {spearman:.2f} ({spearman - base:+.2f} vs torch; encoded in {spent:.0f} s)")
    mixed = sts_correlations(sts_vectors["onnx-int8"][first], sts_vectors["torch"][second], gold).cosine_spearman
    results["korsts_spearman_int8_x_torch"] = mixed
    print(f"  int8 x torch {mixed:.2f} ({mixed - base:+.2f} vs torch)")
    results["load_average_end"] = os.getloadavg()
    print(f"\nload average at end: {_load()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
