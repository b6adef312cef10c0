"""Where a one-shot ``kosearch query`` spends its time before the answer, for this tree and a baseline tree.

Every measurement runs in a fresh child process (a warm page cache, a cold interpreter: what a user typing
``kosearch query`` gets), with ``PYTHONPATH`` pointing at the tree measured. One child walks the query path
step by step and times each step:

1. ``import kosearch`` (the package and the ``Index`` facade: store, SQLite, FAISS)
2. ``import kosearch.cli`` (typer, rich, and the evaluate/train command groups)
3. ``import kosearch.encoders.encoder`` (the ``Encoder`` module; sentence-transformers and torch, if it imports them)
4. ``Index.open`` (manifest, metadata, vectors; device resolution)
5. ``idx.encoder`` (resolve the bundled model, load the encoder, check its fingerprint against the index)
6. first ``idx.search`` (whatever the encoder defers to its first query, encoding, FAISS search, metadata)
7. second ``idx.search`` (the steady state)

and reports which heavy libraries the query path has imported by then (torch, transformers,
sentence_transformers, sklearn, scipy, datasets, pandas, kiwipiepy). Separate children time the whole command
(``python -m kosearch query INDEX "..." --json``, wall clock), a bare interpreter (``python -c pass``) and, for
reference, ``SentenceTransformer(folder)`` on the converted model (import and load: what indexing pays).

The baseline is another checkout (``git worktree add /tmp/orig-startup 91b034c``); both trees are measured in
the same run, alternating, and medians over ``--repeat`` runs are reported with the ratio baseline / this tree.
The machine's load average is printed before and after, because other processes skew every number.

Usage: python bench/bench_startup.py [--baseline /tmp/orig-startup] [--index PATH] [--repeat 5] [--json out.json]
Without ``--index`` a small index of corpora/sample/공공 is built first (with the baseline tree when given).

``--fp16 N`` also weighs the option of storing the converted model as float16 safetensors: it writes a float16
copy of the folder, times ``SentenceTransformer`` loading both copies (fresh children, float32 compute as the
config says) and reports the cosine between the two copies' query vectors over the first N distinct KorSTS test
sentences.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERY = "치타가 먹이를 쫓는다"
HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn", "scipy", "datasets", "pandas", "kiwipiepy")

STEPS_CHILD = r"""
import json, sys, time
index_path, query = sys.argv[1], sys.argv[2]
laps, started = {}, time.perf_counter()
def lap(name):
    global started
    now = time.perf_counter()
    laps[name] = now - started
    started = now
import kosearch; lap("import kosearch")
import kosearch.cli; lap("import kosearch.cli")
import kosearch.encoders.encoder; lap("import kosearch.encoders.encoder")
idx = kosearch.Index.open(index_path); lap("Index.open")
idx.encoder; lap("idx.encoder (load + fingerprint check)")
first = idx.search(query, k=5); lap("first search")
idx.search("오늘 날씨가 맑다", k=5); lap("second search")
heavy = [name for name in HEAVY if name in sys.modules]
print(json.dumps({"laps": laps, "heavy": heavy, "top": first[0].text if first else None}))
""".replace("HEAVY", repr(HEAVY))

ST_CHILD = r"""
import sys, time
started = time.perf_counter()
from sentence_transformers import SentenceTransformer
imported = time.perf_counter()
SentenceTransformer(sys.argv[1], device="cpu")
print(imported - started, time.perf_counter() - imported)
"""


def child_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    env["TRANSFORMERS_VERBOSITY"] = "error"
    return env


def run(tree: Path, args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=tree, env=child_env(tree), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"child failed in {tree}: {' '.join(args)}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def measure(tree: Path, index: Path) -> dict:
    """One repetition for one tree: the step-by-step child, the whole command, a bare interpreter."""
    _, out = run(tree, ["-c", STEPS_CHILD, str(index), QUERY])
    steps = json.loads(out.strip().splitlines()[-1])
    command, out = run(tree, ["-m", "kosearch", "query", str(index), QUERY, "-k", "5", "--json"])
    bare, _ = run(tree, ["-c", "pass"])
    return {
        **{f"step: {name}": seconds for name, seconds in steps["laps"].items()},
        "steps total": sum(steps["laps"].values()),
        "python -m kosearch query (wall)": command,
        "python -c pass (wall)": bare,
        "_heavy": steps["heavy"],
        "_top": steps["top"],
        "_command_top": json.loads(out.splitlines()[-1])["hits"][0]["text"],
    }


def build_index(tree: Path, folder: Path) -> Path:
    corpus = ROOT / "corpora" / "sample" / "공공"
    index = folder / "index"
    run(tree, ["-m", "kosearch", "index", str(corpus), "--index", str(index), "--quiet", "--json"])
    return index


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=None, help="Checkout of the code to compare against.")
    parser.add_argument("--index", type=Path, default=None, help="An index built with the bundled model.")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-st", action="store_true", help="Do not time SentenceTransformer(folder).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the raw numbers here.")
    parser.add_argument("--fp16", type=int, default=0, metavar="N", help="Also weigh float16 storage (N sentences).")
    parser.add_argument("--only-fp16", action="store_true", help="Skip the start-up measurements.")
    args = parser.parse_args()
    if args.fp16:
        with tempfile.TemporaryDirectory(prefix="bench-fp16-") as scratch:
            fp16_check(args.fp16, args.repeat, Path(scratch))
        if args.only_fp16:
            return

    trees = {"this tree": ROOT}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    print(f"load average before: {load_average()}  ({os.cpu_count()} CPUs)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        index = args.index or build_index(next(iter(trees.values())), Path(scratch))
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        reference: list[tuple[float, float]] = []
        for repetition in range(args.repeat):
            for name, tree in trees.items():
                runs[name].append(measure(tree, index))
            if not args.skip_st:
                _, out = run(ROOT, ["-c", ST_CHILD, bundled_folder()])
                reference.append(tuple(float(x) for x in out.split()))  # type: ignore[arg-type]
            print(f"repetition {repetition + 1}/{args.repeat} done (load {load_average()})", flush=True)
    print(f"load average after: {load_average()}")
    report(runs, reference)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "sentence_transformer": reference}, indent=1, ensure_ascii=False))


ST_LOAD_CHILD = r"""
import sys, time
from sentence_transformers import SentenceTransformer
started = time.perf_counter()
model = SentenceTransformer(sys.argv[1], device="cpu")
print(time.perf_counter() - started, next(model.parameters()).dtype)
"""


def fp16_check(sentences: int, repeat: int, scratch: Path) -> None:
    """Float16 storage: disk size, SentenceTransformer load time, and how far the vectors move."""
    import shutil

    import numpy as np
    from safetensors.numpy import load_file, save_file

    sys.path.insert(0, str(ROOT))
    from kosearch.data.sts import read_sts
    from kosearch.encoders.numpy_bert import NumpyBert

    original = Path(bundled_folder())
    half = scratch / "fp16"
    shutil.copytree(original, half, ignore=shutil.ignore_patterns("model.safetensors"))
    weights = load_file(str(original / "model.safetensors"))
    save_file({k: v.astype(np.float16) for k, v in weights.items()}, str(half / "model.safetensors"),
              metadata={"format": "pt"})
    del weights
    sizes = {name: (folder / "model.safetensors").stat().st_size / 1e6 for name, folder in
             (("float32", original), ("float16", half))}
    loads: dict[str, list[float]] = {"float32": [], "float16": []}
    for _ in range(repeat):
        for name, folder in (("float32", original), ("float16", half)):
            _, out = run(ROOT, ["-c", ST_LOAD_CHILD, str(folder)])
            loads[name].append(float(out.split()[0]))
    pairs = read_sts(ROOT.parent / "shared" / "data" / "korsts" / "sts-test.tsv")
    texts = sorted({s for p in pairs for s in (p.sentence1, p.sentence2)})[:sentences]
    texts = ["query: " + text for text in texts]
    a = NumpyBert(original, 512).encode(texts)
    b = NumpyBert(half, 512).encode(texts)
    cosine = np.sum(a * b, axis=1)
    print(f"\nfloat16 storage: model.safetensors {sizes['float32']:.0f} MB -> {sizes['float16']:.0f} MB; "
          f"SentenceTransformer load median {statistics.median(loads['float32']):.2f}s (float32 file) vs "
          f"{statistics.median(loads['float16']):.2f}s (float16 file); query vectors over {len(texts)} KorSTS "
          f"sentences: min cosine {cosine.min():.7f} (1 - min = {1 - cosine.min():.1e}), mean {cosine.mean():.7f}")


def bundled_folder() -> str:
    sys.path.insert(0, str(ROOT))
    from kosearch.encoders import bundled_model_path

    return str(bundled_model_path())


def report(runs: dict[str, list[dict]], reference: list[tuple[float, float]]) -> None:
    names = list(runs)
    rows = [key for key in runs[names[-1]][0] if not key.startswith("_")]
    medians = {name: {row: statistics.median(r[row] for r in runs[name] if row in r) for row in rows
                      if all(row in r for r in runs[name])} for name in names}
    width = max(len(row) for row in rows) + 2
    header = f"{'seconds (median of ' + str(len(runs[names[-1]])) + ')':<{width}}" + "".join(f"{n:>12}" for n in names)
    print("\n" + header + ("     ratio" if len(names) == 2 else ""))
    for row in rows:
        cells = [medians[name].get(row) for name in names]
        line = f"{row:<{width}}" + "".join(f"{c:>12.2f}" if c is not None else f"{'-':>12}" for c in cells)
        if len(names) == 2 and cells[0] and cells[1]:
            line += f"  {cells[0] / cells[1]:>7.1f}x"
        print(line)
    for name in names:
        print(f"{name}: heavy modules on the query path: {', '.join(runs[name][0]['_heavy']) or 'none'}; "
              f"top hit: {runs[name][0]['_top']!r} (command: {runs[name][0]['_command_top']!r})")
    if reference:
        imports = statistics.median(r[0] for r in reference)
        load = statistics.median(r[1] for r in reference)
        print(f"reference: import sentence_transformers {imports:.2f}s, SentenceTransformer(bundled folder) {load:.2f}s")


if __name__ == "__main__":
    main()
