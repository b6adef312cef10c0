"""kosearch/store/pair_mining.py: top pairs by k-NN, exact (checked against sentence-transformers'
``paraphrase_mining_embeddings``) and through an ANN index (recall of the top pairs measured), and
``mine_paraphrases`` taking the ANN path above the break-even."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import util

from kosearch.paraphrases import mine_paraphrases
from kosearch.store import ann
from kosearch.store.pair_mining import PairBuffer, mine_pairs
from kosearch_testing import HashingEncoder
from test_ann import clustered
from test_paraphrases import TEXTS, _store_with


def _pair_set(first, second) -> set[tuple[int, int]]:
    return set(zip(first.tolist(), second.tolist()))


def test_exact_mining_matches_sentence_transformers():
    vectors = clustered(1500, seed=5)
    ids = np.arange(len(vectors), dtype=np.int64)
    first, second, scores = mine_pairs(ids, vectors, top=300, neighbours=5, factory="Flat")
    reference = util.paraphrase_mining_embeddings(torch.from_numpy(vectors), top_k=5, max_pairs=300)
    assert _pair_set(first, second) == {(min(i, j), max(i, j)) for _, i, j in reference}
    np.testing.assert_allclose(scores, [s for s, _, _ in reference], atol=1e-5)
    assert (first < second).all() and (np.diff(scores) <= 0).all()


@pytest.mark.parametrize("factory", ["HNSW32", "IVF64,Flat"])
def test_ann_mining_recovers_the_exact_top_pairs(factory):
    vectors = clustered(3000, seed=6)
    ids = np.arange(len(vectors), dtype=np.int64) * 5 + 11
    exact = _pair_set(*mine_pairs(ids, vectors, top=500, factory="Flat")[:2])
    found = _pair_set(*mine_pairs(ids, vectors, top=500, factory=factory, batch_size=256)[:2])
    assert len(found) == 500
    assert len(found & exact) / len(exact) >= 0.95


def test_the_buffer_stays_bounded_and_keeps_the_best_of_both_sides():
    buffer = PairBuffer(top=3, min_score=None)
    buffer.offer(np.array([1, 2, 5]), np.array([2, 1, 6]), np.array([0.9, 0.9, 0.5], dtype=np.float32))
    buffer.offer(np.array([7, 8, 3]), np.array([8, 9, 4]), np.array([0.95, 0.4, 0.6], dtype=np.float32))
    first, second, scores = buffer.result()
    assert list(zip(first.tolist(), second.tolist())) == [(7, 8), (1, 2), (3, 4)]
    np.testing.assert_allclose(scores, [0.95, 0.9, 0.6])
    floor = PairBuffer(top=None, min_score=0.7)
    floor.offer(np.array([1, 3]), np.array([2, 4]), np.array([0.9, 0.6], dtype=np.float32))
    assert _pair_set(*floor.result()[:2]) == {(1, 2)}


def test_mine_paraphrases_above_the_break_even_uses_ann_and_agrees(tmp_path, monkeypatch):
    encoder = HashingEncoder(dimension=128)
    texts = TEXTS + TEXTS[:3]  # duplicates: only one copy of each text takes part
    store = _store_with(tmp_path, texts, encoder)
    exact = mine_paraphrases(store, top=8, neighbours=5)
    built = []
    original = ann.build_index
    monkeypatch.setattr(ann, "BREAK_EVEN", 4)
    monkeypatch.setattr(ann, "build_index", lambda *args: built.append(args[2]) or original(*args))
    approximate = mine_paraphrases(store, top=8, neighbours=5)
    assert built == [ann.ANN_FACTORY]
    assert [(p.a.sentence_id, p.b.sentence_id, p.copies_a, p.copies_b) for p in approximate] == [
        (p.a.sentence_id, p.b.sentence_id, p.copies_a, p.copies_b) for p in exact
    ]
    assert any(p.copies_a == 2 or p.copies_b == 2 for p in exact)
