"""Memory of an encoding process over a long run: the encoder's child (issue 7, peak RSS <= vectors + 1 GB).

The child of ``--encoder-process child`` encodes batch after batch for the whole of an indexing run, each
call ``kosearch.ingest``'s 8,192 sentences. What it holds after a call should not grow with the run. This
runs the bundled encoder (``--precision``, bf16 by default) in a fresh interpreter per variant, encodes
``--calls`` calls of ``--batch`` NSMC reviews (the same reviews for every variant), and records after each
call the seconds it took, ``VmRSS`` and ``VmHWM`` (``/proc/self/status``). Variants:

- ``default``: torch and glibc as they come (oneDNN's primitive cache at its default 1,024 entries), and
  ``Encoder``'s trim after a large call undone: the code before this change;
- ``trim``: ``Encoder`` as it is: the free heap pages go back after each call of ``TRIM_AFTER_TEXTS`` texts
  or more (in-process indexing runs now);
- ``child``: that, and ``CHILD_ENVIRONMENT`` (oneDNN's cache at 8 entries): what the child now runs with.

Each variant's speed is reported relative to ``default`` in the same run. The texts matter: the sentences of
a build's documents (``--documents``) made the default grow call after call, NSMC reviews in file order did not
(docs/benchmarks.md, section k). Usage::

    OMP_NUM_THREADS=2 python bench/bench_child_encode_memory.py --documents runs/bm1m/documents --calls 5 \
        --out runs/child_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

VARIANTS = ("default", "trim", "child")


def _status() -> dict[str, float]:
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024 / 1e9
    return values


def read_texts(documents: Path | None, count: int) -> list[str]:
    """``count`` texts: NSMC reviews in file order, or the sentences of ``documents``' files (one review per
    line, as ``bench_build_memory.py`` prepares them; split after ``.``, ``!`` or ``?``), in file order."""
    import nsmc_bench_data

    if documents is None:
        return [review for _, review in nsmc_bench_data.read_reviews(count)]
    texts: list[str] = []
    for path in sorted(documents.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.extend(part for part in re.split(r"(?<=[.!?])\s+", line.strip()) if part)
        if len(texts) >= count:
            break
    return texts[:count]


def run_variant(variant: str, calls: int, batch: int, precision: str, documents: Path | None) -> dict:
    """In this (fresh) interpreter: load the encoder, encode ``calls`` batches, record memory after each."""

    from kosearch.encoders import encoder as encoder_module
    from kosearch.encoders.encoder import Encoder

    if variant == "default":
        encoder_module.return_free_memory = lambda: None  # the code before: nothing given back after a call

    reviews = read_texts(documents, calls * batch)
    encoder = Encoder(None, device="cpu", precision=precision)
    encoder.encode_documents(reviews[:8])
    steps = [{"after": "load", "seconds": 0.0, **_status()}]
    for call in range(calls):
        started = time.perf_counter()
        encoder.encode_documents(reviews[call * batch:(call + 1) * batch])
        steps.append({"after": f"call {call + 1}", "seconds": time.perf_counter() - started, **_status()})
    return {"variant": variant, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--documents", type=Path, help="encode the sentences of this folder's files (a build's "
                        "documents, e.g. bench_build_memory.py's WORK/documents) instead of NSMC reviews in file order")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in a child
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.calls, args.batch, args.precision, args.documents)))
        return
    from bench_segments import machine_load

    from kosearch.encoders.child_process import CHILD_ENVIRONMENT

    result = {"command": " ".join(["python", "bench/bench_child_encode_memory.py", *sys.argv[1:]]),
              "started_utc": time.strftime("%H:%M:%S", time.gmtime()), "load_at_start": machine_load(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "variants": {}}
    for variant in args.variants:
        # The child's settings are environment variables read when torch starts: each variant is a fresh process.
        env = {key: value for key, value in os.environ.items() if key not in CHILD_ENVIRONMENT}
        if variant == "child":
            env.update(CHILD_ENVIRONMENT)
        command = [sys.executable, __file__, "--variant", variant, "--calls", str(args.calls),
                   "--batch", str(args.batch), "--precision", args.precision,
                   *(["--documents", str(args.documents)] if args.documents else [])]
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
        record = json.loads(done.stdout.strip().splitlines()[-1])
        steps = record["steps"]
        record["encode_seconds"] = sum(step["seconds"] for step in steps)
        record["growth_after_first_call_GB"] = steps[-1]["VmRSS"] - steps[1]["VmRSS"]
        record["VmHWM_GB"] = steps[-1]["VmHWM"]
        result["variants"][variant] = record
        base = result["variants"].get("default")
        ratio = record["encode_seconds"] / base["encode_seconds"] if base else None
        print(f"{variant:8s} RSS after load {steps[0]['VmRSS']:.3f} GB, after call 1 {steps[1]['VmRSS']:.3f}, "
              f"after call {args.calls} {steps[-1]['VmRSS']:.3f} (growth {record['growth_after_first_call_GB']:+.3f}), "
              f"VmHWM {record['VmHWM_GB']:.3f} GB; encoding {record['encode_seconds']:.1f} s"
              + (f" ({ratio:.3f}x default)" if ratio else ""), flush=True)
    result["load_at_end"] = machine_load()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
