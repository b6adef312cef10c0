"""Ranking metrics: Recall@k, MRR@k and nDCG@k of ranked document ids against relevance judgements.

Definitions follow sentence-transformers' ``InformationRetrievalEvaluator`` and BEIR/pytrec_eval:

- Recall@k: share of a query's relevant documents found in its top k, averaged over queries.
- MRR@k:    1 / rank of the first relevant document in the top k (0 if none), averaged.
- nDCG@k:   DCG of the top k with the judged grade as gain and 1/log2(rank + 1) discount, divided by
            the DCG of the ideal ordering. With 0/1 judgements (every set kosearch builds) this is
            exactly ST's binary nDCG; graded BEIR qrels get pytrec_eval's linear-gain nDCG.

Only queries with at least one relevant document are averaged over, as in BEIR and ST.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

RECALL_AT: tuple[int, ...] = (1, 5, 10)
MRR_AT = 10
NDCG_AT = 10
DEPTH = max(*RECALL_AT, MRR_AT, NDCG_AT)
"""How many results per query the metrics look at."""


def ranking_metrics(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """Average each metric over the judged queries; values x100, keyed ``recall_at_1`` ... ``ndcg_at_10``.

    ``rankings`` maps a query id to its document ids, best first (a query without an entry retrieved
    nothing); ``qrels`` maps a query id to {document id: grade > 0}.
    """
    judged = [query_id for query_id, relevant in qrels.items() if relevant]
    if not judged:
        raise ValueError("no query has a relevant document; nothing to evaluate.")
    totals = {f"recall_at_{k}": 0.0 for k in RECALL_AT}
    totals[f"mrr_at_{MRR_AT}"] = 0.0
    totals[f"ndcg_at_{NDCG_AT}"] = 0.0
    for query_id in judged:
        relevant = qrels[query_id]
        ranked = list(rankings.get(query_id, ()))
        for k in RECALL_AT:
            found = sum(1 for doc_id in ranked[:k] if doc_id in relevant)
            totals[f"recall_at_{k}"] += found / len(relevant)
        totals[f"mrr_at_{MRR_AT}"] += reciprocal_rank(ranked[:MRR_AT], relevant)
        totals[f"ndcg_at_{NDCG_AT}"] += ndcg(ranked, relevant, NDCG_AT)
    return {name: 100 * total / len(judged) for name, total in totals.items()}


def reciprocal_rank(ranked: Sequence[str], relevant: Mapping[str, int]) -> float:
    for rank, doc_id in enumerate(ranked, start=1):
        if doc_id in relevant:
            return 1.0 / rank
    return 0.0


def ndcg(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    gained = sum(relevant.get(doc_id, 0) / math.log2(rank + 1) for rank, doc_id in enumerate(ranked[:k], start=1))
    ideal_grades = sorted(relevant.values(), reverse=True)[:k]
    ideal = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal_grades, start=1))
    return gained / ideal if ideal > 0 else 0.0
