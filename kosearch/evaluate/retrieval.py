"""Retrieval evaluation: rank a BEIR set's queries with a model or a built kosearch index, then score.

Two ways to produce the rankings, one set of metrics (:mod:`kosearch.evaluate.ranking`):

- a model: the corpus is encoded with the document prompt, the queries with the query prompt (the
  asymmetric use e5 was trained for, and how ``kosearch search`` queries an index), both L2-normalised,
  and every query is compared with every document (exact cosine search, no ANN error in the numbers);
- an index built by ``kosearch index`` over a folder holding ``corpus.jsonl``: each query goes through
  ``Index.search_batch``, so the numbers include whatever the index does (sentence splitting, its vector
  store). A hit is mapped back to a BEIR document through (file, line) -> the corpus.jsonl line's _id;
  hits from other files of the folder (queries.jsonl, qrels) are skipped, and a document hit through
  several of its sentences keeps its best rank;
- search modes (``modes=["dense", "lexical", "hybrid"]``, optionally ``group_by="document"``): through
  a given index, or for a model through a temporary index over the corpus
  (:mod:`kosearch.evaluate.temporary_index`), built once and searched once per mode, so the rows of
  one table differ only in the mode.

Example::

    from kosearch.data.beir import sts_to_retrieval
    from kosearch.data.sts import read_sts
    from kosearch.evaluate import evaluate_retrieval

    paraphrases = sts_to_retrieval(read_sts("../shared/data/korsts/sts-test.tsv"))
    result = evaluate_retrieval(None, paraphrases)            # bundled model, exact search
    result = evaluate_retrieval(None, "beir/folder", index="indexes/beir")   # a built index
    rows = evaluate_retrieval_modes(None, paraphrases, ["dense", "lexical", "hybrid"])  # temporary index
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from kosearch.data.beir import BeirDataset, load_beir
from kosearch.errors import KosearchError
from kosearch.evaluate.encoding import ModelLike, encode, load_model
from kosearch.evaluate.ranking import DEPTH, MRR_AT, NDCG_AT, RECALL_AT, ranking_metrics
from kosearch.evaluate.temporary_index import temporary_index
from kosearch.ranking import top_k_positions

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from kosearch.index import Index
    from kosearch.results import Hit

MODES: tuple[str, ...] = ("dense", "lexical", "hybrid")
"""Search modes of ``Index.search`` (see HYBRID contract): one table row each."""
GROUP_BY: tuple[str, ...] = ("document",)
DocumentOf = Callable[["Hit"], "str | None"]
"""Maps an index hit to the corpus id it belongs to (None: not a corpus document)."""

INDEX_CANDIDATES = 100
"""Hits fetched per query from an index before mapping them to documents: sentences of one document,
and lines of queries.jsonl or qrels indexed alongside the corpus, share the top of the list."""
TEMPORARY_INDEX_CANDIDATES = 2 * DEPTH
"""Hits fetched per query from a temporary index: it holds only the corpus, one file per record of
one or two sentences, so twice the depth fills the top 10 documents. Every hit costs a Kiwi
analysis for its highlights (about 7 ms each on the shared 2-core machine), which at 100 candidates
made a 1,500-query set take most of an hour per mode."""
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
    """"model" (exact search over freshly encoded vectors), "index" (through a built kosearch index) or
    "temporary index" (a model through an index built over the corpus for this run)."""
    index: str = ""
    """Path of the index evaluated, when ``source`` is "index"."""
    mode: str = ""
    """Search mode of the index ("dense", "lexical", "hybrid"); "" for exact search, or when the index
    chose its default and did not say which."""
    group_by: str = ""
    seconds: float = 0.0
    """Time to rank and score (for a temporary index, its build time is ``build_seconds``)."""
    build_seconds: float = 0.0
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
    mode: str | None = None,
    group_by: str | None = None,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    device: str | None = None,
    index_candidates: int | None = None,
) -> RetrievalResult:
    """Score ``model`` (exact search) or ``index`` on a BEIR folder or an in-memory :class:`BeirDataset`.

    With ``index``, ``model`` is handed to ``Index.open`` (None = the model the index was built with).
    A model with ``mode`` or ``group_by`` is scored through a temporary index (see
    :func:`evaluate_retrieval_modes`), since exact search has neither.
    """
    if index is None and mode is None and group_by is None:
        started = time.perf_counter()
        dataset = _dataset(data, split)
        loaded = load_model(model, device=device)
        rankings = rank_with_model(loaded.model, dataset, batch_size=batch_size, show_progress_bar=show_progress_bar)
        return _result(dataset, rankings, model=loaded.name, source="model", started=started)
    (result,) = evaluate_retrieval_modes(
        model,
        data,
        [mode],
        split=split,
        index=index,
        group_by=group_by,
        device=device,
        index_candidates=index_candidates,
    )
    return result


def evaluate_retrieval_modes(
    model: ModelLike,
    data: BeirDataset | str | Path,
    modes: Sequence[str | None],
    *,
    split: str = "test",
    index: Index | str | Path | None = None,
    group_by: str | None = None,
    device: str | None = None,
    index_candidates: int | None = None,
    search_options: Mapping[str, Any] | None = None,
) -> list[RetrievalResult]:
    """One result per search mode, all through the same index (None in ``modes``: the index's default).

    Without ``index`` the corpus is indexed with ``model`` in a temporary folder first (each record a
    file, see :mod:`kosearch.evaluate.temporary_index`), so the numbers are what ``kosearch query``
    returns over such a folder: sentence units, FAISS, the lexical index and fusion included.
    ``search_options``: more ``SearchRequest`` fields for every search (``bm25_k1``, ``bm25_b``,
    ``lexical_weight``, ...).
    """
    for mode in modes:
        if mode is not None and mode not in MODES:
            raise KosearchError(f"unknown search mode '{mode}'; choose from {', '.join(MODES)}.")
    if group_by is not None and group_by not in GROUP_BY:
        raise KosearchError(f"unknown --group-by '{group_by}'; the only grouping is 'document'.")
    dataset = _dataset(data, split)
    if index is not None:
        if group_by is not None:
            raise KosearchError(
                "--group-by document needs one kosearch document per BEIR document, but an index built over a "
                "BEIR folder holds the whole corpus.jsonl as one document. Evaluate the model instead "
                "(drop --index): evaluate then builds a temporary index with one document per record."
            )
        _corpus_line_mapper(dataset)  # an in-memory set cannot be matched to an index: say so before opening it
        with _open_index(index, model, device) as opened:
            return [
                _index_result(
                    opened, dataset, mode, None, None, source="index", build_seconds=0.0,
                    candidates=index_candidates or INDEX_CANDIDATES, search_options=search_options,
                )
                for mode in modes
            ]
    if _is_sentence_transformer(model):
        raise TypeError("search modes are measured through an index: pass a model name or folder, not a model object.")
    with temporary_index(model, dataset, device=device) as built:  # type: ignore[arg-type]
        return [
            _index_result(
                built.index,
                dataset,
                mode,
                group_by,
                built.document_of,
                source="temporary index",
                build_seconds=built.build_seconds,
                candidates=index_candidates or TEMPORARY_INDEX_CANDIDATES,
                search_options=search_options,
            )
            for mode in modes
        ]


def _index_result(
    index: Index,
    dataset: BeirDataset,
    mode: str | None,
    group_by: str | None,
    document_of: DocumentOf | None,
    *,
    source: str,
    build_seconds: float,
    candidates: int,
    search_options: Mapping[str, Any] | None = None,
) -> RetrievalResult:
    started = time.perf_counter()
    modes_seen: set[str] = set()
    rankings = rank_with_index(
        index, dataset, candidates=candidates, mode=mode, group_by=group_by, document_of=document_of,
        modes_seen=modes_seen, search_options=search_options,
    )
    result = _result(dataset, rankings, model=index.encoder.name, source=source, started=started)
    result.index = str(index.path) if source == "index" else ""
    result.mode = mode or (modes_seen.pop() if len(modes_seen) == 1 else "")
    result.group_by = group_by or ""
    result.build_seconds = build_seconds
    return result


def _dataset(data: BeirDataset | str | Path, split: str) -> BeirDataset:
    return data if isinstance(data, BeirDataset) else load_beir(data, split)


def _result(
    dataset: BeirDataset, rankings: dict[str, list[str]], *, model: str, source: str, started: float
) -> RetrievalResult:
    metrics = ranking_metrics(rankings, dataset.qrels)
    return RetrievalResult(
        **metrics,
        model=model,
        data=str(dataset.folder) if dataset.folder is not None else dataset.name,
        split=dataset.split,
        queries=len(dataset.evaluated_query_ids),
        corpus=len(dataset.corpus),
        source=source,
        seconds=time.perf_counter() - started,
        notes=list(dataset.notes),
    )


def _is_sentence_transformer(model: object) -> bool:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:  # pragma: no cover - a dependency of kosearch
        return False
    return isinstance(model, SentenceTransformer)


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
            rankings[query_ids[start + offset]] = [doc_ids[i] for i in top_k_positions(row, depth, id_rank)]
    return rankings


def _distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct texts in first-seen order, and for each input the position of its text among them."""
    position: dict[str, int] = {}
    of_input = [position.setdefault(text, len(position)) for text in texts]
    return list(position), np.array(of_input, dtype=np.int64)


def rank_with_index(
    index: Index,
    dataset: BeirDataset,
    candidates: int = INDEX_CANDIDATES,
    depth: int = DEPTH,
    *,
    mode: str | None = None,
    group_by: str | None = None,
    document_of: DocumentOf | None = None,
    modes_seen: set[str] | None = None,
    search_options: Mapping[str, Any] | None = None,
) -> dict[str, list[str]]:
    """Rank corpus documents for each judged query through ``index.search_batch``.

    ``document_of`` maps a hit to its corpus id; by default hits are matched to the lines of the
    dataset folder's corpus.jsonl, for an index built over that folder. ``mode`` and ``group_by`` are
    handed to the search as they are (left out when None, so the index picks its default).
    ``modes_seen``, if given, collects the ``mode`` the hits say produced them.
    """
    by_corpus_line = document_of is None
    if document_of is None:
        document_of = _corpus_line_mapper(dataset)
    query_ids = dataset.evaluated_query_ids
    options = {name: value for name, value in (("mode", mode), ("group_by", group_by)) if value is not None}
    options.update({name: value for name, value in (search_options or {}).items() if value is not None})
    queries = [dataset.queries[query_id] for query_id in query_ids]
    all_hits = index.search_batch(queries, k=max(candidates, depth), **options)
    rankings: dict[str, list[str]] = {}
    roots: set[str] = set()
    mapped = 0
    for query_id, hits in zip(query_ids, all_hits):
        ranked: list[str] = []
        for hit in hits:
            roots.add(hit.document_root)
            if modes_seen is not None and getattr(hit, "mode", None):
                modes_seen.add(hit.mode)  # type: ignore[attr-defined]
            doc_id = document_of(hit)
            if doc_id is None or doc_id in ranked:
                continue
            ranked.append(doc_id)
            if len(ranked) == depth:
                break
        mapped += len(ranked)
        rankings[query_id] = ranked
    if mapped == 0 and roots and by_corpus_line:
        raise KosearchError(
            f"no hit of the index comes from {dataset.corpus_path.resolve()}: the index was built over "
            f"{', '.join(sorted(roots))}. Build it over the BEIR folder (kosearch index FOLDER --index PATH) "
            "or pass that folder as --data."
        )
    return rankings


def _corpus_line_mapper(dataset: BeirDataset) -> DocumentOf:
    """Hit -> corpus id through (corpus.jsonl, line), for an index built over the dataset's folder."""
    corpus_path = dataset.corpus_path
    if corpus_path is None:
        raise KosearchError(
            "evaluating an index needs the BEIR folder the index was built over "
            "(write an in-memory set with --write-beir DIR, index DIR, then evaluate with --data DIR --index ...)."
        )
    corpus_path = corpus_path.resolve()
    doc_at_line = {doc.line: doc.id for doc in dataset.corpus.values()}

    def document_of(hit: Hit) -> str | None:
        if (Path(hit.document_root) / hit.path).resolve() != corpus_path:
            return None
        return doc_at_line.get(hit.line)

    return document_of


def _open_index(index: Index | str | Path, model: ModelLike, device: str | None) -> AbstractContextManager[Index]:
    """An index to search, closed afterwards only if it was opened here."""
    from kosearch.index import Index

    if isinstance(index, Index):
        return nullcontext(index)
    from sentence_transformers import SentenceTransformer

    if isinstance(model, SentenceTransformer):
        raise TypeError("an index is opened with a model name or an Encoder, not a bare SentenceTransformer.")
    return Index.open(index, model=str(model) if isinstance(model, Path) else model, device=device)
