"""kosearch.train recipes end to end on a tiny model: each writes a loadable model folder with a model card.

The tiny model (hidden size 32, 2 layers, a WordPiece vocabulary trained on the fixtures) makes a step take
milliseconds, so every recipe runs its real trainer, losses, evaluator, checkpointing and card code here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from kosearch.errors import DataFormatError, KosearchError
from kosearch.train import (
    TrainingConfig,
    train_multitask,
    train_nli,
    train_simcse,
    train_sts,
    train_tsdae,
)
from kosearch.train.tsdae import DECODER_STATE_FILE, delete_words

FIXTURES = Path(__file__).parent / "fixtures" / "train"
sys.path.insert(0, str(FIXTURES))
from tiny_model import TINY_PROMPTS, build_tiny_model  # noqa: E402

PROBE = ["한 남자가 기타를 치고 있다.", "아이들이 공원에서 놀고 있다.", "최고의 영화였어요"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _config(tiny_model: Path, output: Path, **overrides) -> TrainingConfig:
    settings = dict(
        output=output,
        model=str(tiny_model),
        max_steps=3,
        batch_size=4,
        eval_steps=2,
        dev=FIXTURES / "sts.tsv",
        # Large enough that three steps visibly move a randomly initialised model.
        learning_rate=1e-3,
        device="cpu",
        logging_steps=1,
    )
    settings.update(overrides)
    return TrainingConfig(**settings)


def _embeddings(folder: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode_document(PROBE)


def _check_output(result, base: Path, recipe: str, data_names: list[str]) -> str:
    """The folder loads as a SentenceTransformer, keeps the base prompts, differs from the base, has a card."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(result.output), device="cpu")
    assert model.prompts == TINY_PROMPTS
    assert not np.allclose(_embeddings(result.output), _embeddings(base))
    assert not (result.output / "checkpoints").exists(), "checkpoints are removed after success by default"
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert f"kosearch `{recipe}` encoder" in card
    # The evaluation table has one row per scored model, with the numbers the result carries.
    for label, metrics in result.evaluation.items():
        row = next(line for line in card.splitlines() if line.startswith("| ") and label in line.split("|")[1])
        assert f"{metrics['cosine_spearman']:.2f}" in row
    assert set(result.evaluation) == {"base", "trained"}
    for name in data_names:
        assert name in card
    assert f"| optimizer steps | {result.steps} |" in card
    return card


def test_sts_recipe(tiny_model: Path, tmp_path: Path) -> None:
    result = train_sts(_config(tiny_model, tmp_path / "sts"), [FIXTURES / "sts.tsv"])
    card = _check_output(result, tiny_model, "sts", ["sts.tsv"])
    assert result.steps == 3
    assert "CoSENTLoss" in card
    # Dev evaluation ran every 2 steps and at the end; the best checkpoint's step is reported.
    (phase,) = result.phases
    assert [step for step, _ in phase.dev_history] == [2, 3]
    assert phase.best_step in (2, 3)
    assert phase.best_dev_spearman == max(score for _, score in phase.dev_history)


def test_nli_recipe_reads_both_formats(tiny_model: Path, tmp_path: Path) -> None:
    result = train_nli(_config(tiny_model, tmp_path / "nli"), [FIXTURES / "nli.tsv", FIXTURES / "nli.json"])
    card = _check_output(result, tiny_model, "nli", ["nli.tsv", "nli.json"])
    assert "| `" + str(FIXTURES / "nli.tsv") + "` | NLI triples" in card


def test_simcse_recipe(tiny_model: Path, tmp_path: Path) -> None:
    result = train_simcse(_config(tiny_model, tmp_path / "simcse"), [FIXTURES / "sentences.txt"])
    card = _check_output(result, tiny_model, "simcse", ["sentences.txt"])
    assert "MultipleNegativesRankingLoss (scale 20)" in card


def test_tsdae_recipe_with_tied_decoder(tiny_model: Path, tmp_path: Path) -> None:
    result = train_tsdae(
        _config(tiny_model, tmp_path / "tsdae", dev=None, eval_test=FIXTURES / "sts.tsv"),
        [FIXTURES / "reviews.tsv"],
        column="review",
        limit=8,
    )
    card = _check_output(result, tiny_model, "tsdae", ["reviews.tsv"])
    assert "| `" + str(FIXTURES / "reviews.tsv") + "` | sentences (reconstructed) | 8 |" in card
    # No decoder weights leak into the saved model: it is the encoder alone.
    assert not any("crossattention" in path.name for path in result.output.rglob("*"))


def test_delete_words_removes_the_given_share_and_never_everything() -> None:
    import random

    rng = random.Random(0)
    sentence = " ".join(f"w{i}" for i in range(1000))
    kept = delete_words(sentence, 0.6, rng).split()
    assert 330 <= len(kept) <= 470  # ~400 expected; binomial sd is about 15
    assert set(kept) <= set(sentence.split())
    assert delete_words("하나", 0.99, rng) == "하나"


def test_multitask_with_second_sts_phase(tiny_model: Path, tmp_path: Path) -> None:
    result = train_multitask(
        _config(tiny_model, tmp_path / "multitask", max_steps=2),
        nli_files=[FIXTURES / "nli.tsv"],
        sts_files=[FIXTURES / "sts.tsv"],
        sts_phase_epochs=1,
    )
    card = _check_output(result, tiny_model, "multitask", ["nli.tsv", "sts.tsv"])
    assert [(phase.name, phase.steps) for phase in result.phases] == [("multitask", 2), ("sts-continue", 2)]
    assert "STS only, 1 epoch(s) at learning rate 0.0005" in card


def test_resume_continues_from_the_last_checkpoint(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    output = tmp_path / "resumed"
    first = train_tsdae(
        _config(tiny_model, output, max_steps=2, dev=None, keep_checkpoints=True, evaluate_base=False),
        [FIXTURES / "sentences.txt"],
    )
    assert first.steps == 2
    checkpoint = output / "checkpoints" / "tsdae" / "checkpoint-2"
    assert (checkpoint / "model.safetensors").is_file()
    assert (checkpoint / DECODER_STATE_FILE).is_file()
    after_two = _embeddings(output)

    with pytest.raises(KosearchError, match="--resume"):
        train_tsdae(_config(tiny_model, output, max_steps=4, dev=None), [FIXTURES / "sentences.txt"])

    with caplog.at_level("INFO", logger="kosearch.train.tsdae"):
        second = train_tsdae(
            _config(tiny_model, output, max_steps=4, dev=None, resume=True, evaluate_base=False),
            [FIXTURES / "sentences.txt"],
        )
    assert f"Restored the TSDAE decoder from {checkpoint / DECODER_STATE_FILE}" in caplog.text
    (phase,) = second.phases
    assert phase.steps == 4
    assert not np.allclose(_embeddings(output), after_two)
    assert not (output / "checkpoints").exists()


def test_resume_without_checkpoints_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(KosearchError, match="Nothing to resume"):
        train_sts(_config(tiny_model, tmp_path / "fresh", resume=True), [FIXTURES / "sts.tsv"])


def test_malformed_training_data_stops_before_training(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"nli_bad_label\.tsv:3: unknown label"):
        train_nli(_config(tiny_model, tmp_path / "bad"), [FIXTURES / "nli_bad_label.tsv"])
    assert not (tmp_path / "bad").exists()


def test_fp16_on_cpu_is_ignored_with_a_note(tiny_model: Path, tmp_path: Path) -> None:
    result = train_sts(
        _config(tiny_model, tmp_path / "fp16", precision="fp16", max_steps=1, dev=None, evaluate_base=False),
        [FIXTURES / "sts.tsv"],
    )
    assert any("fp16 was requested but there is no CUDA GPU" in note for note in result.notes)
    assert "fp16 was requested" in (result.output / "README.md").read_text(encoding="utf-8")


def test_bf16_on_cpu_trains_under_autocast(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 on a CPU reaches the trainer as bf16=True (CPU autocast), and the saved weights stay float32."""
    from safetensors.numpy import load_file

    import kosearch.train.trainer as trainer

    seen = {}
    real = trainer.training_arguments

    def spy(*args, **kwargs):
        arguments = real(*args, **kwargs)
        seen.update(bf16=arguments.bf16, fp16=arguments.fp16, use_cpu=arguments.use_cpu)
        return arguments

    monkeypatch.setattr(trainer, "training_arguments", spy)
    result = train_sts(
        _config(tiny_model, tmp_path / "bf16", precision="bf16", max_steps=2, dev=None, evaluate_base=False),
        [FIXTURES / "sts.tsv"],
    )
    assert seen == {"bf16": True, "fp16": False, "use_cpu": True}
    assert result.steps == 2
    weights = load_file(result.output / "model.safetensors")
    assert all(str(array.dtype) == "float32" for array in weights.values())


@pytest.mark.parametrize(
    ("precision", "cuda", "amx", "expected", "note"),
    [
        ("auto", False, True, "bf16", "auto: this CPU has AMX-BF16"),
        ("auto", False, False, "fp32", None),
        ("auto", True, True, "fp32", None),
        ("fp32", False, True, "fp32", None),
        ("bf16", False, True, "bf16", None),
        ("bf16", False, False, "bf16", "without AMX-BF16"),
        ("fp16", False, True, "fp32", "fp16 was requested but there is no CUDA GPU"),
    ],
)
def test_training_precision_resolution(precision, cuda, amx, expected, note) -> None:
    from kosearch.train.hardware import training_precision

    concrete, said = training_precision(precision, cuda, amx=amx)
    assert concrete == expected
    assert (said is None) if note is None else (note in said)


def test_precision_is_declared_once() -> None:
    import typing

    from kosearch.encoders import precision as encoder_precision
    from kosearch.train import config

    assert config.Precision is encoder_precision.Precision
    assert typing.get_args(config.Precision) == encoder_precision.PRECISIONS
    assert TrainingConfig(output="x").precision == "auto"
    with pytest.raises(KosearchError, match="precision must be one of auto, fp32, fp16, bf16"):
        TrainingConfig(output="x", precision="int8")


def test_amx_flag_is_read_from_cpuinfo() -> None:
    from kosearch.encoders.precision import cpu_has_amx_bf16

    assert cpu_has_amx_bf16("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n")
    assert not cpu_has_amx_bf16("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert not cpu_has_amx_bf16("model name: amx_bf16 in a name is not a flag\n")


def test_frozen_embeddings_stay_fixed(tiny_model: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    result = train_sts(
        _config(tiny_model, tmp_path / "frozen", freeze_embeddings=True, dev=None, evaluate_base=False),
        [FIXTURES / "sts.tsv"],
    )
    before, after = load_file(tiny_model / "model.safetensors"), load_file(result.output / "model.safetensors")
    key = next(name for name in before if name.endswith("word_embeddings.weight"))
    assert np.array_equal(before[key], after[key])
    layer = next(name for name in before if "layer.0.attention" in name and name.endswith("weight"))
    assert not np.array_equal(before[layer], after[layer])


@pytest.mark.slow
def test_bundled_encoder_trains_a_tsdae_step(tmp_path: Path) -> None:
    """The real path: the bundled e5 (XLM-R vocabulary BERT) gets a tied BertLMHeadModel decoder and trains."""
    from sentence_transformers import SentenceTransformer

    result = train_tsdae(
        TrainingConfig(
            output=tmp_path / "bundled-tsdae",
            max_steps=1,
            batch_size=2,
            max_seq_length=32,
            dev=None,
            device="cpu",
            evaluate_base=False,
        ),
        [FIXTURES / "reviews.tsv"],
        column="review",
        limit=4,
    )
    assert result.steps == 1
    model = SentenceTransformer(str(result.output), device="cpu")
    assert model.prompts.get("document") == "passage: "
    vectors = model.encode_document(PROBE[:2])
    assert vectors.shape == (2, 384)
    assert "base model | `intfloat/multilingual-e5-small" in (result.output / "README.md").read_text(encoding="utf-8")
