"""Fault injection: run a workload against an index in a child process, SIGKILL it, check what is left.

One harness for ``tests/test_faults.py`` (a fast subset) and ``bench/bench_faults.py`` (hundreds of
trials). A *workload* is a short script of writes that a user makes: indexing a folder, updating it
after edits, removing files and records, upserting records, compacting (``WORKLOADS``). Each is
idempotent towards its final state: run again from whatever a kill left, it ends where a run that
was never interrupted ends, which is what "re-running equals a clean build" means.

A *trial* starts the workload in a child process and kills it with SIGKILL (what ``kill -9`` and the
kernel's OOM killer send: no handler, no cleanup), either

- after a random delay into one stage of the workload (``delay``), or
- at a named step of the store's protocol (``point``), the ``occurrence``-th time the child reaches
  it in that stage, or a random ``delay`` after it (from a timer thread in the child: the kill then
  falls wherever the work between two commits happens to be, spread over the whole stage). The child wraps the store's functions to stop itself there, so nothing in
  kosearch carries a test hook. The steps (``POINTS``), in the order a commit passes them:
  ``rows-written`` (rows inserted, transaction open), ``tombstones-written`` (deletions recorded,
  uncommitted), ``segment-tmp-written`` (segment file written and fsynced, not yet renamed),
  ``segment-renamed`` (in place, not yet committed), ``postings-written`` (the checkpoint's or the
  merge's BM25 postings file durably in place, not yet named by a commit), ``before-commit``, ``after-commit`` (committed,
  old files not yet removed) and ``file-removed`` (the first stale file removed, others not yet).

After the kill the index must open (or be a creation that never finished), search, and be
consistent when counted independently of kosearch's own checks: vectors in the segment files
minus tombstones = sentence rows = the manifest's count, one lexical row per sentence row, the
units of the postings files minus tombstones = sentence rows, every
search hit a live row; and ``kosearch check`` must find no error. Then the workload runs again to
completion, and the index must equal a clean build (``snapshot``): the same documents and units,
the same vectors to 1e-6 (the stub encoder is deterministic), and ``check`` must find nothing at all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

WORKLOADS = ("index", "update", "delete", "upsert", "compact")
STAGES = {"index": "index", "update": "update", "delete": "delete", "upsert": "upsert", "compact": "compact"}
"""The stage of each workload that its kills aim at (others prepare it)."""
POINTS = (
    "rows-written", "tombstones-written", "segment-tmp-written", "segment-renamed", "postings-written",
    "before-commit", "after-commit", "file-removed",
)
QUERIES = ("3번 문서의 5번째 문장", "날씨가 맑다", "기록 묶음", "고친 문서")
TOLERANCE = 1e-6


# -- the child: workloads and kill points -----------------------------------------------------------


def _write_docs(docs: Path, version: int) -> None:
    """Make ``docs`` hold exactly version 1 or 2 of a small corpus (version 2: 3 files edited, 2 gone, 2 new)."""
    docs.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, str] = {}
    for number in range(10):
        lines = [f"{number}번 문서의 {line}번째 문장입니다. 날씨가 맑다." for line in range(8)]
        if version == 2 and number in (1, 4, 7):
            lines = [f"고친 {number}번 문서의 {line}번째 줄이다. 비가 온다." for line in range(5 + number)]
        wanted[f"doc{number:02d}.txt"] = "\n".join(lines) + "\n"
    if version == 2:
        for gone in ("doc02.txt", "doc05.txt"):
            del wanted[gone]
        for new in (10, 11):
            wanted[f"doc{new:02d}.txt"] = "\n".join(f"새 {new}번 문서의 {line}번째 문장." for line in range(6)) + "\n"
    for path in docs.iterdir():
        if path.name not in wanted:
            path.unlink()
    for name, text in wanted.items():
        path = docs / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def _records(prefix: str, count: int, tag: str = "") -> tuple[list[str], list[str], list[dict]]:
    ids = [f"{prefix}{i}" for i in range(count)]
    texts = [f"{tag}{prefix} 기록 묶음의 {i}번 기록이다. 둘째 문장도 있다." for i in range(count)]
    return ids, texts, [{"group": i % 3} for i in range(count)]


def _setup(name: str, idx, docs: Path) -> None:
    """What a workload's stage starts from (made once per harness, then copied for each trial)."""
    if name in ("update", "delete", "compact"):
        _write_docs(docs, 1)
        idx.add_folder(docs, unit="sentence", checkpoint_sentences=6 if name == "compact" else 40)
    if name == "delete":
        ids, texts, fields = _records("r", 15)
        idx.upsert_texts(texts, fields, ids=ids)
    if name == "compact":
        idx.remove(["doc02.txt", "doc08.txt"])


def _stage(name: str, idx, docs: Path) -> None:
    """The writes a trial kills; run again, they finish the work from wherever the kill left it."""
    if name == "index":
        _write_docs(docs, 1)
        idx.add_folder(docs, unit="sentence", checkpoint_sentences=6)
    elif name == "update":
        _write_docs(docs, 2)
        idx.add_folder(docs, unit="sentence", checkpoint_sentences=6)
    elif name == "delete":
        ids = [f"r{i}" for i in range(15)]
        idx.remove(["doc01.txt"])
        idx.remove(["doc03.txt", "doc06.txt"])
        idx.delete(ids=ids[:4])
        idx.delete(ids=ids[4:6])
        idx.delete(where={"group": 1})
        idx.remove(["doc09.txt"])
    elif name == "upsert":
        idx.store.record_unit("sentence")
        for batch in range(10):
            ids, texts, fields = _records(f"b{batch}-", 5)
            idx.upsert_texts(texts, fields, ids=ids)
            if batch % 3 == 2:
                idx.delete(ids=[f"b{batch - 1}-{i}" for i in range(5)])
            if batch == 6:
                ids, texts, fields = _records("b0-", 5, tag="고친 ")
                idx.upsert_texts(texts, fields, ids=ids)
    elif name == "compact":
        idx.compact()
        for round_ in range(4):
            ids, texts, fields = _records(f"c{round_}-", 4)
            idx.upsert_texts(texts, fields, ids=ids)
            idx.remove([f"doc0{round_ + 3}.txt"])
            idx.compact()
    else:
        raise ValueError(f"unknown workload {name!r}")


def _run_workload(name: str, phase: str, index: Path, docs: Path, stage) -> None:
    import kosearch
    from kosearch.documents.split import get_kiwi
    from kosearch_testing import HashingEncoder

    get_kiwi()  # loading the analyzer takes seconds: a random delay should fall on the writes, not on it
    with kosearch.Index.open_or_create(index, HashingEncoder()) as idx:
        if phase in ("setup", "all"):
            stage("setup")
            _setup(name, idx, docs)
        if phase in ("stage", "all"):
            stage(STAGES[name])
            _stage(name, idx, docs)
    stage("done")


def _install_kill_points(reached) -> None:
    """Wrap the store's steps so that ``reached(point)`` runs at each (see the module docstring)."""
    import pathlib

    from kosearch.store import durable
    from kosearch.store.metadata import MetadataStore
    from kosearch.store.segments import REMOVABLE_FILE

    def after(function, point):
        def wrapped(*args, **kwargs):
            result = function(*args, **kwargs)
            reached(point)
            return result
        return wrapped

    replace = durable.replace_durably

    def replace_durably(temporary, path):
        reached("segment-tmp-written")
        replace(temporary, path)
        reached("segment-renamed")

    durable.replace_durably = replace_durably
    from kosearch.store.postings import SegmentPostings

    SegmentPostings.save = after(SegmentPostings.save, "postings-written")  # its file, before the commit names it
    MetadataStore.insert_documents = after(MetadataStore.insert_documents, "rows-written")
    MetadataStore.insert_tombstones = after(MetadataStore.insert_tombstones, "tombstones-written")
    commit = MetadataStore.commit

    def commit_wrapped(self):
        reached("before-commit")
        commit(self)
        reached("after-commit")

    MetadataStore.commit = commit_wrapped
    unlink = pathlib.Path.unlink

    def unlink_wrapped(self, missing_ok=False):
        unlink(self, missing_ok=missing_ok)
        if REMOVABLE_FILE.fullmatch(self.name):
            reached("file-removed")

    pathlib.Path.unlink = unlink_wrapped


def child_main(argv: list[str]) -> None:
    """``python fault_injection.py WORKLOAD PHASE INDEX DOCS`` (PHASE: setup, stage or all); environment: ``FAULT_STAGES`` (a file the
    stages are appended to), ``FAULT_POINT`` (``stage:point:occurrence`` to die at, or
    ``stage:point:occurrence:seconds`` to die that long after it), ``FAULT_COUNTS``
    (a file to write how often each point was reached, per stage)."""
    workload, phase, index, docs = argv[0], argv[1], Path(argv[2]), Path(argv[3])
    stages_file = os.environ.get("FAULT_STAGES")
    target = os.environ.get("FAULT_POINT")
    counts_file = os.environ.get("FAULT_COUNTS")
    current = ["start"]
    counts: dict[str, dict[str, int]] = {}
    aim = None
    timer = None
    if target:
        stage_name, point, occurrence, *after = target.split(":")
        aim = (stage_name, point, int(occurrence))
        timer = float(after[0]) if after else None

    def stage(name: str) -> None:
        current[0] = name
        if stages_file:
            with open(stages_file, "a") as handle:
                handle.write(f"{name} {time.monotonic()}\n")

    def reached(point: str) -> None:
        seen = counts.setdefault(current[0], {})
        seen[point] = seen.get(point, 0) + 1
        if aim is not None and aim == (current[0], point, seen[point]):
            if timer is None:
                os.kill(os.getpid(), signal.SIGKILL)
            # SIGKILL from a timer thread: the process dies wherever its main thread then is.
            killer = threading.Timer(timer, os.kill, (os.getpid(), signal.SIGKILL))
            killer.daemon = True
            killer.start()

    if target or counts_file:
        _install_kill_points(reached)
    _run_workload(workload, phase, index, docs, stage)
    if counts_file:
        Path(counts_file).write_text(json.dumps(counts))


# -- the parent: trials -----------------------------------------------------------------------------


@dataclass
class CleanBuild:
    """A workload run once without faults (what every trial must end equal to), and the state its
    stage starts from, which each trial copies into ``run_dir``: the same path every time, since an
    index records the absolute path of the folders it indexed."""

    workload: str
    snapshot: dict
    stage_seconds: float
    """How long the stage took in the clean build (random delays are drawn up to this)."""
    points: dict[str, int]
    """How often the stage reaches each protocol step (what deterministic kills can aim at)."""
    template: Path
    run_dir: Path


@dataclass
class Trial:
    workload: str
    fault: str
    """``point:NAME@N`` or ``delay:SECONDS``."""
    killed: bool
    """Whether the child died by the kill (False: it finished first, so nothing was tested)."""
    problems: list[str] = field(default_factory=list)
    state_after_kill: str = ""
    seconds: float = 0.0

    @property
    def broken(self) -> bool:
        return bool(self.problems)


def _child_command(workload: str, phase: str, folder: Path) -> list[str]:
    return [sys.executable, str(TESTS / "fault_injection.py"), workload, phase, str(folder / "idx"), str(folder / "docs")]


def _child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAULT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def clean_build(workdir: Path, workload: str) -> CleanBuild:
    """Run ``workload`` whole once (the reference), and its setup once (the trials' starting point)."""
    clean, run_dir, template = workdir / f"{workload}-clean", workdir / f"{workload}-run", workdir / f"{workload}-template"
    for folder in (clean, run_dir, template):
        shutil.rmtree(folder, ignore_errors=True)
    clean.mkdir(parents=True)
    stages, counts = clean / "stages", clean / "counts.json"
    subprocess.run(
        _child_command(workload, "all", clean), env=_child_env(FAULT_STAGES=str(stages), FAULT_COUNTS=str(counts)),
        check=True, timeout=600,
    )
    marks = {line.split()[0]: float(line.split()[1]) for line in stages.read_text().splitlines()}
    target = STAGES[workload]
    run_dir.mkdir(parents=True)
    subprocess.run(_child_command(workload, "setup", run_dir), env=_child_env(), check=True, timeout=600)
    shutil.copytree(run_dir, template)
    return CleanBuild(
        workload, snapshot(clean / "idx"), marks["done"] - marks[target],
        json.loads(counts.read_text()).get(target, {}), template, run_dir,
    )


def run_trial(clean: CleanBuild, *, point: str | None = None, occurrence: int = 1, delay: float | None = None) -> Trial:
    """One kill in ``clean``'s stage, the checks after it, the re-run and the comparison with the clean build.

    ``point``: at that protocol step (its ``occurrence``-th time in the stage), or ``delay`` seconds
    after it when both are given; ``delay`` alone: that long after the stage starts.

    A broken trial's folder is kept (``clean.run_dir`` until the next trial) for a look.
    """
    started = time.monotonic()
    workload, target, folder = clean.workload, STAGES[clean.workload], clean.run_dir
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(clean.template, folder)
    index, stages = folder / "idx", folder / "stages"
    stages.unlink(missing_ok=True)
    if point is not None:
        fault = f"point:{point}@{occurrence}" + ("" if delay is None else f"+{delay:.3f}")
        env = _child_env(FAULT_POINT=f"{target}:{point}:{occurrence}" + ("" if delay is None else f":{delay}"))
        child = subprocess.run(_child_command(workload, "stage", folder), env=env, timeout=600, capture_output=True, text=True)
        returncode, stderr = child.returncode, child.stderr
    else:
        assert delay is not None
        fault = f"delay:{delay:.3f}"
        child = subprocess.Popen(
            _child_command(workload, "stage", folder), env=_child_env(FAULT_STAGES=str(stages)),
            stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 600
        while child.poll() is None and time.monotonic() < deadline and not _stage_reached(stages, target):
            time.sleep(0.002)
        time.sleep(delay)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        stderr = child.communicate()[1]
        returncode = child.returncode
    trial = Trial(workload, fault, killed=returncode == -signal.SIGKILL)
    if returncode not in (0, -signal.SIGKILL):
        trial.problems.append(f"the child failed on its own (exit {returncode}): {stderr.strip()[-600:]}")
    if trial.killed:
        trial.state_after_kill, problems = inspect_after_kill(index)
        trial.problems.extend(f"after the kill: {problem}" for problem in problems)
        rerun = subprocess.run(
            _child_command(workload, "stage", folder), env=_child_env(), timeout=600, capture_output=True, text=True
        )
        if rerun.returncode != 0:
            trial.problems.append(f"the re-run failed (exit {rerun.returncode}): {rerun.stderr.strip()[-600:]}")
        else:
            trial.problems.extend(f"after the re-run: {p}" for p in consistency_problems(index, strict=True))
            trial.problems.extend(f"re-run vs clean build: {p}" for p in compare(snapshot(index), clean.snapshot))
    trial.seconds = time.monotonic() - started
    return trial


def _stage_reached(stages: Path, name: str) -> bool:
    try:
        return any(line.split()[0] == name for line in stages.read_text().splitlines() if line)
    except FileNotFoundError:
        return False


# -- checks -----------------------------------------------------------------------------------------


def inspect_after_kill(index: Path) -> tuple[str, list[str]]:
    """What the kill left (``absent``, ``unfinished creation``, ``generation N``) and what is wrong with it."""
    import kosearch
    from kosearch.errors import IndexNotFoundError

    if not (index / "metadata.sqlite").is_file():
        return "absent", []
    try:
        kosearch.Index.open(index).close()
    except IndexNotFoundError as error:
        if "never finished" in str(error):
            return "unfinished creation", []
        return "unopenable", [f"open failed: {error}"]
    except Exception as error:  # noqa: BLE001 - any other error is what this harness looks for
        return "unopenable", [f"open failed: {type(error).__name__}: {error}"]
    with sqlite3.connect(index / "metadata.sqlite") as db:
        generation = json.loads(db.execute("select value from manifest where key = 'generation'").fetchone()[0])
    return f"generation {generation}", consistency_problems(index, strict=False)


def consistency_problems(index: Path, *, strict: bool) -> list[str]:
    """Count the index's parts independently of kosearch, search it, and run ``kosearch check``.

    ``strict``: ``check`` must find nothing at all (after a completed run), not only no error (a kill
    may leave stale files and unfinished documents, which are warnings).
    """
    import faiss

    import kosearch
    from kosearch_testing import HashingEncoder

    problems: list[str] = []
    db = sqlite3.connect(index / "metadata.sqlite")
    try:
        manifest = {key: json.loads(value) for key, value in db.execute("select key, value from manifest")}
        rows = dict(db.execute("select id, text from sentences"))
        tombstones = {row[0] for row in db.execute("select id from tombstones")}
        postings = {row[0] for row in db.execute("select rowid from lexical")}
        documents = {row[0] for row in db.execute("select id from documents")}
        orphans = db.execute("select count(*) from sentences where document_id not in (select id from documents)").fetchone()[0]
    finally:
        db.close()
    vector_ids: list[int] = []
    for entry in manifest.get("segments", []):
        stored = faiss.read_index(str(index / f"{entry['name']}.faiss"))
        ids = faiss.vector_to_array(stored.id_map).tolist()
        if len(ids) != entry["count"]:
            problems.append(f"{entry['name']} holds {len(ids)} vectors, its entry says {entry['count']}")
        vector_ids.extend(ids)
    live = set(vector_ids) - tombstones
    if "lexical_segments" in manifest:
        from kosearch.store.postings import SegmentPostings

        held: list[int] = []
        for entry in manifest["lexical_segments"]:
            held.extend(SegmentPostings.load(index / f"{entry['name']}.lexical.npz").ids.tolist())
        if len(held) != len(set(held)) or set(held) - tombstones != set(rows):
            problems.append(f"the postings files hold {len(set(held) - tombstones)} live units for {len(rows)} sentence rows")
    if len(vector_ids) != len(set(vector_ids)):
        problems.append("a vector id is in two segments")
    if live != set(rows):
        problems.append(f"{len(live)} live vectors but {len(rows)} sentence rows ({len(live ^ set(rows))} ids differ)")
    if not tombstones <= set(vector_ids):
        problems.append("a tombstone names no vector")
    if manifest["sentences"] != len(rows):
        problems.append(f"the manifest counts {manifest['sentences']} sentences, the table holds {len(rows)}")
    if "lexical" in manifest and postings != set(rows):
        problems.append(f"{len(postings)} lexical rows for {len(rows)} sentence rows")
    if orphans:
        problems.append(f"{orphans} sentence rows of no document")
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        if len(idx) != len(rows) or idx.info().documents != len(documents):
            problems.append(f"the index says {len(idx)} units, the table holds {len(rows)}")
        for query in QUERIES:
            for mode in ("dense", "lexical", "hybrid") if "lexical" in manifest else ("dense",):
                for hit in idx.search(query, k=10, mode=mode):
                    if rows.get(hit.sentence_id) != hit.text:
                        problems.append(f"{mode} hit {hit.sentence_id} ({hit.text!r}) is not a live row")
    report = kosearch.Index.check(index)
    shown = report.findings if strict else report.errors
    problems.extend(f"kosearch check: {finding.severity}: {finding.message}" for finding in shown)
    return problems


def snapshot(index: Path) -> dict:
    """Documents, units and vectors keyed by what a rebuild keeps (path or record id, position), not by id."""
    import kosearch
    from kosearch_testing import HashingEncoder

    db = sqlite3.connect(index / "metadata.sqlite")
    try:
        documents = sorted(
            (record_id or path, sha256, units, format_)
            for record_id, path, sha256, units, format_ in db.execute(
                "select record_id, path, sha256, sentences, format from documents"
            )
        )
        units = {}
        for row in db.execute(
            "select s.id, coalesce(d.record_id, d.path), s.position, s.text, s.line, s.start, s.end, s.page, s.fields "
            "from sentences s join documents d on d.id = s.document_id"
        ):
            units[row[0]] = row[1:]
    finally:
        db.close()
    vectors = {}
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        for ids, batch in idx.store.iter_vectors():
            for unit_id, vector in zip(ids.tolist(), batch):
                vectors[units[unit_id][:2]] = vector
    return {"documents": documents, "units": sorted(units.values()), "vectors": vectors}


def compare(found: dict, clean: dict) -> list[str]:
    problems = []
    if found["documents"] != clean["documents"]:
        problems.append(f"documents differ: {sorted(set(found['documents']) ^ set(clean['documents']))[:3]}")
    if found["units"] != clean["units"]:
        problems.append(f"units differ: {sorted(set(found['units']) ^ set(clean['units']))[:3]}")
    if found["vectors"].keys() != clean["vectors"].keys():
        problems.append("vectors of different units")
    else:
        worst = max((float(np.abs(found["vectors"][key] - clean["vectors"][key]).max()) for key in clean["vectors"]), default=0.0)
        if worst > TOLERANCE:
            problems.append(f"vectors differ by up to {worst:.2e}")
    return problems


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(TESTS)]
    child_main(sys.argv[1:])
