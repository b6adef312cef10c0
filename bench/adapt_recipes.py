"""Recipe experiments for ``kosearch train adapt``: one variant per call, scored as ``bench/adapt_runs.py`` scores.

``bench/adapt_runs.py`` measures the recipe per *budget*; this measures recipe *variants* (learning rate, warm-up,
passes, the anchor to the base model, hard negatives, query kinds) on a set that script built, with per-query
results kept so two variants can be compared query by query (paired bootstrap, wins and losses).

For each variant it

1. trains ``train_adapt`` in this process on ``SET/adapt_docs`` with a fixed number of passes (no budget, so the
   variant decides the steps, not the machine's load) and the settings the budget runs ended with (batch 32,
   64 tokens, frozen word embeddings, bf16 where the CPU has AMX, seed 13), or takes an existing model
   (``--model``);
2. scores it through a temporary kosearch index in dense and hybrid mode, exactly as
   :func:`kosearch.evaluate.evaluate_retrieval_modes` does (same index, candidates and metrics), keeping each
   query's ranking;
3. scores KorSTS test cosine Spearman on the query and the document side (``bench/adapt_runs.py``'s
   ``evaluate_korsts``);
4. writes ``OUT/<name>.json`` (settings, numbers, per-query nDCG@10, times, load).

``--compare A B`` prints the paired comparison of two finished variants (nDCG@10 per query, dense and hybrid):
mean difference, a 95% paired bootstrap interval, and how many queries each wins.

Usage::

    OMP_NUM_THREADS=1 nice -n 19 python bench/adapt_recipes.py --set runs/adapt/chatbot --out runs/recipes \\
        --name anchor10_e3 --epochs 3 --anchor-weight 10
    python bench/adapt_recipes.py --out runs/recipes --compare base_recipe anchor10_e3

On the nsmc set of ``bench/adapt_runs.py``, like for like with its 15-minute row (209 steps) and with k-NN::

    OMP_NUM_THREADS=1 nice -n 19 python bench/adapt_recipes.py --set runs/adapt/nsmc --out runs/nsmc-recipes --knn \\
        --name anchor10_lr1e-5_s209 --max-steps 209 --lr 1e-5 --anchor-weight 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MODES = ("dense", "hybrid")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_variant(args: argparse.Namespace, output: Path) -> dict[str, Any]:
    from kosearch.train import TrainingConfig, train_adapt

    config = TrainingConfig(
        output=output, epochs=args.epochs, max_steps=args.max_steps, batch_size=32, learning_rate=args.lr, warmup_ratio=args.warmup,
        max_seq_length=64, seed=args.seed, freeze_embeddings=True, device="cpu", evaluate_base=False,
    )
    started = time.perf_counter()
    result = train_adapt(
        config, args.set / "adapt_docs", anchor_weight=args.anchor_weight, hard_negatives=not args.no_hard_negatives,
        question_share=args.question_share,
        query_kinds=tuple(args.query_kinds), fine_tune=True, word_weights=args.word_weights,
    )
    phase = result.phases[0]
    return {
        "steps": result.steps, "train_seconds": result.train_seconds, "wall_seconds": time.perf_counter() - started,
        "median_step_seconds": phase.median_step_seconds, "notes": result.notes,
    }


def score_retrieval(model: str, beir: Path) -> dict[str, Any]:
    """Dense and hybrid through one temporary index, as ``evaluate_retrieval_modes``; with per-query nDCG@10."""
    from kosearch.data.beir import load_beir
    from kosearch.evaluate.ranking import NDCG_AT, ndcg, ranking_metrics, reciprocal_rank
    from kosearch.evaluate.retrieval import TEMPORARY_INDEX_CANDIDATES, rank_with_index
    from kosearch.evaluate.temporary_index import temporary_index

    dataset = load_beir(beir, "test")
    out: dict[str, Any] = {}
    with temporary_index(model, dataset) as built:
        for mode in MODES:
            rankings = rank_with_index(
                built.index, dataset, candidates=TEMPORARY_INDEX_CANDIDATES, mode=mode, document_of=built.document_of
            )
            judged = [query for query, relevant in dataset.qrels.items() if relevant]
            out[mode] = {
                **ranking_metrics(rankings, dataset.qrels),
                "per_query_ndcg": {q: ndcg(rankings.get(q, []), dataset.qrels[q], NDCG_AT) for q in judged},
                "per_query_rr": {q: reciprocal_rank(rankings.get(q, [])[:10], dataset.qrels[q]) for q in judged},
            }
    return out


def score_sts(model: str, sts_test: Path) -> dict[str, float]:
    from kosearch.evaluate import evaluate_sts

    return {side: float(evaluate_sts(model, sts_test, side=side, show_progress_bar=False).cosine_spearman)
            for side in ("query", "document")}


def paired(a: dict[str, float], b: dict[str, float], *, samples: int = 10000, seed: int = 0) -> dict[str, Any]:
    """B - A per query (x100): mean, 95% paired bootstrap interval, wins / losses / ties of B."""
    queries = sorted(set(a) & set(b))
    diffs = [100 * (b[q] - a[q]) for q in queries]
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    return {
        "queries": n, "mean": sum(diffs) / n, "ci95": [means[int(0.025 * samples)], means[int(0.975 * samples)]],
        "p_not_better": sum(m <= 0 for m in means) / samples,
        "wins": sum(d > 0 for d in diffs), "losses": sum(d < 0 for d in diffs), "ties": sum(d == 0 for d in diffs),
    }


def compare(out: Path, first: str, second: str) -> dict[str, Any]:
    a = json.loads((out / f"{first}.json").read_text(encoding="utf-8"))
    b = json.loads((out / f"{second}.json").read_text(encoding="utf-8"))
    result = {}
    for mode in MODES:
        for metric in ("ndcg", "rr"):
            key = f"per_query_{metric}"
            result[f"{mode} {metric}"] = paired(a["retrieval"][mode][key], b["retrieval"][mode][key])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", type=Path, help="a set folder of bench/adapt_runs.py (beir/ and adapt_docs/)")
    parser.add_argument("--name")
    parser.add_argument("--model", help="score this model instead of training one ('bundled' for the base)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, help="train this many steps (overrides --epochs; the learning-rate "
                        "schedule spans them), e.g. the steps a budget run of bench/adapt_runs.py trained")
    parser.add_argument("--knn", action="store_true",
                        help="also score NSMC k-NN sentiment as bench/adapt_runs.py does for its nsmc set")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--anchor-weight", type=float, default=0.0)
    parser.add_argument("--no-hard-negatives", action="store_true")
    parser.add_argument("--query-kinds", nargs="+", default=["ict", "keywords", "question"])
    parser.add_argument("--question-share", type=float, default=0.0,
                        help="share of keyword queries written as generic questions (train_adapt's question_share)")
    parser.add_argument("--word-weights", action="store_true",
                        help="train with the folder's token weights in the model (train adapt's default since session 9; "
                        "off here, so the variants measured before it are reproduced)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--sts-test", type=Path, default=ROOT.parent / "shared" / "data" / "korsts" / "sts-test.tsv")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        print(json.dumps(compare(args.out, *args.compare), indent=1))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "name": args.name, "argv": sys.argv, "started": _now(), "load_start": os.getloadavg(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
    }
    if args.model:
        model = args.model
    else:
        output = args.out / "models" / args.name
        record["train"] = train_variant(args, output)
        model = str(output)
        record["load_after_train"] = os.getloadavg()
    started = time.perf_counter()
    record["retrieval"] = score_retrieval(model, args.set / "beir")
    record["korsts"] = score_sts(model, args.sts_test)
    if args.knn:
        from adapt_runs import nsmc_knn

        record["knn_accuracy"] = nsmc_knn(model, args.set)
    record["eval_seconds"] = time.perf_counter() - started
    record["finished"], record["load_end"] = _now(), os.getloadavg()
    (args.out / f"{args.name}.json").write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    summary = {mode: {k: round(record["retrieval"][mode][k], 2) for k in ("ndcg_at_10", "mrr_at_10")} for mode in MODES}
    print(json.dumps({"name": args.name, **summary, "korsts": record["korsts"],
                      "knn": record.get("knn_accuracy"), "train": record.get("train", {})
                      .get("steps")}, ensure_ascii=False))


if __name__ == "__main__":
    main()
