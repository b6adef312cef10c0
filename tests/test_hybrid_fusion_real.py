"""Hybrid fusion through Index.search with the bundled encoder: the fused score is the documented formula.

With fewer units than k, every unit is a dense candidate, so each hit carries its dense cosine and
its BM25 (None: no query term, BM25 0) and the fused score can be recomputed from the hits alone:
``(1 - w) * (d - mean) / max(std, DEFAULT_DENSE_STD_FLOOR) + w * z(lexical)`` over all units (the
bundled encoder's cosines of these sentences have a std below the floor, so the floor applies, which
the test checks too).
"""

from __future__ import annotations

import math

import pytest

import kosearch
from kosearch.search.fusion import DEFAULT_DENSE_STD_FLOOR, DEFAULT_LEXICAL_WEIGHT

SENTENCES = [  # one library's notices: the encoder's cosines to the query lie close together (std 0.0077)
    "햇살 도서관은 매주 월요일에 문을 닫습니다.",
    "햇살 도서관은 평일 오후 열 시까지 문을 엽니다.",
    "햇살 도서관은 주말에도 오후 다섯 시까지 문을 엽니다.",
    "햇살 도서관 열람실은 설날과 추석 당일에 쉽니다.",
    "햇살 도서관 대출은 한 사람당 다섯 권까지 됩니다.",
    "햇살 도서관 어린이실은 오전 열 시에 문을 엽니다.",
    "햇살 도서관 주차장은 저녁 여덟 시에 닫습니다.",
    "햇살 도서관 복사기는 이층 로비에 있습니다.",
]


def _population(values: list[float]) -> tuple[float, float]:
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


@pytest.mark.slow
def test_hybrid_scores_with_the_bundled_encoder_follow_the_dense_std_floor_formula(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx") as index:
        index.add_folder(docs, unit="sentence")
        hits = index.search("도서관은 언제 쉬나요?", k=len(SENTENCES))
    assert len(hits) == len(SENTENCES) and all(hit.mode == "hybrid" for hit in hits)
    assert all(hit.dense_score is not None for hit in hits)  # every unit was a dense candidate
    assert len({hit.lexical_score for hit in hits}) > 1  # BM25 tells some units apart (쉬다 is in one)
    dense = [float(hit.dense_score) for hit in hits]
    lexical = [float(hit.lexical_score or 0.0) for hit in hits]
    d_mean, d_std = _population(dense)
    l_mean, l_std = _population(lexical)
    assert d_std < DEFAULT_DENSE_STD_FLOOR
    w = DEFAULT_LEXICAL_WEIGHT
    expected = [
        (1 - w) * (d - d_mean) / max(d_std, DEFAULT_DENSE_STD_FLOOR) + w * (x - l_mean) / l_std
        for d, x in zip(dense, lexical)
    ]
    assert [hit.fused_score for hit in hits] == pytest.approx(expected, abs=1e-6)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    plain = [(1 - w) * (d - d_mean) / d_std + w * (x - l_mean) / l_std for d, x in zip(dense, lexical)]
    assert plain != pytest.approx(expected, abs=1e-3)  # the floor changes the scores
