"""The dense std floor relative to the encoder's cosine spread (kosearch.search.dense_floor): plumbing with stub encoders.

tests/test_dense_floor_real.py checks the bundled encoder itself (its factor and its hybrid results).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import kosearch
from kosearch.encoders.bundled import BUNDLED_MODEL
from kosearch.search import dense_floor, hybrid
from kosearch.search.fusion import DEFAULT_DENSE_STD_FLOOR
from kosearch_testing import HashingEncoder


class NarrowedEncoder(HashingEncoder):
    """The hashing encoder with every cosine mapped to ``(1 - t) * cosine + t``: the same ranking, its spread
    times ``1 - t`` (each vector gets one extra component sqrt(t), the rest is scaled by sqrt(1 - t))."""

    def __init__(self, t: float, name: str) -> None:
        super().__init__(name=name)
        self.t = t
        self.hashing = HashingEncoder(self.dimension - 1)

    def _encode(self, texts):
        self.calls.append(len(texts))
        vectors = self.hashing._encode(texts)
        extra = np.full((len(vectors), 1), math.sqrt(self.t), dtype=np.float32)
        return np.hstack([vectors * math.sqrt(1.0 - self.t), extra])


class RefusingEncoder:
    """Named like the bundled encoder; fails if anything is encoded."""

    name = BUNDLED_MODEL
    fingerprint = "bundled-stub"

    def encode_queries(self, texts):
        raise AssertionError("the bundled encoder must not be probed")

    encode_documents = encode_queries


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Each test starts with no spread remembered, on disk ($KOSEARCH_HOME) or in this process."""
    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(dense_floor, "_measured", {})


def probe_calls(encoder: HashingEncoder) -> int:
    """Calls that encoded the probe's questions or its sentences."""
    sizes = {len(texts) for texts in dense_floor.probe_texts()}
    return sum(1 for size in encoder.calls if size in sizes)


def test_the_bundled_encoders_factor_is_exactly_one_and_it_is_never_probed():
    assert dense_floor.spread_factor(RefusingEncoder()) == 1.0
    assert dense_floor.dense_std_floor(RefusingEncoder()) == DEFAULT_DENSE_STD_FLOOR
    assert dense_floor.dense_std_floor(RefusingEncoder(), base=None) is None


def test_the_floor_follows_the_encoders_spread_proportionally():
    wide = HashingEncoder(dimension=63, name="test/wide")  # the narrowed encoder hashes into 63 of its 64
    narrow = NarrowedEncoder(0.75, name="test/narrow")
    wide_spread = dense_floor.probe_spread(wide)
    assert dense_floor.probe_spread(narrow) == pytest.approx(0.25 * wide_spread, rel=1e-5)
    floor = dense_floor.dense_std_floor(wide)
    assert floor == pytest.approx(DEFAULT_DENSE_STD_FLOOR * wide_spread / dense_floor.BUNDLED_PROBE_SPREAD)
    assert dense_floor.dense_std_floor(narrow) == pytest.approx(0.25 * floor, rel=1e-5)


def test_the_probe_is_a_search_over_our_own_sample_questions():
    questions, sentences = dense_floor.probe_texts()
    assert (len(questions), len(sentences)) == (120, 439)
    assert dense_floor.PROBE_TOP == hybrid.FUSION_CANDIDATES


def test_an_encoder_whose_cosines_do_not_vary_keeps_the_fixed_floor():
    class Constant(HashingEncoder):  # every text the same vector: no spread at all
        def _encode(self, texts):
            return np.tile(np.eye(1, self.dimension, dtype=np.float32), (len(texts), 1))

    assert dense_floor.probe_spread(Constant()) == 0.0
    assert dense_floor.dense_std_floor(Constant(name="test/constant")) == DEFAULT_DENSE_STD_FLOOR


def test_a_models_spread_is_measured_once_and_remembered_by_fingerprint():
    encoder = HashingEncoder(name="test/cached")
    first = dense_floor.spread_factor(encoder)
    assert probe_calls(encoder) == 2  # queries and documents, once
    assert dense_floor.spread_factor(encoder) == first
    assert probe_calls(encoder) == 2  # this process remembers it
    dense_floor._measured.clear()  # a new process: the file under $KOSEARCH_HOME answers
    again = HashingEncoder(name="test/cached")
    assert dense_floor.spread_factor(again) == first
    assert probe_calls(again) == 0
    other = HashingEncoder(name="test/other", dimension=32)  # another fingerprint is measured
    dense_floor.spread_factor(other)
    assert probe_calls(other) == 2


def test_an_unreadable_cache_file_is_measured_again(tmp_path):
    cache = tmp_path / "home" / "models" / dense_floor.CACHE_NAME
    cache.parent.mkdir(parents=True)
    cache.write_text("not json", encoding="utf-8")
    encoder = HashingEncoder(name="test/broken-cache")
    assert dense_floor.spread_factor(encoder) > 0
    assert probe_calls(encoder) == 2


def _index(tmp_path, encoder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(
        "은행에서 돈을 찾았어요.\n오늘은 비가 온다.\n주식 시장이 크게 올랐다.\n은행 금리가 내려갔다.\n", encoding="utf-8"
    )
    index = kosearch.Index.create(tmp_path / "idx", encoder)
    index.add_folder(docs, unit="sentence")
    return index


def test_hybrid_search_fuses_with_the_encoders_floor_and_only_hybrid_probes(tmp_path, monkeypatch):
    encoder = NarrowedEncoder(0.5, name="test/hybrid-floor")
    floors: list[float | None] = []
    real_fusion = hybrid.convex_fusion

    def spy(*args, **kwargs):
        floors.append(kwargs["dense_std_floor"])
        return real_fusion(*args, **kwargs)

    monkeypatch.setattr(hybrid, "convex_fusion", spy)
    with _index(tmp_path, encoder) as index:
        index.search("은행 금리", mode="dense")
        index.search("은행 금리", mode="lexical")
        index.search("은행 금리", mode="hybrid", fusion="rrf")
        assert probe_calls(encoder) == 0 and floors == []
        hits = index.search("은행 금리", mode="hybrid")
        assert hits and probe_calls(encoder) == 2
    assert floors == [pytest.approx(dense_floor.dense_std_floor(encoder))]
    assert floors[0] != pytest.approx(DEFAULT_DENSE_STD_FLOOR)


def test_the_packaged_probe_is_corpora_sample_questions():
    import json
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "corpora" / "sample_questions"
    texts = [[json.loads(line)["text"] for line in (folder / name).open(encoding="utf-8")]
             for name in ("queries.jsonl", "corpus.jsonl")]
    assert list(map(list, dense_floor.probe_texts())) == texts
