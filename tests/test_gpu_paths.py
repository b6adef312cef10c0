"""The CUDA branches of compaction (kosearch.store.ann) run here through CPU twins: the decision is real,
the GPU calls are replaced by CPU functions that compute the same thing, and the result must equal the
CPU build. (No GPU on the project's machines; bench/bench_gpu_encode.py is the command for one.)"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from kosearch.store import ann, vectors
from test_ann import clustered


def test_gpu_number_needs_a_cuda_device_and_faiss_gpu(monkeypatch):
    assert ann.gpu_number("cpu") is None
    monkeypatch.setattr(vectors, "_faiss_gpu_available", lambda: False)
    assert ann.gpu_number("cuda") is None  # CUDA torch without faiss-gpu: the CPU builds
    monkeypatch.setattr(vectors, "_faiss_gpu_available", lambda: True)
    assert ann.gpu_number("cuda") == 0 and ann.gpu_number("cuda:1") == 1
    assert ann.gpu_number("cpu") is None and ann.gpu_number("mps") is None


@pytest.fixture()
def fake_gpu(monkeypatch):
    """faiss-gpu's two entry points replaced by CPU twins that record being called."""
    calls: list[str] = []

    def knn(vectors, queries, k, gpu):
        calls.append(f"knn:{gpu}")
        _, positions = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
        return positions

    def clustering_index(dimension, gpu):
        calls.append(f"kmeans:{gpu}")
        return faiss.IndexFlatL2(dimension)

    monkeypatch.setattr(ann, "gpu_number", lambda device: 1 if device == "cuda:1" else None)
    monkeypatch.setattr(ann, "_knn_gpu", knn)
    monkeypatch.setattr(ann, "_gpu_clustering_index", clustering_index)
    return calls


@pytest.mark.parametrize("factory", ["IVF64,Flat", "HNSW32"])
def test_a_cuda_build_takes_the_gpu_branches_and_equals_the_cpu_build(fake_gpu, factory):
    everything = clustered(4064)
    base, queries = everything[:4000], everything[4000:]
    ids = np.arange(len(base), dtype=np.int64) * 3 + 5
    on_cpu = ann.build_index(ids, base, factory, device="cpu")
    assert fake_gpu == []
    on_gpu = ann.build_index(ids, base, factory, device="cuda:1")
    assert "knn:1" in fake_gpu
    assert ("kmeans:1" in fake_gpu) == factory.startswith("IVF")
    assert ann.search_depth(on_gpu) == ann.search_depth(on_cpu)
    np.testing.assert_array_equal(on_cpu.search(queries, 10)[1], on_gpu.search(queries, 10)[1])
    recall = ann.measure_recall(on_gpu, ids, base, queries, device="cuda:1")
    assert recall == ann.measure_recall(on_gpu, ids, base, queries, device="cpu")
    assert recall.with_ties >= ann.TARGET_RECALL
    assert isinstance(on_gpu, faiss.IndexIDMap2)  # a CPU index, saved like any other segment
    faiss.serialize_index(on_gpu)
