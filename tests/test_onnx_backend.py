"""The ONNX encoder backends (``--encoder-backend onnx`` / ``onnx-int8``): vectors against torch's, the export
cache, what an index records, and the refusal to mix int8 and float vectors in one index.

Skipped as a whole without ONNX Runtime (``pip install 'kosearch[onnx]'``). The real-model tests export the
bundled model once per machine (about a minute, cached in $KOSEARCH_HOME/models/onnx) and reuse it afterwards.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed (pip install 'kosearch[onnx]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'kosearch[onnx]')")

from kosearch import EncoderMismatchError, Index, KosearchError  # noqa: E402
from kosearch.encoders import Encoder  # noqa: E402
from kosearch.encoders.backends import ENCODER_BACKENDS, encoder_backend, vector_family  # noqa: E402
from kosearch.encoders.onnx_export import FLOAT_FILE, INT8_FILE, onnx_export_folder  # noqa: E402
from kosearch_testing import HashingEncoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "치타가 먹이를 쫓는다",
    "치타 한 마리가 들판을 가로질러 먹이를 쫓고 있다.",
    "오늘 서울은 하루 종일 비가 내리겠습니다.",
    "이 영화 정말 재미없다 시간 아까움",
    "도서관은 매주 월요일에 휴관하며, 공휴일 다음 날에도 문을 닫습니다.",
    "수치 해석 프로그램 KoSolve는 공학 계산을 위한 소프트웨어이다.",
    "버스 노선이 다음 달부터 바뀐다",
    "ㅋㅋㅋ 최고",
]
DOCUMENTS = {
    "동물.txt": "치타가 들판에서 먹이를 쫓고 있다.\n사자는 그늘에서 낮잠을 잔다.\n",
    "날씨.txt": "오늘 서울은 하루 종일 비가 내리겠습니다.\n내일은 맑고 선선하겠습니다.\n",
    "교통.txt": "버스 노선이 다음 달부터 바뀐다.\n지하철 2호선은 정상 운행한다.\n",
}


def kosearch_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kosearch", *args], cwd=ROOT, capture_output=True, text=True, check=check, timeout=900
    )


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64))


# -- the option itself ----------------------------------------------------------------------------------


def test_backend_names_and_families():
    assert list(ENCODER_BACKENDS) == ["torch", "onnx", "onnx-int8"]
    assert encoder_backend(None).name == "torch"
    assert [vector_family(name) for name in ENCODER_BACKENDS] == [None, None, "onnx-int8"]
    with pytest.raises(KosearchError, match="torch, onnx, onnx-int8"):
        encoder_backend("tensorrt")


def test_onnx_backends_refuse_a_gpu_device_with_a_way_out():
    with pytest.raises(KosearchError, match="CPU only.*--device cpu"):
        Encoder(device="cuda", encoder_backend="onnx-int8")


# -- what an index records (plumbing, with a stand-in encoder) ------------------------------------------


class _Int8Hashing(HashingEncoder):
    """The hashing encoder, claiming to be int8: what the index does with the family, without a model."""

    encoder_backend = "onnx-int8"
    vector_family = "onnx-int8"


def _folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


def test_int8_index_records_its_family_and_refuses_float_vectors(tmp_path, caplog):
    docs = _folder(tmp_path)
    with Index.create(tmp_path / "int8", _Int8Hashing()) as idx:
        idx.add_folder(docs)
        assert idx.info().encoder_backend == "onnx-int8"
    with Index.create(tmp_path / "float", HashingEncoder()) as idx:
        idx.add_folder(docs)
        assert idx.info().encoder_backend is None and "encoder_backend" not in idx.store.manifest

    with Index.open(tmp_path / "int8", HashingEncoder(), writable=True) as idx:
        with pytest.raises(EncoderMismatchError, match="onnx-int8 vectors.*float32.*--encoder-backend onnx-int8"):
            idx.add_folder(docs)
    with Index.open(tmp_path / "float", _Int8Hashing(), writable=True) as idx:
        with pytest.raises(EncoderMismatchError, match="float32 .* vectors.*makes onnx-int8"):
            idx.add_folder(docs)

    # A query of the other family is answered, with one warning per Index.
    with caplog.at_level(logging.WARNING, logger="kosearch"), Index.open(tmp_path / "int8", HashingEncoder()) as idx:
        hits = idx.search("치타가 먹이를 쫓는다", k=1, mode="dense")
        idx.search("버스 노선", k=1, mode="dense")
    assert "치타" in hits[0].text
    warnings = [record for record in caplog.records if "holds onnx-int8 vectors" in record.getMessage()]
    assert len(warnings) == 1 and "--encoder-backend torch" in warnings[0].getMessage()


# -- the real bundled model -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_encoders() -> dict[str, Encoder]:
    return {name: Encoder(device="cpu", encoder_backend=name) for name in ("onnx", "onnx-int8")}


@pytest.mark.slow
def test_onnx_vectors_match_torch_on_korean_sentences(bundled_sentence_transformer, onnx_encoders):
    """float32 ONNX is torch to rounding; int8 stays close (measured on NSMC: mean 0.996, worst 0.98)."""
    torch_documents = bundled_sentence_transformer.encode_document(SENTENCES, normalize_embeddings=True)
    torch_queries = bundled_sentence_transformer.encode_query(SENTENCES * 10, normalize_embeddings=True)
    for name, low_mean, low_min in (("onnx", 0.99999, 0.99999), ("onnx-int8", 0.99, 0.97)):
        documents = onnx_encoders[name].encode_documents(SENTENCES)
        queries = onnx_encoders[name].encode_queries(SENTENCES * 10)  # > 64 queries: the ONNX session, not numpy
        for got, expected in ((documents, torch_documents), (queries, torch_queries)):
            assert got.dtype == np.float32 and got.shape == expected.shape
            assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
            cosine = _cosines(got, expected)
            assert cosine.mean() >= low_mean and cosine.min() >= low_min, (name, cosine)
    # int8 is not float32 in disguise: its vectors really differ (else the manifest record would be pointless).
    int8 = onnx_encoders["onnx-int8"].encode_documents(SENTENCES)
    assert _cosines(int8, torch_documents).min() < 0.9999


@pytest.mark.slow
def test_export_is_cached_beside_the_bundled_model(onnx_encoders, bundled_model_folder):
    encoder = onnx_encoders["onnx-int8"]
    encoder.encode_documents(SENTENCES[:1])
    folder = onnx_export_folder(bundled_model_folder, encoder.fingerprint)
    assert folder.parent.parent == bundled_model_folder.parent  # $KOSEARCH_HOME/models/onnx/...
    files = {name: (folder / name).stat().st_mtime_ns for name in (FLOAT_FILE, INT8_FILE, "export.json")}
    record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    assert record["dimension"] == 384 and record["float_probe_cosine"] >= 0.9999
    again = Encoder(device="cpu", encoder_backend="onnx-int8")
    assert again.fingerprint == encoder.fingerprint == Encoder(device="cpu").fingerprint
    again.encode_documents(SENTENCES[:1])
    assert {name: (folder / name).stat().st_mtime_ns for name in files} == files  # not exported again


@pytest.mark.slow
def test_cli_index_and_query_with_the_onnx_backend(tmp_path):
    """float32 ONNX vectors are torch's: the index records no backend and a default query (numpy) agrees."""
    docs, index = _folder(tmp_path), tmp_path / "onnx-index"
    report = json.loads(kosearch_cli("index", str(docs), "--index", str(index), "--encoder-backend", "onnx", "--unit", "sentence", "--json").stdout)
    assert report["sentences_added"] == 6
    info = json.loads(kosearch_cli("info", str(index), "--json").stdout)
    assert info["encoder_backend"] is None
    answers = {}
    for backend in ("onnx", None, "torch"):
        flag = ["--encoder-backend", backend] if backend else []
        result = kosearch_cli("query", str(index), "치타가 먹이를 쫓는다", "-k", "3", "--mode", "dense", "--json", *flag)
        assert "warning" not in result.stderr
        answers[backend] = json.loads(result.stdout)["hits"]
    assert "치타" in answers["onnx"][0]["text"]
    for other in (None, "torch"):
        assert [hit["text"] for hit in answers[other]] == [hit["text"] for hit in answers["onnx"]]
        assert np.allclose([hit["score"] for hit in answers[other]], [hit["score"] for hit in answers["onnx"]], atol=1e-4)

    # A few float32 queries of the bundled model keep the numpy path: no torch, and no ONNX session to load either.
    probe = (
        "import sys, kosearch\n"
        f"idx = kosearch.Index.open({str(index)!r}, encoder_backend='onnx')\n"
        "hit = idx.search('치타가 먹이를 쫓는다', k=1, mode='dense')[0]\n"
        "print(hit.text, [m for m in ('torch', 'sentence_transformers', 'onnxruntime') if m in sys.modules])\n"
    )
    child = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300)
    assert child.stdout.strip().endswith("[]") and "치타" in child.stdout


@pytest.mark.slow
def test_cli_int8_index_records_it_queries_with_it_and_refuses_float_updates(tmp_path):
    docs, index = _folder(tmp_path), tmp_path / "int8-index"
    kosearch_cli("index", str(docs), "--index", str(index), "--encoder-backend", "onnx-int8", "--json")
    info = json.loads(kosearch_cli("info", str(index), "--json").stdout)
    assert info["encoder_backend"] == "onnx-int8"
    assert "encoder backend\tonnx-int8" in kosearch_cli("info", str(index)).stdout

    plain = kosearch_cli("query", str(index), "치타가 먹이를 쫓는다", "-k", "1", "--mode", "dense", "--json")
    assert "warning" not in plain.stderr  # the recorded backend is used: int8 queries, no warning
    hit = json.loads(plain.stdout)["hits"][0]
    assert "치타" in hit["text"]

    mixed = kosearch_cli(
        "query", str(index), "치타가 먹이를 쫓는다", "-k", "1", "--mode", "dense", "--json", "--encoder-backend", "torch"
    )
    assert "holds onnx-int8 vectors" in mixed.stderr
    assert json.loads(mixed.stdout)["hits"][0]["text"] == hit["text"]

    (docs / "새.txt").write_text("고양이가 창가에서 햇볕을 쬔다.\n", encoding="utf-8")
    refused = kosearch_cli("index", str(docs), "--index", str(index), "--encoder-backend", "onnx", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "holds onnx-int8 vectors" in refused.stderr and "--encoder-backend onnx-int8" in refused.stderr
    accepted = json.loads(kosearch_cli("index", str(docs), "--index", str(index), "--json").stdout)  # recorded backend
    assert accepted["files_added"] == 1


@pytest.mark.slow
def test_a_non_bundled_model_exports_too(tmp_path, monkeypatch, tiny_model_folder):
    """Any Transformer -> Pooling -> Normalize folder with a tokenizer.json: the export is checked against torch."""
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    encoder = Encoder(str(tiny_model_folder), device="cpu", encoder_backend="onnx")
    got = encoder.encode_documents(SENTENCES)
    expected = SentenceTransformer(str(tiny_model_folder), device="cpu").encode_document(
        SENTENCES, normalize_embeddings=True
    )
    assert _cosines(got, expected).min() >= 0.99999
    assert list((tmp_path / "home" / "models" / "onnx").glob(f"*-{encoder.fingerprint}-x1/{FLOAT_FILE}"))


@pytest.mark.slow
def test_warm_up_sends_a_few_queries_through_the_onnx_session(monkeypatch):
    """A one-shot query goes through numpy (no session to create); after ``warm_up`` the session answers them."""
    encoder = Encoder(device="cpu", encoder_backend="onnx")
    before = encoder.encode_queries(SENTENCES[:2])
    assert encoder._onnx_runtime is None and encoder._numpy_queries is not None  # numpy answered
    encoder.warm_up()
    assert encoder._onnx_runtime is not None

    def no_numpy():
        raise AssertionError("a warmed ONNX encoder must not encode queries with numpy")

    monkeypatch.setattr(encoder, "_numpy_runtime", no_numpy)
    after = encoder.encode_queries(SENTENCES[:2])
    assert after.shape == before.shape and _cosines(after, before).min() >= 0.99999


@pytest.mark.slow
def test_a_warmed_onnx_index_answers_a_torch_built_index_as_torch_does(tmp_path):
    """float32 ONNX queries against a torch-built index: the same hits, scores to float32 rounding."""
    docs = _folder(tmp_path)
    with Index.create(tmp_path / "index", Encoder(device="cpu")) as idx:
        idx.add_folder(docs, unit="sentence")
    query = "치타가 무엇을 쫓나요?"
    with Index.open(tmp_path / "index") as plain:
        expected = plain.search(query, k=4, mode="dense")
    with Index.open(tmp_path / "index", encoder_backend="onnx") as served:
        served.warm_up()
        assert served.encoder._onnx_runtime is not None
        got = served.search(query, k=4, mode="dense")
    assert [hit.sentence_id for hit in got] == [hit.sentence_id for hit in expected]
    assert [hit.score for hit in got] == pytest.approx([hit.score for hit in expected], abs=1e-5)
