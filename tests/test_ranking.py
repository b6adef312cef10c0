"""``kosearch.ranking.top_k_positions``: the k best positions in the order of a stable sort, ties by a key."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kosearch.ranking import top_k_positions

# Few distinct values, so that most draws hold ties, the case the partition shortcut must get right.
scores_strategy = st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.5000001, 1.0, -1.0]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(scores=scores_strategy, k=st.integers(min_value=0, max_value=45))
def test_equals_a_stable_argsort(scores, k):
    array = np.asarray(scores, dtype=np.float32)
    expected = np.argsort(-array, kind="stable")[: max(k, 0)]
    assert top_k_positions(array, k).tolist() == expected.tolist()


@settings(max_examples=300, deadline=None)
@given(scores=scores_strategy, k=st.integers(min_value=1, max_value=45), seed=st.integers(0, 2**16))
def test_ties_follow_the_given_key(scores, k, seed):
    array = np.asarray(scores, dtype=np.float64)
    key = np.random.default_rng(seed).permutation(len(array))
    expected = sorted(range(len(array)), key=lambda i: (-array[i], key[i]))[:k]
    assert top_k_positions(array, k, key).tolist() == expected


def test_edges():
    assert top_k_positions(np.zeros(0), 3).tolist() == []
    assert top_k_positions(np.array([0.2, 0.9]), 0).tolist() == []
    assert top_k_positions(np.array([0.2, 0.9, 0.9]), 5).tolist() == [1, 2, 0]


@pytest.mark.parametrize("k", [1, 10, 100])
def test_a_long_row(k):
    row = np.random.default_rng(k).random(100_000).astype(np.float32)
    row[::7] = 0.5  # many ties
    assert top_k_positions(row, k).tolist() == np.argsort(-row, kind="stable")[:k].tolist()
