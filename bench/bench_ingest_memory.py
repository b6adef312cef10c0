"""Peak memory of an ingest run as the corpus grows: what is left once the vectors are counted out.

Each measurement is a child process that indexes a generated corpus into a new index and reports
its peak RSS (``ru_maxrss``). The encoder is a stub (random unit vectors of dimension 384, the
bundled model's), and sentence splitting is replaced by one sentence per line, so the run measures
ingestion and the store, not a model or Kiwi (both are fixed costs that would only blur the
slope). A control child adds the same number of vectors to a bare FAISS store in the same batches:
vectors may grow with the corpus, everything else must not, so the number to read is the slope of
``RSS - control`` per sentence between two corpus sizes.

Corpora: ``files`` (many files of 50 sentences) and ``one-file`` (all sentences in one file, the
case of a huge CSV field that could not be checkpointed inside itself).

Before/after: ``--baseline PATH`` runs another checkout as well (put first on PYTHONPATH), e.g.::

    git archive 91b034c kosearch | tar -x -C /tmp/orig
    python bench/bench_ingest_memory.py --baseline /tmp/orig
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIMENSION = 384

INGEST = textwrap.dedent(
    """
    import hashlib, json, resource, sys, time
    import numpy as np
    import kosearch
    import kosearch.documents.split as split

    def one_sentence_per_line(records, max_chars):
        for record in records:
            start = 0
            for line in record.text.split("\\n"):
                if line.strip():
                    yield record, start, start + len(line)
                start += len(line) + 1

    split._sentence_pieces = one_sentence_per_line

    class StubEncoder:
        device, name, prompts = "cpu", "bench/stub", {}
        def __init__(self, dimension):
            self.dimension = dimension
            self.fingerprint = hashlib.sha256(f"stub:{dimension}".encode()).hexdigest()[:16]
            self.rng = np.random.default_rng(0)
        def encode_documents(self, texts, **kwargs):
            vectors = self.rng.standard_normal((len(texts), self.dimension)).astype(np.float32)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        encode_queries = encode_documents

    index, docs, dimension = sys.argv[1], sys.argv[2], int(sys.argv[3])
    started = time.perf_counter()
    with kosearch.Index.create(index, StubEncoder(dimension)) as idx:
        report = idx.add_folder(docs)
        generation = idx.store.manifest["generation"]
    print(json.dumps({
        "sentences": report.sentences_added,
        "checkpoints": generation,
        "seconds": time.perf_counter() - started,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "kosearch": kosearch.__file__,
    }))
    """
)

CONTROL = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import kosearch
    from kosearch.store import FaissVectorStore

    sentences, dimension = int(sys.argv[1]), int(sys.argv[2])
    store = FaissVectorStore.empty(dimension)
    rng = np.random.default_rng(0)
    for start in range(0, sentences, 8192):
        count = min(8192, sentences - start)
        vectors = rng.standard_normal((count, dimension)).astype(np.float32)
        store.add(np.arange(start, start + count), vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    print(json.dumps({"max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def write_corpus(folder: Path, sentences: int, per_file: int) -> Path:
    folder.mkdir(parents=True)
    for number in range(-(-sentences // per_file)):
        count = min(per_file, sentences - number * per_file)
        lines = (
            f"{number}번 문서의 {line}번째 문장은 검색 색인의 메모리를 재기 위해 만든 예문입니다."
            for line in range(count)
        )
        (folder / f"doc{number:06d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def child(code: Path, script: str, *args: str, cwd: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    # cwd is the scratch folder: ``python -c`` puts it first on sys.path, and it holds no kosearch.
    result = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=3600
    )
    if result.returncode != 0:
        raise SystemExit(f"child failed ({code}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, nargs=2, default=[20_000, 80_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--baseline", type=Path, help="another kosearch checkout to measure as well")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    codes = [("this", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="kosearch-memory-") as scratch:
        scratch_path = Path(scratch)
        control = {n: child(ROOT, CONTROL, str(n), str(DIMENSION), cwd=scratch_path)["max_rss_mb"] for n in args.sentences}
        for corpus, per_file in (("files", 50), ("one-file", max(args.sentences))):
            for n in args.sentences:
                docs = write_corpus(scratch_path / f"docs-{corpus}-{n}", n, per_file)
                for label, code in codes:
                    index = scratch_path / f"idx-{corpus}-{n}-{label}"
                    measured = child(code, INGEST, str(index), str(docs), str(DIMENSION), cwd=scratch_path)
                    assert measured["kosearch"].startswith(str(code)), measured["kosearch"]
                    results.append(
                        {"code": label, "corpus": corpus, **measured, "control_rss_mb": control[n],
                         "rss_minus_vectors_mb": measured["max_rss_mb"] - control[n]}
                    )
    print(f"{'code':9} {'corpus':9} {'sentences':>9} {'ckpts':>5} {'RSS MB':>8} {'vectors MB':>10} "
          f"{'rest MB':>8} {'s':>6}")
    for r in results:
        print(f"{r['code']:9} {r['corpus']:9} {r['sentences']:9d} {r['checkpoints']:5d} {r['max_rss_mb']:8.0f} "
              f"{r['control_rss_mb']:10.0f} {r['rss_minus_vectors_mb']:8.0f} {r['seconds']:6.1f}")
    small, large = args.sentences
    print("\nslope of RSS - control (bytes per added sentence; vectors alone are "
          f"{DIMENSION * 4} bytes and are counted out):")
    for corpus in ("files", "one-file"):
        for label, _ in codes:
            rows = {r["sentences"]: r for r in results if r["code"] == label and r["corpus"] == corpus}
            slope = (rows[large]["rss_minus_vectors_mb"] - rows[small]["rss_minus_vectors_mb"]) * 2**20 / (large - small)
            print(f"  {label:9} {corpus:9} {slope:8.0f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
