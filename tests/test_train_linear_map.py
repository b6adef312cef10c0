"""The linear map after pooling that ``train adapt`` trains on the folder's mined queries
(``kosearch.train.linear_map``): the training, the module in the saved folder, the budget, and the real path."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from kosearch.errors import KosearchError
from kosearch.train import TrainingConfig, train_adapt
from kosearch.train.linear_map import (
    _FIRST_CHUNK,
    ExampleVectors,
    add_linear_map,
    encode_examples,
    ranking_logits,
    shrunk_whitening,
    train_linear_map,
)
from kosearch.train.mining import TrainingExample

SAMPLE = Path(__file__).resolve().parents[1] / "corpora" / "sample"


@pytest.fixture
def tiny_model(tiny_train_model: Path) -> Path:
    return tiny_train_model


def _load(folder: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def _config(model: Path, output: Path, **kwargs) -> TrainingConfig:
    return TrainingConfig(output=output, model=str(model), device="cpu", batch_size=4, **kwargs)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _top1(queries: np.ndarray, candidates: np.ndarray, matrix: np.ndarray) -> float:
    return float(np.mean(np.argmax(_unit(queries @ matrix) @ _unit(candidates @ matrix).T, axis=1)
                         == np.arange(len(queries))))


def _skewed_pairs(rows: int = 512, dimension: int = 16, seed: int = 0):
    """Pairs whose identity ranking is poor: every vector shares a large noise in the first half of the dimensions,
    independent between a query and its positive; only the second half carries the match. A map that shrinks the
    first half ranks far better, and the loss can find it."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(rows, dimension // 2))
    noise = 3.0 * rng.normal(size=(3, rows, dimension // 2))
    queries = np.hstack([noise[0], signal + 0.1 * rng.normal(size=signal.shape)])
    positives = np.hstack([noise[1], signal])
    negatives = np.hstack([noise[2], rng.normal(size=signal.shape)])
    return _unit(queries), _unit(positives), _unit(negatives)


def test_the_map_learns_what_the_examples_ask_and_is_deterministic() -> None:
    queries, positives, negatives = _skewed_pairs()
    identity = np.eye(queries.shape[1])
    matrix = train_linear_map(queries, positives, negatives, l2=0.01, epochs=20, learning_rate=1e-2)
    held_out = _skewed_pairs(seed=1)  # fresh pairs of the same shape: what was learnt is the shape, not the rows
    assert _top1(held_out[0], held_out[1], matrix) > _top1(held_out[0], held_out[1], identity) + 0.3
    # The noisy half shrinks relative to the signal half.
    half = queries.shape[1] // 2
    assert np.linalg.norm(matrix[:half, :half]) < 0.5 * np.linalg.norm(matrix[half:, half:])
    again = train_linear_map(queries, positives, negatives, l2=0.01, epochs=20, learning_rate=1e-2)
    assert np.array_equal(matrix, again)


def test_the_pull_to_the_identity_bounds_the_change() -> None:
    queries, positives, negatives = _skewed_pairs()
    loose = train_linear_map(queries, positives, negatives, l2=0.0, epochs=5)
    tight = train_linear_map(queries, positives, negatives, l2=100.0, epochs=5)
    identity = np.eye(queries.shape[1])
    assert np.linalg.norm(tight - identity) < 0.2 * np.linalg.norm(loose - identity)


def test_the_shrunk_whitening_evens_out_the_spread_and_shrinks_to_the_identity() -> None:
    rng = np.random.default_rng(0)
    spread = np.array([10.0, 3.0, 1.0, 0.3, 0.1, 0.1])
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    vectors = (rng.normal(size=(4000, 6)) * spread) @ rotation + 5.0  # an offset, as the e5 vectors have
    full = shrunk_whitening(vectors, shrinkage=1e-9)
    assert np.allclose(full, full.T)
    assert np.isclose(np.linalg.norm(full), np.sqrt(6))
    # Unshrunk, every direction of the centred vectors ends with the same variance (one scale for all).
    whitened = (vectors - vectors.mean(0)) @ full
    variances = np.linalg.eigvalsh(np.cov(whitened.T))
    assert variances.max() < 1.1 * variances.min()
    # Shrinkage moves it towards the identity, and the shipped one lies between.
    shrunk = shrunk_whitening(vectors)
    far = shrunk_whitening(vectors, shrinkage=1e6)
    assert np.linalg.norm(far - np.eye(6)) < 1e-3
    assert 1e-3 < np.linalg.norm(shrunk - np.eye(6)) < np.linalg.norm(full - np.eye(6))
    # The shrinkage is relative to the spread: the same vectors at another scale give the same matrix.
    assert np.allclose(shrunk_whitening(3.0 * vectors), shrunk)
    with pytest.raises(ValueError, match="two vectors"):
        shrunk_whitening(vectors[:1])
    with pytest.raises(ValueError, match="two vectors"):
        shrunk_whitening(vectors[0])
    with pytest.raises(ValueError, match="finite"):
        shrunk_whitening(np.vstack([vectors[:5], [np.nan] * 6]))
    for wrong in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="more than 0"):
            shrunk_whitening(vectors, shrinkage=wrong)


def test_fewer_vectors_than_dimensions_do_not_blow_up_the_empty_directions() -> None:
    """A covariance of 3 vectors in 8 dimensions has 6 empty directions, the shared one among them; unshrunk, dividing
    by their zero spread would send every vector to the same point. The shrinkage keeps the vectors apart."""
    vectors = _unit(np.random.default_rng(1).normal(size=(3, 8)) + 2.0)
    for shrinkage in (1.0, 10.0):
        mapped = _unit(vectors @ shrunk_whitening(vectors, shrinkage=shrinkage))
        assert np.isfinite(mapped).all()
        assert (mapped @ mapped.T)[np.triu_indices(3, 1)].max() < 0.999
    assert np.array_equal(shrunk_whitening(np.ones((4, 5))), np.eye(5)), "identical vectors: nothing to even out"


def test_the_map_starts_from_its_anchor_and_is_pulled_back_to_it() -> None:
    queries, positives, negatives = _skewed_pairs()
    anchor = shrunk_whitening(np.vstack([queries, positives]), shrinkage=1.0)
    held = train_linear_map(queries, positives, negatives, anchor=anchor, l2=1e4, epochs=2)
    assert np.linalg.norm(held - anchor) < 0.05 * np.linalg.norm(anchor - np.eye(len(anchor)))
    free = train_linear_map(queries, positives, negatives, anchor=anchor, l2=0.0, epochs=2)
    assert np.linalg.norm(free - anchor) > 5 * np.linalg.norm(held - anchor)
    with pytest.raises(ValueError, match="anchor"):
        train_linear_map(queries, positives, negatives, anchor=np.eye(3))


def test_distinct_passages_holds_each_passage_once_in_id_order() -> None:
    rows = np.arange(12, dtype=np.float32).reshape(6, 2)
    rows[4] = rows[1]  # two passages with the same vector are still two passages
    vectors = ExampleVectors(queries=rows[:3], positives=rows[[3, 1, 3]], negatives=rows[[2, 4, 0]],
                             positive_ids=np.array([3, 1, 3]), negative_ids=np.array([2, 4, 0]))
    assert np.array_equal(vectors.distinct_passages(), rows[[0, 1, 2, 3, 4]])


def test_the_passage_ids_reach_the_loss() -> None:
    """Every candidate of every row is the row's own passage: with the ids, no negative is left, the ranking term is
    constant and the pull keeps ``W`` at the identity; without them the map moves."""
    queries, positives, negatives = _skewed_pairs(rows=64)
    same = np.zeros(64, dtype=np.int64)
    kept = train_linear_map(queries, positives, negatives, positive_ids=same, negative_ids=same, epochs=2, batch=32)
    assert np.array_equal(kept, np.eye(queries.shape[1], dtype=kept.dtype))
    moved = train_linear_map(queries, positives, negatives, epochs=2, batch=32)
    assert not np.array_equal(moved, np.eye(queries.shape[1], dtype=moved.dtype))
    with pytest.raises(ValueError, match="both"):
        train_linear_map(queries, positives, negatives, positive_ids=same)


def test_fewer_examples_than_a_batch_still_train_one_batch() -> None:
    queries, positives, negatives = _skewed_pairs(rows=10)
    matrix = train_linear_map(queries, positives, negatives, epochs=1, batch=128)
    assert not np.array_equal(matrix, np.eye(queries.shape[1]))


def test_the_ranking_term_is_multiple_negatives_ranking_loss_and_leaves_out_a_passage_in_two_roles(tiny_model: Path) \
        -> None:
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    generator = torch.Generator().manual_seed(0)
    queries, positives, negatives = (torch.randn(6, 8, generator=generator) for _ in range(3))
    library = MultipleNegativesRankingLoss(_load(tiny_model), scale=20.0).compute_loss_from_embeddings(
        [queries, positives, negatives], None)
    logits = ranking_logits(queries, positives, negatives, 20.0)
    assert torch.nn.functional.cross_entropy(logits, torch.arange(6)).item() == pytest.approx(library.item(), rel=1e-6)
    # Row 1's negative is row 0's positive (passage 7), and row 2's positive is row 0's too: both are row 0's own
    # passage, not negatives of it. Nothing else changes.
    positive_ids = torch.tensor([7, 1, 7, 3, 4, 5])
    negative_ids = torch.tensor([10, 7, 12, 13, 14, 15])
    masked = ranking_logits(queries, positives, negatives, 20.0, ids=(positive_ids, negative_ids))
    expected = logits.clone()
    for row, column in ((0, 2), (0, 7), (2, 0), (2, 7)):
        expected[row, column] = float("-inf")
    assert torch.equal(masked, expected)


def test_examples_are_encoded_as_the_index_encodes_and_the_deadline_is_kept(tiny_model: Path) -> None:
    model = _load(tiny_model)
    examples = [TrainingExample("치타 먹이", "치타가 먹이를 쫓는다", "도서관 휴관일 안내", "keywords"),
                TrainingExample("도서관", "도서관 휴관일 안내", "치타는 빠르다", "keywords")]
    vectors = encode_examples(model, examples, show_progress_bar=False)
    width = model.encode(["x"]).shape[1]
    assert vectors.queries.shape == vectors.positives.shape == vectors.negatives.shape == (2, width)
    expected = model.encode_query(["치타 먹이"], normalize_embeddings=True)
    assert np.allclose(vectors.queries[0], expected[0], atol=1e-5)
    assert not np.allclose(expected, model.encode(["치타 먹이"], normalize_embeddings=True)), "the prompt is used"
    expected = model.encode_document(["치타는 빠르다"], normalize_embeddings=True)
    assert np.allclose(vectors.negatives[1], expected[0], atol=1e-5)
    assert vectors.negative_ids[0] == vectors.positive_ids[1], "one passage text, one id"
    assert len(set(vectors.positive_ids) | set(vectors.negative_ids)) == 3
    assert len(encode_examples(model, examples, deadline=time.perf_counter() - 1, show_progress_bar=False)) == 0
    # The first chunk measures the speed; with a large reserve after the map, the next chunk would end too late.
    many = [TrainingExample(f"질문 {i}", f"답 {i}", f"다른 답 {i}", "keywords") for i in range(40)]
    partial = encode_examples(model, many, deadline=time.perf_counter() + 3600, reserve_texts=10**15,
                              show_progress_bar=False)
    assert len(partial) == _FIRST_CHUNK < len(many)
    assert len(encode_examples(model, many, deadline=time.perf_counter() + 3600, show_progress_bar=False)) == 40


def test_a_model_that_ends_in_normalize_gets_the_map_and_one_normalize(tiny_model: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize

    model = _load(tiny_model)
    normalized = SentenceTransformer(modules=[*model, Normalize()], prompts=dict(model.prompts), device="cpu")
    add_linear_map(normalized, np.eye(normalized.encode(["x"]).shape[1], dtype=np.float32))
    assert [type(module).__name__ for module in normalized] == ["Transformer", "Pooling", "Normalize", "Dense",
                                                                "Normalize"]
    assert np.allclose(normalized.encode(["치타"]), model.encode(["치타"], normalize_embeddings=True), atol=1e-6)


def test_the_map_in_a_saved_folder_encodes_as_the_matrix_says(tiny_model: Path, tmp_path: Path) -> None:
    model = _load(tiny_model)
    texts = ["치타가 먹이를 쫓는다", "도서관 휴관일은 월요일입니다"]
    before = model.encode(texts, normalize_embeddings=True)
    matrix = np.random.default_rng(0).normal(size=(before.shape[1],) * 2).astype(np.float32)
    add_linear_map(model, matrix)
    assert [type(module).__name__ for module in model][-3:] == ["Normalize", "Dense", "Normalize"]
    model.save(str(tmp_path / "mapped"))
    after = _load(tmp_path / "mapped").encode(texts)
    assert np.allclose(after, _unit(before @ matrix), atol=1e-5)


def test_the_default_adapts_by_token_weights_and_the_map(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    from safetensors.numpy import load_file

    import kosearch.train.adapt as adapt

    anchors = []

    def recording(*args, **kwargs):
        anchors.append(kwargs.get("anchor"))
        time.sleep(0.3)  # a map that takes time to fit: the result's training time must count it
        return train_linear_map(*args, **kwargs)

    monkeypatch.setattr(adapt, "train_linear_map", recording)
    result = train_adapt(_config(tiny_model, tmp_path / "default", max_minutes=30), SAMPLE)
    # The map starts from, and is pulled to, the whitening of the examples' vectors, not the identity.
    assert len(anchors) == 1 and anchors[0] is not None
    assert anchors[0].shape[0] == anchors[0].shape[1] and not np.allclose(anchors[0], np.eye(len(anchors[0])))
    assert result.steps == 0 and result.phases == []
    assert result.train_seconds >= 0.3, "the time spent making the weights and the map is the model's training time"
    model = _load(result.output)
    assert [type(module).__name__ for module in model] == [
        "Transformer", "WordWeights", "Pooling", "Normalize", "Dense", "Normalize"]
    assert not np.allclose(model[4].linear.weight.detach().numpy(), np.eye(model[4].linear.weight.shape[0]))
    base = load_file(str(tiny_model / "model.safetensors"))
    adapted = load_file(str(result.output / "model.safetensors"))
    assert all(np.array_equal(base[key], adapted[key]) for key in base), "the transformer is not trained"
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert "| linear map | Dense" in card and "| token weights | idf" in card
    assert "pulled (l2 1) towards the whitening of the examples' vectors (shrinkage 10" in card
    assert "Linear map: trained on" in card and "||anchor - I|| = " in card
    assert "The encoder itself was not trained" in card
    # The weight files are as readable as the folder's other files (safetensors writes them owner-only).
    shared = (result.output / "config.json").stat().st_mode & 0o777
    weights = sorted(result.output.rglob("*.safetensors"))
    assert len(weights) >= 3 and all(path.stat().st_mode & 0o777 == shared for path in weights), weights


def test_a_budget_spent_before_the_map_leaves_the_weights_and_says_so(tiny_model: Path, tmp_path: Path) -> None:
    result = train_adapt(_config(tiny_model, tmp_path / "spent", max_minutes=0.001), SAMPLE)
    assert [type(module).__name__ for module in _load(result.output)] == ["Transformer", "WordWeights", "Pooling"]
    assert any("No linear map: --max-minutes ran out" in note for note in result.notes)
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert "| linear map | none (--max-minutes ran out" in card
    assert "a linear map after pooling" not in card, "the summary names only what the model has"
    # With the map as the only change asked for, a run that cannot make it is refused and writes nothing.
    with pytest.raises(KosearchError, match="Nothing was adapted: No linear map: --max-minutes ran out.* Pass a larger "
                                            "--max-minutes, or drop --no-word-weights"):
        train_adapt(_config(tiny_model, tmp_path / "only-map", max_minutes=0.001), SAMPLE, word_weights=False)
    assert not (tmp_path / "only-map").exists()


def test_a_folder_with_fewer_examples_than_a_batch_gets_the_weights_alone(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    for i in range(12):
        text = f"치타 {i}번은 초원에서 먹이를 쫓는다. 도서관 {i}층은 월요일에 쉰다."
        (folder / f"{i}.txt").write_text(text, encoding="utf-8")
    result = train_adapt(_config(tiny_model, tmp_path / "weights"), folder)
    assert [type(module).__name__ for module in _load(result.output)] == ["Transformer", "WordWeights", "Pooling"]
    assert any(note.startswith("No linear map: the folder gave") and "the map needs 128" in note
               for note in result.notes)


def test_a_second_map_and_training_settings_without_fine_tuning_are_refused(tiny_model: Path, tmp_path: Path) -> None:
    mapped = train_adapt(_config(tiny_model, tmp_path / "mapped"), SAMPLE, word_weights=False)
    with pytest.raises(KosearchError, match="already has a linear map after pooling .* Pass --no-linear-map"):
        train_adapt(_config(mapped.output, tmp_path / "twice"), SAMPLE, word_weights=False)
    with pytest.raises(KosearchError, match="--lr, --max-steps only change the fine-tuning"):
        train_adapt(_config(tiny_model, tmp_path / "lr", learning_rate=1e-3, max_steps=2), SAMPLE)
    with pytest.raises(KosearchError, match="^--no-hard-negatives only changes the fine-tuning"):
        train_adapt(_config(tiny_model, tmp_path / "hn"), SAMPLE, hard_negatives=False)


def test_a_models_own_dense_projection_is_not_taken_for_a_map(tiny_model: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    from kosearch.train.linear_map import linear_map_problem

    model = _load(tiny_model)
    width = model.encode(["x"]).shape[1]
    projection = Dense(width, width // 2, bias=True, activation_function=torch.nn.Tanh())
    projected = SentenceTransformer(modules=[*model, projection], device="cpu")
    assert linear_map_problem(projected) is None
    add_linear_map(projected, np.eye(width // 2, dtype=np.float32))
    assert "already has a linear map" in linear_map_problem(projected)


def test_an_output_that_holds_a_model_is_refused_without_offering_resume(tiny_model: Path, tmp_path: Path) -> None:
    """The default trains no phase, so there is nothing ``--resume`` could continue (it is refused without
    ``--fine-tune``): the refusal names only the way out that works."""
    train_adapt(_config(tiny_model, tmp_path / "made"), SAMPLE, linear_map=False)
    with pytest.raises(KosearchError, match=r"already holds a model or training checkpoints\. Choose another --output"):
        train_adapt(_config(tiny_model, tmp_path / "made"), SAMPLE, linear_map=False)


def test_the_map_and_fine_tuning_are_refused_together(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(KosearchError, match="--linear-map is trained on the model without fine-tuning"):
        train_adapt(_config(tiny_model, tmp_path / "both"), SAMPLE, fine_tune=True, linear_map=True)
    assert not (tmp_path / "both").exists()
    tuned = train_adapt(_config(tiny_model, tmp_path / "tuned", max_steps=2), SAMPLE, fine_tune=True)
    assert "Dense" not in (tmp_path / "tuned" / "modules.json").read_text(encoding="utf-8")
    assert tuned.steps == 2


def test_cli_takes_no_linear_map(tiny_model: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kosearch.cli.train import app

    args = ["adapt", "--documents", str(SAMPLE), "--model", str(tiny_model), "--device", "cpu", "--json"]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "plain"), "--no-linear-map"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 0
    assert "Dense" not in (tmp_path / "plain" / "modules.json").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("linear_map", [True, False], ids=["default", "no-linear-map"])
def test_bundled_encoder_adapted_searches_through_an_index_and_exports_to_onnx(tmp_path: Path, monkeypatch,
                                                                               linear_map: bool) -> None:
    """The real path of the default (the bundled e5 with the sample corpus's token weights and linear map) and of
    ``--no-linear-map`` (the weights alone): saved, then used by ``kosearch.Index`` to index and search that corpus,
    and run by the ONNX runtime."""
    from kosearch import Index
    from kosearch.encoders import Encoder

    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    result = train_adapt(TrainingConfig(output=tmp_path / "bundled", device="cpu", evaluate_base=False), SAMPLE,
                         linear_map=linear_map)
    assert result.steps == 0
    model = _load(result.output)
    modules = ["Transformer", "WordWeights", "Pooling", "Normalize"] + (["Dense", "Normalize"] if linear_map else [])
    assert [type(module).__name__ for module in model] == modules
    assert model.prompts.get("query") == "query: "
    index = Index.create(tmp_path / "index", model=str(result.output))
    try:
        index.add_folder(SAMPLE)
        hits = index.search("치타가 먹이를 쫓는다", k=3)
        assert hits and "치타" in hits[0].text
    finally:
        index.close()
    pytest.importorskip("onnxruntime")
    texts = ["치타가 먹이를 쫓는다", "도서관 휴관일은 월요일입니다"]
    got = Encoder(str(result.output), device="cpu", encoder_backend="onnx").encode_documents(texts)
    expected = model.encode_document(texts, normalize_embeddings=True)
    assert (np.sum(got * expected, axis=1) >= 0.9999).all()
