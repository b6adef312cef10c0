"""Re-tune an existing HNSW segment with kosearch's own tuning code: recall@10 by ids and with ties, per efSearch.

Why: a corpus of short reviews repeats sentences word for word (재밌다, 최고), so many stored
vectors are identical and the exact top 10 of a query is one arbitrary choice among equals.
Recall by ids counts an equally close neighbour as a miss; ``kosearch.store.ann`` now tunes on
recall with ties (``recall_at_k``: ann-benchmarks' k-nn rule, a returned neighbour counts when its
exact score is within epsilon of the exact 10th). This script measures, on a segment already
built (the 1.23M-sentence one ``bench_segments.py --encoder real`` compacts to), what that changes:

- per efSearch step of ``ann.depth_steps``: recall@10 with ties at epsilon 1e-5 (kosearch's
  ``TIE_EPSILON``: identical vectors) and 1e-3 (ann-benchmarks' default), and by ids, for 256
  stored vectors as queries (seeded; each query's own id left out of both answers, as in
  ``measure_recall``) and for the bench's queries (``queries.json``: 100 held-out reviews and the 60
  sample questions), encoded by the bundled model (``--precision``, bf16 as the index was built);
- which efSearch the product's stop rule (``ann._deepen`` on the stored-vector queries, the
  ``ExactAnswers`` the tuning uses) picks now, and which the old by-ids rule picked;
- single-query search p50/p95 (search only, one thread) at the old and the new efSearch, the two
  interleaved query by query so a change of load hits both alike;
- how many of the stored queries' exact neighbours are identical vectors (score >= 1 - 1e-5) or
  near-identical ones (1 - 1e-3 <= score < 1 - 1e-5), and whether those carry the query's very text
  (read from the index's metadata.sqlite, opened read-only): is 1e-5 enough for duplicates?

The segment is opened memory-mapped and read only: efSearch is changed on the loaded object,
nothing is written anywhere.

    OMP_NUM_THREADS=1 nice -n 19 env PYTHONPATH=. python bench/ann_recall_ties.py \\
        --segment runs/b1m/index/segment.000018.faiss --queries runs/b1m/queries.json --precision bf16
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kosearch.encoders import Encoder  # noqa: E402
from kosearch.store import ann  # noqa: E402

EPSILONS = (1e-5, 1e-3)


def stored_vectors(index: faiss.Index) -> np.ndarray:
    """The HNSW's flat storage as an (n, d) array, without a copy where FAISS lets numpy see it."""
    storage = faiss.downcast_index(faiss.downcast_index(index.index).storage)
    n, d = storage.ntotal, storage.d
    if isinstance(storage, faiss.IndexFlat):
        return faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)
    return storage.reconstruct_n(0, n)


def step_rows(index, steps, sets) -> list[dict]:
    """Recall per efSearch step and query set, with ties at each epsilon and by ids."""
    hnsw = faiss.downcast_index(index.index)
    rows = []
    for value in steps:
        hnsw.hnsw.efSearch = value
        row = {"efSearch": value}
        for name, truth in sets.items():
            _, found = index.search(truth.queries, truth.depth, params=ann.search_parameters(index, None))
            scores_found, scores_truth = truth.scores(found), truth.scores(truth.truth)
            for epsilon in EPSILONS:
                recall = ann.recall_at_k(truth.truth, scores_truth, found, scores_found, truth.k, truth.query_ids, epsilon)
                row[f"{name}_ties_{epsilon:g}"] = recall.with_ties
                row[f"{name}_ids"] = recall.by_ids
        rows.append(row)
        print(
            f"efSearch {value:5d}: " + "; ".join(
                f"{name} ties 1e-5 {row[f'{name}_ties_1e-05']:.3f} 1e-3 {row[f'{name}_ties_0.001']:.3f} ids {row[f'{name}_ids']:.3f}"
                for name in sets
            ),
            flush=True,
        )
    return rows


def latency(index, queries: np.ndarray, depths: list[int], repeats: int) -> dict[int, list[float]]:
    """Single-query search times (ms) at each depth, interleaved query by query (order alternating)."""
    times = {depth: [] for depth in depths}
    for repeat in range(repeats):
        for number, query in enumerate(queries):
            order = depths if (number + repeat) % 2 == 0 else depths[::-1]
            for depth in order:
                params = faiss.SearchParametersHNSW()
                params.efSearch = depth
                started = time.perf_counter()
                index.search(query[None], 10, params=params)
                times[depth].append((time.perf_counter() - started) * 1000)
    return times


def duplicates(truth: ann.ExactAnswers, metadata: Path | None) -> dict:
    """Among stored queries' exact top 10 (own id left out): identical and near-identical vectors,
    and how many of each carry the query's own text."""
    scores = truth.scores(truth.truth)
    own = truth.query_ids[:, None]
    keep = (truth.truth >= 0) & (truth.truth != own)
    keep &= np.cumsum(keep, axis=1) <= 10  # the top 10 once the query's own id is left out
    identical = keep & (scores >= 1 - 1e-5)
    near = keep & (scores >= 1 - 1e-3) & ~identical
    result = {"pairs": int(keep.sum()), "identical": int(identical.sum()), "near": int(near.sum())}
    if metadata is not None and metadata.exists():
        db = sqlite3.connect(f"file:{metadata}?mode=ro&immutable=1", uri=True)

        def text(unit: int) -> str:
            row = db.execute("select text from sentences where id = ?", (int(unit),)).fetchone()
            return "" if row is None else row[0].strip()

        for name, mask in (("identical", identical), ("near", near)):
            rows, cols = np.nonzero(mask)
            same = sum(text(truth.truth[r, c]) == text(truth.query_ids[r]) for r, c in zip(rows, cols))
            result[f"{name}_same_text"] = int(same)
        db.close()
    return result


def near_ties(index, truth: ann.ExactAnswers, depth: int, metadata: Path | None) -> dict:
    """What 1e-3 adds over 1e-5 at one efSearch: the returned neighbours that count at 1e-3 only, how far
    below the exact 10th they score, and how many carry the text of one of the exact top 10 (a copy whose
    vector differs by encoder rounding) rather than another sentence; and how wide the exact top 10 is."""
    params = faiss.SearchParametersHNSW()
    params.efSearch = depth
    _, found = index.search(truth.queries, truth.depth, params=params)
    found_scores, truth_scores = truth.scores(found), truth.scores(truth.truth)
    db = sqlite3.connect(f"file:{metadata}?mode=ro&immutable=1", uri=True) if metadata and metadata.exists() else None

    def text(unit: int) -> str | None:
        row = None if db is None else db.execute("select text from sentences where id = ?", (int(unit),)).fetchone()
        return None if row is None else row[0].strip()

    gaps, same_text, widths = [], 0, []
    for row in range(len(found)):
        own = -2 if truth.query_ids is None else truth.query_ids[row]
        keep_t = (truth.truth[row] >= 0) & (truth.truth[row] != own)
        keep_f = (found[row] >= 0) & (found[row] != own)
        expected, expected_scores = truth.truth[row][keep_t][:10], truth_scores[row][keep_t][:10]
        got, got_scores = found[row][keep_f][:10], found_scores[row][keep_f][:10]
        kth = expected_scores.min()
        widths.append(float(expected_scores.max() - kth))
        texts = {text(unit) for unit in expected}
        for unit, score in zip(got, got_scores):
            if kth - 1e-3 <= score < kth - 1e-5:
                gaps.append(float(kth - score))
                same_text += text(unit) in texts and text(unit) is not None
    if db is not None:
        db.close()
    return {
        "efSearch": depth,
        "counted_at_1e-3_only": len(gaps),
        "of_them_with_a_top10_text": int(same_text),
        "median_gap_below_10th": float(np.median(gaps)) if gaps else None,
        "median_top10_width": float(np.median(widths)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segment", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--stored-queries", type=int, default=ann.TUNING_QUERIES)
    parser.add_argument("--extra-ef", type=int, nargs="*", default=[2048], help="steps beyond the product's")
    parser.add_argument("--ef-search", type=int, nargs="*", help="the table's steps instead of the product's and --extra-ef")
    parser.add_argument("--repeats", type=int, default=3, help="latency passes over the bench queries")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)

    load = lambda: open("/proc/loadavg").read().split()[:3]  # noqa: E731
    started = time.time()
    index = faiss.read_index(str(args.segment), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    hnsw = faiss.downcast_index(index.index)
    recorded = hnsw.hnsw.efSearch
    vectors = stored_vectors(index)
    ids = faiss.vector_to_array(index.id_map)
    print(f"{len(ids):,} vectors, recorded efSearch {recorded}, load {load()}", flush=True)
    rows = np.random.default_rng(7).choice(len(ids), args.stored_queries, replace=False)
    stored = np.ascontiguousarray(vectors[rows])
    texts = json.loads(args.queries.read_text())
    encoder = Encoder(None, device="cpu", precision=args.precision)
    user = encoder.encode_queries(texts)
    print(f"encoded {len(texts)} queries ({args.precision}) at {time.time() - started:.0f} s, load {load()}", flush=True)
    sets = {
        "stored": ann.ExactAnswers(ids, vectors, stored, 10, ids[rows]),
        "queries": ann.ExactAnswers(ids, vectors, user, 10),
    }
    print(f"exact answers at {time.time() - started:.0f} s, load {load()}", flush=True)
    steps = args.ef_search or [*ann.depth_steps(index)[0], *args.extra_ef]
    table = step_rows(index, steps, sets)

    # The product's own stop rule on the stored queries (the tuning's ExactAnswers), as a compaction would.
    chosen_recall = ann._deepen(index, sets["stored"])
    new_ef = ann.search_depth(index)["efSearch"]
    target = ann.TARGET_RECALL + ann.TUNING_MARGIN
    product = [row for row in table if row["efSearch"] in ann.depth_steps(index)[0]]
    old_ef = next((row["efSearch"] for row in product if row["stored_ids"] >= target), product[-1]["efSearch"])
    loose_ef = next((row["efSearch"] for row in product if row["stored_ties_0.001"] >= target), product[-1]["efSearch"])
    hnsw.hnsw.efSearch = recorded
    print(
        f"stop rule (target {target:.2f} on stored queries): with ties at TIE_EPSILON {ann.TIE_EPSILON:g} -> efSearch "
        f"{new_ef} ({chosen_recall}); by ids (old rule) -> {old_ef}; with ties at 1e-3 -> {loose_ef}",
        flush=True,
    )
    depths = sorted({recorded, new_ef, loose_ef})
    times = latency(index, user, depths, args.repeats)
    timing = {
        depth: {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95))}
        for depth, values in times.items()
    }
    for depth, value in timing.items():
        print(f"search only, efSearch {depth}: p50 {value['p50_ms']:.2f} ms, p95 {value['p95_ms']:.2f} ms "
              f"({len(times[depth])} searches, interleaved)", flush=True)
    metadata = args.segment.parent / "metadata.sqlite"
    dup = duplicates(sets["stored"], metadata)
    print(f"stored queries' exact top-10 neighbours: {dup}", flush=True)
    near = [{"set": name, **near_ties(index, truth, depth, metadata)} for depth in depths for name, truth in sets.items()]
    for item in near:
        print(f"1e-3 over 1e-5: {item}", flush=True)
    print(f"done in {time.time() - started:.0f} s, load {load()}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({
            "segment": str(args.segment), "vectors": len(ids), "recorded_efSearch": recorded,
            "tie_epsilon": ann.TIE_EPSILON, "target": target, "steps": table,
            "chosen": {"ties": new_ef, "ids": old_ef, "ties_1e-3": loose_ef},
            "latency": {str(k): v for k, v in timing.items()}, "duplicates": dup, "near_ties": near,
            "load_end": load(), "seconds": time.time() - started,
        }, indent=1))


if __name__ == "__main__":
    main()
