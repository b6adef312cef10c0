"""The vector backends: FAISS and the torch fallback must give the same answers."""

from __future__ import annotations

import numpy as np
import pytest

from kosearch.errors import KosearchError
from kosearch.store.durable import write_file_atomically
from kosearch.store.vectors import (
    FaissVectorStore,
    TorchVectorStore,
    choose_backend,
    empty_vector_store,
    load_vector_store,
)


def _unit_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(queries, vectors, ids, k):
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), ids[order]


@pytest.fixture(params=["faiss", "torch"])
def store(request):
    return empty_vector_store(16, backend=request.param)


def test_search_matches_brute_force(store):
    vectors = _unit_vectors(300, 16)
    ids = np.arange(1000, 1300, dtype=np.int64)
    store.add(ids[:100], vectors[:100])
    store.add(ids[100:], vectors[100:])
    queries = _unit_vectors(7, 16, seed=1)
    scores, found = store.search(queries, 5)
    expected_scores, expected_ids = _brute_force(queries, vectors, ids, 5)
    np.testing.assert_array_equal(found, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)


def test_remove_and_restricted_search(store):
    vectors = _unit_vectors(50, 16)
    ids = np.arange(1, 51, dtype=np.int64)
    store.add(ids, vectors)
    assert store.remove(np.array([1, 2, 3])) == 3
    assert store.count() == 47
    scores, found = store.search(vectors[:1], 47)
    assert not set(found[0].tolist()) & {1, 2, 3}
    allowed = np.array([10, 20, 30], dtype=np.int64)
    _, found = store.search(vectors[9:10], 5, allowed_ids=allowed)
    assert found[0][0] == 10
    assert set(found[0][found[0] >= 0].tolist()) <= {10, 20, 30}


def test_k_larger_than_store_and_empty_store(store):
    _, found = store.search(_unit_vectors(1, 16), 5)
    assert found.tolist() == [[-1]]
    store.add(np.array([7]), _unit_vectors(1, 16))
    _, found = store.search(_unit_vectors(2, 16), 5)
    assert found.shape == (2, 1) and (found == 7).all()


def test_iter_vectors_returns_everything(store):
    vectors = _unit_vectors(40, 16)
    store.add(np.arange(40), vectors)
    seen_ids, seen = zip(*store.iter_vectors(batch_size=15))
    np.testing.assert_array_equal(np.concatenate(seen_ids), np.arange(40))
    np.testing.assert_allclose(np.concatenate(seen), vectors, atol=1e-6)


def test_save_and_load_round_trip_across_backends(tmp_path, store):
    vectors = _unit_vectors(20, 16)
    store.add(np.arange(5, 25), vectors)
    path = tmp_path / "v.faiss"
    write_file_atomically(path.parent, path.name, store.save)
    assert not (tmp_path / "v.faiss.tmp").exists()
    for backend in ("faiss", "torch"):
        loaded = load_vector_store(path, backend=backend)
        assert loaded.count() == 20
        np.testing.assert_array_equal(loaded.search(vectors[3:4], 1)[1], [[8]])


def test_wrong_dimension_is_a_clear_error(store):
    with pytest.raises(KosearchError, match="dimension 16"):
        store.add(np.array([1]), np.zeros((1, 8), dtype=np.float32))


def test_factories_that_need_training_are_refused():
    with pytest.raises(KosearchError, match="needs training"):
        FaissVectorStore.empty(16, "IVF16,Flat")
    with pytest.raises(KosearchError, match="cannot build"):
        FaissVectorStore.empty(16, "NoSuchIndex")
    assert FaissVectorStore.empty(16, "HNSW16").count() == 0


def test_backend_choice_follows_device():
    assert choose_backend("cpu") == "faiss"
    assert choose_backend("cpu", "torch") == "torch"
    assert isinstance(empty_vector_store(4, backend="torch"), TorchVectorStore)
    with pytest.raises(KosearchError):
        choose_backend("cpu", "annoy")
