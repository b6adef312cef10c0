"""kill -9 trials at random points of indexing, update, delete, upsert and compaction (issue 8, part 4).

Each trial (``tests/fault_injection.py``, the harness ``tests/test_faults.py`` uses too) starts a
workload in a child process and SIGKILLs it, in turn: after a random delay from the start of the
workload's stage; at a random occurrence of a random step of the store's commit protocol; or a
random delay (up to two mean gaps between commits) after a random commit of the stage, so that
random moments are spread over the whole stage even when the machine's load slows it. Then
the index it left must open, search (every hit a live row) and be consistent counted independently
of kosearch (vectors - tombstones = rows = manifest count, lexical rows = rows) with ``kosearch
check`` finding no error; the workload is run again to completion and must equal a clean build
(same documents and units, vectors within 1e-6, ``check`` finding nothing). A trial whose child
finished before the kill tested nothing: it is counted apart and does not count towards --trials.

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_faults.py --trials 100

Goal: 0 broken of >= 100 killed trials.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import fault_injection as faults  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="killed trials to run (at least)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="write every trial here")
    args = parser.parse_args()

    chance = random.Random(args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-faults-"))
    started = time.monotonic()
    load_before = os.getloadavg()
    print(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}  load {load_before[0]:.2f}  workdir {workdir}", flush=True)
    clean = {}
    for workload in faults.WORKLOADS:
        clean[workload] = faults.clean_build(workdir, workload)
        print(
            f"clean build {workload}: stage {clean[workload].stage_seconds:.2f} s, steps reached "
            f"{json.dumps(clean[workload].points)}", flush=True,
        )

    trials: list[faults.Trial] = []
    killed = 0
    attempts = 0
    while killed < args.trials and attempts < 3 * args.trials:
        workload = faults.WORKLOADS[attempts % len(faults.WORKLOADS)]
        build = clean[workload]
        commits = build.points.get("after-commit", 0)
        mode = (attempts // len(faults.WORKLOADS)) % 3
        if mode == 0 or not commits:
            trial = faults.run_trial(build, delay=chance.uniform(0, build.stage_seconds))
        elif mode == 1:
            point = chance.choice(sorted(build.points))
            trial = faults.run_trial(build, point=point, occurrence=chance.randint(1, build.points[point]))
        else:  # a random moment between two commits, wherever in the stage
            gap = build.stage_seconds / commits
            trial = faults.run_trial(
                build, point="after-commit", occurrence=chance.randint(1, commits), delay=chance.uniform(0, 2 * gap)
            )
        attempts += 1
        killed += trial.killed
        trials.append(trial)
        flag = "BROKEN " + "; ".join(trial.problems) if trial.broken else ("ok" if trial.killed else "finished before the kill")
        print(f"{attempts:4d} {workload:8s} {trial.fault:28s} {trial.state_after_kill:22s} {trial.seconds:5.1f} s  {flag}", flush=True)

    load_after = os.getloadavg()
    print()
    print(
        f"{'workload':10s} {'killed':>7s} {'at a step':>9s} {'after a commit':>14s} {'after the start':>15s} "
        f"{'not killed':>10s} {'broken':>7s} {'states left':>11s}"
    )
    rows = []
    for workload in faults.WORKLOADS:
        mine = [trial for trial in trials if trial.workload == workload]
        hit = [trial for trial in mine if trial.killed]
        row = {
            "workload": workload,
            "killed": len(hit),
            "at_step": sum(trial.fault.startswith("point") and "+" not in trial.fault for trial in hit),
            "after_commit": sum(trial.fault.startswith("point") and "+" in trial.fault for trial in hit),
            "after_start": sum(trial.fault.startswith("delay") for trial in hit),
            "not_killed": len(mine) - len(hit),
            "broken": sum(trial.broken for trial in mine),
            "states": len(collections.Counter(trial.state_after_kill for trial in hit)),
        }
        rows.append(row)
        print(
            f"{workload:10s} {row['killed']:7d} {row['at_step']:9d} {row['after_commit']:14d} {row['after_start']:15d} "
            f"{row['not_killed']:10d} {row['broken']:7d} {row['states']:11d}"
        )
    broken = sum(trial.broken for trial in trials)
    print(
        f"\ntrials run (killed): {killed}; broken: {broken} (goal 0 of >= {args.trials}); finished before the kill: "
        f"{len(trials) - killed}; {time.monotonic() - started:.0f} s; load {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "command": " ".join(sys.argv),
                    "load_before": load_before, "load_after": load_after,
                    "killed": killed, "broken": broken, "per_workload": rows,
                    "trials": [
                        {"workload": t.workload, "fault": t.fault, "killed": t.killed, "state": t.state_after_kill,
                         "problems": t.problems, "seconds": round(t.seconds, 2)}
                        for t in trials
                    ],
                },
                ensure_ascii=False, indent=1,
            )
        )
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
