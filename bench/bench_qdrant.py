"""FAISS segments vs Qdrant (local mode) behind the same store: ingest time and query latency.

Real vectors: NSMC reviews encoded once by the bundled encoder (multilingual-e5-small, 384-d), the
last ``--queries`` reviews held out as queries. Both backends then get the *same* vectors through
the store's API (``IndexStore.add_vectors`` + ``checkpoint`` every ``--checkpoint`` units, rows in
SQLite, no lexical index), so the timings compare the vector backends and nothing else: encoding
is done before either clock starts. Queries are single-vector ``IndexStore.dense_search(k=10)``
calls (what ``kosearch query`` does after encoding), FAISS and Qdrant interleaved query by query,
unfiltered, with a 10% and a 1% allowed-id filter, and after deleting the first checkpoint's units
(tombstones, not compacted).

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_qdrant.py --units 5000 --queries 200

Qdrant runs in qdrant-client's local mode (pure Python, exact search; no server here), which is
what the tests use, not what a cluster serves: a server searches in Rust over HNSW. The numbers
say what the local mode costs on a laptop, and that results and protocol are the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nsmc_bench_data import machine_load, percentile, read_reviews  # noqa: E402

from kosearch.store import IndexStore, PendingChanges  # noqa: E402


def encode(count: int, cache: Path) -> tuple[list[str], np.ndarray, str]:
    """The first ``count`` NSMC reviews and their bundled-encoder vectors (kept in ``cache`` for reruns)."""
    from kosearch.encoders import Encoder

    reviews = [text for _, text in read_reviews(count)]
    if cache.is_file():
        vectors = np.load(cache)
        if len(vectors) == len(reviews):
            print(f"vectors of {len(reviews)} reviews from {cache} (bundled encoder)", flush=True)
            return reviews, vectors, "bundled multilingual-e5-small"
    encoder = Encoder(None, device="cpu")
    started = time.perf_counter()
    vectors = np.asarray(encoder.encode_documents(reviews, batch_size=64), dtype=np.float32)
    print(f"encoded {len(reviews)} reviews in {time.perf_counter() - started:.1f}s ({encoder.name})", flush=True)
    np.save(cache, vectors)
    return reviews, vectors, encoder.name


def ingest(folder: Path, vector_store: dict, texts: list[str], vectors: np.ndarray, checkpoint: int) -> float:
    manifest = {"model": "bench", "fingerprint": "bench", "dimension": vectors.shape[1], "prompts": {}}
    started = time.perf_counter()
    store = IndexStore.create(folder, manifest, vector_store=vector_store)
    for start in range(0, len(texts), checkpoint):
        stop = min(start + checkpoint, len(texts))
        ids = np.arange(start + 1, stop + 1)
        store.add_vectors(ids, vectors[start:stop])
        document = start // checkpoint + 1
        store.checkpoint(
            PendingChanges(
                documents=[{"id": document, "root": "/bench", "path": f"part_{document:03d}.txt", "sha256": "x",
                            "size": 1, "encoding": "utf-8", "format": "txt", "sentences": stop - start,
                            "indexed_at": "now"}],
                sentences=[{"id": int(i), "document_id": document, "position": int(i - start - 1),
                            "text": texts[i - 1], "line": int(i - start), "start": 0, "end": len(texts[i - 1])}
                           for i in ids],
                removed_documents=[],
            )
        )
    store.close()
    return time.perf_counter() - started


def timed_queries(stores: dict[str, IndexStore], queries: np.ndarray, allowed: np.ndarray | None) -> dict[str, list[float]]:
    """Per store, the seconds of each single-query dense_search, stores interleaved query by query."""
    times: dict[str, list[float]] = {name: [] for name in stores}
    answers: dict[str, list[np.ndarray]] = {name: [] for name in stores}
    scores: dict[str, list[np.ndarray]] = {name: [] for name in stores}
    for query in queries:
        for name, store in stores.items():
            started = time.perf_counter()
            found_scores, ids = store.dense_search(query[None, :], 10, allowed)
            times[name].append(time.perf_counter() - started)
            answers[name].append(ids[0])
            scores[name].append(found_scores[0])
    first, second = list(stores)
    same = [np.array_equal(a, b) for a, b in zip(answers[first], answers[second])]
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(scores[first], scores[second]))
    print(f"    identical top-10 id lists: {np.mean(same):.3f}; largest score difference at equal rank: {gap:.1e}"
          f" (lists that differ swap units whose scores tie within it)", flush=True)
    return times


def timed_opens(folders: dict[str, Path], rounds: int = 3) -> dict[str, float]:
    """Best-of-``rounds`` seconds to open each index for reading (the start of every ``kosearch query``)."""
    best = {name: float("inf") for name in folders}
    for _ in range(rounds):
        for name, folder in folders.items():
            started = time.perf_counter()
            IndexStore.open(folder).close()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--checkpoint", type=int, default=1000)
    parser.add_argument("--cache", type=Path, default=None, help="where the encoded vectors are kept between runs")
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.gettempdir()) / f"bench_qdrant_nsmc_{args.units + args.queries}.npy"
    print(f"start {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {machine_load()}", flush=True)
    texts, vectors, model = encode(args.units + args.queries, cache)
    base_texts, base = texts[: args.units], vectors[: args.units]
    queries = vectors[args.units :]  # stored-review vectors (passage prompt) of held-out reviews, as in bench_ann.py
    backends = {"faiss": {}, "qdrant-local": {"kind": "qdrant", "path": "qdrant", "collection": "bench"}}
    with tempfile.TemporaryDirectory(prefix="bench_qdrant_") as scratch:
        seconds = {}
        for round_ in range(2):  # two rounds, alternating order, to see the noise of a shared machine
            for name in (backends if round_ == 0 else reversed(list(backends))):
                folder = Path(scratch) / f"{name}-{round_}"
                seconds.setdefault(name, []).append(ingest(folder, backends[name], base_texts, base, args.checkpoint))
        print(f"ingest of {args.units} units in checkpoints of {args.checkpoint} (seconds, 2 rounds): "
              + "; ".join(f"{name} {' / '.join(f'{s:.2f}' for s in values)}" for name, values in seconds.items()),
              flush=True)
        ratio = min(seconds["qdrant-local"]) / min(seconds["faiss"])
        rate = args.units / min(seconds["qdrant-local"])
        print(f"  ingest ratio qdrant-local / faiss (best of 2): {ratio:.0f}x; qdrant-local {rate:.0f} points/s", flush=True)
        opened = timed_opens({name: Path(scratch) / f"{name}-0" for name in backends})
        print("open for reading (best of 3): " + "; ".join(f"{name} {s * 1e3:.1f} ms" for name, s in opened.items()),
              flush=True)
        stores = {name: IndexStore.open(Path(scratch) / f"{name}-0") for name in backends}
        rng = np.random.default_rng(0)
        rows = []
        for label, allowed in (
            ("unfiltered", None),
            ("10% allowed", np.sort(rng.choice(np.arange(1, args.units + 1), args.units // 10, replace=False))),
            ("1% allowed", np.sort(rng.choice(np.arange(1, args.units + 1), args.units // 100, replace=False))),
        ):
            print(f"  {label}:", flush=True)
            rows.append((label, timed_queries(stores, queries, allowed)))
        for store in stores.values():
            store.close()
        for name in backends:  # the first checkpoint's document: its units become tombstones
            writer = IndexStore.open(Path(scratch) / f"{name}-0", writable=True)
            removed = writer.remove_documents([1])
            writer.checkpoint()
            writer.close()
        stores = {name: IndexStore.open(Path(scratch) / f"{name}-0") for name in backends}
        label = f"{removed} deleted"
        print(f"  {label} (tombstones):", flush=True)
        rows.append((label, timed_queries(stores, queries, None)))
        for store in stores.values():
            store.close()
    print(f"\nquery latency, single query, k=10, {args.queries} held-out NSMC reviews, {args.units} units ({model}):")
    print("| case | FAISS p50 ms | Qdrant local p50 ms | FAISS p95 ms | Qdrant local p95 ms | p50 ratio |")
    print("|---|---|---|---|---|---|")
    for label, times in rows:
        f50, q50 = percentile(times["faiss"], 50) * 1e3, percentile(times["qdrant-local"], 50) * 1e3
        f95, q95 = percentile(times["faiss"], 95) * 1e3, percentile(times["qdrant-local"], 95) * 1e3
        print(f"| {label} | {f50:.2f} | {q50:.2f} | {f95:.2f} | {q95:.2f} | {q50 / f50:.0f}x |")
    print(f"end {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {machine_load()}")


if __name__ == "__main__":
    main()
