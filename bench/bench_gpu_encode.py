"""Encoding throughput of kosearch's encode path vs plain ``SentenceTransformer.encode``, per precision.

For the device it finds (CUDA when torch sees one, else the CPU) and each precision (fp32, fp16, bf16), the
same NSMC reviews are encoded by

- kosearch: ``Encoder(device=..., precision=p).encode_documents(texts)`` (what ``kosearch index`` runs), and
- plain: ``SentenceTransformer(folder, device=...)`` converted to the same dtype, ``.encode(texts,
  prompt_name="document", normalize_embeddings=True)`` (sentence-transformers' own documented call),

interleaved (kosearch then plain, then plain then kosearch, ...) so both see the same machine load and
neither always goes first; the best of ``--repeats`` runs is kept. Printed: sentences/s of each, kosearch/plain, each precision's speed-up over
fp32, and the minimum cosine of each precision's vectors to fp32's. Both paths sort the texts by length
before batching (sentence-transformers does it inside ``encode``), so the ratio measures kosearch's own
overhead (float32 widening and re-normalisation), not a batching difference.

On a GPU machine (the numbers in docs/benchmarks.md are CPU-only; no GPU was available)::

    pip install "kosearch[gpu]"
    python bench/bench_gpu_encode.py --reviews 50000 --batch-size 256 --json gpu_encode.json

Here (2 shared cores)::

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_gpu_encode.py --reviews 1000 --repeats 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsmc_bench_data import read_reviews  # noqa: E402

from kosearch.encoders import Encoder, resolve_device  # noqa: E402
from kosearch.encoders.precision import torch_dtype  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1000, help="NSMC reviews encoded per run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", default="fp32,fp16,bf16")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default=None, help="default: the bundled model")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    device = resolve_device(args.device)
    texts = [review for _, review in read_reviews(args.reviews)]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    load_before = os.getloadavg()
    print(f"device {device} ({torch.cuda.get_device_name(0) if device.startswith('cuda') else 'cpu'}), "
          f"torch threads {torch.get_num_threads()}, {len(texts)} reviews, batch {args.batch_size}, "
          f"load {load_before[0]:.2f}", flush=True)

    encoders, plains = {}, {}
    for precision in precisions:
        encoders[precision] = Encoder(args.model, device=device, precision=precision, batch_size=args.batch_size)
        plain = SentenceTransformer(encoders[precision].source, device=device)
        if precision != "fp32":
            plain.to(torch_dtype(precision))
        plains[precision] = plain
        encoders[precision].encode_documents(texts[:32])  # warm-up: loads the model, first kernels
        plain.encode(texts[:32], prompt_name="document", batch_size=args.batch_size)

    def timed(fn) -> tuple[float, np.ndarray]:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        vectors = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - started, vectors

    best = {(p, side): float("inf") for p in precisions for side in ("kosearch", "plain")}
    vectors: dict[str, np.ndarray] = {}
    for repeat in range(args.repeats):
        for precision in precisions:
            runs = {
                "kosearch": lambda: encoders[precision].encode_documents(texts),
                "plain": lambda: plains[precision].encode(
                    texts, prompt_name="document", batch_size=args.batch_size, normalize_embeddings=True,
                    convert_to_numpy=True,
                ),
            }
            # Which side goes first alternates between repeats, so an order effect cannot favour one side.
            for side in ("kosearch", "plain") if repeat % 2 == 0 else ("plain", "kosearch"):
                seconds, result = timed(runs[side])
                best[(precision, side)] = min(best[(precision, side)], seconds)
                if side == "kosearch":
                    vectors[precision] = result

    rows = []
    reference = vectors.get("fp32")
    print(f"{'precision':<9} {'kosearch s/s':>13} {'plain s/s':>10} {'kosearch/plain':>15} {'vs fp32':>8} {'min cos':>8}")
    for precision in precisions:
        ours, theirs = len(texts) / best[(precision, "kosearch")], len(texts) / best[(precision, "plain")]
        speedup = best[("fp32", "kosearch")] / best[(precision, "kosearch")] if "fp32" in precisions else float("nan")
        cosine = float(np.sum(reference * vectors[precision], axis=1).min()) if reference is not None else float("nan")
        rows.append({"precision": precision, "kosearch_per_s": ours, "plain_per_s": theirs,
                     "ratio": ours / theirs, "speedup_vs_fp32": speedup, "min_cosine_vs_fp32": cosine})
        print(f"{precision:<9} {ours:>13.1f} {theirs:>10.1f} {ours / theirs:>15.3f} {speedup:>8.2f} {cosine:>8.5f}")
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "device": device, "reviews": len(texts), "batch_size": args.batch_size, "repeats": args.repeats,
            "load_before": load_before, "load_after": load_after, "rows": rows,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }, indent=2))


if __name__ == "__main__":
    main()
