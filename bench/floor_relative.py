"""Hybrid fusion's dense std floor, fixed or relative to the model's spread, for base and adapted models.

The convex fusion divides the dense z-score by ``max(std, 0.01)`` (``fusion.DEFAULT_DENSE_STD_FLOOR``),
a floor chosen for the bundled e5, whose cosines are compressed. ``kosearch train adapt`` spreads a
model's cosines past it, so an adapted dense list weighs more against BM25 than the base's did. This
measures, per set and per model, hybrid ranked with three floors from the *same* candidates:

- ``fixed``: 0.01, the product's floor before ``kosearch.search.dense_floor``;
- ``relative``: 0.01 x spread(model) / spread(bundled), spreads measured by
  ``dense_floor.probe_spread`` on its fixed Korean probe sentences (bundled measured in the same run);
- ``plainz``: no floor (plain z-scores);

plus dense-only and lexical-only for reference. Per model the corpus is indexed once through the product
(``temporary_index``'s layout: one file per record, ``Index.add_folder``) in ``--work`` and kept there
(the vector cache: a rerun reuses the index and the query vectors); each query's dense and lexical candidates
are taken once (100 each, the BM25 of dense candidates the lexical list missed looked up, as
``hybrid._ranked`` does) and fused with each floor; the first ``--check`` queries are checked against
``hybrid._ranked`` itself at the fixed floor. Hits become corpus documents (first unit of each, up to
10) and are scored with ``kosearch.evaluate.ranking``: nDCG@10 and MRR@10 per query, and a 95% paired
bootstrap of each floor against ``fixed`` (and of each model against the bundled model at ``fixed``).
It also prints each model's median std of the dense scores over a query's fused candidates, the number
the floor is compared with.

Usage::

    OMP_NUM_THREADS=1 nice -n 19 python bench/floor_relative.py --work WORK --out docs/results/floor_relative.json \\
        --set nsmc=SETS/nsmc/beir --set chatbot=SETS/chatbot/beir \\
        --model bundled=bundled --model recipe_e1=MODELS/recipe_e1
(``--model NAME=PATH`` models are scored on every set; ``--model SET:NAME=PATH`` on that set only.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from adapt_recipes import paired  # noqa: E402

from kosearch.data.beir import load_beir  # noqa: E402
from kosearch.evaluate.ranking import DEPTH, NDCG_AT, ndcg, ranking_metrics, reciprocal_rank  # noqa: E402
from kosearch.evaluate.temporary_index import write_corpus_files  # noqa: E402
from kosearch.search import hybrid  # noqa: E402
from kosearch.search.bm25 import DEFAULT_B, DEFAULT_K1  # noqa: E402
from kosearch.search.completion import lexical_scores_of  # noqa: E402
from kosearch.search.dense import dense_candidates  # noqa: E402
from kosearch.search.dense_floor import probe_spread  # noqa: E402
from kosearch.search.fusion import DEFAULT_LEXICAL_WEIGHT, convex_fusion  # noqa: E402

FIXED = 0.01
FLOORS = ("fixed", "relative", "plainz")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _index(work: Path, set_name: str, model_name: str, model: str | None, dataset):
    """The model's index over the set's corpus, built once in ``work`` and reopened afterwards."""
    from kosearch.index import Index

    corpus = work / set_name / "corpus"
    doc_map = work / set_name / "doc_of_path.json"
    if not doc_map.exists():
        shutil.rmtree(corpus, ignore_errors=True)
        doc_map.parent.mkdir(parents=True, exist_ok=True)
        doc_map.write_text(json.dumps(write_corpus_files(dataset, corpus)), encoding="utf-8")
    doc_of_path = json.loads(doc_map.read_text(encoding="utf-8"))
    folder = work / set_name / model_name
    done = folder / "built.json"
    if done.exists():
        return Index.open(folder / "index", model=model), doc_of_path, json.loads(done.read_text())["seconds"]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    index = Index.create(folder / "index", model=model)
    index.add_folder(corpus)
    seconds = time.perf_counter() - started
    done.write_text(json.dumps({"seconds": seconds, "finished": _now()}), encoding="utf-8")
    return index, doc_of_path, seconds


def _documents(ranked_keys, to_doc) -> list[str]:
    docs: list[str] = []
    for key in ranked_keys:
        doc = to_doc(key)
        if doc is not None and doc not in docs:
            docs.append(doc)
        if len(docs) == DEPTH:
            break
    return docs


def score_model(work: Path, set_name: str, dataset, model_name: str, model: str | None, bundled_spread: float | None,
                check: int) -> dict[str, Any]:
    record: dict[str, Any] = {"model": model_name, "started": _now(), "load_start": os.getloadavg()}
    index, doc_of_path, build_seconds = _index(work, set_name, model_name, model, dataset)
    record["build_seconds"] = build_seconds
    try:
        store = index.store
        spread = probe_spread(index.encoder)
        record["probe_spread"] = spread
        ratio = 1.0 if bundled_spread is None else spread / bundled_spread
        record["spread_ratio"] = ratio
        floors = {"fixed": FIXED, "relative": FIXED * ratio, "plainz": None}
        record["floors"] = floors
        query_ids = dataset.evaluated_query_ids
        queries = [dataset.queries[q] for q in query_ids]
        cached = work / set_name / model_name / "queries.npy"
        if cached.exists():
            vectors = np.load(cached)
        else:
            vectors = index.encoder.encode_queries(queries)
            np.save(cached, vectors)
        analyzer = hybrid.analyzer_for(store)
        tokens = [list(dict.fromkeys(analyzer.analyze(q))) for q in queries]
        paths: dict[int, str] = {}

        def to_doc(unit: int) -> str | None:
            if unit not in paths:
                paths.update({i: row.path for i, row in store.units_by_id([unit]).items()})
            return doc_of_path.get(paths.get(unit))

        rankings: dict[str, dict[str, list[str]]] = {name: {} for name in ("dense", "lexical", *FLOORS)}
        stds = []
        candidates = hybrid.FUSION_CANDIDATES
        with store.reading():
            for position, query_id in enumerate(query_ids):
                vector = vectors[position : position + 1]
                dense = dense_candidates(store, vector, candidates, None)
                lexical = dict(store.lexical_search(tokens[position], candidates, None, k1=DEFAULT_K1, b=DEFAULT_B))
                scored = lexical_scores_of(store, tokens[position], [k for k in dense if k not in lexical],
                                           k1=DEFAULT_K1, b=DEFAULT_B)
                union = list(dict.fromkeys([*dense, *lexical]))
                low = min(dense.values())
                stds.append(float(np.std([dense.get(key, low) for key in union])))
                rankings["dense"][query_id] = _documents(sorted(dense, key=lambda k: (-dense[k], k)), to_doc)
                rankings["lexical"][query_id] = _documents(sorted(lexical, key=lambda k: (-lexical[k], k)), to_doc)
                for name, floor in floors.items():
                    fused = convex_fusion(dense, lexical, lexical_weight=DEFAULT_LEXICAL_WEIGHT, lexical_scored=scored,
                                          dense_std_floor=floor)
                    rankings[name][query_id] = _documents([hit.key for hit in fused], to_doc)
                    if name == "fixed" and position < check:  # the product's own ranking step, same floor
                        product = hybrid._ranked(store, "hybrid", "convex", DEFAULT_LEXICAL_WEIGHT, hybrid.MIN_CANDIDATES,
                                                 vector, tokens[position], None, (DEFAULT_K1, DEFAULT_B),
                                                 dense_std_floor=floor)
                        assert [hit.key for hit in product] == [hit.key for hit in fused], (set_name, model_name, query_id)
        record["median_candidate_std"] = float(np.median(stds))
        record["share_below_fixed_floor"] = float(np.mean([s < FIXED for s in stds]))
        record["share_below_relative_floor"] = float(np.mean([s < floors["relative"] for s in stds]))
        judged = [q for q in query_ids if dataset.qrels.get(q)]
        record["queries"] = len(judged)
        record["metrics"] = {}
        record["per_query"] = {}
        for name, ranking in rankings.items():
            found = ranking_metrics(ranking, dataset.qrels)
            record["metrics"][name] = {"ndcg_at_10": found["ndcg_at_10"], "mrr_at_10": found["mrr_at_10"]}
            record["per_query"][name] = {
                "ndcg": {q: ndcg(ranking.get(q, []), dataset.qrels[q], NDCG_AT) for q in judged},
                "rr": {q: reciprocal_rank(ranking.get(q, [])[:10], dataset.qrels[q]) for q in judged},
            }
        record["paired_vs_fixed"] = {
            f"{name} {metric}": paired(record["per_query"]["fixed"][metric], record["per_query"][name][metric])
            for name in ("relative", "plainz") for metric in ("ndcg", "rr")
        }
    finally:
        index.close()
    record["finished"], record["load_end"] = _now(), os.getloadavg()
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="indexes and query vectors are kept here")
    parser.add_argument("--out", type=Path, required=True, help="summary JSON (no per-query values)")
    parser.add_argument("--per-query", type=Path, help="full JSON with per-query values")
    parser.add_argument("--set", action="append", required=True, metavar="NAME=BEIR")
    parser.add_argument("--model", action="append", required=True, metavar="[SET:]NAME=PATH",
                        help="'bundled' as PATH for the bundled encoder; the bundled model must come first")
    parser.add_argument("--check", type=int, default=30)
    args = parser.parse_args()
    sets = dict(item.split("=", 1) for item in args.set)
    models = []
    for item in args.model:
        name, path = item.split("=", 1)
        only, _, name = name.rpartition(":")
        models.append((only or None, name, None if path == "bundled" else path))
    summary: dict[str, Any] = {"argv": [a for a in sys.argv[1:]], "started": _now(), "load_start": os.getloadavg(),
                               "omp_threads": os.environ.get("OMP_NUM_THREADS"), "fixed_floor": FIXED, "sets": {}}
    full: dict[str, Any] = {}
    for set_name, beir in sets.items():
        dataset = load_beir(Path(beir), "test")
        bundled_spread = None
        for only, name, path in models:
            if only is not None and only != set_name:
                continue
            started = time.perf_counter()
            record = score_model(args.work, set_name, dataset, name, path, bundled_spread, args.check)
            if path is None:
                bundled_spread = record["probe_spread"]
            elif bundled_spread is None:
                raise SystemExit("the bundled model must be scored first on each set (its spread is the reference)")
            full.setdefault(set_name, {})[name] = record
            if name != "bundled" and "bundled" in full[set_name]:
                base = full[set_name]["bundled"]["per_query"]["fixed"]
                record["paired_vs_bundled_fixed"] = {
                    f"{floor} {metric}": paired(base[metric], record["per_query"][floor][metric])
                    for floor in ("fixed", "relative") for metric in ("ndcg", "rr")
                }
            brief = {key: value for key, value in record.items() if key != "per_query"}
            summary["sets"].setdefault(set_name, {})[name] = brief
            summary["finished"], summary["load_end"] = _now(), os.getloadavg()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
            if args.per_query:
                args.per_query.write_text(json.dumps(full, ensure_ascii=False), encoding="utf-8")
            metrics = {k: (round(v["ndcg_at_10"], 2), round(v["mrr_at_10"], 2)) for k, v in record["metrics"].items()}
            print(f"{set_name} {name}: spread {record['probe_spread']:.4f} (x{record['spread_ratio']:.2f}), "
                  f"median candidate std {record['median_candidate_std']:.4f}, {metrics}, "
                  f"{time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
