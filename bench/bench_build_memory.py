"""Where a build's resident memory goes (issue 7: peak RSS <= vectors + 1 GB), sampled over time.

One build per process, through ``Index.add_folder(unit="sentence")`` like ``bench/bench_segments.py``'s
``build`` phase, with a sampler thread reading ``/proc/self/status`` every ``--interval`` seconds:
``VmRSS`` split into ``RssAnon`` (heap, FAISS's and torch's own memory) and ``RssFile`` (mapped files:
libraries' code, segment pages touched through mmap; reclaimable but counted in RSS and in
``ru_maxrss``). Each sample is tagged with what the writer was doing (``ingest``, ``checkpoint``, or a
merge step: ``merge:add`` building the new index, ``merge:tune`` its tuning, ``merge:write``,
``merge:open``, ``merge:postings``) and with whether the encoder's model and Kiwi were resident.
The report gives each tag's peak (with its anon/file split and its time) and the overall peak.

Encoders (``--encoder``):

- ``hash``: ``bench_segments``' hashing stand-in (no model, no Kiwi), regex splitting, whitespace
  tokens: section e of "HNSW build depth..." in docs/benchmarks.md.
- ``hash-resident``: the same vectors and tokens, but the real bundled encoder (``--precision``) and
  Kiwi are loaded and kept resident the way a real run keeps them: every batch also encodes one
  of its texts with the model and analyses one with Kiwi (a few ms). A build of a million units
  then costs the stand-in's time while holding what a real build holds, and whatever the writer
  releases before a merge (``Encoder.release``, ``MorphemeAnalyzer.release``) is really released.
- ``real``: no stand-ins (Kiwi splitting, Kiwi morphemes, the bundled encoder computing every
  vector), i.e. ``kosearch index --unit sentence``; hours for a million units here, so it is run
  with a small ``--checkpoint-sentences`` to get a tier merge (ten checkpoints) inside the run.

``--encoder-process child`` runs the real encoder (``real`` and ``hash-resident``) in a child process
(``kosearch.encoders.child_process``), which the writer ends before each large merge: the writer then never
imports torch. The sampler reads the child's ``/proc/PID/status`` too; ``total`` in each sample (and every
peak in the summary) is the writer's VmRSS plus the child's, and the child's own lines are kept
(``child_VmRSS``, ``child_RssAnon``, ``child_RssFile``). In-process runs have no child: ``total`` = VmRSS.
``ru_maxrss`` is reported for the writer and, separately, for its ended children (the largest of them;
this counts any helper the writer forked too, so for the encoder's child ``child_VmHWM_max`` is the
figure: the child's own high-water mark, read just before each release). The peak of the sum lies
between the sampled ``total`` peak and writer ``ru_maxrss`` + ``child_VmHWM_max``.

``--heap-trace`` also records, after every add of a merge's HNSW build, RssAnon, the heap's resident and
huge-page memory (smaps) and glibc's own count of heap memory in use and free (``mallinfo2``);
``--tracemalloc`` adds Python's allocations over the adds (``AddTrace``; docs/benchmarks.md, section h).

``--kosearch-root`` imports kosearch from another tree (the code before a change, for a baseline in
the same session); the kosearch file imported is recorded in the output.

Usage::

    OMP_NUM_THREADS=1 nice -n 19 python bench/bench_build_memory.py --work /tmp/kosearch-mem \
        --units 1100000 --encoder hash-resident --label after --out docs/results/NAME.json
    OMP_NUM_THREADS=1 nice -n 19 python bench/bench_build_memory.py --work /tmp/kosearch-heap \
        --units 200000 --checkpoint-sentences 20000 --encoder hash --heap-trace --label L --out OUT.json
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import sys
import threading
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_root() -> str | None:
    """Put ``--kosearch-root`` first on sys.path before anything imports kosearch."""
    if "--kosearch-root" in sys.argv:
        root = sys.argv[sys.argv.index("--kosearch-root") + 1]
        sys.path.insert(0, str(Path(root).resolve()))
        return root
    sys.path.insert(0, str(ROOT))
    return None


_BASELINE_ROOT = _import_root()
import kosearch  # noqa: E402

sys.path.insert(1, str(ROOT / "bench"))
import numpy as np  # noqa: E402

import bench_segments  # noqa: E402  (kosearch is already imported from the chosen tree)

STATUS_KEYS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")


def status(pid: int | str = "self") -> dict[str, int]:
    """The memory lines of /proc/PID/status, in bytes (empty when that process is gone)."""
    values = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return values
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in STATUS_KEYS:
            values[key] = int(rest.split()[0]) * 1024
    return values


def utc() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S")


class Sampler:
    """A daemon thread sampling ``status()`` with the current tag; FAISS and torch release the GIL
    while they compute, so it keeps sampling during a merge's build."""

    def __init__(self, interval: float, holders, partial: Path | None = None, child_pid=lambda: None) -> None:
        self.interval = interval
        self.child_pid = child_pid
        """The encoder's child process id now (None: no child running, or encoding in-process)."""
        self.partial = partial
        """Where the summary so far is written every minute: a run stopped early still says its peak."""
        self.holders = holders
        self.tags: list[str] = ["ingest"]
        self.samples: list[dict] = []
        self.started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tag(self) -> str:
        return self.tags[-1]

    def wrap(self, owner, name: str, tag: str) -> None:
        function = getattr(owner, name)
        sampler = self

        def tagged(*args, **kwargs):
            sampler.tags.append(tag)
            sampler.sample()
            try:
                return function(*args, **kwargs)
            finally:
                sampler.sample()
                sampler.tags.pop()

        setattr(owner, name, tagged)

    def sample(self) -> None:
        values = status()
        pid = self.child_pid()
        child = status(pid) if pid is not None else {}
        for key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            values[f"child_{key}"] = child.get(key, 0)
        values["total"] = values["VmRSS"] + values["child_VmRSS"]
        values["t"] = round(time.perf_counter() - self.started, 2)
        values["tag"] = self.tag()
        values.update(self.holders())
        self.samples.append(values)

    def _run(self) -> None:
        written = time.perf_counter()
        while not self._stop.wait(self.interval):
            self.sample()
            if self.partial is not None and time.perf_counter() - written >= 60:
                written = time.perf_counter()
                self.partial.write_text(json.dumps({"utc": utc(), "summary": self.summary()}, indent=1))

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def summary(self) -> dict:
        by_tag: dict[str, dict] = {}
        for sample in self.samples:
            tag = sample["tag"]
            best = by_tag.get(tag)
            if best is None or sample["total"] > best["total"]:
                by_tag[tag] = sample
        merge_samples = [s for s in self.samples if s["tag"].startswith("merge")]
        peak = max(self.samples, key=lambda s: s["total"])
        return {
            "samples": len(self.samples),
            "peak_sample": peak,
            "peak_by_tag": by_tag,
            "merge_peak": max(merge_samples, key=lambda s: s["total"]) if merge_samples else None,
            "merge_peak_writer": max(merge_samples, key=lambda s: s["VmRSS"]) if merge_samples else None,
            "ingest_peak": max(
                (s for s in self.samples if s["tag"] in ("ingest", "checkpoint")), key=lambda s: s["total"]
            ),
            "writer_peak": max(self.samples, key=lambda s: s["VmRSS"]),
            "child_peak": max(self.samples, key=lambda s: s["child_VmRSS"]),
        }

    def timeline(self, every: float) -> list[dict]:
        """Samples thinned to about one per ``every`` seconds, keeping each tag's first and last one."""
        kept, last_t, last_tag = [], -every, None
        for position, sample in enumerate(self.samples):
            following = self.samples[position + 1]["tag"] if position + 1 < len(self.samples) else None
            if sample["t"] - last_t >= every or sample["tag"] != last_tag or following != sample["tag"]:
                kept.append({key: sample[key] for key in (
                    "t", "tag", "total", "VmRSS", "RssAnon", "RssFile", "child_VmRSS", "model", "kiwi"
                )})
                last_t, last_tag = sample["t"], sample["tag"]
        return kept


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_info() -> dict[str, int]:
    """glibc's own count over all its arenas (``mallinfo2``): ``arena`` bytes taken from the system
    for heaps, of which ``in_use`` are handed out and ``free`` are free but kept (fragmentation, or
    the top kept under the trim threshold); ``mmapped``: blocks mapped on their own."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {"heap_arena": info.arena, "in_use": info.uordblks, "free": info.fordblks,
            "top_releasable": info.keepcost, "mmapped": info.hblkhd, "mmapped_blocks": info.hblks}


def anon_split(pid: int | str = "self") -> dict[str, int]:
    """Anonymous memory by kind of mapping (``/proc/PID/smaps``): ``[heap]`` (brk), unnamed mappings of
    64 MiB and more (FAISS's storage and graph, glibc's thread arenas), and the rest; ``heap_pieces``:
    how many mappings the heap is listed as (a range advised ``MADV_HUGEPAGE`` becomes its own),
    ``heap_huge`` / ``anon_huge``: of which backed by transparent huge pages (``AnonHugePages``)."""
    heap = large = rest = heap_huge = anon_huge = pieces = 0
    name, size = "", 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            start, stop = (int(part, 16) for part in head[0].split("-"))
            name, size = (head[5] if len(head) > 5 else ""), stop - start
            pieces += name == "[heap]"
        elif head and head[0] == "Anonymous:":
            value = int(head[1]) * 1024
            if name == "[heap]":
                heap += value
            elif not name and size >= 64 << 20:
                large += value
            else:
                rest += value
        elif head and head[0] == "AnonHugePages:":
            value = int(head[1]) * 1024
            anon_huge += value
            heap_huge += value if name == "[heap]" else 0
    return {"heap": heap, "anon_large_mappings": large, "anon_other": rest, "heap_pieces": pieces,
            "heap_huge": heap_huge, "anon_huge": anon_huge}


class AddTrace:
    """What grows during a merge's HNSW add (``--heap-trace``): after every ``add_with_ids`` of
    ``ann._AddBuffer`` (one ``ADD_BATCH``), the index's size, RssAnon, ``anon_split`` and
    ``malloc_info``; with ``--tracemalloc``, Python's allocations (numpy's arrays included) traced
    from the first add to the start of tuning and compared by line (docs/benchmarks.md, section h)."""

    def __init__(self, trace_python: bool) -> None:
        self.trace_python = trace_python
        self.adds: list[dict] = []
        self.started = time.perf_counter()
        self.python: list[dict] = []
        self._first = None

    def record(self, ntotal: int, note: str = "") -> None:
        values = status()
        row = {"t": round(time.perf_counter() - self.started, 2), "ntotal": ntotal, "RssAnon": values["RssAnon"],
               "VmRSS": values["VmRSS"], **anon_split(), **malloc_info()}
        if note:
            row["note"] = note
        if tracemalloc.is_tracing():
            row["python_traced"], row["python_traced_peak"] = tracemalloc.get_traced_memory()
            row["tracemalloc_own"] = tracemalloc.get_tracemalloc_memory()
        self.adds.append(row)

    def install(self) -> None:
        from kosearch.store import ann

        trace = self
        flush, add_streamed, tune = ann._AddBuffer.flush, ann._add_streamed, ann._tune

        def traced_flush(buffer):
            if trace._first is None and trace.trace_python:
                tracemalloc.start(10)
                trace._first = tracemalloc.take_snapshot()
            flush(buffer)
            trace.record(int(buffer.index.ntotal))

        def traced_add_streamed(index, ids, *args, **kwargs):
            trace._first = None
            trace.record(0, f"add of {len(ids)} vectors starts")
            return add_streamed(index, ids, *args, **kwargs)

        def traced_tune(index, *args, **kwargs):
            trace.record(int(index.ntotal), "adds done, tuning starts")
            if trace._first is not None:
                last = tracemalloc.take_snapshot()
                filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
                diff = last.filter_traces(filters).compare_to(trace._first.filter_traces(filters), "lineno")
                trace.python.append({
                    "traced_growth": sum(stat.size_diff for stat in diff),
                    "top": [{"where": str(stat.traceback[0]), "size_diff": stat.size_diff, "count_diff": stat.count_diff,
                             "size": stat.size} for stat in diff[:15]],
                })
                tracemalloc.stop()
                trace._first = None
            return tune(index, *args, **kwargs)

        ann._AddBuffer.flush = traced_flush
        ann._add_streamed = traced_add_streamed
        ann._tune = traced_tune

    def summary(self) -> dict:
        adds = [row for row in self.adds if "note" not in row or row["note"].startswith("adds done")]
        if len(adds) < 2:
            return {}
        first, last = adds[0], adds[-1]
        keys = ("RssAnon", "heap", "heap_huge", "anon_huge", "anon_large_mappings", "anon_other", "heap_arena", "in_use",
                "free", "mmapped")
        vectors = max(last["ntotal"] - first["ntotal"], 1)
        return {
            "from_ntotal": first["ntotal"], "to_ntotal": last["ntotal"],
            "growth": {key: last[key] - first[key] for key in keys},
            "growth_bytes_per_vector": {key: round((last[key] - first[key]) / vectors, 1) for key in keys},
        }


class ResidentHashEncoder(bench_segments.HashEncoder):
    """Hashing vectors, with the real encoder kept resident as in a real run (see the module docstring).

    ``release`` is passed on to the real encoder when this kosearch has it, so the writer's release
    before a merge frees the model here exactly as it would in a real run."""

    def __init__(self, precision: str, backend: str = "torch", process: str = "in") -> None:
        super().__init__()
        self.real = real_encoder(precision, backend, process)
        self.real_seconds = 0.0

    def encode_documents(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        texts = list(texts)
        started = time.perf_counter()
        if texts:
            self.real.encode_documents(texts[:1])
        self.real_seconds += time.perf_counter() - started
        return super().encode_documents(texts)

    def __getattr__(self, name):
        if name == "release" and hasattr(self.real, "release"):
            return self.real.release
        raise AttributeError(name)


def real_encoder(precision: str, backend: str, process: str):
    """The bundled encoder on the CPU, in this process or in a child process (``--encoder-process``)."""
    options = dict(device="cpu", precision=precision if backend == "torch" else None, encoder_backend=backend)
    if process == "child":
        from kosearch.encoders.child_process import ChildProcessEncoder

        return ChildProcessEncoder(None, **options)
    from kosearch.encoders import Encoder

    return Encoder(None, **options)


def build(work: Path, index_folder: Path, encoder_kind: str, precision: str, checkpoint_sentences: int,
          interval: float, partial: Path | None = None, backend: str = "torch", process: str = "in",
          add_trace: AddTrace | None = None) -> dict:
    import kosearch.documents.split as split
    from kosearch.index import Index
    from kosearch.search.morphemes import MorphemeAnalyzer
    from kosearch.store import ann, index_store
    from kosearch.store.index_store import IndexStore

    if encoder_kind == "real":
        encoder = real_encoder(precision, backend, process)
    elif encoder_kind == "hash-resident":
        encoder = ResidentHashEncoder(precision, backend, process)
    else:
        encoder = bench_segments.HashEncoder()
    if encoder_kind != "real":
        split._sentence_pieces = bench_segments.regex_pieces
        if encoder_kind == "hash-resident":
            def analyze_batch(self, texts):
                texts = list(texts)
                if texts:
                    self._kiwi().tokenize(texts[:1])  # keeps Kiwi resident, as the real analysis does
                return [text.split() for text in texts]
        else:
            def analyze_batch(self, texts):
                return [text.split() for text in texts]
        MorphemeAnalyzer.analyze_batch = analyze_batch

    real = getattr(encoder, "real", encoder)

    def holders() -> dict:
        in_child = getattr(real, "in_child_process", False)
        return {
            "model": real.running if in_child else (
                getattr(real, "_model", None) is not None or getattr(real, "_onnx_runtime", None) is not None
            ),
            "kiwi": getattr(split, "_kiwi", None) is not None,
        }

    sampler = Sampler(interval, holders, partial, child_pid=lambda: getattr(real, "pid", None))
    if getattr(real, "in_child_process", False):  # a sample just before the child ends: its VmHWM is its peak
        sampler.wrap(type(real), "release", "release")
    sampler.wrap(IndexStore, "checkpoint", "checkpoint")
    sampler.wrap(IndexStore, "_merge", "merge:add")
    sampler.wrap(ann, "_tune", "merge:tune")
    sampler.wrap(index_store, "_write_faiss", "merge:write")
    sampler.wrap(index_store, "load_segment", "merge:open")
    sampler.wrap(IndexStore, "_merged_postings", "merge:postings")
    sampler.wrap(IndexStore, "_merge_postings", "merge:postings-tier")
    merges: list[dict] = []
    original_merge = IndexStore._merge

    def counted_merge(self, names):
        started = time.perf_counter()
        at = round(started - sampler.started, 1)
        before = {segment.entry.name for segment in self._segments}
        original_merge(self, names)
        made = [segment.entry.count for segment in self._segments if segment.entry.name not in before]
        merges.append({
            "segments": len(names), "vectors": int(sum(made)), "at_s": at,
            "seconds": round(time.perf_counter() - started, 1), "ended_utc": utc(),
        })

    IndexStore._merge = counted_merge
    if add_trace is not None:
        add_trace.install()
    import shutil

    shutil.rmtree(index_folder, ignore_errors=True)
    started = time.perf_counter()
    with sampler:
        with Index.create(index_folder, model=encoder) as index:
            report = index.add_folder(work / "documents", unit="sentence", checkpoint_sentences=checkpoint_sentences)
            segments = [entry.to_dict() for entry in index.store.segment_entries()]
    wall = time.perf_counter() - started
    release = getattr(real, "release", None)
    if release is not None:
        release()  # a child ends here, so RUSAGE_CHILDREN counts it
    units = report.sentences_added
    merge_seconds = sum(merge["seconds"] for merge in merges)
    return {
        "units": units,
        "wall_s": round(wall, 1),
        "units_per_s": round(units / wall, 1),
        "units_per_s_outside_merges": round(units / max(wall - merge_seconds, 1e-9), 1),
        "encoder": encoder_kind,
        "encoder_process": process,
        "encoder_backend": backend,
        "real_model_seconds": getattr(encoder, "real_seconds", None),
        "checkpoint_sentences": checkpoint_sentences,
        "vectors_bytes": units * bench_segments.DIMENSION * 4,
        "goal_bytes": units * bench_segments.DIMENSION * 4 + 10**9,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "ru_maxrss_children_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        "child_VmHWM_max_bytes": max(sample["child_VmHWM"] for sample in sampler.samples),
        "torch_imported_by_writer": "torch" in sys.modules,
        "merges": merges,
        "segments": segments,
        "summary": sampler.summary(),
        "timeline": sampler.timeline(10.0),
        **({} if add_trace is None else {"add_trace": {
            "summary": add_trace.summary(), "python": add_trace.python, "adds": add_trace.adds}}),
    }


def probe(backend: str, precision: str) -> dict:
    """What the encoder and Kiwi hold, step by step, in this (fresh) process: imports, model loaded and
    used, Kiwi loaded and used, both released (``Encoder.release``, ``MorphemeAnalyzer.release``)."""
    from kosearch.memory import return_free_memory

    steps = {"kosearch imported": status()}
    import kosearch.index  # noqa: F401

    steps["kosearch.index imported"] = status()
    from kosearch.encoders import Encoder
    from kosearch.search.morphemes import MorphemeAnalyzer

    texts = [review for review in bench_segments.read_reviews()[:512]]
    encoder = Encoder(None, device="cpu", encoder_backend=backend, precision=None if backend != "torch" else precision)
    encoder.encode_documents(texts)
    steps["model loaded, 512 reviews encoded"] = status()
    analyzer = MorphemeAnalyzer()
    analyzer.analyze_batch(texts)
    steps["Kiwi loaded, 512 reviews analysed"] = status()
    encoder.release()
    steps["model released"] = status()
    analyzer.release()
    return_free_memory()
    steps["Kiwi released"] = status()
    started = time.perf_counter()
    encoder.encode_documents(texts[:1])
    reload_model_s = time.perf_counter() - started
    encoder.encode_documents(texts[:64])
    steps["model loaded again, 64 encoded"] = status()
    started = time.perf_counter()
    analyzer.analyze_batch(texts[:1])
    reload_kiwi_s = time.perf_counter() - started
    encoder.release()
    analyzer.release()
    return_free_memory()
    steps["released again"] = status()
    return {
        "reload_s": {"model (first encode after release, one text)": round(reload_model_s, 2),
                     "Kiwi (first analysis after release, one text)": round(reload_kiwi_s, 2)},
        "backend": backend, "precision": encoder.precision, "torch_imported": "torch" in sys.modules,
        "steps": {name: {key: values[key] for key in ("VmRSS", "RssAnon", "RssFile")} for name, values in steps.items()},
    }


def reload_cost(process: str, precision: str, repeats: int = 3) -> dict:
    """What each release costs the next batch: seconds to encode one text after ``release``, in-process (the
    model loads again) or with ``--encoder-process child`` (a new interpreter imports torch and loads it)."""
    text = ["치타가 먹이를 쫓는다"]
    started = time.perf_counter()
    encoder = real_encoder(precision, "torch", process)
    made = time.perf_counter() - started
    again = []
    for _ in range(repeats):
        encoder.encode_documents(text)
        encoder.release()
        started = time.perf_counter()
        encoder.encode_documents(text)
        again.append(round(time.perf_counter() - started, 2))
    encoder.release()
    return {"encoder_process": process, "precision": precision, "construct_s": round(made, 2),
            "encode_one_after_release_s": again, "torch_imported_here": "torch" in sys.modules}


def smaps(pid: int) -> dict:
    """Where another process's anonymous memory sits, by mapping (``/proc/PID/smaps``): the large
    mappings glibc makes for big allocations (FAISS's storage and graph) apart from the heaps and
    the small mappings (per-thread arenas, Python's arenas, libraries' data)."""
    mappings, current = [], None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            start, stop = (int(part, 16) for part in head[0].split("-"))
            current = {"name": head[5] if len(head) > 5 else "", "size": stop - start, "anon": 0, "rss": 0}
            mappings.append(current)
        elif head and head[0] in ("Anonymous:", "Rss:") and current is not None:
            current["anon" if head[0] == "Anonymous:" else "rss"] = int(head[1]) * 1024
    anonymous = [m for m in mappings if m["anon"]]
    large = sorted((m for m in anonymous if m["anon"] >= 64 << 20), key=lambda m: -m["anon"])
    named = [m for m in anonymous if m["name"] and m["anon"] < 64 << 20]
    small = [m for m in anonymous if not m["name"] and m["anon"] < 64 << 20]
    return {
        "anon_total": sum(m["anon"] for m in anonymous),
        "rss_total": sum(m["rss"] for m in mappings),
        "large_anon_mappings": [{"anon": m["anon"], "size": m["size"], "name": m["name"] or "[anonymous]"} for m in large],
        "anon_in_named_mappings_under_64MiB": sum(m["anon"] for m in named),
        "anon_in_unnamed_mappings_under_64MiB": sum(m["anon"] for m in small),
        "unnamed_mappings_under_64MiB": len(small),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="documents are prepared here once per --units")
    parser.add_argument("--units", type=int, default=1_100_000, help="stand-in corpus size (regex units)")
    parser.add_argument("--all-reviews", action="store_true", help="prepare every review but the held-out ones")
    parser.add_argument("--encoder", choices=("hash", "hash-resident", "real"), default="hash-resident")
    parser.add_argument("--precision", default="bf16", help="torch's compute precision (the ONNX backends: float32)")
    parser.add_argument("--encoder-backend", default="torch", choices=("torch", "onnx"), help="what computes the real vectors")
    parser.add_argument("--encoder-process", choices=("in", "child"), default="in",
                        help="where the real encoder runs (child: a process the writer ends before each large merge)")
    parser.add_argument("--checkpoint-sentences", type=int, default=100_000)
    parser.add_argument("--release-bytes", type=int,
                        help="the store's RELEASE_BEFORE_MERGE_BYTES for this run (0: free the encoder and Kiwi "
                        "before every merge, as every run before 2026-12-07 12:00 UTC did; the small merges of "
                        "section i's commands need it to release at all)")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--label", default="run", help="the index folder is WORK/index-LABEL")
    parser.add_argument("--kosearch-root", help="import kosearch from this tree (a baseline)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--heap-trace", action="store_true",
                        help="record memory after every add of a merge's HNSW build (AddTrace)")
    parser.add_argument("--tracemalloc", action="store_true", help="with --heap-trace: trace Python's allocations during the adds")
    parser.add_argument("--smaps", type=int, help="no build: where process PID's anonymous memory sits")
    parser.add_argument("--reload-cost", action="store_true",
                        help="no build: seconds to encode one text after a release, for --encoder-process")
    parser.add_argument("--probe", choices=("torch", "onnx"), help="no build: what the model and Kiwi hold, and what release frees")
    args = parser.parse_args()
    if args.smaps:
        result = {"utc": utc(), "load": bench_segments.machine_load(), **smaps(args.smaps)}
        args.out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return
    if args.reload_cost:
        result = {"utc": utc(), "load": bench_segments.machine_load(), **reload_cost(args.encoder_process, args.precision)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result))
        return
    if args.probe:
        result = {"command": " ".join(["python", "bench/bench_build_memory.py", *sys.argv[1:]]), "started_utc": utc(),
                  "load_at_start": bench_segments.machine_load(), **probe(args.probe, args.precision)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
        print(result["reload_s"])
        for name, values in result["steps"].items():
            print(f"{name:40s} RSS {values['VmRSS'] / 1e9:.3f} GB (anon {values['RssAnon'] / 1e9:.3f}, file {values['RssFile'] / 1e9:.3f})")
        return
    prepared_file = args.work / "prepared.json"
    wanted = {"units": None if args.all_reviews else args.units}
    prepared = json.loads(prepared_file.read_text()) if prepared_file.exists() else None
    if prepared is None or prepared.get("wanted") != wanted:
        args.work.mkdir(parents=True, exist_ok=True)
        corpus = bench_segments.prepare(args.work, 10**9 if args.all_reviews else args.units)
        prepared = {"wanted": wanted, "corpus": corpus}
        prepared_file.write_text(json.dumps(prepared))
    result = {
        "command": " ".join(["python", "bench/bench_build_memory.py", *sys.argv[1:]]),
        "kosearch_imported_from": os.path.relpath(kosearch.__file__, Path.cwd()),
        "baseline_tree": _BASELINE_ROOT is not None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "started_utc": utc(),
        "load_at_start": bench_segments.machine_load(),
        "corpus": prepared["corpus"],
    }
    if args.release_bytes is not None:
        from kosearch.store import index_store

        index_store.RELEASE_BEFORE_MERGE_BYTES = args.release_bytes
        result["release_before_merge_bytes"] = args.release_bytes
    result["build"] = build(args.work, args.work / f"index-{args.label}", args.encoder, args.precision,
                            args.checkpoint_sentences, args.interval, args.out.with_suffix(".partial.json"),
                            args.encoder_backend, args.encoder_process,
                            AddTrace(args.tracemalloc) if args.heap_trace else None)
    result["ended_utc"] = utc()
    result["load_at_end"] = bench_segments.machine_load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    summary = result["build"]["summary"]
    gib = 1 / 1e9
    print(json.dumps({
        "units": result["build"]["units"],
        "encoder_process": args.encoder_process,
        "peak_GB (writer + child)": round(summary["peak_sample"]["total"] * gib, 3),
        "peak_tag": summary["peak_sample"]["tag"],
        "writer_peak_GB": round(summary["writer_peak"]["VmRSS"] * gib, 3),
        "child_peak_GB": round(summary["child_peak"]["child_VmRSS"] * gib, 3),
        "merge_peak_GB (writer + child)": round(summary["merge_peak"]["total"] * gib, 3) if summary["merge_peak"] else None,
        "merge_writer_peak_GB": round(summary["merge_peak_writer"]["VmRSS"] * gib, 3) if summary["merge_peak"] else None,
        "units_per_s": result["build"]["units_per_s"],
        "ru_maxrss_GB": round(result["build"]["ru_maxrss_bytes"] * gib, 3),
        "ru_maxrss_children_GB": round(result["build"]["ru_maxrss_children_bytes"] * gib, 3),
        "child_VmHWM_max_GB": round(result["build"]["child_VmHWM_max_bytes"] * gib, 3),
        "goal_GB": round(result["build"]["goal_bytes"] * gib, 3),
        "merges": result["build"]["merges"],
        **({"add_growth": result["build"]["add_trace"]["summary"]} if args.heap_trace else {}),
    }))


if __name__ == "__main__":
    main()
