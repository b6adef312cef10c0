"""The relative dense std floor with the real bundled encoder: its factor is 1, so hybrid ranks as it did.

The bundled e5 is the reference of :mod:`kosearch.search.dense_floor`: its measured probe spread must be
the declared :data:`~kosearch.search.dense_floor.BUNDLED_PROBE_SPREAD`, and hybrid search through
``Index.search`` must give exactly what the fixed floor (``fusion.DEFAULT_DENSE_STD_FLOOR``) gives.
"""

from __future__ import annotations

import pytest

import kosearch
from kosearch.search import dense_floor, hybrid
from kosearch.search.fusion import DEFAULT_DENSE_STD_FLOOR

SENTENCES = [  # one library's notices and its rules
    "햇살 도서관은 매주 월요일에 문을 닫습니다.",
    "햇살 도서관은 평일 오후 열 시까지 문을 엽니다.",
    "햇살 도서관 열람실은 설날과 추석 당일에 쉽니다.",
    "햇살 도서관 대출은 한 사람당 다섯 권까지 됩니다.",
    "햇살 도서관 어린이실은 오전 열 시에 문을 엽니다.",
    "햇살 도서관 주차장은 저녁 여덟 시에 닫습니다.",
    "반납이 늦으면 연체 일수만큼 대출이 정지됩니다.",
    "분실한 책은 같은 책으로 갚거나 값을 물어야 합니다.",
]
QUERIES = ["도서관 쉬는 날", "책을 늦게 돌려주면 어떻게 되나요", "주차 가능한 시간"]


def _ranking(hits):
    return [(hit.text, round(hit.score, 9), hit.dense_score, hit.lexical_score) for hit in hits]


@pytest.mark.slow
def test_the_bundled_encoder_measures_the_declared_spread_and_its_factor_is_one():
    from kosearch.encoders import Encoder

    encoder = Encoder()
    assert dense_floor.probe_spread(encoder) == pytest.approx(dense_floor.BUNDLED_PROBE_SPREAD, rel=0.01)
    assert dense_floor.spread_factor(encoder) == 1.0
    assert dense_floor.dense_std_floor(encoder) == DEFAULT_DENSE_STD_FLOOR


@pytest.mark.slow
def test_hybrid_search_with_the_bundled_encoder_is_what_the_fixed_floor_gives(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx") as index:
        index.add_folder(docs, unit="sentence")
        through_index = index.search_batch(QUERIES, k=len(SENTENCES), mode="hybrid")

        def fixed(floor):
            request = hybrid.SearchRequest(k=len(SENTENCES), mode="hybrid")
            return hybrid.search(index.store, QUERIES, index.encoder.encode_queries, request, lambda: floor)

        assert [_ranking(hits) for hits in through_index] == [_ranking(hits) for hits in fixed(DEFAULT_DENSE_STD_FLOOR)]
        # the comparison can fail: a floor above these cosines' spread changes the scores
        assert [_ranking(hits) for hits in through_index] != [_ranking(hits) for hits in fixed(5 * DEFAULT_DENSE_STD_FLOOR)]


@pytest.mark.slow
def test_a_real_non_bundled_model_is_probed_once_and_its_floor_used(tmp_path, monkeypatch, tiny_model_folder):
    import json

    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(dense_floor, "_measured", {})
    floors: list[float | None] = []
    real_fusion = hybrid.convex_fusion
    monkeypatch.setattr(hybrid, "convex_fusion", lambda *a, **k: floors.append(k["dense_std_floor"]) or real_fusion(*a, **k))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", str(tiny_model_folder)) as index:
        index.add_folder(docs, unit="sentence")
        assert index.search(QUERIES[0], mode="hybrid")
        spread = dense_floor.probe_spread(index.encoder)
        cached = json.loads((tmp_path / "home" / "models" / dense_floor.CACHE_NAME).read_text(encoding="utf-8"))
        assert cached == {f"{index.encoder.fingerprint}|{dense_floor.PROBE_VERSION}": pytest.approx(spread)}
    assert floors == [pytest.approx(DEFAULT_DENSE_STD_FLOOR * spread / dense_floor.BUNDLED_PROBE_SPREAD)]
