"""Where the writer's bytes go: SQLite's temp store and page cache during indexing, default vs tuned.

``bench_segments.py`` found that indexing ~1M units passes ~10x the final index size through
``write()`` (``wchar``) while only ~2x reaches storage (``write_bytes``). The suspect: a writer keeps
one SQLite transaction open for 100,000 units, and each batch inside it is a SAVEPOINT, whose
statement journal (the original of every page the batch changes) goes to a temporary file; and
SQLite's default page cache (2 MB) cannot hold the transaction's dirty pages (the sentence rows, the
index on ``sentences.text``, the FTS5 postings), so it spills them to the WAL again and again
before the commit. ``strace -f -y -e trace=write,pwrite64`` of a 200k build (bench_segments' build
phase) put 1.65 GB of its 2.68 GB ``wchar`` in SQLite's temporary files (/var/tmp/etilqs_*), 0.66 GB
in the WAL, 0.31 GB in segment files, 0.06 GB in metadata.sqlite. This runs the same ``build``
phase as ``bench_segments.py`` (same corpus files, stand-ins and timers) with the writer's
connection at SQLite's defaults, with ``PRAGMA temp_store=MEMORY``, and with that plus
``cache_size`` of ``--cache-mib``, each in a fresh process, in the order default, memory,
memory + cache, memory + cache, memory, default.

Usage: OMP_NUM_THREADS=1 nice -n 10 python bench/bench_sqlite_cache.py --units 200000 --cache-mib 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

CHILD = """
import json, sys
sys.path[:0] = [{root!r}, {bench!r}]
from pathlib import Path
from kosearch.store import metadata
temp_memory, cache_mib = sys.argv[2] == "memory", int(sys.argv[3])
original = metadata.MetadataStore.__init__
def tuned(self, path, *, shared=False, writer=False):
    original(self, path, shared=shared)  # SQLite's defaults; the product's writer settings are one of the configs
    if temp_memory:
        self.db.execute("PRAGMA temp_store=MEMORY")
    if cache_mib:
        self.db.execute(f"PRAGMA cache_size=-{{cache_mib * 1024}}")
metadata.MetadataStore.__init__ = tuned
import bench_segments
result = bench_segments.phase_build(Path(sys.argv[1]))
result.pop("files"); result.pop("segments")
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--cache-mib", type=int, default=256)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kosearch-bench-sqlite-cache"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import bench_segments

    args.work.mkdir(parents=True, exist_ok=True)
    results = {"command": " ".join(sys.argv), "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               "corpus": bench_segments.prepare(args.work, args.units), "runs": []}
    child = CHILD.format(root=str(ROOT), bench=str(ROOT / "bench"))
    configs = [("file", 0), ("memory", 0), ("memory", args.cache_mib)]
    for temp_store, cache in configs + configs[::-1]:
        load = bench_segments.machine_load()
        run = subprocess.run([sys.executable, "-c", child, str(args.work), temp_store, str(cache)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if run.returncode:
            raise SystemExit(run.stderr[-3000:])
        data = json.loads(run.stdout.strip().splitlines()[-1])
        data.update(temp_store=temp_store, cache_mib=cache or "default (2 MB)", load_at_start=load)
        results["runs"].append(data)
        print(json.dumps({k: data[k] for k in ("temp_store", "cache_mib", "units", "wall_s", "store_add_sentences_s",
                                              "wchar", "write_bytes", "final_bytes", "peak_rss", "load_at_start")}),
              flush=True)
    results["load_at_end"] = bench_segments.machine_load()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
