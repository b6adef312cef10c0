"""The HTTP service (kosearch/serve): endpoints, JSON shapes equal to the CLI's, limits, errors, live commits.

Plumbing runs on small indexes made with the hashing test encoder; the real bundled encoder is
exercised through the session's ``sample_index`` (GET/POST search, JSON equal to ``kosearch query --json``)
and through a real ``kosearch serve`` process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from kosearch import Index
from kosearch.errors import IndexNotFoundError, KosearchError
from kosearch.serve import ServiceLimits, create_app
import kosearch_testing
from kosearch_testing import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    docs = tmp_path / "docs"
    for name, text in files.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    return docs


@pytest.fixture()
def small_index(tmp_path: Path) -> Path:
    docs = _folder(
        tmp_path,
        {
            "a.txt": "도서관은 오전 아홉 시에 문을 엽니다.\n주차장은 지하 2층에 있습니다.\n",
            "b.txt": "수영장은 월요일에 쉽니다.\n<script>alert(1)</script> 문서 속 태그는 글자일 뿐입니다.\n",
            "c.csv": "text,rating\n영화가 정말 재미있었다,9\n지루한 영화였다,2\n",
        },
    )
    with Index.open_or_create(tmp_path / "index", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
    return tmp_path / "index"


@pytest.fixture()
def client(small_index: Path):
    with TestClient(create_app(small_index, model=HashingEncoder())) as test_client:
        yield test_client


def test_get_search_returns_the_cli_shape_with_signals(client):
    response = client.get("/search", params={"q": "주차장 지하", "k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "주차장 지하" and len(body["hits"]) == 2
    top = body["hits"][0]
    assert "주차장" in top["text"] and top["path"] == "a.txt"
    assert {"score", "dense_score", "lexical_score", "mode", "highlights", "sentence_id", "line"} <= set(top)
    assert top["mode"] == "hybrid" and top["highlights"]


def test_post_search_batches_with_filters_and_grouping(client):
    response = client.post(
        "/search",
        json={"queries": ["영화", "도서관"], "k": 5, "mode": "lexical", "where": {"rating": {">=": 5}}},
    )
    assert response.status_code == 200
    results = response.json()
    assert [result["query"] for result in results] == ["영화", "도서관"]
    assert [hit["text"] for hit in results[0]["hits"]] == ["영화가 정말 재미있었다"]
    assert results[1]["hits"] == []  # the filter is applied before ranking: only rated units qualify
    grouped = client.post("/search", json={"queries": ["영화 도서관 수영장"], "k": 5, "group_by": "document", "mode": "dense"})
    paths = [hit["path"] for hit in grouped.json()[0]["hits"]]
    assert len(paths) == len(set(paths)) == 3


def test_document_text_stays_text_in_json(client):
    hits = client.get("/search", params={"q": "태그", "mode": "lexical"}).json()["hits"]
    assert hits[0]["text"].startswith("<script>alert(1)</script>")  # verbatim, never interpreted


@pytest.mark.parametrize(
    "params",
    [
        {"q": "도서관", "k": 101},
        {"q": "도서관", "k": 0},
        {"q": "x" * 2001},
        {"q": ""},
        {"q": "도서관", "mode": "fuzzy"},
        {"q": "도서관", "context": 11},
        {"q": "도서관", "lexical_weight": 2},
        {"q": "도서관", "surprise": 1},
    ],
)
def test_bad_parameters_are_422_with_a_message(client, params):
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert response.json()["error"]


def test_bad_filter_is_400_naming_the_problem(client):
    response = client.get("/search", params={"q": "도서관", "where": "rating >>= 3"})
    assert response.status_code == 400
    assert "filter" in response.json()["error"]


def test_batch_and_body_limits(small_index):
    limits = ServiceLimits(max_batch=2, max_body_bytes=2048)
    with TestClient(create_app(small_index, model=HashingEncoder(), limits=limits, warm_up=False)) as client:
        assert client.post("/search", json={"queries": ["a", "b", "c"]}).status_code == 422
        too_big = json.dumps({"queries": ["가" * 1000, "나" * 1000]}).encode()
        assert client.post("/search", content=too_big, headers={"content-type": "application/json"}).status_code == 413

        def chunks():  # no Content-Length: the middleware must count what arrives
            for _ in range(10):
                yield b" " * 1024

        response = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert "larger than 2048 bytes" in response.json()["error"]
        assert client.post("/search", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_units_documents_fields_info_health(client):
    hit = client.get("/search", params={"q": "주차장", "mode": "lexical"}).json()["hits"][0]
    unit = client.get(f"/units/{hit['sentence_id']}", params={"context": 1}).json()
    assert unit["text"] == hit["text"] and unit["context_before"] == ["도서관은 오전 아홉 시에 문을 엽니다."]
    document = client.get(f"/documents/{unit['document_id']}").json()
    assert document["path"] == "a.txt" and hit["sentence_id"] in document["unit_ids"]
    assert client.get("/units/999999").status_code == 404
    assert client.get("/documents/999999").status_code == 404
    assert client.get("/units/not-a-number").status_code == 422
    fields = client.get("/fields").json()
    assert fields["metadata"] == {"rating": "integer"} and "format" in fields["builtin"]
    info = client.get("/info").json()
    assert info["documents"] == 3 and info["model"] == "test/hashing-bigrams"
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/openapi.json").json()["paths"]["/search"]["get"]
    page = client.get("/")
    assert page.status_code == 200 and "kosearch" in page.text and page.headers["content-type"].startswith("text/html")


def test_paraphrases_match_the_facade(client, small_index):
    served = client.get("/paraphrases", params={"top": 3}).json()
    with Index.open(small_index) as idx:
        direct = [pair.to_dict() for pair in idx.paraphrases(top=3)]
    assert served == json.loads(json.dumps(direct))
    assert client.get("/paraphrases", params={"top": 0}).status_code == 422


def test_writes_are_refused_on_a_read_only_service(client):
    response = client.post("/texts", json={"texts": ["새 문장"]})
    assert response.status_code == 403 and "--allow-writes" in response.json()["error"]


def test_writes_need_a_token(small_index):
    with pytest.raises(KosearchError, match="token"):
        create_app(small_index, model=HashingEncoder(), allow_writes=True)
    app = create_app(small_index, model=HashingEncoder(), allow_writes=True, token="s3cret", warm_up=False)
    with TestClient(app) as client:
        assert client.post("/texts", json={"texts": ["새 문장"]}).status_code == 401
        wrong = client.post("/texts", json={"texts": ["새 문장"]}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


def test_a_text_with_nothing_to_index_is_a_400_not_a_500(small_index):
    """Found by schemathesis against a live ``kosearch serve`` (docs/benchmarks.md, "Fuzzing (issue 8)")."""
    app = create_app(small_index, model=HashingEncoder(), allow_writes=True, token="s3cret", warm_up=False)
    with TestClient(app) as client:
        before = client.get("/health").json()["sentences"]
        for method in ("post", "put"):
            response = getattr(client, method)(
                "/texts", json={"ids": ["x1"], "texts": ["\u0088"]}, headers={"Authorization": "Bearer s3cret"}
            )
            assert response.status_code == 400, response.text
            assert "no letter or digit" in response.json()["error"]
        assert client.get("/health").json()["sentences"] == before


def test_a_missing_index_fails_at_start(tmp_path):
    with pytest.raises(IndexNotFoundError):
        create_app(tmp_path / "nothing")


def test_the_service_sees_commits_made_after_it_started(tmp_path, small_index):
    with TestClient(create_app(small_index, model=HashingEncoder())) as client:
        assert client.get("/search", params={"q": "천문대", "mode": "lexical"}).json()["hits"] == []
        extra = tmp_path / "more"
        extra.mkdir()
        (extra / "d.txt").write_text("천문대는 밤에만 문을 엽니다.\n", encoding="utf-8")
        with Index.open(small_index, HashingEncoder(), writable=True) as writer:
            writer.add_folder(extra)
        hits = client.get("/search", params={"q": "천문대", "mode": "lexical"}).json()["hits"]
        assert [hit["text"] for hit in hits] == ["천문대는 밤에만 문을 엽니다."]


# -- through the real bundled encoder ------------------------------------------------------------------


def test_real_encoder_json_equals_the_cli(sample_index):
    query = "주차장 이용 시간"
    cli = subprocess.run(
        [sys.executable, "-m", "kosearch", "query", str(sample_index), query, "-k", "5", "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=600,
    )
    expected = json.loads(cli.stdout)
    with TestClient(create_app(sample_index)) as client:
        served = client.get("/search", params={"q": query, "k": 5}).json()
        batch = client.post("/search", json={"queries": [query], "k": 5}).json()
    assert [hit["sentence_id"] for hit in served["hits"]] == [hit["sentence_id"] for hit in expected["hits"]]
    assert served["hits"][0]["text"] == expected["hits"][0]["text"]
    assert set(served["hits"][0]) == set(expected["hits"][0])
    for mine, theirs in zip(served["hits"], expected["hits"]):
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-5)
    assert batch[0]["hits"] == served["hits"]



@pytest.mark.slow
def test_real_encoder_served_through_onnx_answers_as_the_default(sample_index):
    """``--encoder-backend onnx`` (float32, the fastest query runtime on a CPU) gives the default's hits."""
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed (pip install 'kosearch[onnx]')")
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'kosearch[onnx]')")
    query = "주차장 이용 시간"
    with TestClient(create_app(sample_index)) as client:
        expected = client.get("/search", params={"q": query, "k": 5, "mode": "dense"}).json()["hits"]
    with TestClient(create_app(sample_index, encoder_backend="onnx")) as client:
        served = client.get("/search", params={"q": query, "k": 5, "mode": "dense"}).json()["hits"]
    assert [hit["sentence_id"] for hit in served] == [hit["sentence_id"] for hit in expected]
    assert [hit["score"] for hit in served] == pytest.approx([hit["score"] for hit in expected], abs=1e-5)

def start_server(index: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """``kosearch serve`` in a subprocess, waited for until /health answers."""
    return kosearch_testing.start_server(index, *extra, cwd=ROOT)


def test_kosearch_serve_process_answers_on_localhost(sample_index):
    process, url = start_server(sample_index)
    try:
        hits = httpx.get(f"{url}/search", params={"q": "새 도서관은 어디에 있나요?", "k": 3}, timeout=60).json()["hits"]
        assert any(hit["path"].endswith(".pdf") and hit["page"] for hit in hits)
        assert httpx.get(f"{url}/docs", timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_kosearch_serve_refuses_a_missing_index_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kosearch", "serve", str(tmp_path / "none"), "--port", str(kosearch_testing.free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr
