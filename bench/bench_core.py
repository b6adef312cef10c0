"""Benchmark kosearch's core against the plain sentence-transformers baseline, in one run.

What it measures, on the first N NSMC reviews (default 20,000) written as a UTF-8 text file:
1. ingest: ``kosearch index`` (the CLI, in a child process: read, split, encode, store,
   checkpoint) vs. ``SentenceTransformer.encode_document`` on exactly the sentences kosearch
   extracted, same model, prompt, batch size and device. Two ratios: the ingest time kosearch
   reports (model already loaded, as for the baseline) and the whole command's wall time.
2. peak memory: the ``kosearch index`` child's max RSS, next to a ``kosearch query`` child that
   only loads the model and answers one query.
3. query latency: p50/p95 of single ``Index.search`` calls (encoding included), 200 queries.
4. paraphrase mining: ``Index.paraphrases`` vs. ``util.paraphrase_mining_embeddings`` on the same
   stored vectors of the distinct texts; time of each and overlap of their top pairs.

Usage: python bench/bench_core.py [--reviews 20000] [--out docs/bench_core.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import util

ROOT = Path(__file__).resolve().parents[1]
NSMC = ROOT.parent / "shared" / "data" / "nsmc" / "nsmc_reviews.tsv.gz"
sys.path.insert(0, str(ROOT))

import kosearch  # noqa: E402
from kosearch.encoders import Encoder  # noqa: E402


def read_reviews(n: int, skip: int = 0) -> list[str]:
    reviews: list[str] = []
    with gzip.open(NSMC, "rt", encoding="utf-8") as handle:
        next(handle)
        for number, line in enumerate(handle):
            if number < skip:
                continue
            review = line.rstrip("\n").split("\t", 3)[-1].strip()
            if review:
                reviews.append(review)
            if len(reviews) >= n:
                break
    return reviews


def time_baseline(encoder: Encoder, sentences: list[str]) -> float:
    started = time.perf_counter()
    encoder.model.encode_document(
        sentences, batch_size=encoder.batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    return time.perf_counter() - started


PEAK_RSS_WRAPPER = """
import resource, runpy, sys
sys.argv = ["kosearch", *sys.argv[1:]]
try:
    runpy.run_module("kosearch", run_name="__main__")
finally:
    sys.stderr.write(f"PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
"""


def run_cli_with_peak_rss(cli_args: list[str]) -> tuple[dict, float]:
    """Run ``kosearch CLI_ARGS --json`` in a child process: its JSON output and its own peak RSS in MB."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_WRAPPER, *cli_args],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    line = [item for item in done.stderr.splitlines() if item.startswith("PEAK_RSS_KB=")][-1]
    return json.loads(done.stdout.splitlines()[0]), round(int(line.split("=")[1]) / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--mining-top", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    results: dict = {
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads, "
        f"{platform.python_implementation()} {platform.python_version()}",
        "reviews": args.reviews,
    }
    work = Path(tempfile.mkdtemp(prefix="kosearch-bench-"))
    corpus = work / "corpus"
    corpus.mkdir()
    (corpus / "nsmc.txt").write_text("\n".join(read_reviews(args.reviews)) + "\n", encoding="utf-8")

    encoder = Encoder(None)
    results["model"] = encoder.name
    results["device"] = encoder.device
    encoder.encode_documents(["워밍업 문장입니다."] * 8)  # first-call set-up is not encoding

    # 1. `kosearch index` end to end in a child process (start-up and model load included), with its
    #    own report of the ingest time and its peak memory.
    started = time.perf_counter()
    report, index_rss = run_cli_with_peak_rss(
        ["index", str(corpus), "--index", str(work / "index"), "--quiet", "--json"]
    )
    wall = time.perf_counter() - started
    with kosearch.Index.open(work / "index", encoder) as idx:
        sentences = [row[0] for row in idx.store.metadata.db.execute("select text from sentences order by id")]
    assert report["sentences_added"] == len(sentences)

    # 2. the baseline: bare encoding of exactly those sentences, same model, prompt and batch size.
    baseline = time_baseline(encoder, sentences)
    _, model_rss = run_cli_with_peak_rss(["query", str(work / "index"), "한 문장", "-k", "1", "--json"])
    results["ingest"] = {
        "sentences": len(sentences),
        "kosearch_index_wall_seconds": round(wall, 2),
        "kosearch_ingest_seconds": round(report["seconds"], 2),
        "baseline_encode_seconds": round(baseline, 2),
        "kosearch_sentences_per_second": round(len(sentences) / report["seconds"], 1),
        "baseline_sentences_per_second": round(len(sentences) / baseline, 1),
        "ingest_overhead_ratio": round(report["seconds"] / baseline, 3),
        "wall_overhead_ratio": round(wall / baseline, 3),
    }
    results["memory"] = {
        "index_peak_rss_mb": index_rss,
        "query_only_peak_rss_mb": model_rss,
        "vectors_mb": round(len(sentences) * encoder.dimension * 4 / 1e6, 1),
    }

    # 3. single-query latency, queries not in the corpus
    with kosearch.Index.open(work / "index", encoder) as idx:
        latencies = []
        for text in read_reviews(args.queries, skip=args.reviews + 1000):
            started = time.perf_counter()
            idx.search(text, k=10)
            latencies.append((time.perf_counter() - started) * 1000)
        results["query_ms"] = {
            "p50": round(statistics.median(latencies), 2),
            "p95": round(float(np.percentile(latencies, 95)), 2),
            "queries": len(latencies),
        }

        # 4. paraphrase mining vs sentence-transformers on the same vectors (distinct texts)
        started = time.perf_counter()
        pairs = idx.paraphrases(top=args.mining_top, neighbours=10)
        ours_mining = time.perf_counter() - started
        representatives = [row[0] for row in idx.store.duplicate_groups()]
        position = {sentence_id: i for i, sentence_id in enumerate(representatives)}
        vectors = np.zeros((len(representatives), encoder.dimension), dtype=np.float32)
        for ids, batch in idx.store.iter_vectors():
            for sentence_id, vector in zip(ids.tolist(), batch):
                if sentence_id in position:
                    vectors[position[sentence_id]] = vector
        started = time.perf_counter()
        reference = util.paraphrase_mining_embeddings(
            torch.from_numpy(vectors), top_k=10, max_pairs=args.mining_top
        )
        reference_mining = time.perf_counter() - started
    ours_pairs = {(p.a.sentence_id, p.b.sentence_id) for p in pairs}
    reference_pairs = {
        tuple(sorted((representatives[i], representatives[j]))) for _, i, j in reference
    }
    results["paraphrases"] = {
        "distinct_sentences": len(representatives),
        "top": args.mining_top,
        "kosearch_seconds": round(ours_mining, 2),
        "sentence_transformers_seconds": round(reference_mining, 2),
        "time_ratio": round(ours_mining / reference_mining, 3),
        "top_pair_agreement": round(len(ours_pairs & reference_pairs) / max(1, len(reference_pairs)), 4),
    }

    text = json.dumps(results, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
