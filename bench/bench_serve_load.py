"""``kosearch serve`` under load while another process re-indexes the same index (issue 8, part 3).

What runs, all on 127.0.0.1:

- an index over ``--docs`` NSMC reviews, **one review per file** (so one file is one document and,
  with the default passage unit, one unit: reviews are shorter than a passage), built with the real
  bundled encoder;
- ``python -m kosearch serve`` on a free port (``OMP_NUM_THREADS=1``), in its own process;
- a **re-indexer** process (this script with ``_reindex``) that loops: add ``--churn`` new files,
  delete the files added ``--lifetime`` rounds earlier, rewrite ``--edits`` files in place with a new
  review, run ``Index.add_folder`` on the folder (the code path of ``kosearch index``) and, every
  ``--compact-every`` rounds, ``Index.compact``. It logs each round: the wall-clock times just
  before the commit began and just after it returned, and every (path, text) it added or removed;
- clients: phases of N = 1, 8, 32 concurrent HTTP clients (httpx on asyncio) sending
  ``GET /search?q=...&k=10`` (default mode: hybrid), each client bounded by ``--requests`` requests
  and ``--seconds`` seconds; before and after them, the same query stream through the Python API
  (``kosearch.Index.search`` in this process, after ``Index.refresh()`` as the service does).

The queries: half are other NSMC reviews (never indexed); half are *probes*: the exact text of a
review the re-indexer removed (or rewrote) in its last rounds, or of one it just added. A probe of a
removed review is the strongest test of stale results: if the removed row were still searchable, it
would be the top hit of both the dense and the lexical signal.

**Errors**: any response that is not 200, and any exception (connection error, timeout).

**Hits at deleted rows** (checkable from the re-indexer's log): a hit's ``path`` and ``text`` name one
version of one file (each file version holds a different review). That version was live from the
start of the round that wrote it (``begin``) to the end of the round that removed or rewrote it
(``end``; infinity while it lives); the commit is visible somewhere inside its round's
[begin, end]. A hit of a request sent at ``t_send`` and answered at ``t_recv`` is

- *deleted*: the version's removing round had **ended before the request was sent** (``end < t_send``):
  the service answered from rows a finished commit had deleted;
- *never live*: the version's writing round began after the answer arrived (``begin > t_recv``);
- *unknown*: no version of that path ever held that text;
- otherwise fine (including "deleted later": removed by a commit that finished after ``t_send``).

The goal is 0 errors and 0 deleted / never-live / unknown hits, over every phase. A last *control*
phase (skip it with ``--no-control``) searches through the Python API with one generation pinned for
the whole phase (``IndexStore.reading``): a reader stuck on an old snapshot must be caught with
deleted hits, which shows the check can fail.

The phases run in ``--cycles`` rounds (API, N=1, N=8, N=32, API, N=1, ...), so a change in the
machine's load during the run shows up in every configuration rather than in one.

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_serve_load.py --docs 3000 --seconds 40

prints a table and writes ``docs/results/bench_serve_load_<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import kosearch_testing  # noqa: E402  (start_server, shared with tests/test_serve.py)
from nsmc_bench_data import read_reviews  # noqa: E402

EDIT_FILES = 20


# -- the corpus --------------------------------------------------------------------------------


def unique_reviews(count: int) -> list[str]:
    """``count`` distinct NSMC reviews of at least 10 characters (short ones are too alike to probe)."""
    seen: set[str] = set()
    chosen: list[str] = []
    for _, review in read_reviews():
        if len(review) >= 10 and review not in seen:
            seen.add(review)
            chosen.append(review)
            if len(chosen) == count:
                return chosen
    raise SystemExit(f"NSMC has fewer than {count} distinct reviews")


@dataclass
class Pools:
    stable: list[str]
    edits: list[str]
    churn: list[str]
    queries: list[str]


def make_pools(docs: int, churn: int, queries: int) -> Pools:
    reviews = unique_reviews(docs + EDIT_FILES + churn + queries)
    return Pools(
        stable=reviews[:docs],
        edits=reviews[docs : docs + EDIT_FILES],
        churn=reviews[docs + EDIT_FILES : docs + EDIT_FILES + churn],
        queries=reviews[docs + EDIT_FILES + churn :],
    )


def write(folder: Path, relative: str, text: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


# -- the re-indexer (its own process) -------------------------------------------------------------


def reindex(args: argparse.Namespace) -> None:
    """Mutate the folder and commit, round after round, until the stop file appears."""
    from kosearch import Index

    folder, stop = Path(args.folder), Path(args.stop)
    churn_pool: list[str] = json.loads(Path(args.pool).read_text(encoding="utf-8"))
    next_churn = 0
    alive: list[tuple[int, str, str]] = []  # (round, path, text) of churn files
    with Index.open(args.index, writable=True) as index, open(args.log, "a", encoding="utf-8") as log:
        round_number = 0
        while not stop.exists():
            round_number += 1
            added: dict[str, str] = {}
            removed: dict[str, str] = {}
            for _ in range(args.churn):
                if next_churn >= len(churn_pool):
                    break
                path = f"churn/r{round_number:05d}_{next_churn:05d}.txt"
                text = churn_pool[next_churn]
                next_churn += 1
                write(folder, path, text)
                added[path] = text
                alive.append((round_number, path, text))
            while alive and alive[0][0] <= round_number - args.lifetime:
                _, path, text = alive.pop(0)
                (folder / path).unlink()
                removed[path] = text
            for n in range(args.edits):
                path = f"edit/e_{(round_number * args.edits + n) % EDIT_FILES:02d}.txt"
                if next_churn >= len(churn_pool):
                    break
                old = (folder / path).read_text(encoding="utf-8").rstrip("\n")
                text = churn_pool[next_churn]
                next_churn += 1
                write(folder, path, text)
                removed[path] = old
                added[path] = text
            compact = args.compact_every > 0 and round_number % args.compact_every == 0
            begin = time.time()
            index.add_folder(folder)
            if compact:
                index.compact()
            end = time.time()
            log.write(
                json.dumps(
                    {"round": round_number, "begin": begin, "end": end, "added": added, "removed": removed, "compacted": compact},
                    ensure_ascii=False,
                )
                + "\n"
            )
            log.flush()
            time.sleep(args.pause)


# -- the log, read back ------------------------------------------------------------------------


@dataclass
class Version:
    text: str
    begin: float
    end: float = math.inf


class Timeline:
    """Every version of every file, with the window in which it was live; fed from the log as it grows."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.versions: dict[str, list[Version]] = {}
        self.rounds: list[dict[str, Any]] = []
        self._offset = 0
        self._lock = threading.Lock()
        self.recent_removed: list[str] = []
        self.recent_added: list[str] = []

    def start_with(self, files: dict[str, str]) -> None:
        for path, text in files.items():
            self.versions[path] = [Version(text, -math.inf)]

    def poll(self) -> None:
        with self._lock, open(self.log, encoding="utf-8") as handle:
            handle.seek(self._offset)
            while True:
                line = handle.readline()
                if not line.endswith("\n"):
                    break
                self._offset += len(line.encode("utf-8"))
                entry = json.loads(line)
                self.rounds.append(entry)
                for path, text in entry["removed"].items():
                    for version in self.versions.get(path, []):
                        if version.text == text and version.end == math.inf:
                            version.end = entry["end"]
                    self.recent_removed.append(text)
                for path, text in entry["added"].items():
                    self.versions.setdefault(path, []).append(Version(text, entry["begin"]))
                    self.recent_added.append(text)
                del self.recent_removed[:-50], self.recent_added[:-50]

    def classify(self, path: str, text: str, sent: float, received: float) -> str:
        candidates = [v for v in self.versions.get(path, []) if text.strip() and text.strip() in v.text]
        if not candidates:
            return "unknown"
        if any(v.begin <= received and v.end >= sent for v in candidates):
            return "ok"
        if all(v.end < sent for v in candidates):
            return "deleted"
        return "never_live"


# -- clients -----------------------------------------------------------------------------------


@dataclass
class Sample:
    sent: float
    received: float
    ok: bool
    hits: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""


class QueryStream:
    """Half never-indexed reviews, half probes of texts the re-indexer just removed or added."""

    def __init__(self, queries: list[str], timeline: Timeline, seed: int) -> None:
        self.queries, self.timeline, self.rng = queries, timeline, random.Random(seed)

    def next(self) -> str:
        roll = self.rng.random()
        if roll < 0.35 and self.timeline.recent_removed:
            return self.rng.choice(self.timeline.recent_removed)
        if roll < 0.5 and self.timeline.recent_added:
            return self.rng.choice(self.timeline.recent_added)
        return self.rng.choice(self.queries)


async def http_phase(url: str, clients: int, requests: int, seconds: float, stream: QueryStream, k: int) -> tuple[list[Sample], float]:
    import httpx

    deadline = time.monotonic() + seconds
    samples: list[Sample] = []

    async def client(http: httpx.AsyncClient) -> None:
        for _ in range(requests):
            if time.monotonic() >= deadline:
                return
            query = stream.next()
            sent = time.time()
            try:
                response = await http.get("/search", params={"q": query, "k": k})
                received = time.time()
                if response.status_code == 200:
                    hits = [(hit["path"], hit["text"]) for hit in response.json()["hits"]]
                    samples.append(Sample(sent, received, True, hits))
                else:
                    samples.append(Sample(sent, received, False, error=f"HTTP {response.status_code}: {response.text[:200]}"))
            except Exception as error:  # every exception is an error of the run, counted and shown
                samples.append(Sample(sent, time.time(), False, error=f"{type(error).__name__}: {error}"))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return samples, elapsed


def api_phase(
    index_path: Path, requests: int, seconds: float, stream: QueryStream, k: int, pinned: bool = False
) -> tuple[list[Sample], float]:
    """The same stream through ``kosearch.Index`` in this process: refresh, then search, as the service does.

    ``pinned=True`` is the control: every search of the phase reads the one generation pinned at its
    start (``IndexStore.reading``, the store's own snapshot mechanism), as a reader that never moved
    on would. It must be caught returning rows the re-indexer has since deleted, or the check could
    not fail."""
    from contextlib import nullcontext

    from kosearch import Index

    with Index.open(index_path) as index:
        index.search("검색", k=1)  # load the encoder and analyser outside the timing, as the service's warm-up does
        with index.store.reading() if pinned else nullcontext():
            return _api_calls(index, requests, seconds, stream, k, refresh=not pinned)


def _api_calls(index: Any, requests: int, seconds: float, stream: QueryStream, k: int, refresh: bool) -> tuple[list[Sample], float]:
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    for _ in range(requests):
        if time.monotonic() >= deadline:
            break
        query = stream.next()
        sent = time.time()
        try:
            if refresh:
                index.refresh()
            hits = [(hit.path, hit.text) for hit in index.search(query, k=k)]
            samples.append(Sample(sent, time.time(), True, hits))
        except Exception as error:  # every exception is an error of the run, counted and shown
            samples.append(Sample(sent, time.time(), False, error=f"{type(error).__name__}: {error}"))
    return samples, time.perf_counter() - started


def summarise(name: str, samples: list[Sample], elapsed: float, timeline: Timeline) -> dict[str, Any]:
    latencies = sorted((s.received - s.sent) * 1000 for s in samples if s.ok)
    verdicts = {"ok": 0, "deleted": 0, "never_live": 0, "unknown": 0}
    examples: list[str] = []
    probe_hits = 0
    for sample in samples:
        for path, text in sample.hits:
            verdict = timeline.classify(path, text, sample.sent, sample.received)
            verdicts[verdict] += 1
            probe_hits += not path.startswith("stable/")
            if verdict != "ok" and len(examples) < 5:
                examples.append(f"{verdict}: {path} {text[:40]!r} sent {sample.sent:.3f}")
    errors = [s.error for s in samples if not s.ok]

    def percentile(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, max(0, math.ceil(q * len(latencies)) - 1))]

    return {
        "phase": name,
        "requests": len(samples),
        "seconds": round(elapsed, 2),
        "throughput_rps": round(len(samples) / elapsed, 2) if elapsed else 0.0,
        "p50_ms": round(percentile(0.50), 1),
        "p99_ms": round(percentile(0.99), 1),
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else float("nan"),
        "errors": len(errors),
        "error_examples": errors[:5],
        "hits": sum(verdicts.values()),
        "hits_on_changing_files": probe_hits,
        "hits_deleted": verdicts["deleted"],
        "hits_never_live": verdicts["never_live"],
        "hits_unknown": verdicts["unknown"],
        "bad_hit_examples": examples,
    }


# -- the run -----------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def start_server(index: Path, log: Path) -> tuple[subprocess.Popen, str]:
    try:
        return kosearch_testing.start_server(index, cwd=ROOT, env=child_env(), log=log)
    except RuntimeError as error:
        raise SystemExit(str(error)) from None


def run(args: argparse.Namespace) -> None:
    from kosearch import Index

    work = Path(tempfile.mkdtemp(prefix="bench_serve_load_"))
    folder, index_path, log = work / "docs", work / "index", work / "rounds.jsonl"
    pools = make_pools(args.docs, args.pool, args.queries)
    initial = {f"stable/s_{n:05d}.txt": text for n, text in enumerate(pools.stable)}
    initial.update({f"edit/e_{n:02d}.txt": text for n, text in enumerate(pools.edits)})
    for path, text in initial.items():
        write(folder, path, text)
    started = time.perf_counter()
    with Index.create(index_path) as index:
        report = index.add_folder(folder)
    build_seconds = time.perf_counter() - started
    print(f"built {index_path}: {report.sentences_added:,} units from {len(initial):,} files in {build_seconds:.1f}s", flush=True)
    timeline = Timeline(log)
    timeline.start_with(initial)
    log.touch()
    (work / "pool.json").write_text(json.dumps(pools.churn, ensure_ascii=False), encoding="utf-8")

    server, url = start_server(index_path, work / "server.log")
    stop = work / "stop"
    reindexer = subprocess.Popen(
        [
            sys.executable, __file__, "_reindex", "--folder", str(folder), "--index", str(index_path), "--log", str(log),
            "--pool", str(work / "pool.json"), "--stop", str(stop), "--churn", str(args.churn), "--edits", str(args.edits),
            "--lifetime", str(args.lifetime), "--compact-every", str(args.compact_every), "--pause", str(args.pause),
        ],
        cwd=ROOT, env=child_env(),
    )
    polling = threading.Event()

    def poll_forever() -> None:
        while not polling.is_set():
            timeline.poll()
            time.sleep(0.05)

    poller = threading.Thread(target=poll_forever, daemon=True)
    poller.start()
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    try:
        while not timeline.rounds:  # the re-indexer is committing before any phase starts
            if reindexer.poll() is not None:
                raise SystemExit("the re-indexer exited before its first round")
            time.sleep(0.2)
        stream_seed = 0
        phases: list[tuple[str, int]] = [("python-api", 1), *(("http", n) for n in args.clients)] * args.cycles
        if args.control:
            phases.append(("control", 1))
        for name, clients in phases:
            stream_seed += 1
            stream = QueryStream(pools.queries, timeline, seed=stream_seed)
            requests = args.requests if clients == 1 else max(1, args.requests // clients * 4)
            if name == "python-api":
                samples, elapsed = api_phase(index_path, requests, args.seconds, stream, args.k)
                label = "Python API, 1 caller"
            elif name == "control":
                samples, elapsed = api_phase(index_path, requests, args.seconds / 2, stream, args.k, pinned=True)
                label = "control: Python API, one generation pinned"
            else:
                samples, elapsed = asyncio.run(http_phase(url, clients, requests, args.seconds, stream, args.k))
                label = f"HTTP, {clients} client{'s' if clients > 1 else ''}"
            timeline.poll()
            summary = summarise(label, samples, elapsed, timeline)
            summary.update(clients=clients, request_cap_per_client=requests, time_cap_s=args.seconds, loadavg=os.getloadavg()[0])
            results.append(summary)
            print(json.dumps(summary, ensure_ascii=False), flush=True)
    finally:
        stop.touch()
        reindexer.wait(timeout=600)
        polling.set()
        server.terminate()
        server.wait(timeout=60)
    timeline.poll()
    rounds = timeline.rounds
    commit_seconds = [r["end"] - r["begin"] for r in rounds]
    reindexing = {
        "rounds": len(rounds),
        "compactions": sum(r["compacted"] for r in rounds),
        "files_added": sum(len(r["added"]) for r in rounds),
        "files_removed_or_rewritten": sum(len(r["removed"]) for r in rounds),
        "median_round_s": round(statistics.median(commit_seconds), 2) if commit_seconds else None,
        "exit_code": reindexer.returncode,
    }
    print_table(results, reindexing)
    output = {
        "command": " ".join(["python", "bench/bench_serve_load.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "corpus": {
            "files": len(initial), "units": report.sentences_added, "unit": "passage (one NSMC review per file)",
            "build_seconds": round(build_seconds, 1), "k": args.k, "mode": "index default (hybrid)",
        },
        "reindexing": reindexing,
        "phases": results,
    }
    out = Path(args.out or ROOT / "docs" / "results" / f"bench_serve_load_{time.strftime('%Y-%m-%d')}.json")
    out.write_text(json.dumps(output, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def print_table(results: list[dict[str, Any]], reindexing: dict[str, Any]) -> None:
    header = "| Phase | Requests | req/s | p50 ms | p99 ms | Errors | Hits (on changing files) | Deleted | Never live | Unknown |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['phase']} | {r['requests']} | {r['throughput_rps']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
            f"{r['errors']} | {r['hits']} ({r['hits_on_changing_files']}) | {r['hits_deleted']} | {r['hits_never_live']} | {r['hits_unknown']} |"
        )
    print(f"re-indexer: {json.dumps(reindexing)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    re_ = sub.add_parser("_reindex", help="(internal) the re-indexing process")
    for flag in ("--folder", "--index", "--log", "--pool", "--stop"):
        re_.add_argument(flag, required=True)
    for parser_ in (parser, re_):
        parser_.add_argument("--churn", type=int, default=4, help="New files per round.")
        parser_.add_argument("--edits", type=int, default=2, help="Files rewritten in place per round.")
        parser_.add_argument("--lifetime", type=int, default=3, help="Rounds a new file lives before it is deleted.")
        parser_.add_argument("--compact-every", type=int, default=10, help="Compact every this many rounds (0: never).")
        parser_.add_argument("--pause", type=float, default=0.2, help="Seconds between rounds.")
    parser.add_argument("--docs", type=int, default=3000, help="Stable files (one NSMC review each).")
    parser.add_argument("--pool", type=int, default=6000, help="Reviews the re-indexer may add.")
    parser.add_argument("--queries", type=int, default=500, help="Never-indexed reviews used as queries.")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=400, help="Request cap of one client at N=1 (N>1: 4x this / N each).")
    parser.add_argument("--seconds", type=float, default=40.0, help="Time cap of each phase.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--no-control", dest="control", action="store_false",
        help="Skip the control phase (the Python API on a pinned generation, which must show deleted hits).",
    )
    parser.add_argument("--cycles", type=int, default=2, help="Rounds of (API, each N) phases, interleaved.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder (index, logs).")
    args = parser.parse_args()
    if args.command == "_reindex":
        reindex(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
