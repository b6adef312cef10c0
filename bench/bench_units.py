"""Which unit should a new index default to: sentences or passages? Measured on corpora/sample.

Both indexes are built from corpora/sample with the bundled encoder, one with sentence units and one
with passages (consecutive sentences with one sentence of overlap), and the sample questions
(corpora/sample_questions, BEIR layout, relevance judged per sentence ``path#N``) are run in hybrid
mode (the default) against each. A unit counts as relevant when it contains a relevant sentence
(what a user wants is the answer inside the hit), so for each query and unit kind:

- MRR@10: 1 / rank of the first unit holding an answer;
- nDCG@10: binary gains, the ideal being as many relevant units as that kind has (<= 10);
- answer recall@10: the share of the relevant sentences inside the top 10 units.

Run: ``PYTHONPATH=. python bench/bench_units.py [--questions corpora/sample_questions]``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections import defaultdict
from pathlib import Path

import kosearch
from kosearch.data.beir import load_beir

ROOT = Path(__file__).resolve().parents[1]


def sentence_ids(index: kosearch.Index) -> dict[int, str]:
    """Unit id -> BEIR corpus id ``path#N`` (N = 1-based position of the sentence in its file)."""
    db = index.store.metadata.db
    rows = db.execute("select s.id, d.path, s.position from sentences s join documents d on d.id = s.document_id")
    return {unit: f"{path}#{position + 1}" for unit, path, position in rows}


def contained(sentence_index: kosearch.Index, passage_index: kosearch.Index) -> dict[int, set[str]]:
    """Passage unit id -> the corpus ids of the sentences inside it (by file and character span)."""
    spans: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    db = sentence_index.store.metadata.db
    for path, start, end, position in db.execute(
        "select d.path, s.start, s.end, s.position from sentences s join documents d on d.id = s.document_id"
    ):
        spans[path].append((start, end, f"{path}#{position + 1}"))
    inside: dict[int, set[str]] = {}
    for unit, path, start, end in passage_index.store.metadata.db.execute(
        "select s.id, d.path, s.start, s.end from sentences s join documents d on d.id = s.document_id"
    ):
        inside[unit] = {cid for s_start, s_end, cid in spans[path] if s_start >= start and s_end <= end}
    return inside


def evaluate(index: kosearch.Index, members: dict[int, set[str]], dataset, mode: str) -> dict[str, float]:
    totals = defaultdict(float)
    query_ids = dataset.evaluated_query_ids
    hits_per_query = index.search_batch([dataset.queries[q] for q in query_ids], k=10, mode=mode)
    for query_id, hits in zip(query_ids, hits_per_query):
        relevant = set(dataset.qrels[query_id])
        gains = [1.0 if members.get(hit.sentence_id, set()) & relevant else 0.0 for hit in hits]
        first = next((rank for rank, gain in enumerate(gains, 1) if gain), None)
        totals["MRR@10"] += 1.0 / first if first else 0.0
        relevant_units = sum(1 for ids in members.values() if ids & relevant)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(10, relevant_units) + 1))
        dcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, 1))
        totals["nDCG@10"] += dcg / ideal if ideal else 0.0
        found = set().union(*(members.get(hit.sentence_id, set()) for hit in hits)) if hits else set()
        totals["recall@10"] += len(found & relevant) / len(relevant)
    return {name: 100.0 * value / len(query_ids) for name, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=ROOT / "corpora" / "sample_questions")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpora" / "sample")
    parser.add_argument("--work", type=Path, default=None, help="folder for the two indexes (default: a temporary one)")
    args = parser.parse_args()
    dataset = load_beir(args.questions)
    work = args.work or Path(tempfile.mkdtemp(prefix="kosearch-units-"))
    indexes = {}
    for unit in ("sentence", "passage"):
        path = work / unit
        index = kosearch.Index.open_or_create(path)
        index.add_folder(args.corpus, unit=unit)
        indexes[unit] = index
    sentence_members = {unit: {cid} for unit, cid in sentence_ids(indexes["sentence"]).items()}
    known = set().union(*sentence_members.values())
    missing = {cid for rel in dataset.qrels.values() for cid in rel} - known
    print(f"corpus ids judged but not in the sentence index: {len(missing)} of {len(known)} sentences")
    passage_members = contained(indexes["sentence"], indexes["passage"])
    print(f"units: {len(indexes['sentence'])} sentences, {len(indexes['passage'])} passages; "
          f"{len(dataset.evaluated_query_ids)} queries")
    print(f"{'unit':10} {'mode':8} {'MRR@10':>7} {'nDCG@10':>8} {'recall@10':>10}")
    for mode in ("dense", "lexical", "hybrid"):
        for unit, members in (("sentence", sentence_members), ("passage", passage_members)):
            scores = evaluate(indexes[unit], members, dataset, mode)
            print(f"{unit:10} {mode:8} {scores['MRR@10']:7.1f} {scores['nDCG@10']:8.1f} {scores['recall@10']:10.1f}")
    for index in indexes.values():
        index.close()


if __name__ == "__main__":
    main()
