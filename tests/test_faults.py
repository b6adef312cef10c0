"""kill -9 during indexing, updates, deletes, upserts and compaction: the fast subset of the fault suite.

Each trial (``fault_injection.run_trial``) kills a child process running a workload, checks that the
index it left opens, searches and is consistent counted independently of kosearch (and that
``kosearch check`` finds no error), then runs the workload again and checks that the result equals
a clean build, vectors included. Deterministic kills stop the child at each step of the store's
commit protocol; a few random ones stop it anywhere. ``bench/bench_faults.py`` runs hundreds.
"""

from __future__ import annotations

import random

import pytest

import fault_injection as faults

pytestmark = pytest.mark.slow  # every trial starts two Python processes that load Kiwi

# (workload, protocol step, occurrence within the workload's stage): every step at least once, and
# the steps of the automatic tier merges inside indexing (file-removed) and of explicit compaction.
KILL_POINTS = [
    ("index", "rows-written", 3),
    ("index", "segment-tmp-written", 4),
    ("index", "segment-renamed", 10),
    ("index", "postings-written", 3),
    ("index", "file-removed", 1),
    ("update", "tombstones-written", 2),
    ("update", "before-commit", 3),
    ("update", "after-commit", 5),
    ("delete", "tombstones-written", 3),
    ("delete", "after-commit", 2),
    ("upsert", "rows-written", 20),
    ("upsert", "segment-renamed", 5),
    ("compact", "segment-tmp-written", 1),
    ("compact", "postings-written", 1),
    ("compact", "before-commit", 1),
    ("compact", "file-removed", 3),
]


@pytest.fixture(scope="module")
def clean_builds(tmp_path_factory):
    """Each workload's clean build and starting state, made on first use."""
    workdir = tmp_path_factory.mktemp("faults")
    built: dict[str, faults.CleanBuild] = {}

    def get(workload: str) -> faults.CleanBuild:
        if workload not in built:
            built[workload] = faults.clean_build(workdir, workload)
        return built[workload]

    return get


def test_the_kill_points_cover_every_protocol_step_and_workload():
    assert {point for _, point, _ in KILL_POINTS} == set(faults.POINTS)
    assert {workload for workload, _, _ in KILL_POINTS} == set(faults.WORKLOADS)


@pytest.mark.parametrize("workload,point,occurrence", KILL_POINTS, ids=[f"{w}-{p}-{n}" for w, p, n in KILL_POINTS])
def test_a_kill_at_a_protocol_step_leaves_a_consistent_index_and_a_rerun_equals_a_clean_build(
    clean_builds, workload, point, occurrence
):
    clean = clean_builds(workload)
    assert clean.points.get(point, 0) >= occurrence, f"the {workload} stage reaches {point} only {clean.points}"
    trial = faults.run_trial(clean, point=point, occurrence=occurrence)
    assert trial.killed, trial
    assert trial.problems == [], trial


def test_kills_at_random_moments_of_every_workload(clean_builds):
    chance = random.Random(8)
    trials = []
    for workload in faults.WORKLOADS:
        clean = clean_builds(workload)
        trials.append(faults.run_trial(clean, delay=chance.uniform(0, 0.8 * clean.stage_seconds)))
        # A random moment after a random commit, wherever the stage then is.
        commits = clean.points["after-commit"]
        trials.append(
            faults.run_trial(
                clean, point="after-commit", occurrence=chance.randint(1, commits),
                delay=chance.uniform(0, clean.stage_seconds / commits),
            )
        )
    assert [trial for trial in trials if trial.broken] == []
    assert sum(trial.killed for trial in trials) >= 6, trials  # most land before the stage ends
