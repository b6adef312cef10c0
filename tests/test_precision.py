"""Encoder precision (kosearch.encoders.precision): the CUDA decisions from device names, the conversions
on the CPU (their twin here: no GPU on this machine), and what the vectors lose."""

from __future__ import annotations

import numpy as np
import pytest

from kosearch import KosearchError
from kosearch.distributed.ray_ingest import EncoderSpec
from kosearch.encoders import BUNDLED_MODEL, Encoder
from kosearch.encoders.precision import PRECISIONS, resolve_precision

TEXTS = ["치타가 먹이를 쫓는다.", "이 영화 정말 재미있어요, 배우들 연기가 좋다!", "수치 해석 프로그램을 설치했다.", "짧음"]


@pytest.mark.parametrize(
    "asked, device, expected",
    [
        (None, "cuda", "fp16"), ("auto", "cuda:1", "fp16"), ("AUTO", "cpu", "fp32"), (None, "mps", "fp32"),
        ("bf16", "cuda", "bf16"), ("fp32", "cuda", "fp32"), ("fp16", "cpu", "fp16"), ("bf16", "cpu", "bf16"),
    ],
)
def test_precision_by_device(asked, device, expected):
    assert resolve_precision(asked, device) == expected


def test_unknown_precision_names_the_choices():
    with pytest.raises(KosearchError, match="auto, fp32, fp16, bf16"):
        resolve_precision("int4", "cpu")
    assert PRECISIONS == ("auto", "fp32", "fp16", "bf16")


def test_onnx_backends_refuse_half_precision():
    with pytest.raises(KosearchError, match="--encoder-backend torch"):
        Encoder(encoder_backend="onnx", precision="bf16")


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_model_returns_unit_float32_vectors(tiny_model_folder, precision):
    """The branch CUDA takes by default (model converted, vectors widened and re-normalised), on the CPU."""
    import torch

    full = Encoder(str(tiny_model_folder), device="cpu")
    half = Encoder(str(tiny_model_folder), device="cpu", precision=precision)
    assert next(half.model.parameters()).dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    a, b = full.encode_documents(TEXTS), half.encode_documents(TEXTS)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)
    assert np.sum(a * b, axis=1).min() > 0.99
    assert half.fingerprint == full.fingerprint  # same model: the index accepts either


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_loading_in_half_precision_gives_the_vectors_of_converting_after_loading(tiny_model_folder, precision):
    """The weights are loaded in the compute precision (no float32 copy beside them at load); an index
    built before, by a float32 load then a conversion, gets the same vectors bit for bit."""
    import torch
    from sentence_transformers import SentenceTransformer

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    converted = SentenceTransformer(str(tiny_model_folder), device="cpu").to(dtype)
    expected = converted.encode(TEXTS, convert_to_numpy=False, convert_to_tensor=True, normalize_embeddings=False)
    loaded = Encoder(str(tiny_model_folder), device="cpu", precision=precision).model
    assert all(parameter.dtype == dtype for parameter in loaded.parameters())
    got = loaded.encode(TEXTS, convert_to_numpy=False, convert_to_tensor=True, normalize_embeddings=False)
    assert torch.equal(got, expected)


def test_encoder_spec_rebuilds_the_bundled_model_by_name_and_keeps_the_asked_precision():
    class Bundled:
        name, encoder_backend, fingerprint = BUNDLED_MODEL, "torch", "abc"

    spec = EncoderSpec.of(Bundled(), "bf16")
    assert (spec.model, spec.precision, spec.fingerprint) == (None, "bf16", "abc")
    assert EncoderSpec.of(Bundled()).precision is None  # auto: decided again on each actor's device


@pytest.mark.slow
def test_bundled_encoder_in_bf16_on_the_cpu_stays_close_to_fp32():
    full = Encoder(device="cpu", precision="fp32")
    half = Encoder(device="cpu", precision="bf16")
    cosine = np.sum(full.encode_documents(TEXTS) * half.encode_documents(TEXTS), axis=1)
    assert cosine.min() > 0.999, cosine
    queries = half.encode_queries(["영화 추천"])  # torch throughout: bf16 skips the numpy float32 query path
    assert queries.dtype == np.float32 and abs(float(np.linalg.norm(queries)) - 1) < 1e-6


@pytest.mark.slow
def test_cli_index_with_bf16_builds_a_searchable_index(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "kosearch"]
    built = subprocess.run(
        command + ["index", str(root / "corpora" / "sample" / "뉴스"), "--index", str(tmp_path / "idx"),
                   "--precision", "bf16", "--device", "cpu", "--json", "-q"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["sentences_added"] > 0
    found = subprocess.run(
        command + ["query", str(tmp_path / "idx"), "뉴스", "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)


def test_a_large_encode_gives_free_heap_memory_back_and_a_small_one_does_not(tiny_model_folder, monkeypatch):
    """After a call of ``TRIM_AFTER_TEXTS`` texts or more (an indexing batch), not after a query's few."""
    from kosearch.encoders import encoder as encoder_module

    trims: list[int] = []
    monkeypatch.setattr(encoder_module, "return_free_memory", lambda: trims.append(1))
    model = Encoder(str(tiny_model_folder), device="cpu")
    model.encode_queries(TEXTS)
    model.encode_documents(TEXTS * (encoder_module.TRIM_AFTER_TEXTS // len(TEXTS) - 1))
    assert trims == []
    vectors = model.encode_documents(TEXTS * (encoder_module.TRIM_AFTER_TEXTS // len(TEXTS)))
    assert trims == [1] and vectors.shape[0] == encoder_module.TRIM_AFTER_TEXTS
