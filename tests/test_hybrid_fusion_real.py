"""Hybrid fusion through Index.search with the bundled encoder: the fused score is the documented formula.

With fewer units than k, every unit is a dense candidate, so each hit carries its dense cosine and
its BM25 (None: no query term, BM25 0) and the fused score can be recomputed from the hits alone:
``(1 - w) * (d - mean) / sqrt(std * DEFAULT_DENSE_SPREAD) + w * z(lexical)`` over all units.
"""

from __future__ import annotations

import math

import pytest

import kosearch
from kosearch.search.fusion import DEFAULT_DENSE_SPREAD, DEFAULT_LEXICAL_WEIGHT

SENTENCES = [
    "햇살 도서관은 매주 월요일에 문을 닫습니다.",
    "도서관 열람실은 평일 오후 열 시까지 엽니다.",
    "주민센터 주차장은 저녁 여덟 시에 닫습니다.",
    "문화 강좌 수강료는 한 달에 삼만 원입니다.",
    "고양이가 창가에서 졸고 있다.",
    "김치찌개 국물이 진하고 맛있었다.",
    "공원 놀이터 바닥을 고무판으로 바꿉니다.",
    "도서 대출은 한 사람당 다섯 권까지 됩니다.",
]


def _population(values: list[float]) -> tuple[float, float]:
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


@pytest.mark.slow
def test_hybrid_scores_with_the_bundled_encoder_follow_the_dense_spread_formula(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx") as index:
        index.add_folder(docs, unit="sentence")
        hits = index.search("도서관은 언제 쉬나요?", k=len(SENTENCES))
    assert len(hits) == len(SENTENCES) and all(hit.mode == "hybrid" for hit in hits)
    assert all(hit.dense_score is not None for hit in hits)  # every unit was a dense candidate
    assert any(hit.lexical_score for hit in hits) and any(hit.lexical_score is None for hit in hits)
    dense = [float(hit.dense_score) for hit in hits]
    lexical = [float(hit.lexical_score or 0.0) for hit in hits]
    d_mean, d_std = _population(dense)
    l_mean, l_std = _population(lexical)
    w = DEFAULT_LEXICAL_WEIGHT
    expected = [
        (1 - w) * (d - d_mean) / math.sqrt(d_std * DEFAULT_DENSE_SPREAD) + w * (x - l_mean) / l_std
        for d, x in zip(dense, lexical)
    ]
    assert [hit.fused_score for hit in hits] == pytest.approx(expected, abs=1e-6)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    plain = [(1 - w) * (d - d_mean) / d_std + w * (x - l_mean) / l_std for d, x in zip(dense, lexical)]
    assert plain != pytest.approx(expected, abs=1e-3)  # the reference spread changes the scores
    assert "도서관" in hits[0].text
