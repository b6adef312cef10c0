"""kosearch.evaluate.sts: the card table, checked against sentence-transformers' own evaluator."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures.eval.tiny_model import build_tiny_model as build_eval_tiny_model
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

from kosearch.data.sts import read_sts
from kosearch.evaluate import KorSTSEvaluator, STSResult, evaluate_sts, sts_correlations

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
KORSTS_TEST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "korsts" / "sts-test.tsv"
SIMILARITIES = ["cosine", "euclidean", "manhattan", "dot"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> SentenceTransformer:
    """Random, unnormalised, with e5-style prompts so the prompt side matters."""
    examples = read_sts(FIXTURES / "sts_small.tsv")
    texts = [e.sentence1 for e in examples] + [e.sentence2 for e in examples] + ["passage: query:"]
    folder = build_eval_tiny_model(
        tmp_path_factory.mktemp("tiny"), texts, prompts={"query": "query: ", "document": "passage: "}
    )
    return SentenceTransformer(str(folder), device="cpu")


def _st_reference(model: SentenceTransformer, path: Path, default_prompt: str | None) -> dict[str, float]:
    examples = read_sts(path)
    evaluator = EmbeddingSimilarityEvaluator(
        [e.sentence1 for e in examples],
        [e.sentence2 for e in examples],
        [e.score / 5 for e in examples],  # how ST's examples feed it; correlations do not care
        similarity_fn_names=SIMILARITIES,
        write_csv=False,
    )
    previous = model.default_prompt_name
    model.default_prompt_name = default_prompt
    try:
        return evaluator(model)
    finally:
        model.default_prompt_name = previous


@pytest.mark.parametrize(("side", "st_default_prompt"), [("document", "document"), ("query", "query"), ("none", None)])
def test_matches_sentence_transformers_evaluator_for_all_four_similarities(tiny_model, side, st_default_prompt):
    ours = evaluate_sts(tiny_model, FIXTURES / "sts_small.tsv", side=side)
    reference = _st_reference(tiny_model, FIXTURES / "sts_small.tsv", st_default_prompt)
    for similarity in SIMILARITIES:
        for correlation in ("pearson", "spearman"):
            expected = reference[f"{correlation}_{similarity}"]
            assert getattr(ours, f"{similarity}_{correlation}") / 100 == pytest.approx(expected, abs=1e-6)
    # The fixture model is unnormalised, so the four similarities are really four different numbers.
    assert len({round(v, 6) for v in ours.as_row()[:8:2]}) == 4


def test_prompt_side_changes_the_embeddings(tiny_model):
    document = evaluate_sts(tiny_model, FIXTURES / "sts_small.tsv", side="document")
    query = evaluate_sts(tiny_model, FIXTURES / "sts_small.tsv", side="query")
    assert document.cosine_spearman != query.cosine_spearman
    assert document.side == "document" and query.side == "query"


def test_klue_json_scores_like_the_same_pairs_in_tsv(tiny_model, tmp_path):
    """The KLUE reader only changes how pairs are stored, so a TSV of the same pairs scores the same."""
    examples = read_sts(FIXTURES / "klue_sts_small.json")
    tsv = tmp_path / "same.tsv"
    tsv.write_text(
        "score\tsentence1\tsentence2\n" + "".join(f"{e.score}\t{e.sentence1}\t{e.sentence2}\n" for e in examples),
        encoding="utf-8",
    )
    from_json = evaluate_sts(tiny_model, FIXTURES / "klue_sts_small.json")
    from_tsv = evaluate_sts(tiny_model, tsv)
    assert from_json.as_row() == pytest.approx(from_tsv.as_row(), abs=1e-9)
    assert from_json.pairs == len(examples)


def test_result_row_dict_and_average(tiny_model):
    result = evaluate_sts(tiny_model, FIXTURES / "sts_small.tsv")
    row = result.as_row()
    assert len(row) == len(STSResult.COLUMNS) == 9
    assert row[-1] == pytest.approx(float(np.mean(row[:8])))
    as_dict = result.to_dict()
    assert as_dict["cosine_spearman"] == row[1] and as_dict["avg"] == row[-1]
    assert as_dict["pairs"] == 16 and as_dict["seconds"] > 0


def test_similarities_follow_sentence_transformers_definitions():
    """Hand-made vectors: closer pairs get higher gold scores, so every similarity must correlate positively.

    Euclidean and manhattan are negative distances (ST's definition); were they raw distances, their
    correlations would come out negative.
    """
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 8))
    direction = rng.normal(size=(6, 8))
    distances = np.array([3.0, 2.5, 2.0, 1.0, 0.5, 0.1])
    gold = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    result = sts_correlations(base, base + distances[:, None] * direction / np.linalg.norm(direction, axis=1)[:, None], gold)
    assert result.euclidean_spearman == pytest.approx(100.0)
    assert result.euclidean_pearson > 0 and result.manhattan_pearson > 0
    # Cosine on unit vectors: the dot product equals the cosine, so both columns agree exactly.
    unit_a = base / np.linalg.norm(base, axis=1, keepdims=True)
    unit_b = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    unit = sts_correlations(unit_a, unit_b, gold)
    assert unit.cosine_pearson == pytest.approx(unit.dot_pearson, abs=1e-9)
    cosines = np.einsum("ij,ij->i", unit_a, unit_b)
    assert unit.cosine_pearson == pytest.approx(100 * np.corrcoef(cosines, gold)[0, 1], abs=1e-9)


def test_korsts_evaluator_reports_like_evaluate_sts_and_writes_csv(tiny_model, tmp_path):
    evaluator = KorSTSEvaluator.from_file(FIXTURES / "sts_small.tsv", name="fixture")
    metrics = evaluator(tiny_model, output_path=str(tmp_path), epoch=1, steps=10)
    direct = evaluate_sts(tiny_model, FIXTURES / "sts_small.tsv")
    assert evaluator.primary_metric == "fixture_spearman_cosine"
    assert metrics["fixture_spearman_cosine"] == pytest.approx(direct.cosine_spearman / 100, abs=1e-12)
    assert metrics["fixture_pearson_dot"] == pytest.approx(direct.dot_pearson / 100, abs=1e-12)
    with open(tmp_path / evaluator.csv_file, encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["epoch", "steps", "cosine_pearson", "cosine_spearman"]
    assert float(rows[1][3]) == pytest.approx(direct.cosine_spearman / 100)


@pytest.mark.slow
@pytest.mark.skipif(not KORSTS_TEST.is_file(), reason="shared KorSTS data not present")
def test_bundled_model_on_korsts_test(korsts_test_pairs, bundled_korsts_query_vectors):
    """``evaluate_sts(None, ...)`` runs the real bundled model and scores exactly what its vectors give; the
    full-set number comes from the session's vectors of all 2,600 sentences (encoded once, shared with
    test_bundled_model.py), so the evaluation itself runs on every fifth pair only."""
    from scipy.stats import spearmanr

    def cosine_spearman(pairs) -> float:
        vectors = bundled_korsts_query_vectors
        cosine = [float(vectors[p.sentence1] @ vectors[p.sentence2]) for p in pairs]
        return 100 * spearmanr(cosine, [p.score for p in pairs]).statistic

    subset = korsts_test_pairs[::5]
    started = time.perf_counter()
    result = evaluate_sts(None, subset)
    elapsed = time.perf_counter() - started
    print(f"\nbundled on 1/5 of KorSTS test ({elapsed:.1f}s):",
          dict(zip(STSResult.COLUMNS, (round(v, 2) for v in result.as_row()))))
    assert result.pairs == len(subset) == 276 and result.side == "query"
    assert result.cosine_spearman == pytest.approx(cosine_spearman(subset), abs=0.01)
    assert len(read_sts(KORSTS_TEST)) == len(korsts_test_pairs) == 1379
    assert 76.0 <= cosine_spearman(korsts_test_pairs) <= 78.0
