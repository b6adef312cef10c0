"""Would the service gain from coalescing concurrent queries into one ``search_batch``? (issue 8)

The service answers every request on one worker thread, so N concurrent clients queue. If encoding
dominated a query, running the queued queries as one ``Index.search_batch`` (one encoder pass) would
raise throughput. This measures exactly that trade in one process: N queries by ``Index.search`` one
at a time vs the same N by ``Index.search_batch``, interleaved, median of ``--repeats`` groups, over an
index of ``--docs`` NSMC reviews (one per file, passage unit, hybrid mode, real bundled encoder).

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_search_batch.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nsmc_bench_data import read_reviews  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()

    from kosearch import Index

    reviews = [review for _, review in read_reviews(args.docs + max(args.sizes) * args.repeats)]
    work = Path(tempfile.mkdtemp(prefix="bench_search_batch_"))
    (work / "docs").mkdir()
    for number, review in enumerate(reviews[: args.docs]):
        (work / "docs" / f"{number:05d}.txt").write_text(review + "\n", encoding="utf-8")
    queries = reviews[args.docs :]
    with Index.create(work / "index") as index:
        index.add_folder(work / "docs")
    print(f"load average before: {os.getloadavg()}")
    with Index.open(work / "index") as index:
        index.search("검색", k=1)
        for size in args.sizes:
            one_by_one, batched = [], []
            for repeat in range(args.repeats):
                group = queries[repeat * size : (repeat + 1) * size]
                started = time.perf_counter()
                singles = [index.search(query, k=10) for query in group]
                one_by_one.append(time.perf_counter() - started)
                started = time.perf_counter()
                batch = index.search_batch(group, k=10)
                batched.append(time.perf_counter() - started)
                same = sum([h.sentence_id for h in a] == [h.sentence_id for h in b] for a, b in zip(singles, batch))
            single_s, batch_s = statistics.median(one_by_one), statistics.median(batched)
            print(
                f"N={size}: search x N {single_s:.2f} s, search_batch {batch_s:.2f} s, "
                f"batch speed-up {single_s / batch_s:.2f}x; same ranking in the last group: {same}/{size}"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
