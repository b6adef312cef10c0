"""Post-hoc whitening fitted on a domain folder, as a label-free adaptation (issue 9): measured, not adopted.

Why try it: the bundled e5's vectors are anisotropic (on the chatbot answers the median standard deviation
of a query's top-20 cosines is 0.005; ``bench/adapt_score_spread.py``), and whitening the vectors with the
mean and covariance of a domain's own sentences (Su et al., 2021, "Whitening sentence representations for
better semantics and faster retrieval"; Huang et al., 2021, WhiteningBERT) spreads them out at no training
cost: one linear map, which a sentence-transformers model could carry as a ``Dense`` module. The question
is whether it helps in-domain retrieval without costing general similarity (KorSTS at most 1 point).

For a set folder of ``bench/adapt_runs.py`` (``beir/`` and ``adapt_docs/``) and a model, this encodes

- the set's corpus (each document whole, ``passage:``) and its queries (``query:``),
- up to ``--fit-sentences`` lines of ``adapt_docs`` (the unlabelled folder training reads), both as
  documents and as queries: the statistics are fitted on these only,
- KorSTS test (both sentences on the query side, as ``kosearch evaluate sts`` scores by default),

and scores every transform on dense nDCG@10 (exact cosine, each document one vector: not the sentence
units of a kosearch index, so the base figure differs from ``adapt_runs``') and KorSTS cosine Spearman:

- ``raw``: the model's vectors;
- ``center``: minus the fitted mean;
- ``whiten-s``: ``(x - mean) U (L + s * mean(L))^-1/2``, the covariance's eigenvectors U and values L, with
  shrinkage ``s`` (0: full whitening);
- ``abtt-k``: "all but the top" (Mu and Viswanath, 2018): minus the mean and the top ``k`` principal directions.

Usage::

    OMP_NUM_THREADS=2 python bench/adapt_whitening.py --set runs/adapt5/chatbot --out runs/whiten/chatbot_base.json
    OMP_NUM_THREADS=2 python bench/adapt_whitening.py --set runs/adapt5/nsmc --model runs/.../model --out ...
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHRINKS = (0.0, 0.1, 1.0, 10.0)
TOP_DIRECTIONS = (1, 5, 10, 20)


def read_beir(folder: Path):
    """A set's corpus and queries (lists of BEIR records) and its relevant documents per query."""
    corpus = [json.loads(line) for line in (folder / "beir" / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (folder / "beir" / "queries.jsonl").open(encoding="utf-8")]
    qrels: dict[str, set[str]] = {}
    with (folder / "beir" / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            query, document, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(query, set()).add(document)
    return corpus, queries, qrels


def read_set(folder: Path, fit_sentences: int, seed: int):
    corpus, queries, qrels = read_beir(folder)
    lines = [line.strip() for path in sorted((folder / "adapt_docs").glob("*.txt"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(lines)
    return corpus, queries, qrels, lines[:fit_sentences]


def read_korsts(path: Path):
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [row[5] for row in rows], [row[6] for row in rows], np.array([float(row[4]) for row in rows])


def ndcg_at_10(queries_v, documents_v, query_ids, document_ids, qrels) -> float:
    top = np.argsort(-(queries_v @ documents_v.T), axis=1)[:, :10]
    scores = []
    for row, query in enumerate(query_ids):
        relevant = qrels.get(query)
        if not relevant:
            continue
        dcg = sum(1 / np.log2(rank + 2) for rank, column in enumerate(top[row]) if document_ids[column] in relevant)
        ideal = sum(1 / np.log2(rank + 2) for rank in range(min(10, len(relevant))))
        scores.append(dcg / ideal)
    return 100 * float(np.mean(scores))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def transforms(fit: np.ndarray) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Every transform, fitted on ``fit`` (the folder's lines encoded as documents and as queries)."""
    mean = fit.mean(0)
    values, vectors = np.linalg.eigh(np.cov((fit - mean).T))
    values, vectors = values[::-1], vectors[:, ::-1]
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "raw": _unit,
        "center": lambda x: _unit(x - mean),
    }
    for shrink in SHRINKS:
        matrix = vectors / np.sqrt(values + shrink * values.mean())
        out[f"whiten-{shrink:g}"] = lambda x, m=matrix: _unit((x - mean) @ m)
    for k in TOP_DIRECTIONS:
        top = vectors[:, :k]
        out[f"abtt-{k}"] = lambda x, p=top: _unit((x - mean) - ((x - mean) @ p) @ p.T)
    return out


def screen_parser(description: str) -> argparse.ArgumentParser:
    """The options every adaptation screen takes (this one, ``adapt_word_weights.py``, ``adapt_linear.py``): a set
    folder of ``bench/adapt_runs.py``, a model, the KorSTS test file and where the JSON goes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--set", type=Path, required=True)
    parser.add_argument("--model", help="a model folder or id (default: the bundled encoder)")
    parser.add_argument("--sts-test", type=Path, default=ROOT.parent / "shared" / "data" / "korsts" / "sts-test.tsv")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def screen_record(script: str, argv: list[str] | None) -> dict:
    """The head of a screen's JSON record: the command as typed, the start time (UTC) and the load average."""
    return {"command": " ".join(["python", f"bench/{script}", *(argv or sys.argv[1:])]),
            "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "load_at_start": os.getloadavg()}


def main() -> None:
    parser = screen_parser(__doc__.split("\n")[0])
    parser.add_argument("--fit-sentences", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from kosearch.encoders.encoder import Encoder

    started = time.perf_counter()
    record = screen_record("adapt_whitening.py", None)
    corpus, queries, qrels, lines = read_set(args.set, args.fit_sentences, args.seed)
    first, second, gold = read_korsts(args.sts_test)
    encoder = Encoder(args.model)
    as64 = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
    documents_v = as64(encoder.encode_documents([(c.get("title", "") + " " + c["text"]).strip() for c in corpus]))
    queries_v = as64(encoder.encode_queries([q["text"] for q in queries]))
    fit = np.vstack([as64(encoder.encode_documents(lines)), as64(encoder.encode_queries(lines))])
    first_v, second_v = as64(encoder.encode_queries(first)), as64(encoder.encode_queries(second))
    record["encode_seconds"] = time.perf_counter() - started
    from scipy.stats import spearmanr

    document_ids, query_ids = [c["_id"] for c in corpus], [q["_id"] for q in queries]
    results = {}
    for name, transform in transforms(fit).items():
        korsts = 100 * spearmanr((transform(first_v) * transform(second_v)).sum(1), gold).correlation
        ndcg = ndcg_at_10(transform(queries_v), transform(documents_v), query_ids, document_ids, qrels)
        results[name] = {"dense_ndcg_at_10": ndcg, "korsts": float(korsts)}
        base = results["raw"]
        print(f"{name:12s} dense nDCG@10 {ndcg:6.2f} ({ndcg - base['dense_ndcg_at_10']:+.2f})  "
              f"KorSTS {korsts:6.2f} ({korsts - base['korsts']:+.2f})", flush=True)
    record.update(model=args.model or "bundled", set=args.set.name, queries=len(qrels), documents=len(corpus),
                  fit_lines=len(lines), results=results, load_at_end=os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
