"""Ingest throughput on Ray with 1 and 2 encoding workers, next to the single-process path, same folder.

The folder is ``--reviews`` NSMC reviews dealt into 100 files (``nsmc_bench_data.write_parts``), indexed with
the real bundled encoder, unit ``sentence``, lexical index on (the default), into a fresh index each time:

- ``single``: ``Index.add_folder`` in this process (torch with 1 thread: OMP_NUM_THREADS=1);
- ``ray-N``: ``Index.add_folder(ray=RayOptions(encode_workers=N))`` on a local Ray cluster started for the
  run with N + 1 logical CPUs (N encoding actors with 1 CPU each, OMP_NUM_THREADS=1, plus one for the
  reading/splitting/Kiwi tasks). Cluster start-up is not timed; actor start and model load are.

Then the two costs that bound a cluster, measured here too:

- ``driver``: the driver's own work per sentence in a Ray run (rows, FTS5 postings, FAISS, checkpoints),
  timed by ingesting documents whose vectors and tokens were computed beforehand;
- ``kiwi``: sentences/s of Kiwi analysis on one core (the reading tasks' main cost after encoding).

Run (2 shared cores; record the load)::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 python bench/bench_ray_ingest.py --reviews 3000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsmc_bench_data import read_reviews, write_parts  # noqa: E402

import kosearch  # noqa: E402
from kosearch import Index, RayOptions  # noqa: E402
from kosearch.ingest import EncodedDocument, IngestOptions, ingest_folder, local_documents  # noqa: E402


def run_single(folder: Path, work: Path) -> tuple[float, int]:
    with Index.create(work / "single", None, device="cpu") as index:
        report = index.add_folder(folder, unit="sentence")
    return report.seconds, report.sentences_added


def run_ray(folder: Path, work: Path, workers: int) -> tuple[float, int]:
    import ray

    root = str(Path(kosearch.__file__).resolve().parents[1])
    ray.init(
        num_cpus=workers + 1, include_dashboard=False, logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": root, "OMP_NUM_THREADS": "1"}},
    )
    try:
        with Index.create(work / f"ray-{workers}", None, device="cpu") as index:
            report = index.add_folder(folder, unit="sentence", ray=RayOptions(encode_workers=workers))
    finally:
        ray.shutdown()
    return report.seconds, report.sentences_added


def run_driver_only(folder: Path, work: Path) -> tuple[float, int]:
    """The driver's share of a Ray run: the same loop fed documents already encoded and analysed."""
    from kosearch.search.morphemes import MorphemeAnalyzer

    with Index.create(work / "driver", None, device="cpu") as index:
        encoder = index.encoder
        analyzer = MorphemeAnalyzer()
        dimension = encoder.dimension
        rng = np.random.default_rng(0)
        prepared = []

        def source(request):
            if not prepared:
                for item in local_documents(request):
                    if hasattr(item, "sentences") and item.sentences:
                        vectors = rng.standard_normal((len(item.sentences), dimension), dtype=np.float32)
                        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                        tokens = [" ".join(t) for t in analyzer.analyze_batch(s.text for s in item.sentences)]
                        prepared.append(EncodedDocument(item, vectors, tokens))
                    else:
                        prepared.append(item)
            return iter(prepared)

        # Prepare outside the timed run: a first pass over the same folder fills `prepared`.
        source(_request(folder))
        report = ingest_folder(index.store, encoder, folder, IngestOptions(mode="sentence"), None, source)
    return report.seconds, report.sentences_added


def _request(folder: Path):
    from kosearch.ingest import SourceRequest

    return SourceRequest(folder.resolve(), "sentence", None, None, lambda *_: False, lambda _: None, None)


def run_kiwi(texts: list[str]) -> tuple[float, int]:
    from kosearch.search.morphemes import MorphemeAnalyzer

    analyzer = MorphemeAnalyzer()
    analyzer.analyze_batch(texts[:50])
    started = time.perf_counter()
    for start in range(0, len(texts), 512):
        analyzer.analyze_batch(texts[start : start + 512])
    return time.perf_counter() - started, len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2, choices=(1, 2), help="1: single, ray-1, ray-2; 2: and back")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    reviews = [review for _, review in read_reviews(args.reviews)]
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    folder = work / "corpus"
    write_parts(reviews, folder)
    results: dict[str, dict] = {}
    load_before = os.getloadavg()
    print(f"{len(reviews)} NSMC reviews in 100 files; load {load_before[0]:.2f}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}", flush=True)
    configurations = {
        "single": lambda: run_single(folder, work),
        "ray-1": lambda: run_ray(folder, work, 1),
        "ray-2": lambda: run_ray(folder, work, 2),
    }
    order = ["single", "ray-1", "ray-2", "ray-2", "ray-1", "single"][: 3 * args.rounds]  # ABC CBA: drift cancels
    try:
        for name in order + ["driver", "kiwi"]:
            for stale in ("single", "ray-1", "ray-2", "driver"):
                shutil.rmtree(work / stale, ignore_errors=True)
            run = configurations.get(name) or {"driver": lambda: run_driver_only(folder, work),
                                                "kiwi": lambda: run_kiwi(reviews)}[name]
            load = os.getloadavg()[0]
            seconds, sentences = run()
            results.setdefault(name, []).append(
                {"seconds": seconds, "sentences": sentences, "per_s": sentences / seconds, "load": load}
            )
            print(f"{name:<7} {sentences:>6} sentences {seconds:>7.1f} s {sentences / seconds:>8.1f} sentences/s "
                  f"(load {load:.2f})", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mean = {name: sum(r["per_s"] for r in runs) / len(runs) for name, runs in results.items()}
    for name in ("ray-1", "ray-2"):
        print(f"{name} / single (means over rounds): {mean[name] / mean['single']:.2f}")
    print(f"ray-2 / ray-1: {mean['ray-2'] / mean['ray-1']:.2f}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "reviews": len(reviews), "load_before": load_before, "results": results,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }, indent=2))


if __name__ == "__main__":
    main()
