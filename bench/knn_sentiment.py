"""In-domain check for the NSMC-adapted encoders: k-NN sentiment accuracy on held-out NSMC reviews.

Usage: python bench/knn_sentiment.py --exclude-first 20000 --out runs/knn.json LABEL=MODEL [LABEL=MODEL ...]

The first ``--exclude-first`` distinct reviews (the ones ``kosearch train simcse/tsdae --limit N`` trains on) are
never sampled, so every model is judged on reviews no one trained on. Prints a markdown table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from kosearch.data.sentences import read_sentences
from kosearch.evaluate.knn import knn_accuracy, nsmc_sentiment_split

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nsmc" / "nsmc_reviews.tsv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="LABEL=MODEL (MODEL: 'bundled' or a model folder)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--exclude-first", type=int, default=20000)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    excluded = read_sentences(args.data, column="review", limit=args.exclude_first) if args.exclude_first else []
    split = nsmc_sentiment_split(args.data, train=args.train, test=args.test, exclude=excluded, seed=args.seed)
    results = []
    for spec in args.models:
        label, _, model = spec.partition("=")
        started = time.perf_counter()
        result = knn_accuracy(None if model == "bundled" else model, split, k=args.k)
        results.append({"label": label, "model": model, **asdict(result)})
        print(f"{label}: {result.accuracy:.2f} ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"\n| model | k-NN accuracy (k={args.k}, {args.train} train / {args.test} test) |\n|---|---:|")
    for row in results:
        print(f"| {row['label']} | {row['accuracy']:.2f} |")
    print(f"(majority-class baseline {results[0]['majority_baseline']:.1f})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
