"""Hybrid retrieval as a user runs it: `kosearch index` / `kosearch query` over corpora/sample, bundled encoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kosearch.search.morphemes import MorphemeAnalyzer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpora" / "sample"


def kosearch_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kosearch", *args], cwd=ROOT, capture_output=True, text=True, check=check, timeout=600
    )


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("hybrid") / "sample"
    kosearch_cli("index", str(SAMPLE), "--index", str(index), "--json", "--quiet")
    return index


def _query(index: Path, *args: str) -> list[dict]:
    return json.loads(kosearch_cli("query", str(index), *args, "--json").stdout)["hits"]


def test_hybrid_json_hits_carry_scores_and_highlights_of_the_query_morphemes(sample_index):
    query = "김치찌개 국물이 진한 집"
    hits = _query(sample_index, query, "-k", "5")
    assert len(hits) == 5
    top = hits[0]
    assert "김치찌개" in top["text"] and top["mode"] == "hybrid"
    assert top["dense_score"] is not None and top["lexical_score"] is not None
    assert top["fused_score"] == top["score"]
    query_tokens = set(MorphemeAnalyzer().analyze(query))
    marked = [top["text"][start:end] for start, end in top["highlights"]]
    assert "김치찌개" in marked and "국물" in marked
    for piece in marked:  # every span is one of the query's morphemes, as the lexical index reads it
        assert set(MorphemeAnalyzer().analyze(piece)) & query_tokens or piece + "다" in query_tokens
    assert top["fields"]["rating"] == 5 and top["fields"]["store.name"] == "햇살김치찌개"


def test_modes_and_where_filters_through_the_cli(sample_index):
    lexical = _query(sample_index, "주차장 이용 시간", "--mode", "lexical", "-k", "3")
    assert lexical and all(hit["mode"] == "lexical" and hit["dense_score"] is None for hit in lexical)
    assert "주차장" in lexical[0]["text"]
    filtered = _query(sample_index, "배우 연기", "--where", "format = 'csv'", "--where", "평점 >= 9", "-k", "4")
    assert len(filtered) == 4
    assert all(hit["path"].endswith(".csv") and hit["fields"]["평점"] >= 9 for hit in filtered)
    grouped = _query(sample_index, "안내", "--group-by", "document", "-k", "5")
    assert len({hit["path"] for hit in grouped}) == len(grouped) == 5


def test_bad_filter_is_a_clear_error_without_traceback(sample_index):
    result = kosearch_cli("query", str(sample_index), "연기", "--where", "평점 >>= 9", check=False)
    assert result.returncode != 0
    assert "filter" in result.stderr and "Traceback" not in result.stderr


def test_terminal_output_shows_the_hit(sample_index):
    result = kosearch_cli("query", str(sample_index), "김치찌개 국물", "-k", "2")
    assert "김치찌개" in result.stdout


def test_bm25_k1_and_b_through_the_cli_with_the_bundled_encoder(sample_index):
    """`--bm25-k1/--bm25-b` reach the lexical signal (its scores change, b = 0 favours long units
    against b = 1), in lexical and hybrid mode; the index's postings files are what is searched."""
    assert list(sample_index.glob("segment.*.lexical.npz")), "the index has no postings files"
    query = "주차장 이용 시간"
    full = _query(sample_index, query, "--mode", "lexical", "-k", "10", "--bm25-k1", "1.2", "--bm25-b", "1")
    none = _query(sample_index, query, "--mode", "lexical", "-k", "10", "--bm25-k1", "1.2", "--bm25-b", "0")
    assert full and none
    assert [hit["lexical_score"] for hit in full] != [hit["lexical_score"] for hit in none]
    length = lambda hit: len(MorphemeAnalyzer().analyze(hit["text"]))  # noqa: E731
    assert length(none[0]) >= length(full[0])  # without length normalisation the top unit is no shorter
    hybrid = _query(sample_index, query, "-k", "5", "--bm25-k1", "0.9", "--bm25-b", "0.4")
    assert len(hybrid) == 5 and hybrid[0]["mode"] == "hybrid" and "주차장" in hybrid[0]["text"]
    bad = kosearch_cli("query", str(sample_index), query, "--bm25-b", "1.5", check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
