"""How spread out a model's dense scores are at the top of a BEIR set's rankings: the spread hybrid fusion divides by.

Hybrid search turns dense cosines into z-scores with a floor on the standard deviation (0.01, see
``kosearch.search``'s fusion); a model whose top cosines lie closer together than the floor has its dense list
damped in the fusion, one whose cosines spread wider does not. ``train adapt`` (contrastive, scale 20) spreads
them, so this prints, per model, over the first ``--queries`` judged queries of the set (exact search, query
prompt on queries, document prompt on the corpus): the median standard deviation of the top-20 cosines, the median
top-1 cosine and the median standard deviation over the whole corpus.

Usage::

    OMP_NUM_THREADS=2 nice -n 19 python bench/adapt_score_spread.py --beir runs/adapt-s4/chatbot/beir \\
        --out runs/adapt-s4/spread.json bundled runs/adapt-s4/chatbot-runs/models/recipe_e1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from kosearch.data.beir import load_beir
    from kosearch.evaluate.encoding import load_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    dataset = load_beir(args.beir, "test")
    documents = [document.text for document in dataset.corpus.values()]
    queries = [dataset.queries[query] for query in dataset.evaluated_query_ids[: args.queries]]
    results = {}
    for name in args.models:
        model = load_model(name).model
        corpus = model.encode_document(documents, batch_size=64, normalize_embeddings=True)
        asked = model.encode_query(queries, batch_size=64, normalize_embeddings=True)
        scores = asked @ corpus.T
        top = -np.sort(-scores, axis=1)[:, : args.top]
        results[name] = {
            f"median_std_top{args.top}": float(np.median(top.std(axis=1))),
            "median_top1": float(np.median(top[:, 0])),
            "median_std_all": float(np.median(scores.std(axis=1))),
        }
        print(name, json.dumps(results[name]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
