"""Memory of an HNSW merge: peak RSS of ``ann.build_index`` and of a store compaction, old code vs new.

Each variant runs in a fresh child process that imports kosearch from a given source tree (``--old``,
e.g. a checkout of main, and ``--new``, this tree), so both are measured in the same run on the same
data. A child records its RSS high-water mark (``/proc/self/status``: VmRSS, then VmHWM after resetting it through ``/proc/self/clear_refs``;
``resource.getrusage``'s ru_maxrss would carry the parent's peak across exec) once its input is in place
(the baseline: vectors loaded for ``build_index``; the store opened for compaction), then runs the
work and reports the new high-water mark. The figure of interest is (peak - baseline) / size of
the vectors (N x d x 4 bytes): how many extra copies of the vectors the work holds at once.

The ``read`` task isolates the sources' side: one pass over every segment of the store (a plain
``iter_vectors`` in the old code, ``read_vectors_once`` in the new). ``peak - vectors`` (MB) is the figure the issue's goal "peak RSS <= vectors + 1 GB" is about, for
this process. ``--keep-pages`` adds a third compaction, the new code with the sources' mapped pages
left in place (``read_vectors_once``'s madvise disabled), to show what dropping them is worth.

The vectors are random unit vectors: memory does not depend on their values (build time does a
little). Run with OMP_NUM_THREADS=1 on a shared machine::

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_merge_memory.py --old ../main-checkout --new . --count 200000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DIMENSION = 384

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
task, data, variant = sys.argv[2], sys.argv[3], sys.argv[4]
if variant == "keep-pages":
    # The new code without dropping the sources' mapped pages (read_vectors_once's madvise): what
    # that step is worth, measured in the same run.
    from kosearch.store import vectors as _vectors
    _vectors.drop_pages = lambda start, stop: None

def status_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

def start():
    # ru_maxrss survives exec (it would report the parent's peak): the baseline is the current RSS
    # and the high-water mark is reset here (clear_refs 5), then read as VmHWM.
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >= 0
    return status_mb("VmRSS")

def rss_mb():
    return status_mb("VmHWM")

if task == "build":
    from kosearch.store import ann
    vectors = np.load(data)
    ids = np.arange(len(vectors), dtype=np.int64)
    baseline = start()
    started = time.perf_counter()
    index = ann.build_index(ids, vectors, "HNSW32")
    seconds = time.perf_counter() - started
    extra = {"efSearch": int(ann.search_depth(index)["efSearch"])}
elif task == "read":
    # One pass over every segment's vectors, as a merge reads them, and nothing else.
    from kosearch.store import IndexStore
    try:
        from kosearch.store.vectors import read_vectors_once as reader
    except ImportError:  # the old code: a plain iter_vectors
        reader = lambda vectors: vectors.iter_vectors()
    store = IndexStore.open(data, writable=True)
    baseline = start()
    started = time.perf_counter()
    total = sum(len(ids) for segment in store._segments for ids, _ in reader(segment.vectors))
    seconds = time.perf_counter() - started
    extra = {"vectors_read": total}
    store.close()
else:
    from kosearch.store import IndexStore

    def ann_depth(store):
        import faiss
        index = store._segments[0].vectors.index
        inner = faiss.downcast_index(index.index)
        return int(inner.hnsw.efSearch) if isinstance(inner, faiss.IndexHNSW) else None
    store = IndexStore.open(data, writable=True)
    baseline = start()
    started = time.perf_counter()
    report = store.compact()
    seconds = time.perf_counter() - started
    extra = {"segments": [report.segments_before, report.segments_after],
             "efSearch": ann_depth(store),
             "recall_at_10": store.manifest["segments"][0]["recall_at_10"],
             "factory": store.manifest["segments"][0]["factory"]}
    store.close()
print(json.dumps({"baseline_mb": baseline, "peak_mb": rss_mb(), "seconds": seconds, **extra}))
"""


def _make_store(folder: Path, vectors: np.ndarray, segments: int) -> None:
    """A FAISS store of ``segments`` flat segments (one checkpoint each), written with this tree."""
    from kosearch.store import IndexStore, PendingChanges

    manifest = {"model": "bench/model", "fingerprint": "bench", "dimension": vectors.shape[1], "prompts": {}}
    store = IndexStore.create(folder, manifest)
    for number, rows in enumerate(np.array_split(np.arange(len(vectors)), segments), start=1):
        store.add_vectors(rows.astype(np.int64) + 1, vectors[rows])
        document = {"id": number, "root": "/bench", "path": f"d{number}.txt", "sha256": "x", "size": 1,
                    "encoding": "utf-8", "format": "txt", "sentences": len(rows), "indexed_at": "now"}
        sentences = [{"id": int(i) + 1, "document_id": number, "position": p, "text": "가", "line": 1,
                      "start": 0, "end": 1} for p, i in enumerate(rows)]
        store.checkpoint(PendingChanges(documents=[document], sentences=sentences, removed_documents=[]))
    store.close()


def _child(root: Path, task: str, data: Path, variant: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), task, str(data), variant],
        check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, required=True, help="source tree of the old code (a checkout of main)")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--segments", type=int, default=4, help="flat segments the compaction merges")
    parser.add_argument("--tasks", default="read,compact,build", help="read: one pass over a store's segments, as a merge reads them")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here too")
    parser.add_argument("--codes", default="old,new", help="which of the two trees to run (both, for a ratio)")
    parser.add_argument("--keep-pages", action="store_true",
                        help="also run the new compaction without dropping the sources' mapped pages")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.count, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    size_mb = vectors.nbytes / 2**20
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_merge_memory_") as temporary:
        work = Path(temporary)
        np.save(work / "vectors.npy", vectors)
        if "compact" in args.tasks or "read" in args.tasks:
            _make_store(work / "store", vectors, args.segments)
        del vectors
        variants = [("old", args.old.resolve(), "plain"), ("new", args.new.resolve(), "plain")]
        variants = [variant for variant in variants if variant[0] in args.codes.split(",")]
        for task in args.tasks.split(","):
            extra_variants = [("new-keep-pages", args.new.resolve(), "keep-pages")] if task == "compact" and args.keep_pages else []
            for label, root, variant in variants + extra_variants:
                data = work / ("store" if task == "read" else "vectors.npy")
                if task == "compact":
                    data = work / f"store-{label}"
                    shutil.copytree(work / "store", data)
                load_before = os.getloadavg()[0]
                result = _child(root, task, data, variant)
                if task == "compact":
                    shutil.rmtree(data)
                extra_mb = result["peak_mb"] - result["baseline_mb"]
                row = {"task": task, "code": label, "vectors_mb": round(size_mb, 1), **result,
                       "extra_mb": round(extra_mb, 1), "extra_x_vectors": round(extra_mb / size_mb, 2),
                       "peak_minus_vectors_mb": round(result["peak_mb"] - size_mb, 1),
                       "load": [load_before, os.getloadavg()[0]]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\nload: {os.getloadavg()}")
    print(f"{'task':8} {'code':14} {'vectors MB':>10} {'baseline MB':>11} {'peak MB':>8} {'extra/vectors':>13} "
          f"{'peak-vectors MB':>15} {'s':>7} result")
    for row in rows:
        result = f"efSearch {row.get('efSearch')}" + (f" recall {row['recall_at_10']}" if "recall_at_10" in row else "")
        print(f"{row['task']:8} {row['code']:14} {row['vectors_mb']:>10} {row['baseline_mb']:>11.0f} "
              f"{row['peak_mb']:>8.0f} {row['extra_x_vectors']:>13} {row['peak_minus_vectors_mb']:>15.0f} "
              f"{row['seconds']:>7.1f} {result}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
