"""Paraphrase mining at scale: the top 10,000 pairs through an ANN index vs exact k-NN, next to
``sentence_transformers.util.paraphrase_mining_embeddings``.

For each size: ``kosearch.store.pair_mining.mine_pairs`` with HNSW32 (graph build + one search per
vector, included in the time), and the sentence-transformers reference (exact: chunked matrix
products + top-k) in a subprocess killed after ``--reference-timeout`` seconds (5 minutes by
default: this machine has 2 cores shared with other jobs). The reference's pairs are the exact
k-NN answer the ANN pairs are scored against (recall = share of the exact top 10,000 pairs found);
where it did not finish, kosearch's own exact mode (``factory="Flat"``) stands in if the
extrapolated time fits the budget, else recall is left blank. Vectors are real NSMC reviews
(bundled encoder), one per distinct review text, as ``mine_paraphrases`` does; sizes beyond what
has been encoded use the labelled synthetic extension of ``nsmc_vectors.py``.

    python bench/bench_paraphrase_mining.py --sizes 20000 50000 100000 200000 --budget 840
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

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_ann.py

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nsmc_bench_data import machine_load, read_reviews  # noqa: E402
from nsmc_vectors import base_of_size, load_real  # noqa: E402

from kosearch.store.pair_mining import mine_pairs  # noqa: E402

TOP = 10_000
NEIGHBOURS = 10

REFERENCE = """
import sys, time, numpy as np, torch
from sentence_transformers import util
torch.set_num_threads(2)
vectors = torch.from_numpy(np.load(sys.argv[1]))
started = time.perf_counter()
pairs = util.paraphrase_mining_embeddings(vectors, top_k=int(sys.argv[3]), max_pairs=int(sys.argv[4]))
seconds = time.perf_counter() - started
np.save(sys.argv[2], np.array([[min(i, j), max(i, j)] for _, i, j in pairs], dtype=np.int64).reshape(-1, 2))
print(seconds)
"""


def distinct_real_vectors() -> np.ndarray:
    """Encoded vectors of the first occurrence of each review text (copies would tie at 1.0)."""
    real = load_real()
    texts = [text for _, text in read_reviews(len(real))]
    seen: set[str] = set()
    keep = [i for i, text in enumerate(texts) if not (text in seen or seen.add(text))]
    return np.ascontiguousarray(real[keep])


def run_reference(vectors: np.ndarray, timeout: float) -> tuple[float | None, set | None]:
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "v.npy", Path(folder) / "pairs.npy"
        np.save(source, vectors)
        try:
            done = subprocess.run([sys.executable, "-c", REFERENCE, str(source), str(target), str(NEIGHBOURS), str(TOP)],
                                  capture_output=True, text=True, timeout=timeout, check=True)
        except subprocess.TimeoutExpired:
            return None, None
        pairs = np.load(target)
        return float(done.stdout.strip().splitlines()[-1]), set(map(tuple, pairs.tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000, 100_000, 200_000])
    parser.add_argument("--factory", default="HNSW32")
    parser.add_argument("--reference-timeout", type=float, default=300.0)
    parser.add_argument("--budget", type=float, default=840.0)
    args = parser.parse_args()
    began = time.perf_counter()
    pool = distinct_real_vectors()
    print(f"# {len(pool)} distinct real review vectors; {machine_load()}", flush=True)
    rows, reference_gave_up, last_exact, last_ann = [], False, None, None
    for size in args.sizes:
        left = lambda: args.budget - (time.perf_counter() - began)  # noqa: E731
        if last_ann and last_ann[1] * (size / last_ann[0]) * 1.3 > left():
            print(f"  stop at {size}: ANN mining estimated beyond the {left():.0f}s left", flush=True)
            break
        vectors, real_count = base_of_size(pool, size)
        ids = np.arange(size, dtype=np.int64)
        started = time.perf_counter()
        first, second, _ = mine_pairs(ids, vectors, top=TOP, neighbours=NEIGHBOURS, factory=args.factory)
        ann_s = time.perf_counter() - started
        last_ann = (size, ann_s)
        found = set(zip(first.tolist(), second.tolist()))
        row = {"size": size, "real": real_count, "ann_s": round(ann_s, 1), "reference_s": None,
               "exact_s": None, "recall": None}
        truth = None
        if not reference_gave_up and left() > 60:
            seconds, truth = run_reference(vectors, min(args.reference_timeout, left() - 30))
            row["reference_s"] = round(seconds, 1) if seconds is not None else f">{args.reference_timeout:.0f}"
            reference_gave_up = seconds is None
        if truth is None and (last_exact is None or last_exact[1] * (size / last_exact[0]) ** 2 < left() - 60):
            started = time.perf_counter()
            first, second, _ = mine_pairs(ids, vectors, top=TOP, neighbours=NEIGHBOURS, factory="Flat")
            row["exact_s"] = round(time.perf_counter() - started, 1)
            last_exact = (size, row["exact_s"])
            truth = set(zip(first.tolist(), second.tolist()))
        if truth is not None:
            row["recall"] = round(len(found & truth) / len(truth), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\n# {machine_load()}, {time.perf_counter() - began:.0f}s total; top {TOP} pairs, {NEIGHBOURS} neighbours")
    print(f"| N distinct (real) | kosearch {args.factory} s | util.paraphrase_mining_embeddings s | speed-up | "
          "kosearch exact s | recall of top 10,000 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ref = r["reference_s"]
        speed = f"{ref / r['ann_s']:.1f}x" if isinstance(ref, float) else (f"> {float(ref[1:]) / r['ann_s']:.1f}x" if ref else "")
        print(f"| {r['size']:,} ({r['real']:,}) | {r['ann_s']} | {ref if ref is not None else 'not run'} | {speed} | "
              f"{r['exact_s'] if r['exact_s'] is not None else ''} | {r['recall'] if r['recall'] is not None else 'n/a'} |")


if __name__ == "__main__":
    main()
