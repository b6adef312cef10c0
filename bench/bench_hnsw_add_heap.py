"""Does an HNSW add fed with fresh source chunks grow glibc's heap? (issue 7, peak RSS; docs/benchmarks.md g)

The 1M tier merge's heap grew by about 0.3 GB during its HNSW add. This builds an ``IDMap2,HNSW32`` index the
way ``kosearch.store.ann`` does (storage and graph reserved first, ``ADD_BATCH`` rows per add through
``_AddBuffer``) from fresh 65,536-row random chunks, as a merge's source reads arrive, and prints the
``[heap]`` mappings' anonymous memory after each chunk. ``--ef-construction`` is low by default to make
it quick; run it with and without ``MALLOC_MMAP_THRESHOLD_=1048576`` (a fixed mmap threshold) to see
whether large transient buffers fragment the heap.

Usage::

    OMP_NUM_THREADS=1 nice -n 19 python bench/bench_hnsw_add_heap.py --vectors 400000
    OMP_NUM_THREADS=1 nice -n 19 env MALLOC_MMAP_THRESHOLD_=1048576 python bench/bench_hnsw_add_heap.py --vectors 400000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from kosearch.store import ann  # noqa: E402


def heap_mb() -> int:
    total, name = 0, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            name = head[5] if len(head) > 5 else ""
        elif head and head[0] == "Anonymous:" and name == "[heap]":
            total += int(head[1]) * 1024
    return total >> 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=400_000)
    parser.add_argument("--ef-construction", type=int, default=8)
    args = parser.parse_args()
    index = faiss.index_factory(384, "IDMap2,HNSW32", faiss.METRIC_INNER_PRODUCT)
    inner = faiss.downcast_index(index.index)
    inner.hnsw.efConstruction = args.ef_construction
    ann._reserve_codes(inner, args.vectors)
    ann._reserve_graph(inner, args.vectors)
    buffer = ann._AddBuffer(index, ann.ADD_BATCH, 384)
    rng = np.random.default_rng(0)
    started, before, trace = time.time(), heap_mb(), []
    for start in range(0, args.vectors, 65536):
        rows = min(65536, args.vectors - start)
        buffer.add(np.arange(start, start + rows, dtype=np.int64), rng.standard_normal((rows, 384), dtype=np.float32))
        trace.append(heap_mb())
    buffer.flush()
    print(json.dumps({
        "vectors": args.vectors, "ef_construction": args.ef_construction, "seconds": round(time.time() - started),
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"), "heap_MB_before": before,
        "heap_MB_after_each_chunk": trace, "heap_MB_after": heap_mb(),
    }))


if __name__ == "__main__":
    main()
