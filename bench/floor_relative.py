"""Hybrid fusion's dense std floor, fixed or relative to the model's spread, for base and adapted models.

The convex fusion divides the dense z-score by ``max(std, 0.01)`` (``fusion.DEFAULT_DENSE_STD_FLOOR``),
a floor chosen for the bundled e5, whose cosines are compressed. ``kosearch train adapt`` spreads a
model's cosines past it, so an adapted dense list weighs more against BM25 than the base's did. This
measures, per set and per model, hybrid ranked with three floors from the *same* candidates:

- ``fixed``: 0.01, the product's floor before ``kosearch.search.dense_floor``;
- ``relative``: 0.01 x spread(model) / spread(bundled), the spread measured on 40 unrelated Korean sentences
  written for this (:func:`unrelated_probe_spread`: the std of each one's cosines to the others; the first
  probe tried);
- ``relative_top``: the same with the shipped probe, ``kosearch.search.dense_floor.probe_spread`` (the 120
  questions of corpora/sample_questions against its 439 sentences, std of each question's best 100 cosines);
  this is what ``Index.search`` now does;
- ``oracle``: 0.01 x (median std of the model's dense candidates on this set) / (the bundled model's): the
  floor a perfect probe would give, an upper reference, not a method (it reads the evaluation set);
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
the floor is compared with. With the bundled model every relative floor is 0.01 (ratio 1), so its rows show
that the bundled model's hybrid is unchanged.

Usage::

    OMP_NUM_THREADS=1 nice -n 19 python bench/floor_relative.py --work WORK --out floor_relative.json \\
        --set nsmc=SETS/nsmc/beir --set chatbot_sub=SETS/chatbot/beir@150,600 \\
        --model bundled=bundled --model nsmc:adapt15=SETS/nsmc/adapted-15min --model chatbot_sub:recipe_e1=MODELS/recipe_e1
(``--model NAME=PATH`` models are scored on every set; ``--model SET:NAME=PATH`` on that set only;
``NAME=BEIR@Q,D`` scores a subset: the first Q judged queries, their documents and random others up to D.)
Results of 2026-12-07: docs/training.md, "Hybrid after adaptation: a floor relative to the model's spread".
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
from kosearch.search.dense_floor import probe_spread  # noqa: E402  (the shipped probe)
from kosearch.search.fusion import DEFAULT_LEXICAL_WEIGHT, convex_fusion  # noqa: E402

FIXED = 0.01
FLOORS = ("fixed", "relative", "relative_top", "oracle", "plainz")
SAMPLE_QUESTIONS = ROOT / "corpora" / "sample_questions"


# The first probe tried (kept to measure it against the shipped one): 40 unrelated sentences, all pairs.
UNRELATED_SENTENCES: tuple[str, ...] = (
    "오늘 아침에는 비가 많이 내려서 우산을 챙겼다.",
    "주말에 가족과 함께 근처 산에 올라 도시락을 먹었다.",
    "새로 산 노트북의 배터리가 하루 종일 버틴다.",
    "회의 시간이 오후 세 시로 바뀌었으니 확인해 주세요.",
    "이 식당의 김치찌개는 국물이 진하고 맛있다.",
    "지하철 2호선이 신호 장애로 잠시 멈췄다.",
    "환불을 받으려면 영수증과 카드를 가져오셔야 합니다.",
    "아이가 감기에 걸려서 소아과에 다녀왔다.",
    "이번 학기에는 통계학과 경제학 수업을 듣는다.",
    "비밀번호를 다섯 번 틀리면 계정이 잠깁니다.",
    "전기 요금이 지난달보다 두 배 가까이 나왔다.",
    "도서관은 매주 월요일에 문을 닫는다.",
    "영화가 생각보다 길었지만 결말이 인상적이었다.",
    "택배가 주소 오류로 반송되었다는 문자를 받았다.",
    "매일 삼십 분씩 걷기만 해도 건강에 도움이 된다.",
    "서버 디스크가 가득 차서 로그를 정리해야 한다.",
    "할머니 댁 마당에 감나무가 한 그루 있다.",
    "여권을 새로 만들려면 구청에 사진을 가져가야 한다.",
    "이 프로그램은 한국어 문장을 의미로 찾아 준다.",
    "친구와 다툰 뒤로 며칠째 연락을 하지 않았다.",
    "가을이 되면 공원의 은행나무가 노랗게 물든다.",
    "보고서 마감이 내일이라 밤늦게까지 일했다.",
    "고양이가 창가에 앉아 햇볕을 쬐고 있다.",
    "주택 담보 대출 금리가 다시 오르기 시작했다.",
    "축구 경기는 연장전 끝에 승부차기로 끝났다.",
    "냉장고 문이 제대로 닫히지 않아 수리를 불렀다.",
    "이사할 집을 구하느라 부동산을 여러 곳 돌았다.",
    "시험 범위가 넓어서 무엇부터 공부할지 모르겠다.",
    "커피를 너무 많이 마셔서 잠이 오지 않는다.",
    "새 스마트폰으로 바꾸고 사진을 옮기는 데 한참 걸렸다.",
    "지역 축제에서 전통 음식을 나누어 주었다.",
    "계약서에 서명하기 전에 조항을 꼼꼼히 읽어야 한다.",
    "눈이 많이 와서 출근길 도로가 꽉 막혔다.",
    "그 가수의 새 앨범은 발매 첫날 매진되었다.",
    "약은 하루 세 번 식후 삼십 분에 드세요.",
    "운동화 끈이 자꾸 풀려서 다시 묶었다.",
    "온라인 강의는 원하는 시간에 들을 수 있어 편하다.",
    "바닷가 마을에서 싱싱한 회를 먹었다.",
    "엘리베이터 점검으로 오늘은 계단을 이용해 주십시오.",
    "혼자 사는 사람이 늘면서 소포장 식품이 많아졌다.",
)


def unrelated_probe_spread(encoder) -> float:
    """Median over the sentences (as queries) of the std of their cosines to the 39 others (as documents)."""
    queries = np.asarray(encoder.encode_queries(list(UNRELATED_SENTENCES)), dtype=np.float64)
    documents = np.asarray(encoder.encode_documents(list(UNRELATED_SENTENCES)), dtype=np.float64)
    cosines = queries @ documents.T
    others = ~np.eye(len(UNRELATED_SENTENCES), dtype=bool)
    return float(np.median([row[mask].std() for row, mask in zip(cosines, others)]))


def subset(dataset, queries: int, documents: int, seed: int = 0):
    """The first ``queries`` judged queries, their relevant documents and random others up to ``documents``."""
    import random

    from kosearch.data.beir import BeirDataset

    kept = dataset.evaluated_query_ids[:queries]
    relevant = list(dict.fromkeys(doc for q in kept for doc in dataset.qrels[q] if doc in dataset.corpus))
    others = [doc for doc in dataset.corpus if doc not in set(relevant)]
    random.Random(seed).shuffle(others)
    chosen = set(relevant + others[: max(0, documents - len(relevant))])
    return BeirDataset(
        corpus={doc: value for doc, value in dataset.corpus.items() if doc in chosen},
        queries={q: dataset.queries[q] for q in kept}, qrels={q: dataset.qrels[q] for q in kept},
        name=dataset.name, split=dataset.split,
    )


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


def score_model(work: Path, set_name: str, dataset, model_name: str, model: str | None, bundled: dict | None,
                check: int) -> dict[str, Any]:
    record: dict[str, Any] = {"model": model_name, "started": _now(), "load_start": os.getloadavg()}
    index, doc_of_path, build_seconds = _index(work, set_name, model_name, model, dataset)
    record["build_seconds"] = build_seconds
    try:
        store = index.store
        record["probe_spread"] = unrelated_probe_spread(index.encoder)
        record["top_probe_spread"] = probe_spread(index.encoder)
        ratio = 1.0 if bundled is None else record["probe_spread"] / bundled["probe_spread"]
        ratio_top = 1.0 if bundled is None else record["top_probe_spread"] / bundled["top_probe_spread"]
        record["spread_ratio"], record["top_spread_ratio"] = ratio, ratio_top
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
        lists = []
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
                lists.append((query_id, vector, dense, lexical, scored))
            median_std = float(np.median(stds))
            ratio_oracle = 1.0 if bundled is None else median_std / bundled["median_candidate_std"]
            record["oracle_ratio"] = ratio_oracle
            floors = {"fixed": FIXED, "relative": FIXED * ratio, "relative_top": FIXED * ratio_top,
                      "oracle": FIXED * ratio_oracle, "plainz": None}
            record["floors"] = floors
            for position, (query_id, vector, dense, lexical, scored) in enumerate(lists):
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
        record["median_candidate_std"] = median_std
        record["share_below_floor"] = {name: float(np.mean([s < floor for s in stds]))
                                       for name, floor in floors.items() if floor is not None}
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
            for name in FLOORS[1:] for metric in ("ndcg", "rr")
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
        beir, _, size = beir.partition("@")
        dataset = load_beir(Path(beir), "test")
        if size:  # NAME=BEIR@QUERIES,DOCUMENTS: a subset (the first judged queries, their documents, random others)
            dataset = subset(dataset, *map(int, size.split(",")))
            summary.setdefault("subsets", {})[set_name] = {"queries": len(dataset.queries), "documents": len(dataset.corpus)}
        bundled = None
        for only, name, path in models:
            if only is not None and only != set_name:
                continue
            started = time.perf_counter()
            record = score_model(args.work, set_name, dataset, name, path, bundled, args.check)
            if path is None:
                bundled = record
            elif bundled is None:
                raise SystemExit("the bundled model must be scored first on each set (its spread is the reference)")
            full.setdefault(set_name, {})[name] = record
            if name != "bundled" and "bundled" in full[set_name]:
                base = full[set_name]["bundled"]["per_query"]["fixed"]
                record["paired_vs_bundled_fixed"] = {
                    f"{floor} {metric}": paired(base[metric], record["per_query"][floor][metric])
                    for floor in FLOORS for metric in ("ndcg", "rr")
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
