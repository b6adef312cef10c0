"""Reproduce the reader race: readers opening and searching an index while a writer keeps committing.

One writer process updates a small document folder in a loop (one file rewritten per round, so
each ``add_folder`` removes a document's rows and adds new ones, then checkpoints), while reader
processes each open the index, search it (k=5, with context), ask for ``info()`` and close it, N
times, and also keep one index open for the whole run and search it between opens. Every error
and every short result (fewer than k hits from an index that always holds more than k sentences)
is a failure: a healthy index must never show either.

Run it on this checkout, and on another one for a before/after (``--code`` is put first on the
child processes' PYTHONPATH), e.g.::

    git archive 91b034c kosearch | tar -x -C /tmp/orig
    python bench/bench_reader_race.py --opens 2000 --code /tmp/orig
    python bench/bench_reader_race.py --opens 2000

Encoding uses the tests' HashingEncoder (no model), so the run measures the store, not a model.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
K = 5

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import kosearch
    from kosearch_testing import HashingEncoder

    index, docs, ready, stop = map(Path, sys.argv[1:5])
    def write(number, round_):
        (docs / f"doc{number:02d}.txt").write_text(
            "\\n".join(f"{round_}회차 {number}번 문서의 {line}번째 문장입니다." for line in range(8)) + "\\n",
            encoding="utf-8",
        )
    docs.mkdir(parents=True, exist_ok=True)
    for number in range(12):
        write(number, 0)
    commits = 0
    with kosearch.Index.open_or_create(index, HashingEncoder()) as idx:
        idx.add_folder(docs)
        ready.write_text("ready")
        round_ = 1
        while not stop.exists():
            write(round_ % 12, round_)
            idx.add_folder(docs)
            commits += 1
            round_ += 1
    print(commits)
    """
)

READER = textwrap.dedent(
    """
    import json, sys, time
    import kosearch
    from kosearch_testing import HashingEncoder

    index, opens, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    encoder = HashingEncoder()
    failures, held_failures = [], []
    held = kosearch.Index.open(index, encoder)
    started = time.perf_counter()
    for number in range(opens):
        try:
            with kosearch.Index.open(index, encoder) as idx:
                hits = idx.search(f"{number % 12}번 문서의 문장", k=k, context=1)
                info = idx.info()
                if len(hits) != k:
                    failures.append(f"short result: {len(hits)} of {k} hits")
                elif info.sentences < k:
                    failures.append(f"info: {info.sentences} sentences")
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
        try:
            hits = held.search("문서의 문장", k=k, context=1)
            if len(hits) != k:
                held_failures.append(f"short result: {len(hits)} of {k} hits")
        except Exception as error:
            held_failures.append(f"{type(error).__name__}: {error}")
    seconds = time.perf_counter() - started
    held.close()
    assert kosearch.__file__.startswith(sys.argv[4]), kosearch.__file__
    print(json.dumps({"opens": opens, "failures": failures, "held_failures": held_failures, "seconds": seconds}))
    """
)


def kind(message: str) -> str:
    """A failure message with its numbers and paths blurred, so equal failures group together."""
    message = message.splitlines()[0]
    message = re.sub(r"/\S+", "PATH", message)
    return re.sub(r"\d+", "N", message)[:120]


def run(code: Path, opens: int, readers: int) -> dict:
    # The children run in the scratch folder: ``python -c`` puts its working directory first on
    # sys.path, which must not be a checkout other than ``code``.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(TESTS)])}
    with tempfile.TemporaryDirectory(prefix="kosearch-race-") as scratch:
        scratch_path = Path(scratch)
        index, docs = scratch_path / "idx", scratch_path / "docs"
        ready, stop = scratch_path / "ready", scratch_path / "stop"
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(index), str(docs), str(ready), str(stop)],
            env=env, cwd=scratch, stdout=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 120
        while not ready.exists():
            if writer.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the writer did not start")
            time.sleep(0.05)
        per_reader = -(-opens // readers)
        children = [
            subprocess.Popen(
                [sys.executable, "-c", READER, str(index), str(per_reader), str(K), str(code)],
                env=env, cwd=scratch, stdout=subprocess.PIPE, text=True,
            )
            for _ in range(readers)
        ]
        results = [json.loads(child.communicate(timeout=1800)[0]) for child in children]
        stop.write_text("stop")
        commits = int(writer.communicate(timeout=120)[0].strip() or 0)
    failures = [f for r in results for f in r["failures"]]
    held = [f for r in results for f in r["held_failures"]]
    return {
        "code": str(code),
        "opens": sum(r["opens"] for r in results),
        "failures": len(failures),
        "failure_kinds": dict(collections.Counter(kind(f) for f in failures).most_common()),
        "held_searches": sum(r["opens"] for r in results),
        "held_failures": len(held),
        "held_failure_kinds": dict(collections.Counter(kind(f) for f in held).most_common()),
        "writer_commits": commits,
        "reader_seconds": max(r["seconds"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=2000, help="opens in all, split over the readers")
    parser.add_argument("--readers", type=int, default=2, help="reader processes")
    parser.add_argument("--code", type=Path, default=ROOT, help="kosearch checkout to run (default: this one)")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    result = run(args.code.resolve(), args.opens, args.readers)
    print(
        f"{result['code']}: {result['opens']} opens under a writer that committed "
        f"{result['writer_commits']} times: {result['failures']} failed; searches on an index held "
        f"open: {result['held_searches']}, {result['held_failures']} failed"
    )
    for label in ("failure_kinds", "held_failure_kinds"):
        for message, count in result[label].items():
            print(f"  {label.split('_')[0]:>7} {count:5d}  {message}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
