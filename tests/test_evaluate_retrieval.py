"""kosearch.evaluate retrieval: metric definitions, agreement with ST's InformationRetrievalEvaluator,
and the mapping of index hits back to BEIR documents."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pytest
from fixtures.eval.tiny_model import build_tiny_model as build_eval_tiny_model
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from kosearch.data.beir import BeirDataset, CorpusDocument, load_beir, sts_to_retrieval, write_beir
from kosearch.data.sts import read_sts
from kosearch.errors import KosearchError
from kosearch.evaluate import RetrievalResult, evaluate_retrieval, rank_with_index, rank_with_model, ranking_metrics
from kosearch.results import Hit

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
BEIR = FIXTURES / "beir_small"


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory) -> Path:
    beir = load_beir(BEIR)
    sts = read_sts(FIXTURES / "sts_small.tsv")
    texts = [d.full_text for d in beir.corpus.values()] + list(beir.queries.values())
    texts += [e.sentence1 for e in sts] + [e.sentence2 for e in sts] + ["passage: query:"]
    return build_eval_tiny_model(
        tmp_path_factory.mktemp("tiny"), texts, prompts={"query": "query: ", "document": "passage: "}
    )


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path) -> SentenceTransformer:
    return SentenceTransformer(str(tiny_model_path), device="cpu")


# -- metric definitions, on rankings worked out by hand ----------------------------------------------


def test_ranking_metrics_by_hand():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {}}
    rankings = {"q1": ["x", "a", "y"], "q2": ["b", "z", "c"], "q3": ["a"]}
    metrics = ranking_metrics(rankings, qrels)
    # q3 has no relevant document and is left out of every average.
    assert metrics["recall_at_1"] == pytest.approx(100 * (0 + 1 / 2) / 2)
    assert metrics["recall_at_5"] == pytest.approx(100 * (1 + 1) / 2)
    assert metrics["mrr_at_10"] == pytest.approx(100 * (1 / 2 + 1) / 2)
    ndcg_q1 = (1 / math.log2(3)) / 1
    ndcg_q2 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert metrics["ndcg_at_10"] == pytest.approx(100 * (ndcg_q1 + ndcg_q2) / 2)


def test_ranking_beyond_ten_and_missing_queries_count_as_misses():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    rankings = {"q1": [f"x{i}" for i in range(10)] + ["a"]}  # q2 retrieved nothing at all
    metrics = ranking_metrics(rankings, qrels)
    assert metrics == {"recall_at_1": 0.0, "recall_at_5": 0.0, "recall_at_10": 0.0, "mrr_at_10": 0.0, "ndcg_at_10": 0.0}


def test_graded_ndcg_uses_grades_as_gains():
    metrics = ranking_metrics({"q": ["b", "a"]}, {"q": {"a": 2, "b": 1}})
    found = 1 + 2 / math.log2(3)
    ideal = 2 + 1 / math.log2(3)
    assert metrics["ndcg_at_10"] == pytest.approx(100 * found / ideal)
    assert metrics["recall_at_1"] == pytest.approx(50.0)


def test_no_judged_query_is_an_error():
    with pytest.raises(ValueError, match="no query has a relevant document"):
        ranking_metrics({"q": ["a"]}, {"q": {}})


# -- agreement with sentence-transformers ---------------------------------------------------------


def _st_reference(model: SentenceTransformer, dataset: BeirDataset) -> dict[str, float]:
    evaluator = InformationRetrievalEvaluator(
        queries=dataset.queries,
        corpus={doc_id: doc.full_text for doc_id, doc in dataset.corpus.items()},
        relevant_docs={query_id: set(docs) for query_id, docs in dataset.qrels.items()},
        accuracy_at_k=[1],
        precision_recall_at_k=[1, 5, 10],
        mrr_at_k=[10],
        ndcg_at_k=[10],
        map_at_k=[10],
        write_csv=False,
    )
    metrics = evaluator(model)
    return {
        "recall_at_1": metrics["cosine_recall@1"],
        "recall_at_5": metrics["cosine_recall@5"],
        "recall_at_10": metrics["cosine_recall@10"],
        "mrr_at_10": metrics["cosine_mrr@10"],
        "ndcg_at_10": metrics["cosine_ndcg@10"],
    }


def _with_duplicate_documents(dataset: BeirDataset) -> BeirDataset:
    """Copies of documents have identical vectors, so their scores tie exactly: ranks then hang on tie-breaking.

    (d00 sorts before its original d04, d99 after its original d01; the copies sit in the last columns.)"""
    corpus = dict(dataset.corpus)
    corpus["d00"] = CorpusDocument("d00", dataset.corpus["d04"].text, dataset.corpus["d04"].title)
    corpus["d99"] = CorpusDocument("d99", dataset.corpus["d01"].text, dataset.corpus["d01"].title)
    return BeirDataset(corpus=corpus, queries=dataset.queries, qrels=dataset.qrels, name="with-duplicates")


@pytest.mark.parametrize("which", ["beir_small", "beir_small_with_duplicates", "sts_small_paraphrases"])
def test_model_metrics_match_information_retrieval_evaluator(tiny_model, which):
    if which == "sts_small_paraphrases":
        dataset = sts_to_retrieval(read_sts(FIXTURES / "sts_small.tsv"))
    else:
        dataset = load_beir(BEIR)
        if which == "beir_small_with_duplicates":
            dataset = _with_duplicate_documents(dataset)
    ours = evaluate_retrieval(tiny_model, dataset)
    reference = _st_reference(tiny_model, dataset)
    for metric in RetrievalResult.METRICS:
        assert getattr(ours, metric) / 100 == pytest.approx(reference[metric], abs=1e-9), metric
    assert ours.queries == len(dataset.evaluated_query_ids)
    assert ours.corpus == len(dataset.corpus)
    assert ours.source == "model"


class _SeededVectors:
    """Stands in for a SentenceTransformer in ``rank_with_model``: a seeded random vector per text, made
    from its first ``width`` characters only (all of it when None), as a model truncating long texts does."""

    def __init__(self, width: int | None = None) -> None:
        self.width = width

    def encode_document(self, texts, normalize_embeddings=False, **_) -> np.ndarray:
        return self._vectors([text[: self.width] for text in texts], normalize_embeddings)

    def encode_query(self, texts, normalize_embeddings=False, **_) -> np.ndarray:
        return self._vectors(texts, normalize_embeddings)

    encode = encode_query  # kosearch's encode() looks up all three methods; only the prompt sides run

    @staticmethod
    def _vectors(texts, normalize: bool) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(text.encode())).standard_normal(32) for text in texts]
        vectors = np.array(rows, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True) if normalize else vectors


@pytest.mark.parametrize("copy_suffix, width", [("", None), (" (a longer copy)", 7)], ids=["same-text", "same-vector"])
def test_copies_of_a_document_tie_exactly_and_rank_by_id(copy_suffix, width):
    """Copies (same text, or texts a model truncates to the same vector) must tie exactly, so that the
    smaller id ranks first wherever the copies sit in the corpus. A matrix product alone does not
    guarantee it: BLAS gives identical columns dot products that differ in the last bit."""
    corpus = {f"d{i:02d}": CorpusDocument(f"d{i:02d}", f"doc #{i:02d}") for i in range(40)}
    # Copies go last (the matrix's edge columns); half of their ids sort before the original, half after.
    pairs = [(f"{'c' if i % 2 else 'e'}{i:02d}", f"d{i:02d}") for i in range(0, 40, 3)]
    for copy_id, original_id in pairs:
        corpus[copy_id] = CorpusDocument(copy_id, corpus[original_id].text + copy_suffix)
    queries = {f"q{i}": f"question {i}" for i in range(24)}
    dataset = BeirDataset(corpus=corpus, queries=queries, qrels={q: {"d00": 1} for q in queries})
    rankings = rank_with_model(_SeededVectors(width), dataset, depth=len(corpus))
    for query_id, ranking in rankings.items():
        for pair in pairs:
            first, second = sorted(pair)
            assert ranking.index(first) + 1 == ranking.index(second), (query_id, pair, ranking)
    top_ten = rank_with_model(_SeededVectors(width), dataset)
    for query_id, ranking in top_ten.items():
        assert ranking == rankings[query_id][:10]  # a pair split by the cut keeps its smaller id


def test_ranks_with_query_prompt_for_queries_and_document_prompt_for_corpus(tiny_model):
    dataset = load_beir(BEIR)
    documents = tiny_model.encode_document([d.full_text for d in dataset.corpus.values()], normalize_embeddings=True)
    queries = tiny_model.encode_query([dataset.queries["q2"]], normalize_embeddings=True)
    scores = (queries @ documents.T)[0]
    expected = [list(dataset.corpus)[i] for i in scores.argsort()[::-1][:10]]
    assert rank_with_model(tiny_model, dataset)["q2"] == expected


def test_evaluate_retrieval_reads_a_folder_and_split(tiny_model):
    result = evaluate_retrieval(tiny_model, BEIR, split="dev")
    assert (result.split, result.queries, result.corpus) == ("dev", 2, 12)
    assert result.data == str(BEIR)
    assert len(result.as_row()) == len(RetrievalResult.COLUMNS) == 5


# -- index hits mapped back to BEIR documents -------------------------------------------------------


class _FakeIndex:
    """Stands in for kosearch.Index: returns canned hits, in rank order, for any query."""

    def __init__(self, hits_per_query: list[list[Hit]]) -> None:
        self.hits_per_query = hits_per_query
        self.asked_k: int | None = None

    def search_batch(self, queries, k=10):
        self.asked_k = k
        return self.hits_per_query[: len(queries)]


def _hit(root: Path, path: str, line: int, score: float) -> Hit:
    return Hit(score=score, text="", path=path, line=line, sentence_id=0, start=0, end=0, document_root=str(root))


def test_index_hits_map_to_documents_skip_other_files_and_keep_best_rank():
    dataset = load_beir(BEIR)
    root = BEIR.parent  # the index was built over a parent folder: paths are relative to it
    corpus = "beir_small/corpus.jsonl"
    line_of = {doc_id: doc.line for doc_id, doc in dataset.corpus.items()}
    q1_hits = [
        _hit(root, "beir_small/queries.jsonl", 1, 0.99),  # the query itself, indexed alongside: skipped
        _hit(root, corpus, line_of["d06"], 0.9),
        _hit(root, corpus, line_of["d01"], 0.8),
        _hit(root, corpus, line_of["d06"], 0.7),  # a second sentence of d06: keeps rank 1
        _hit(root, "beir_small/qrels/test.tsv", 2, 0.6),
    ]
    other = [_hit(root, corpus, line_of["d05"], 0.5)]
    index = _FakeIndex([q1_hits] + [other] * 4)
    rankings = rank_with_index(index, dataset)
    assert rankings["q1"] == ["d06", "d01"]
    assert rankings["q5"] == ["d05"]
    assert index.asked_k >= 100  # over-fetches: other files and extra sentences share the top
    metrics = ranking_metrics(rankings, dataset.qrels)
    assert metrics["mrr_at_10"] == pytest.approx(100 * (1 / 2 + 0 + 0 + 0 + 1) / 5)


def test_index_built_over_another_folder_is_explained(tmp_path):
    dataset = load_beir(BEIR)
    index = _FakeIndex([[_hit(tmp_path, "corpus.jsonl", 1, 0.9)]] * 5)
    with pytest.raises(KosearchError, match="no hit of the index comes from"):
        rank_with_index(index, dataset)


def test_in_memory_set_cannot_be_matched_to_an_index():
    dataset = sts_to_retrieval(read_sts(FIXTURES / "sts_small.tsv"))
    with pytest.raises(KosearchError, match="--write-beir"):
        rank_with_index(_FakeIndex([]), dataset)


def test_index_route_matches_exact_search_on_the_same_folder(tiny_model_path, tmp_path):
    """A real index over a BEIR folder: the hits map back to documents and, since the index uses the same
    prompts and an exact (Flat) FAISS index, it ranks exactly like exact search with the model."""
    from kosearch.index import Index

    original = load_beir(BEIR)
    # The index embeds the "text" field only, so drop titles to give both routes the same documents.
    untitled = BeirDataset(
        corpus={i: CorpusDocument(i, d.text, line=d.line) for i, d in original.corpus.items()},
        queries=original.queries,
        qrels=original.qrels,
    )
    folder = write_beir(untitled, tmp_path / "beir")
    with Index.create(tmp_path / "index", model=str(tiny_model_path), device="cpu") as index:
        index.add_folder(folder, text_fields=["text"])  # queries.jsonl is indexed too; its hits must be skipped
    # Dense mode: an index with a lexical index searches hybrid by default, which exact search is not.
    through_index = evaluate_retrieval(None, folder, index=tmp_path / "index", mode="dense", device="cpu")
    exact = evaluate_retrieval(str(tiny_model_path), folder, device="cpu")
    assert through_index.source == "index" and through_index.index == str(tmp_path / "index")
    assert through_index.as_row() == pytest.approx(exact.as_row(), abs=1e-6)
    assert through_index.queries == exact.queries == 5
    assert exact.mrr_at_10 > 0  # the routes agree on real rankings, not on an all-miss table
