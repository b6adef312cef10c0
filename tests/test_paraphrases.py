"""Paraphrase mining agrees with sentence-transformers' reference and groups exact duplicates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import util

from kosearch.paraphrases import mine_paraphrases
from kosearch.store import IndexStore, PendingChanges
from kosearch_testing import HashingEncoder

TEXTS = [
    "치타가 먹이를 쫓고 있다",
    "치타 한 마리가 사냥감을 쫓고 있다",
    "오늘은 날씨가 맑고 따뜻하다",
    "오늘 날씨는 맑고 따뜻한 편이다",
    "수치 해석 프로그램을 작성했다",
    "수치 해석용 프로그램을 만들었다",
    "버스 노선이 다음 달부터 바뀝니다",
    "다음 달부터 버스 노선이 변경됩니다",
    "이 식당의 김치찌개는 정말 맛있다",
    "영화가 지루해서 중간에 잠들었다",
    "도서관은 월요일에 휴관합니다",
    "주민센터에서 여권을 신청할 수 있다",
]


def _store_with(tmp_path, texts, encoder) -> IndexStore:
    store = IndexStore.create(tmp_path / "idx", {"model": encoder.name, "fingerprint": encoder.fingerprint,
                                                 "dimension": encoder.dimension, "prompts": {}})
    ids = np.arange(1, len(texts) + 1)
    store.add_vectors(ids, encoder.encode_documents(texts))
    store.checkpoint(
        PendingChanges(
            documents=[{"id": 1, "root": "/r", "path": "a.txt", "sha256": "x", "size": 1, "encoding": "utf-8",
                        "format": "txt", "sentences": len(texts), "indexed_at": "now"}],
            sentences=[{"id": int(i), "document_id": 1, "position": p, "text": t, "line": p + 1, "start": 0,
                        "end": len(t)} for p, (i, t) in enumerate(zip(ids, texts))],
            removed_documents=[],
        )
    )
    return store


@pytest.mark.parametrize("neighbours", [3, 11])
def test_same_top_pairs_as_sentence_transformers(tmp_path, neighbours):
    encoder = HashingEncoder(dimension=128)
    store = _store_with(tmp_path, TEXTS, encoder)
    ours = mine_paraphrases(store, top=8, neighbours=neighbours)
    reference = util.paraphrase_mining_embeddings(
        torch.from_numpy(encoder.encode_documents(TEXTS)), top_k=neighbours, max_pairs=8
    )
    assert [(p.a.sentence_id - 1, p.b.sentence_id - 1) for p in ours] == [
        (min(i, j), max(i, j)) for _, i, j in reference
    ]
    np.testing.assert_allclose([p.score for p in ours], [s for s, _, _ in reference], atol=1e-5)


def test_exact_duplicates_are_reported_once(tmp_path):
    texts = TEXTS + [TEXTS[0], TEXTS[0], TEXTS[4]]
    store = _store_with(tmp_path, texts, HashingEncoder(dimension=128))
    pairs = mine_paraphrases(store, top=None, neighbours=5)
    keys = [(p.a.text, p.b.text) for p in pairs]
    assert all(a != b for a, b in keys), "a text paired with its own copy"
    assert len(keys) == len(set(keys))
    copies = {p.a.text: p.copies_a for p in pairs} | {p.b.text: p.copies_b for p in pairs}
    assert copies[TEXTS[0]] == 3 and copies[TEXTS[4]] == 2 and copies[TEXTS[2]] == 1
    scores = [p.score for p in pairs]
    assert scores == sorted(scores, reverse=True)


def test_min_score_and_top(tmp_path):
    store = _store_with(tmp_path, TEXTS, HashingEncoder(dimension=128))
    everything = mine_paraphrases(store, top=None, neighbours=11)
    assert len(everything) == len(TEXTS) * (len(TEXTS) - 1) // 2
    threshold = everything[5].score
    above = mine_paraphrases(store, top=None, min_score=threshold, neighbours=11)
    assert above and all(p.score >= threshold for p in above)
    assert [p.score for p in mine_paraphrases(store, top=3)] == [p.score for p in everything[:3]]
    with pytest.raises(ValueError):
        mine_paraphrases(store, neighbours=0)


def test_heavily_duplicated_texts_do_not_crowd_out_neighbours(tmp_path):
    # One text 40 times: more copies than the unrestricted search's spare results, so the
    # crowded rows must be searched again; the result must equal mining without the copies.
    texts = TEXTS + [TEXTS[2]] * 40
    encoder = HashingEncoder(dimension=128)
    with_copies = mine_paraphrases(_store_with(tmp_path / "a", texts, encoder), top=None, neighbours=4)
    without = mine_paraphrases(_store_with(tmp_path / "b", TEXTS, encoder), top=None, neighbours=4)
    assert [(p.a.text, p.b.text, round(p.score, 5)) for p in with_copies] == [
        (p.a.text, p.b.text, round(p.score, 5)) for p in without
    ]
    assert {p.copies_a for p in with_copies if p.a.text == TEXTS[2]} == {41}
