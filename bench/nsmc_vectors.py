"""Real NSMC review vectors (bundled encoder) from the cache that ``encode_nsmc_vectors.py`` fills,
and a clearly labelled synthetic extension for sizes beyond what has been encoded so far.

Shared by ``bench_ann.py`` and ``bench_paraphrase_mining.py``. The cache holds ``chunk_NNNN.npy``
files of 20k float32 L2-normalised 384-d vectors in ``read_reviews`` file order; chunks keep
appearing while the encoder runs, so a bench reads whatever exists when it starts.

Held-out queries are the *last* encoded reviews: they never enter the base, so an ANN index cannot
find them trivially. The synthetic extension cycles over the real base vectors and adds Gaussian
noise (relative norm ``NOISE``) before renormalising: it has the real vectors' directions and
cluster structure, but every synthetic vector has a few close siblings (other noisy copies of the
same review), which real text does not. Results on it are reported apart from the real ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("KOSEARCH_NSMC_VECTORS", Path.home() / ".cache" / "kosearch-bench" / "nsmc_vectors"))
NOISE = 0.5
"""Norm of the noise added to a real unit vector to make a synthetic one (cosine to it ~0.89)."""


def available_chunks(cache: Path = CACHE) -> list[Path]:
    return sorted(path for path in cache.glob("chunk_[0-9][0-9][0-9][0-9].npy"))


def load_real(cache: Path = CACHE, limit: int | None = None) -> np.ndarray:
    """All encoded vectors (or the first ``limit``), in review order."""
    parts, total = [], 0
    for path in available_chunks(cache):
        part = np.load(path)
        parts.append(part)
        total += len(part)
        if limit is not None and total >= limit:
            break
    if not parts:
        raise SystemExit(f"no encoded vectors in {cache}; run bench/encode_nsmc_vectors.py first")
    vectors = np.concatenate(parts)
    return np.ascontiguousarray(vectors[:limit] if limit is not None else vectors, dtype=np.float32)


def split_base_and_queries(real: np.ndarray, holdout: int) -> tuple[np.ndarray, np.ndarray]:
    """(base, held-out queries): the last ``holdout`` reviews are queries only."""
    return real[:-holdout], real[-holdout:]


def base_of_size(real_base: np.ndarray, size: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """``size`` base vectors and how many of them are real (the rest synthetic, see module doc)."""
    if size <= len(real_base):
        return real_base[:size], size
    rng = np.random.default_rng(seed)
    extra = size - len(real_base)
    synthetic = np.empty((extra, real_base.shape[1]), dtype=np.float32)
    step = 100_000
    for start in range(0, extra, step):
        stop = min(start + step, extra)
        source = real_base[np.arange(start, stop) % len(real_base)]
        noise = rng.standard_normal(source.shape, dtype=np.float32)
        noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
        block = source + noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        synthetic[start:stop] = block
    return np.concatenate([real_base, synthetic]), len(real_base)


def encoded_questions() -> np.ndarray:
    """The sample questions through the real bundled encoder's query path (empty if absent)."""
    from nsmc_bench_data import sample_questions

    questions = sample_questions()
    if not questions:
        return np.zeros((0, 384), dtype=np.float32)
    from kosearch.encoders import Encoder

    return np.asarray(Encoder(None).encode_queries(questions), dtype=np.float32)
