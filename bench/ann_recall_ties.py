"""efSearch vs recall@10 and search latency of one HNSW segment, by ids and with ties counted.

Why: a corpus of short reviews repeats sentences word for word (재밌다, 최고), so many stored
vectors are identical, and the exact top 10 of a query is then one arbitrary choice among equals.
Recall by ids (what ``kosearch.store.ann`` tunes on and records) counts an equally close neighbour
as a miss. This script reports both, for the 1.23M-sentence segment ``bench_segments.py --encoder
real`` compacts to:

- by ids: the share of the exact top-10 ids found (stored-vector queries leave themselves out);
- with ties: a found unit counts when its inner product is at least the exact 10th one minus
  ``--tolerance`` (1e-5: identical vectors up to float rounding; 1e-3: ann-benchmarks' threshold
  rule for its "knn" recall).

Queries: 256 stored vectors (seeded) and the bench's 160 queries (100 held-out reviews + the 60
sample questions, ``queries.json``), encoded by the bundled model in bf16. Exact answers by chunked
matrix products over the segment's own vectors.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/ann_recall_ties.py --segment /work/b1m/index/segment.000018.faiss \
        --queries /work/b1m/queries.json --tolerance 1e-3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kosearch.encoders import Encoder  # noqa: E402


def exact(hnsw: faiss.Index, queries: np.ndarray, k: int, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Positions and scores of each query's k largest inner products over the index's stored vectors."""
    n = hnsw.ntotal
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    for start in range(0, n, chunk):
        block = hnsw.reconstruct_n(start, min(chunk, n - start))
        scores = queries @ block.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(scores, top, 1)], 1)
        cand_i = np.concatenate([best_i, top + start], 1)
        order = np.argsort(-cand_s, 1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i, best_s


def recalls(hnsw, queries, found, truth, kth, own, tolerance) -> tuple[float, float]:
    """(by ids, with ties) recall@10; ``own`` the query's own position (or -1)."""
    by_ids, ties = [], []
    for query, got, expected, threshold, me in zip(queries, found, truth, kth, own):
        got = np.array([i for i in got if i >= 0 and i != me][:10])
        expected = [i for i in expected if i != me][:10]
        by_ids.append(len(set(got) & set(expected)) / 10)
        scores = np.array([float(query @ hnsw.reconstruct(int(i))) for i in got])
        ties.append(min(10, int((scores >= threshold - tolerance).sum())) / 10)
    return float(np.mean(by_ids)), float(np.mean(ties))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segment", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    args = parser.parse_args()

    index = faiss.read_index(str(args.segment), faiss.IO_FLAG_MMAP)
    hnsw = faiss.downcast_index(index.index)
    print(f"{hnsw.ntotal:,} vectors, tuned efSearch {hnsw.hnsw.efSearch}, load {open('/proc/loadavg').read().split()[:3]}")
    rows = np.random.default_rng(7).choice(hnsw.ntotal, 256, replace=False)
    stored = np.vstack([hnsw.reconstruct(int(r)) for r in rows])
    user = Encoder(None, device="cpu", precision="bf16").encode_queries(json.loads(args.queries.read_text()))
    truth_stored, scores_stored = exact(hnsw, stored, 11)
    truth_user, scores_user = exact(hnsw, user, 10)
    kth_stored = np.array([[s for i, s in zip(t, ss) if i != r][9] for t, ss, r in zip(truth_stored, scores_stored, rows)])
    for ef in args.ef_search:
        params = faiss.SearchParametersHNSW(efSearch=ef)
        _, found_stored = hnsw.search(stored, 11, params=params)
        times, found_user = [], []
        for query in user:
            started = time.perf_counter()
            _, found = hnsw.search(query[None], 10, params=params)
            times.append((time.perf_counter() - started) * 1000)
            found_user.append(found[0])
        s_ids, s_ties = recalls(hnsw, stored, found_stored, truth_stored, kth_stored, rows, args.tolerance)
        u_ids, u_ties = recalls(hnsw, user, found_user, truth_user, scores_user[:, 9], [-1] * len(user), args.tolerance)
        print(
            f"efSearch {ef}: recall@10 by ids stored {s_ids:.3f} / queries {u_ids:.3f}; with ties (tolerance "
            f"{args.tolerance:g}) stored {s_ties:.3f} / queries {u_ties:.3f}; search p50 {np.percentile(times, 50):.1f} ms "
            f"p95 {np.percentile(times, 95):.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
