"""BM25 k1 and b (and the fusion weight) of the product, chosen by the mean over the development sets.

For each set the corpus is indexed once through the product (``kosearch.evaluate.temporary_index``:
the bundled encoder, Kiwi splitting and morphemes, FAISS, the BM25 postings files), the queries are
encoded and analysed once, and then every (k1, b) of the grid (and every lexical weight of
``--weights``) is ranked by the product's own ranking step, ``kosearch.search.hybrid._ranked``
(candidates, completion, convex fusion), the hits mapped to corpus documents as
``kosearch evaluate retrieval`` maps them, and scored by ``kosearch.evaluate.ranking.ranking_metrics``.
What this skips is only what does not change a ranking: highlights and rows of the hits (the cost
that made a grid through ``evaluate retrieval`` take hours). The first ``--check`` queries of each set
are also searched through ``Index.search_batch`` at the default settings, and their document lists
must be the same.

Sets: the BEIR folders of ``bench/build_devsets.py`` (``--sets``) and ``corpora/sample_questions`` at
sentence units, plus sample questions at passage units (``bench/bench_units.py``'s members: a
passage is relevant when it holds a judged sentence).

``--plain-z`` adds, for every hybrid setting, the same ranking with plain dense z-scores
(``convex_fusion(..., dense_std_floor=None)``, the default before ``fusion.DEFAULT_DENSE_STD_FLOOR``), so the
two fusions are compared in one run; ``--k1`` / ``--b`` narrow the grid.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=. python bench/bm25_grid.py --sets /tmp/devsets --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import kosearch  # noqa: E402
from kosearch.data.beir import load_beir  # noqa: E402
from kosearch.evaluate.ranking import DEPTH, ranking_metrics  # noqa: E402
from kosearch.evaluate.retrieval import TEMPORARY_INDEX_CANDIDATES  # noqa: E402
from kosearch.evaluate.temporary_index import temporary_index  # noqa: E402
from kosearch.search import hybrid  # noqa: E402
from kosearch.search.fusion import DEFAULT_DENSE_STD_FLOOR, DEFAULT_LEXICAL_WEIGHT  # noqa: E402

K1S = (0.9, 1.2)
BS = (0.3, 0.4, 0.5, 0.75)
PLAIN_Z = False
"""``--plain-z``: also rank hybrid with plain dense z-scores (``dense_std_floor=None``) in the same run."""


def _rank_all(index, queries, vectors, tokens, mode, k1, b, weight, to_doc, dense_std_floor=DEFAULT_DENSE_STD_FLOOR):
    store = index.store
    wanted = max(TEMPORARY_INDEX_CANDIDATES, DEPTH, hybrid.MIN_CANDIDATES)
    rankings = []
    with store.reading():
        for position in range(len(queries)):
            ranked = hybrid._ranked(
                store, mode, "convex", weight, wanted,
                None if mode == "lexical" else vectors[position : position + 1], tokens[position], None, (k1, b),
                dense_std_floor=dense_std_floor,
            )[:wanted]
            docs: list[str] = []
            for fused in ranked:
                doc = to_doc(fused.key)
                if doc is not None and doc not in docs:
                    docs.append(doc)
                if len(docs) == DEPTH:
                    break
            rankings.append(docs)
    return rankings


def _metrics(query_ids, rankings, qrels):
    found = ranking_metrics(dict(zip(query_ids, rankings)), qrels)
    return {"mrr_at_10": found["mrr_at_10"], "ndcg_at_10": found["ndcg_at_10"]}  # already x100


def run_set(name, index, query_ids, queries, qrels, to_doc, grid, weights, check, product_docs):
    started = time.perf_counter()
    vectors = index.encoder.encode_queries(list(queries))
    analyzer = hybrid.analyzer_for(index.store)
    tokens = [list(dict.fromkeys(analyzer.analyze(q))) for q in queries]
    rows = []
    dense = _rank_all(index, queries, vectors, tokens, "dense", 1.2, 0.75, DEFAULT_LEXICAL_WEIGHT, to_doc)
    rows.append({"set": name, "mode": "dense", **_metrics(query_ids, dense, qrels)})
    for k1, b in grid:
        lexical = _rank_all(index, queries, vectors, tokens, "lexical", k1, b, DEFAULT_LEXICAL_WEIGHT, to_doc)
        rows.append({"set": name, "mode": "lexical", "k1": k1, "b": b, **_metrics(query_ids, lexical, qrels)})
        for weight in weights:
            fused = _rank_all(index, queries, vectors, tokens, "hybrid", k1, b, weight, to_doc)
            rows.append({"set": name, "mode": "hybrid", "k1": k1, "b": b, "weight": weight, **_metrics(query_ids, fused, qrels)})
            if PLAIN_Z:  # the same fusion with plain dense z-scores (dense_std_floor None), the earlier default
                fused = _rank_all(index, queries, vectors, tokens, "hybrid", k1, b, weight, to_doc, dense_std_floor=None)
                rows.append({"set": name, "mode": "hybrid-plainz", "k1": k1, "b": b, "weight": weight, **_metrics(query_ids, fused, qrels)})
    if check:  # the product's own search at the defaults gives the same documents
        from kosearch.search.bm25 import DEFAULT_B, DEFAULT_K1

        ours = _rank_all(index, queries[:check], vectors, tokens, "hybrid", DEFAULT_K1, DEFAULT_B, DEFAULT_LEXICAL_WEIGHT, to_doc)
        theirs = product_docs(queries[:check])
        assert ours == theirs, f"{name}: the grid's ranking differs from Index.search_batch"
    print(f"  {name}: {len(queries)} queries, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def beir_rows(name, folder, grid, weights, check):
    dataset = load_beir(folder)
    query_ids = dataset.evaluated_query_ids
    queries = [dataset.queries[q] for q in query_ids]
    started = time.perf_counter()
    with temporary_index(None, dataset) as built:
        print(f"  {name}: indexed {len(dataset.corpus)} documents in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        index = built.index
        paths = {}

        def to_doc(unit):
            if unit not in paths:
                paths.update({i: row.path for i, row in index.store.units_by_id([unit]).items()})
            return built.doc_of_path.get(paths.get(unit))

        def product_docs(texts):
            found = []
            for hits in index.search_batch(texts, k=max(TEMPORARY_INDEX_CANDIDATES, DEPTH)):
                docs = []
                for hit in hits:
                    doc = built.document_of(hit)
                    if doc is not None and doc not in docs:
                        docs.append(doc)
                found.append(docs[:DEPTH])
            return found

        return run_set(name, index, query_ids, queries, dataset.qrels, to_doc, grid, weights, check, product_docs)


def passage_rows(questions, corpus, grid, weights):
    """Sample questions at passage units, members as bench_units computes them (metrics here: binary
    relevance of a passage holding a judged sentence, the same ranking_metrics)."""
    from bench_units import contained

    dataset = load_beir(questions)
    work = Path(tempfile.mkdtemp(prefix="kosearch-bm25grid-"))
    indexes = {}
    for unit in ("sentence", "passage"):
        index = kosearch.Index.open_or_create(work / unit)
        index.add_folder(corpus, unit=unit)
        indexes[unit] = index
    members = contained(indexes["sentence"], indexes["passage"])
    query_ids = dataset.evaluated_query_ids
    queries = [dataset.queries[q] for q in query_ids]
    # A passage is a document of its own: qrels over passage ids.
    qrels = {q: {str(unit): 1 for unit, inside in members.items() if inside & set(dataset.qrels[q])} for q in query_ids}
    rows = run_set("sample_passages", indexes["passage"], query_ids, queries, qrels, str, grid, weights, 0, None)
    for index in indexes.values():
        index.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=Path, default=ROOT / "bench" / "devsets")
    parser.add_argument("--names", nargs="*", default=["korsts", "klue_nli", "kornli", "chatbot"])
    parser.add_argument("--weights", type=float, nargs="*", default=[DEFAULT_LEXICAL_WEIGHT])
    parser.add_argument("--check", type=int, default=30)
    parser.add_argument("--k1", type=float, nargs="*", default=list(K1S), help="BM25 k1 values of the grid")
    parser.add_argument("--b", type=float, nargs="*", default=list(BS), help="BM25 b values of the grid")
    parser.add_argument("--plain-z", action="store_true", help="also rank hybrid with plain dense z-scores (the earlier default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    global PLAIN_Z
    PLAIN_Z = args.plain_z
    grid = list(itertools.product(args.k1, args.b))
    rows = []
    rows += beir_rows("sample_sentences", ROOT / "corpora" / "sample_questions", grid, args.weights, args.check)
    rows += passage_rows(ROOT / "corpora" / "sample_questions", ROOT / "corpora" / "sample", grid, args.weights)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    for name in args.names:
        rows += beir_rows(name, args.sets / name, grid, args.weights, args.check)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    sets = list(dict.fromkeys(row["set"] for row in rows))
    print(f"sets: {', '.join(sets)}")
    dense = {row["set"]: row for row in rows if row["mode"] == "dense"}
    print(f"{'mode':13} {'k1':>4} {'b':>5} {'w':>5} {'mean MRR':>9} {'mean nDCG':>9}  " + " ".join(f"{s[:10]:>10}" for s in sets))
    print(f"{'dense':13} {'':>4} {'':>5} {'':>5} {sum(d['mrr_at_10'] for d in dense.values()) / len(dense):9.2f} "
          f"{sum(d['ndcg_at_10'] for d in dense.values()) / len(dense):9.2f}  " + " ".join(f"{dense[s]['mrr_at_10']:10.2f}" for s in sets))
    keys = sorted({(r["mode"], r["k1"], r["b"], r.get("weight")) for r in rows if r["mode"] != "dense"}, key=str)
    for mode, k1, b, weight in keys:
        chosen = {r["set"]: r for r in rows if (r["mode"], r.get("k1"), r.get("b"), r.get("weight")) == (mode, k1, b, weight)}
        if len(chosen) != len(sets):
            continue
        mrr = sum(r["mrr_at_10"] for r in chosen.values()) / len(sets)
        ndcg = sum(r["ndcg_at_10"] for r in chosen.values()) / len(sets)
        print(f"{mode:13} {k1:4} {b:5} {weight if weight is not None else '':>5} {mrr:9.2f} {ndcg:9.2f}  "
              + " ".join(f"{chosen[s]['mrr_at_10']:10.2f}" for s in sets))


if __name__ == "__main__":
    main()
