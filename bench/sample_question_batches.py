"""Dense, lexical and hybrid on the sample questions, per batch of questions, with paired bootstraps.

``corpora/sample_questions/questions.jsonl`` holds two batches: the first 60 questions (no ``batch``
field) and 60 written later, blind, to tell whether hybrid's small loss to dense at sentence units
was noise (``"batch": 2``; corpora/sample_questions/README.md). Every query is ranked on its own, so
the metrics of a batch are the per-query metrics of the 120-question run averaged over that batch's
queries: one run gives the old 60, the new 60 and all 120. Batch 2 is also split into its
questions on the office documents of ``corpora/sample/문서/`` (which batch 1 never asks about) and
the rest, to see whether those formats are what makes it harder.

The rankings are ``bench/fusion_confidence.py``'s, on ``bench/fusion_study.py``'s cached scores
(bundled encoder, Kiwi morphemes; BM25 at the product's k1 / b with Robertson idf): dense-only,
BM25-only, and hybrid through ``kosearch.search.fusion.convex_fusion`` at its defaults, query by
query (checked against the study's spelling of the same fusion). Sets: sample questions at sentence
units (the BEIR corpus, 439 sentences) and at passage units (corpora/sample as ``kosearch index``
splits it; a passage is relevant when it holds a judged sentence). For each batch: the means
(x100), hybrid minus dense and hybrid minus lexical with paired-bootstrap 95% percentile intervals
(queries resampled within the batch), and how many queries hybrid ranks the first relevant unit
lower / higher than dense (``--json`` keeps each question's rank of its first relevant unit per
mode). Before the rankings it prints a profile of each batch: how many of a
question's lexical tokens (the product's Kiwi morphemes) occur in one of its judged sentences, and how
long the judged sentences are.

``--subsets DIR`` also writes one BEIR folder per batch (``DIR/batch1``, ``DIR/batch2``: the same
corpus, that batch's queries and judgements) for the runs through the index
(``bench/bench_units.py --questions``, ``kosearch evaluate retrieval --data``).

Usage: OMP_NUM_THREADS=1 PYTHONPATH=. python bench/sample_question_batches.py --cache /tmp/sq-cache \
    [--subsets /tmp/sq] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fusion_confidence import METRICS, PRODUCT_NEW, Fusion, bootstrap, fused_scores, parts, per_query, through_product  # noqa: E402
from fusion_study import check_metrics, lexical, load_sets, prepare  # noqa: E402

from kosearch.data.beir import BeirDataset, load_beir, write_beir  # noqa: E402
from kosearch.search.bm25 import DEFAULT_B, DEFAULT_K1, BM25Parameters  # noqa: E402
from kosearch.search.morphemes import LexicalOptions  # noqa: E402

QUESTIONS = ROOT / "corpora" / "sample_questions"


OFFICE = "문서/"
"""The folder of corpora/sample that holds the office documents (PDF, DOCX, HWPX, HWP, HTML)."""


def batch_of_question() -> tuple[dict[str, int], set[str]]:
    """Question text -> its batch (1 where questions.jsonl gives none), and the questions whose judged
    sentences are all in the office documents; texts must be distinct."""
    found: dict[str, int] = {}
    office: set[str] = set()
    for line in (QUESTIONS / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record["question"] in found:
                raise SystemExit(f"questions.jsonl: question {record['question']!r} appears twice")
            found[record["question"]] = int(record.get("batch", 1))
            if all(r["file"].startswith(OFFICE) for r in record["relevant"]):
                office.add(record["question"])
    return found, office


def batch_profile() -> dict[int, dict[str, float]]:
    """Per batch: questions, judgements, mean share of a question's lexical tokens found in its judged
    sentences, questions sharing no token with them, median judged sentence length (characters)."""
    import statistics

    from kosearch.search.morphemes import MorphemeAnalyzer

    analyzer = MorphemeAnalyzer(LexicalOptions())
    rows: dict[int, dict[str, list]] = {}
    for line in (QUESTIONS / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        tokens = set(analyzer.analyze(record["question"]))
        judged = set().union(*(analyzer.analyze(r["sentence"]) for r in record["relevant"]))
        row = rows.setdefault(int(record.get("batch", 1)), {"share": [], "lengths": []})
        row["share"].append(len(tokens & judged) / max(len(tokens), 1))
        row["lengths"] += [len(r["sentence"]) for r in record["relevant"]]
    return {batch: {"questions": len(row["share"]), "judgements": len(row["lengths"]),
                    "token share": 100 * statistics.mean(row["share"]),
                    "no shared token": sum(share == 0 for share in row["share"]),
                    "median judged length": statistics.median(row["lengths"])} for batch, row in sorted(rows.items())}


def write_subsets(folder: Path, batches: dict[str, int]) -> dict[int, Path]:
    """One BEIR folder per batch: the whole corpus, the batch's queries and judgements."""
    dataset = load_beir(QUESTIONS)
    out = {}
    for batch in sorted(set(batches.values())):
        ids = [q for q in dataset.queries if batches[dataset.queries[q]] == batch]
        subset = BeirDataset(corpus=dataset.corpus, queries={q: dataset.queries[q] for q in ids},
                             qrels={q: dataset.qrels[q] for q in ids if q in dataset.qrels}, name=f"sample_questions_batch{batch}")
        out[batch] = write_beir(subset, folder / f"batch{batch}")
        judged = sum(len(subset.qrels[q]) for q in subset.qrels)
        print(f"batch {batch}: {len(ids)} queries, {judged} judgements -> {out[batch]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder for the cached vectors and morphemes (_cache/ inside)")
    parser.add_argument("--subsets", type=Path, default=None, help="also write one BEIR folder per batch here")
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"start {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, load average {os.getloadavg()}", flush=True)
    batches, office = batch_of_question()
    profile = batch_profile()
    for batch, row in profile.items():
        print(f"batch {batch}: {row['questions']} questions, {row['judgements']} judgements; {row['token share']:.1f}% of a "
              f"question's lexical tokens occur in its judged sentences (mean), {row['no shared token']} questions share none; "
              f"judged sentences median {row['median judged length']:g} characters", flush=True)
    if args.subsets:
        write_subsets(args.subsets, batches)
    parameters = BM25Parameters(k1=DEFAULT_K1, b=DEFAULT_B, idf="robertson")  # the product's BM25
    rng = np.random.default_rng(20261207)
    result: dict = {"profile": profile, "bm25": {"k1": DEFAULT_K1, "b": DEFAULT_B, "idf": "robertson"}, "sets": {}}
    print("| set | questions | n | metric | dense | lexical | hybrid | hybrid - dense [95% CI] | hybrid - lexical [95% CI] |"
          " first relevant: hybrid lower / higher than dense |")
    print("|---|---|---:|---|---:|---:|---:|---|---|---|")
    for dev in load_sets(args.cache, ["sample_sentences", "sample_passages"]):
        p = prepare(dev, lexical(dev, LexicalOptions(), parameters))
        check_metrics(dev, p)
        q = parts(p)
        scores = {name: per_query(p, fused_scores(p, q, Fusion(name))) for name in ("dense", "lexical")}
        scores["hybrid"] = through_product(p)
        study = per_query(p, fused_scores(p, q, PRODUCT_NEW))
        for m in METRICS:  # the product's convex_fusion and the study's spelling of it agree query by query
            assert np.allclose(study[m], scores["hybrid"][m]), (dev.name, m)
        result.setdefault("first relevant rank (dense, lexical, hybrid; 0 = not in the top 10)", {})[dev.name] = {
            text: [int(scores[mode]["first"][i]) for mode in ("dense", "lexical", "hybrid")] for i, text in enumerate(dev.queries)}
        of = np.array([batches[text] for text in dev.queries])
        in_office = np.array([text in office for text in dev.queries])
        groups = {f"batch {b}": of == b for b in sorted(set(of.tolist()))}
        for b in sorted(set(of[in_office].tolist())):
            groups[f"batch {b}, text files"] = (of == b) & ~in_office
            groups[f"batch {b}, office documents"] = (of == b) & in_office
        groups["all"] = np.ones(len(of), dtype=bool)
        for label, mask in groups.items():
            rank = {mode: np.where(scores[mode]["first"][mask] > 0, scores[mode]["first"][mask], 11) for mode in scores}
            lower, higher = int((rank["hybrid"] > rank["dense"]).sum()), int((rank["hybrid"] < rank["dense"]).sum())
            for m in METRICS:
                d, lx, h = (scores[mode][m][mask] for mode in ("dense", "lexical", "hybrid"))
                vs_d, vs_l = bootstrap(h, d, args.resamples, rng), bootstrap(h, lx, args.resamples, rng)
                result["sets"].setdefault(dev.name, {}).setdefault(label, {"queries": int(mask.sum()), "hybrid lower / higher than dense": [lower, higher]})[m] = {
                    "dense": float(d.mean()), "lexical": float(lx.mean()), "hybrid": float(h.mean()), "hybrid - dense": vs_d, "hybrid - lexical": vs_l}
                print(f"| {dev.name} | {label} | {mask.sum()} | {m} | {d.mean():.2f} | {lx.mean():.2f} | {h.mean():.2f} | "
                      f"{vs_d['diff']:+.2f} [{vs_d['low']:+.2f}, {vs_d['high']:+.2f}] | {vs_l['diff']:+.2f} [{vs_l['low']:+.2f}, {vs_l['high']:+.2f}] | "
                      f"{lower} / {higher} |", flush=True)
    result |= {"load_average_end": os.getloadavg(), "seconds": time.perf_counter() - started}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"end {time.strftime('%H:%M:%S', time.gmtime())} UTC, {time.perf_counter() - started:.0f} s; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
