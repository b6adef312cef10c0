"""Fixtures shared across test modules."""

from __future__ import annotations

import pytest

from kosearch_testing import build_tiny_model


# -- core (index, CLI) ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory):
    """A tiny random sentence-transformers model folder: a real encoder that is not the bundled one."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny-bert")
