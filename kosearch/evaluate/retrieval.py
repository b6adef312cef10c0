"""Retrieval evaluation: rank a BEIR set's queries with a model or a built kosearch index, then score.

Two ways to produce the rankings, one set of metrics (:mod:`kosearch.evaluate.ranking`):

- a model: the corpus is encoded with the document prompt, the queries with the query prompt (the
  asymmetric use e5 was trained for, and how ``kosearch search`` queries an index), both L2-normalised,
  and every query is compared with every document (exact cosine search, no ANN error in the numbers);
- an index built by ``kosearch index`` over a folder holding ``corpus.jsonl``: each query goes through
  ``Index.search_batch``, so the numbers include whatever the index does (sentence splitting, its vector
  store). A hit is mapped back to a BEIR document through (file, line) -> the corpus.jsonl line's _id;
  hits from other files of the folder (queries.jsonl, qrels) are skipped, and a document hit through
  several of its sentences keeps its best rank.

Example::

    from kosearch.data.beir import sts_to_retrieval
    from kosearch.data.sts import read_sts
    from kosearch.evaluate import evaluate_retrieval

    paraphrases = sts_to_retrieval(read_sts("../shared/data/korsts/sts-test.tsv"))
    result = evaluate_retrieval(None, paraphrases)            # bundled model, exact search
    result = evaluate_retrieval(None, "beir/folder", index="indexes/beir")   # a built index
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from kosearch.data.beir import BeirDataset, load_beir
from kosearch.errors import KosearchError
from kosearch.evaluate.encoding import ModelLike, encode, load_model
from kosearch.evaluate.ranking import DEPTH, MRR_AT, NDCG_AT, RECALL_AT, ranking_metrics

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from kosearch.index import Index

INDEX_CANDIDATES = 100
"""Hits fetched per query from an index before mapping them to documents: sentences of one document,
and lines of queries.jsonl or qrels indexed alongside the corpus, share the top of the list."""
_QUERY_BLOCK = 256
"""Queries scored at once in exact search; bounds memory to block x corpus floats."""


@dataclass
class RetrievalResult:
    """Recall@1/5/10, MRR@10 and nDCG@10, x100 like the STS table."""

    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    mrr_at_10: float
    ndcg_at_10: float
    model: str = ""
    data: str = ""
    split: str = "test"
    queries: int = 0
    """Queries evaluated (those with at least one relevant document)."""
    corpus: int = 0
    source: str = "model"
    """"model" (exact search over freshly encoded vectors) or "index" (through a built kosearch index)."""
    index: str = ""
    """Path of the index evaluated, when ``source`` is "index"."""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    COLUMNS: ClassVar[tuple[str, ...]] = tuple(f"Recall@{k}" for k in RECALL_AT) + (f"MRR@{MRR_AT}", f"nDCG@{NDCG_AT}")
    METRICS: ClassVar[tuple[str, ...]] = tuple(f"recall_at_{k}" for k in RECALL_AT) + (
        f"mrr_at_{MRR_AT}",
        f"ndcg_at_{NDCG_AT}",
    )

    def as_row(self) -> tuple[float, ...]:
        """The five numbers in :attr:`COLUMNS` order."""
        return tuple(getattr(self, metric) for metric in self.METRICS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_retrieval(
    model: ModelLike,
    data: BeirDataset | str | Path,
    *,
    split: str = "test",
    index: Index | str | Path | None = None,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    device: str | None = None,
    index_candidates: int = INDEX_CANDIDATES,
) -> RetrievalResult:
    """Score ``model`` (exact search) or ``index`` on a BEIR folder or an in-memory :class:`BeirDataset`.

    With ``index``, ``model`` is handed to ``Index.open`` (None = the model the index was built with).
    """
    started = time.perf_counter()
    dataset = data if isinstance(data, BeirDataset) else load_beir(data, split)
    if index is not None:
        with _open_index(index, model, device) as opened:
            rankings = rank_with_index(opened, dataset, candidates=index_candidates)
            name, source, index_path = opened.encoder.name, "index", str(opened.path)
    else:
        loaded = load_model(model, device=device)
        rankings = rank_with_model(loaded.model, dataset, batch_size=batch_size, show_progress_bar=show_progress_bar)
        name, source, index_path = loaded.name, "model", ""
    metrics = ranking_metrics(rankings, dataset.qrels)
    return RetrievalResult(
        **metrics,
        model=name,
        data=str(dataset.folder) if dataset.folder is not None else dataset.name,
        split=dataset.split,
        queries=len(dataset.evaluated_query_ids),
        corpus=len(dataset.corpus),
        source=source,
        index=index_path,
        seconds=time.perf_counter() - started,
        notes=list(dataset.notes),
    )


def rank_with_model(
    model: SentenceTransformer,
    dataset: BeirDataset,
    depth: int = DEPTH,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
) -> dict[str, list[str]]:
    """Exact cosine search of every judged query over the whole corpus; the top ``depth`` ids per query.

    Ties are broken by ascending document id, as ST's evaluator does, so both rank identically.
    Documents with the same text (BEIR sets have such copies) are encoded once, and each distinct vector
    is scored once: a matrix product does not give bit-identical dot products for identical columns
    (BLAS handles edge columns with other kernels, other summation orders), so a copy would otherwise
    win or lose its tie by a float32 ulp depending on where it sits in the corpus.
    """
    query_ids = dataset.evaluated_query_ids
    doc_ids = list(dataset.corpus)
    if not doc_ids:
        raise KosearchError(f"the corpus of {dataset.name or 'the retrieval set'} is empty.")
    texts, text_of_doc = _distinct([dataset.corpus[doc_id].full_text for doc_id in doc_ids])
    documents = encode(
        model,
        texts,
        "document",
        normalize=True,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
    )
    queries = encode(
        model,
        [dataset.queries[query_id] for query_id in query_ids],
        "query",
        normalize=True,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
    )
    documents, vector_of_text = np.unique(documents, axis=0, return_inverse=True)
    vector_of_doc = vector_of_text.reshape(-1)[text_of_doc]
    id_order = np.argsort(np.array(doc_ids, dtype=object), kind="stable")
    id_rank = np.empty(len(doc_ids), dtype=np.int64)
    id_rank[id_order] = np.arange(len(doc_ids))
    depth = min(depth, len(doc_ids))
    rankings: dict[str, list[str]] = {}
    for start in range(0, len(query_ids), _QUERY_BLOCK):
        scores = (queries[start : start + _QUERY_BLOCK] @ documents.T)[:, vector_of_doc]
        for offset, row in enumerate(scores):
            rankings[query_ids[start + offset]] = [doc_ids[i] for i in _top(row, id_rank, depth)]
    return rankings


def _distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct texts in first-seen order, and for each input the position of its text among them."""
    position: dict[str, int] = {}
    of_input = [position.setdefault(text, len(position)) for text in texts]
    return list(position), np.array(of_input, dtype=np.int64)


def _top(scores: np.ndarray, id_rank: np.ndarray, depth: int) -> Sequence[int]:
    # Everything scoring at least the depth-th best score is a candidate, ties included; ordering the
    # candidates by (-score, id) then picks the same documents as ST whatever the tie.
    threshold = np.partition(scores, len(scores) - depth)[len(scores) - depth]
    candidates = np.flatnonzero(scores >= threshold)
    order = np.lexsort((id_rank[candidates], -scores[candidates]))
    return candidates[order[:depth]].tolist()


def rank_with_index(
    index: Index, dataset: BeirDataset, candidates: int = INDEX_CANDIDATES, depth: int = DEPTH
) -> dict[str, list[str]]:
    """Rank corpus documents for each judged query through ``index.search_batch``."""
    corpus_path = dataset.corpus_path
    if corpus_path is None:
        raise KosearchError(
            "evaluating an index needs the BEIR folder the index was built over "
            "(write an in-memory set with --write-beir DIR, index DIR, then evaluate with --data DIR --index ...)."
        )
    corpus_path = corpus_path.resolve()
    doc_at_line = {doc.line: doc.id for doc in dataset.corpus.values()}
    query_ids = dataset.evaluated_query_ids
    all_hits = index.search_batch([dataset.queries[query_id] for query_id in query_ids], k=max(candidates, depth))
    rankings: dict[str, list[str]] = {}
    roots: set[str] = set()
    mapped = 0
    for query_id, hits in zip(query_ids, all_hits):
        ranked: list[str] = []
        for hit in hits:
            roots.add(hit.document_root)
            if (Path(hit.document_root) / hit.path).resolve() != corpus_path:
                continue
            doc_id = doc_at_line.get(hit.line)
            if doc_id is None or doc_id in ranked:
                continue
            ranked.append(doc_id)
            if len(ranked) == depth:
                break
        mapped += len(ranked)
        rankings[query_id] = ranked
    if mapped == 0 and roots:
        raise KosearchError(
            f"no hit of the index comes from {corpus_path}: the index was built over {', '.join(sorted(roots))}. "
            "Build it over the BEIR folder (kosearch index FOLDER --index PATH) or pass that folder as --data."
        )
    return rankings


def _open_index(index: Index | str | Path, model: ModelLike, device: str | None) -> AbstractContextManager[Index]:
    """An index to search, closed afterwards only if it was opened here."""
    from kosearch.index import Index

    if isinstance(index, Index):
        return nullcontext(index)
    from sentence_transformers import SentenceTransformer

    if isinstance(model, SentenceTransformer):
        raise TypeError("an index is opened with a model name or an Encoder, not a bare SentenceTransformer.")
    return Index.open(index, model=str(model) if isinstance(model, Path) else model, device=device)
