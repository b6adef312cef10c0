"""Token weights from the adaptation folder (``kosearch.train.word_weights``): the weights, the module in the saved
folder, what ``train adapt`` does with them, and the ONNX export of such a folder."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kosearch.errors import KosearchError
from kosearch.train import TrainingConfig, train_adapt
from kosearch.train.word_weights import FIXED_WEIGHT, add_word_weights, domain_word_weights, idf

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpora" / "sample"
FIXTURES = Path(__file__).parent / "fixtures" / "train"
sys.path.insert(0, str(FIXTURES))
from tiny_model import TINY_PROMPTS, build_tiny_model  # noqa: E402

PASSAGES = ["치타가 먹이를 쫓는다", "치타는 빠르다", "도서관 휴관일 안내", "치타 사진"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-weights") / "model")


def _load(folder: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def test_idf_is_bm25s_and_rarer_tokens_weigh_more(tiny_model: Path) -> None:
    tokenizer = _load(tiny_model).tokenizer
    weights = domain_word_weights(tokenizer, PASSAGES, prompts=list(TINY_PROMPTS.values()))
    assert len(weights) == len(tokenizer)
    assert idf(1, 4) == pytest.approx(math.log(1 + 3.5 / 1.5))
    # Count, apart from the code under test, the passages each token of the first passage occurs in.
    special = set(tokenizer.all_special_ids)  # [UNK] among them: fixed at 1, counted or not
    pieces = [set(tokenizer(text, add_special_tokens=False)["input_ids"]) - special for text in PASSAGES]
    for token in pieces[0]:
        df = sum(token in piece for piece in pieces)
        assert weights[token] == pytest.approx(math.log(1 + (4 - df + 0.5) / (df + 0.5)))
    common = max(pieces[0], key=lambda t: sum(t in p for p in pieces))
    rare = min(pieces[2], key=lambda t: sum(t in p for p in pieces))
    assert weights[rare] > weights[common]
    seen = set().union(*pieces)
    unseen = next(t for t in range(len(tokenizer)) if t not in seen and t not in tokenizer.all_special_ids
                  and tokenizer.convert_ids_to_tokens(t) not in {"query", "passage", ":"})
    assert weights[unseen] == pytest.approx(idf(0, 4)) and weights[unseen] == max(weights)


def test_prompt_and_special_tokens_keep_weight_one(tiny_model: Path) -> None:
    tokenizer = _load(tiny_model).tokenizer
    weights = domain_word_weights(tokenizer, PASSAGES, prompts=["query: "])
    for token in [*tokenizer.all_special_ids, *tokenizer("query: ", add_special_tokens=False)["input_ids"]]:
        assert weights[token] == FIXED_WEIGHT


def test_weighted_model_pools_a_weighted_mean_and_reloads_the_same(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    model = _load(tiny_model)
    weights = domain_word_weights(model.tokenizer, PASSAGES, prompts=list(model.prompts.values()))
    assert add_word_weights(model, PASSAGES) == 4
    assert [type(module).__name__ for module in model] == ["Transformer", "WordWeights", "Pooling"]
    assert not any(parameter.requires_grad for parameter in model[1].parameters())
    text = "치타가 도서관에 간다"
    got = model.encode_document([text])[0]
    # The weighted mean, computed from the transformer's token vectors apart from the module under test.
    features = model.tokenize(["passage: " + text])
    with torch.inference_mode():
        tokens = model[0]({k: v for k, v in features.items() if hasattr(v, "shape")})["token_embeddings"][0].numpy()
    w = np.array([weights[i] for i in features["input_ids"][0].tolist()])
    expected = (w[:, None] * tokens).sum(0) / w.sum()
    assert np.allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, tokens.mean(0), atol=1e-4), "the weights changed the vector"
    model.save(str(tmp_path / "weighted"))
    again = _load(tmp_path / "weighted")
    assert np.allclose(again.encode_document([text]), got[None, :], atol=1e-6)
    assert json.loads((tmp_path / "weighted" / "1_WordWeights" / "config.json").read_text())["unknown_word_weight"] == \
        pytest.approx(idf(0, 4))


def test_a_model_that_does_not_mean_pool_or_is_weighted_already_is_refused(tiny_model: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    model = _load(tiny_model)
    cls = SentenceTransformer(modules=[model[0], Pooling(model[0].get_embedding_dimension(), pooling_mode="cls")])
    with pytest.raises(ValueError, match="mean-pools"):
        add_word_weights(cls, PASSAGES)
    add_word_weights(model, PASSAGES)
    with pytest.raises(ValueError, match="already has token weights"):
        add_word_weights(model, PASSAGES)


TUNE = dict(learning_rate=1e-3, max_steps=2)
"""Settings of the --fine-tune runs (refused without --fine-tune)."""


def _config(tiny_model: Path, output: Path, **overrides) -> TrainingConfig:
    settings = dict(output=output, model=str(tiny_model), batch_size=8, device="cpu", max_seq_length=64)
    settings.update(overrides)
    return TrainingConfig(**settings)


def test_adapt_keeps_the_folders_weights_frozen_through_training(tiny_model: Path, tmp_path: Path) -> None:
    from kosearch.train.adapt import read_passages

    result = train_adapt(_config(tiny_model, tmp_path / "weighted", **TUNE), SAMPLE, fine_tune=True)
    model = _load(result.output)
    assert [type(module).__name__ for module in model] == ["Transformer", "WordWeights", "Pooling"]
    from safetensors.numpy import load_file

    passages, _ = read_passages(SAMPLE)
    expected = domain_word_weights(model.tokenizer, [p.text for p in passages], prompts=list(model.prompts.values()))
    # The saved tensor, not the reloaded module: WordWeights reloads from its config, so a table that trained would
    # only show here.
    saved = load_file(str(result.output / "1_WordWeights" / "model.safetensors"))["emb_layer.weight"][:, 0]
    assert np.allclose(saved, expected, rtol=1e-6)
    assert np.allclose(model[1].emb_layer.weight.detach().numpy()[:, 0], expected, rtol=1e-6)
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert "idf ** 1 from the folder" in card and "Token weights: idf ** 1 over the folder's" in card


def test_no_word_weights_keeps_the_base_pooling_and_the_card_base_row_is_the_base(tiny_model: Path, tmp_path: Path) \
        -> None:
    from kosearch.cli.train import app

    sts = tmp_path / "sts.tsv"
    pairs = [(5.0, "치타가 달린다", "치타가 뛴다"), (0.5, "도서관 휴관일", "치타 사진"),
             (3.0, "먹이를 쫓는다", "먹이를 따라간다"), (1.0, "빠르다", "휴관일")]
    rows = ["genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2"] + [
        f"main\tx\t2024\t{i}\t{score}\t{a}\t{b}" for i, (score, a, b) in enumerate(pairs)
    ]
    sts.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outputs = {}
    for flag in ("--word-weights", "--no-word-weights"):
        output = tmp_path / flag.strip("-")
        result = CliRunner().invoke(app, [
            "adapt", "--documents", str(SAMPLE), "--model", str(tiny_model), "--output", str(output), "--max-steps",
            "1", "--batch-size", "4", "--max-seq-length", "32", "--device", "cpu", "--eval-test", str(sts), flag,
            "--fine-tune", "--json"])
        assert result.exit_code == 0, result.output
        outputs[flag] = json.loads(result.stdout)
    kinds = [module["type"].rsplit(".", 1)[-1] for module in
             json.loads((tmp_path / "no-word-weights" / "modules.json").read_text())]
    assert "WordWeights" not in kinds
    # The base row is the unchanged base model's either way: token weights are part of what is trained, not the base.
    assert outputs["--word-weights"]["evaluation"]["base"] == outputs["--no-word-weights"]["evaluation"]["base"]


@pytest.mark.slow
def test_an_adapted_folder_with_token_weights_exports_to_onnx(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    from kosearch.encoders import Encoder

    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    model = _load(tiny_model)
    add_word_weights(model, PASSAGES)
    model.save(str(tmp_path / "weighted"))
    texts = ["치타가 먹이를 쫓는다", "도서관 휴관일은 월요일입니다"]
    got = Encoder(str(tmp_path / "weighted"), device="cpu", encoder_backend="onnx").encode_documents(texts)
    expected = _load(tmp_path / "weighted").encode_document(texts, normalize_embeddings=True)
    assert (np.sum(got * expected, axis=1) >= 0.99999).all()
    unweighted = _load(tiny_model).encode_document(texts, normalize_embeddings=True)
    assert not np.allclose(got, unweighted, atol=1e-4)


def test_without_the_map_adapts_by_token_weights_alone(tiny_model: Path, tmp_path: Path) -> None:
    """No optimizer step: the transformer's weights are the base model's, the pooling is weighted, the card says so."""
    from safetensors.numpy import load_file

    result = train_adapt(_config(tiny_model, tmp_path / "default", max_minutes=30), SAMPLE, linear_map=False)
    assert result.steps == 0 and result.phases == []
    model = _load(result.output)
    assert [type(module).__name__ for module in model] == ["Transformer", "WordWeights", "Pooling"]
    base = load_file(str(tiny_model / "model.safetensors"))
    adapted = load_file(str(result.output / "model.safetensors"))
    assert base.keys() == adapted.keys() and all(np.array_equal(base[k], adapted[k]) for k in base)
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert "| training | none of the encoder: its weights are the base model's" in card
    assert "The encoder itself was not trained (pass --fine-tune" in card and "--max-minutes bounds training" in card
    assert "| linear map |" not in card
    assert "learning rate" not in card and "Written with sentence-transformers, the encoder's weights untouched" in card
    assert "Made by `kosearch train adapt`" in card
    assert not (tmp_path / "default" / "checkpoints").exists()


def test_nothing_to_adapt_and_too_few_passages_are_refused(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(KosearchError, match="Nothing to adapt"):
        train_adapt(_config(tiny_model, tmp_path / "nothing"), SAMPLE, word_weights=False, linear_map=False)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "one.txt").write_text("한 문장뿐인 문서입니다.", encoding="utf-8")
    with pytest.raises(KosearchError, match="larger folder"):
        train_adapt(_config(tiny_model, tmp_path / "never"), folder)
    assert not (tmp_path / "never").exists()


def test_cli_default_trains_no_steps_and_refuses_nothing_to_do(tiny_model: Path, tmp_path: Path) -> None:
    from kosearch.cli.train import app

    args = ["adapt", "--documents", str(SAMPLE), "--model", str(tiny_model), "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "cli"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 0
    import subprocess

    refused = subprocess.run(  # as a user runs it: the error is one line, no traceback
        [sys.executable, "-m", "kosearch", "train", *args, "--output", str(tmp_path / "none"), "--no-word-weights",
         "--no-linear-map"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert refused.returncode != 0 and "Nothing to adapt" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr


def test_a_weighted_folder_loaded_as_a_base_keeps_its_weights_frozen(tiny_model: Path, tmp_path: Path) -> None:
    """Any recipe started from an adapted folder (``--model runs/law``) must not train its token weights."""
    from kosearch.train.models import resolve_base_model

    model = _load(tiny_model)
    add_word_weights(model, PASSAGES)
    model.save(str(tmp_path / "weighted"))
    assert any(p.requires_grad for p in _load(tmp_path / "weighted")[1].parameters()), "sentence-transformers' own load"
    loaded = resolve_base_model(TrainingConfig(output=tmp_path / "out", model=str(tmp_path / "weighted"), device="cpu"))
    assert type(loaded[1]).__name__ == "WordWeights"
    assert not any(parameter.requires_grad for parameter in loaded[1].parameters())


def test_compact_mapping_reproduces_every_weight_through_the_lower_case_fallback() -> None:
    """WordWeights looks a token up, then its lower-case form, then falls back to the default: the compact mapping
    must give every token its own weight, case pairs included."""
    from sentence_transformers.sentence_transformer.modules import WordWeights

    from kosearch.train.word_weights import _compact

    vocab = ["A", "a", "B", "b", "C", "c", "D"]
    weights = [5.0, 2.0, 5.0, 5.0, 2.0, 5.0, 5.0]  # 5.0 is the common (default) weight
    table, default = _compact(vocab, weights)
    assert default == 5.0 and "D" not in table and "b" not in table
    module = WordWeights(vocab, table, unknown_word_weight=default)
    assert module.emb_layer.weight.detach().numpy()[:, 0].tolist() == weights


def test_later_modules_keep_their_keyword_arguments_after_the_insertion(tiny_model: Path) -> None:
    from sentence_transformers.sentence_transformer.modules import WordWeights

    from kosearch.train.word_weights import insert_word_weights

    model = _load(tiny_model)
    model.module_kwargs = {"1": ["task"]}  # the Pooling's, by position
    insert_word_weights(model, WordWeights(["x"], {}, 1.0))
    assert type(model[2]).__name__ == "Pooling" and model.module_kwargs == {"2": ["task"]}


def test_options_that_need_fine_tuning_and_mismatched_resumes_are_refused(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(KosearchError, match="--anchor-weight only change"):
        train_adapt(_config(tiny_model, tmp_path / "a"), SAMPLE, anchor_weight=3.0)
    with pytest.raises(KosearchError, match="--resume continues a --fine-tune run"):
        train_adapt(_config(tiny_model, tmp_path / "b", resume=True), SAMPLE)
    output = tmp_path / "resumable"
    train_adapt(_config(tiny_model, output, keep_checkpoints=True, eval_steps=1, **TUNE), SAMPLE, fine_tune=True)
    (output / "modules.json").unlink()  # as if stopped before the end: only its checkpoints are left
    with pytest.raises(KosearchError, match="started with token weights: resume it with --word-weights"):
        train_adapt(_config(tiny_model, output, resume=True, max_steps=3, learning_rate=1e-3), SAMPLE, fine_tune=True,
                    word_weights=False)
    resumed = train_adapt(_config(tiny_model, output, resume=True, max_steps=3, learning_rate=1e-3), SAMPLE,
                          fine_tune=True)
    assert resumed.steps == 3 and any("those of the run being resumed" in note for note in resumed.notes)


def test_a_model_that_cannot_take_weights_gets_a_way_out_that_works(tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    model = _load(tiny_model)
    cls = SentenceTransformer(modules=[model[0], Pooling(model[0].get_embedding_dimension(), pooling_mode="cls")],
                              prompts=dict(TINY_PROMPTS))
    cls.save(str(tmp_path / "cls"))
    with pytest.raises(KosearchError, match=r"pass --no-word-weights \(the linear map alone; with --fine-tune"):
        train_adapt(_config(tmp_path / "cls", tmp_path / "out"), SAMPLE)
    result = train_adapt(_config(tmp_path / "cls", tmp_path / "out", **TUNE), SAMPLE, word_weights=False,
                         fine_tune=True)
    assert result.steps == 2
    mapped = train_adapt(_config(tmp_path / "cls", tmp_path / "mapped"), SAMPLE, word_weights=False)
    assert [type(module).__name__ for module in _load(mapped.output)] == [
        "Transformer", "Pooling", "Normalize", "Dense", "Normalize"]
