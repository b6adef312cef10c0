"""The dense std floor of hybrid fusion for one encoder: the fixed floor scaled by the encoder's cosine spread.

Convex fusion divides the dense scores of a query's candidates by ``max(std, floor)``
(:data:`kosearch.search.fusion.DEFAULT_DENSE_STD_FLOOR`, 0.01). That floor was chosen for the bundled e5,
whose cosines are compressed: over a query's candidates their std is usually below it, so e5's dense list
keeps its small spread and BM25 decides more. It is an absolute number on a model's cosine scale, and
another model's cosines lie on another scale: ``kosearch train adapt`` (a contrastive loss at scale 20)
spreads them 3-7x, past the floor, so the same fusion hands the adapted model's dense list several times
the weight against BM25 that the base model had, and dense gains do not reach hybrid (docs/training.md,
"Hybrid after adaptation: a floor relative to the model's spread").

So the floor is expressed in units of the model's own spread: ``floor(model) = floor * spread(model) /
spread(bundled)``. The spread is measured on a fixed probe that looks like a search: the 120 questions of
corpora/sample_questions (query prompt) against the 439 sentences they were written over (document prompt),
all Korean text written for kosearch (no dataset text); per question, the std of its best 100 cosines (as many
as fusion's dense candidates); the median over questions (:func:`probe_spread`). Why this probe:

- a fixed probe rather than the index's own vectors, because the factor must be 1 for the bundled encoder
  whatever the corpus (so the fusion study that chose the floor still describes the product), must be the
  same for every index a model serves (so a model's ranking does not shift as a corpus grows), and must need
  nothing but the encoder, so a query process can compute it once;
- the top of a search-like list rather than all pairs of unrelated sentences, because adaptation spreads the
  top of a ranking more than the rest, and the floor is compared with the std of the top (the candidates).
  Measured by ``bench/floor_relative.py`` (docs/training.md, "Hybrid after adaptation"): on NSMC the adapted
  model's candidates spread 2.85x the bundled model's; this probe says 2.45x, the std over 40 unrelated
  sentences' cosines 1.88x; hybrid nDCG@10 against the fixed floor +2.26 and +1.25 points. On the chatbot
  set, three adapted models: +0.21 to +0.27 (each interval above 0) with this probe, +0.04 to +0.14 with the
  other. It still under-measures an in-domain spread (chatbot candidates 3.9-6.9x, this probe 2.9-3.9x), so
  an adapted model's dense list still weighs somewhat more than the base model's did; it never weighs less.

The bundled encoder's factor is exactly 1 by definition (:data:`BUNDLED_PROBE_SPREAD` is the reference
it is divided by; a slow test checks that the bundled model measures that value). Any other model is
measured once per machine and remembered under ``$KOSEARCH_HOME/models/probe-spread.json``, keyed by
the model's fingerprint and :data:`PROBE_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from kosearch.encoders.bundled import BUNDLED_ALIASES
from kosearch.encoders.cache import kosearch_home
from kosearch.search.fusion import DEFAULT_DENSE_STD_FLOOR
from kosearch.search.hybrid import FUSION_CANDIDATES

PROBE_FILE = Path(__file__).with_name("dense_floor_probe.json")
"""The probe: corpora/sample_questions' 120 questions and the 439 sentences they are asked over, Korean text
written for kosearch (MIT), copied into the package so an installed kosearch has it."""
PROBE_TOP = FUSION_CANDIDATES
"""How many of a probe question's best cosines the spread is taken over: as many as fusion's dense candidates."""


@lru_cache(maxsize=1)
def probe_texts() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(questions, sentences) of :data:`PROBE_FILE`."""
    data = json.loads(PROBE_FILE.read_text(encoding="utf-8"))
    return tuple(data["queries"]), tuple(data["documents"])


PROBE_VERSION = hashlib.sha256(PROBE_FILE.read_bytes() + str(PROBE_TOP).encode()).hexdigest()[:12]
"""Keys the cache, so an edited probe is measured again (and :data:`BUNDLED_PROBE_SPREAD` must be re-measured)."""
BUNDLED_PROBE_SPREAD = 0.01260
"""The bundled e5's :func:`probe_spread` (measured: 0.012601; ``tests/test_dense_floor_real.py`` checks it): the
reference whose floor is :data:`~kosearch.search.fusion.DEFAULT_DENSE_STD_FLOOR` itself."""
CACHE_NAME = "probe-spread.json"

_lock = threading.Lock()
_measured: dict[str, float] = {}


class ProbeEncoder(Protocol):
    """What :func:`probe_spread` needs of an encoder (:class:`kosearch.encoders.Encoder` has it)."""

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_documents(self, texts: list[str]) -> np.ndarray: ...


def probe_spread(encoder: ProbeEncoder) -> float:
    """Median over the probe questions (as queries) of the std of their :data:`PROBE_TOP` best cosines to the probe
    sentences (as documents): the spread of a dense candidate list, on a list every model is given.

    The best cosines, not all of them, because fusion sees a query's dense candidates, the top of the list, and
    adaptation spreads the top more than the rest. The median, so one odd question does not move it.
    """
    questions, sentences = probe_texts()
    queries = np.asarray(encoder.encode_queries(list(questions)), dtype=np.float64)
    documents = np.asarray(encoder.encode_documents(list(sentences)), dtype=np.float64)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    documents /= np.linalg.norm(documents, axis=1, keepdims=True)
    best = -np.sort(-(queries @ documents.T), axis=1)[:, :PROBE_TOP]
    return float(np.median(best.std(axis=1)))


def spread_factor(encoder: object) -> float:
    """``spread(encoder) / spread(bundled)``: exactly 1.0 for the bundled encoder, measured once per model otherwise.

    ``encoder`` needs ``encode_queries``, ``encode_documents`` and a ``fingerprint`` (the cache key); one
    without a fingerprint is measured each process. An encoder whose probe cosines do not vary at all gets 1.0. The bundled encoder is known by its name
    (:data:`~kosearch.encoders.bundled.BUNDLED_ALIASES`) and never encoded here.
    """
    if getattr(encoder, "name", None) in BUNDLED_ALIASES:
        return 1.0
    return _spread_of(encoder) / BUNDLED_PROBE_SPREAD


def dense_std_floor(encoder: object, base: float | None = DEFAULT_DENSE_STD_FLOOR) -> float | None:
    """The dense std floor convex fusion uses with ``encoder``'s scores: ``base * spread_factor(encoder)``.

    ``base`` None (plain z-scores) stays None and measures nothing.
    """
    if base is None:
        return None
    return base * spread_factor(encoder)


def _spread_of(encoder: object) -> float:
    fingerprint = getattr(encoder, "fingerprint", None)
    key = f"{fingerprint}|{PROBE_VERSION}" if isinstance(fingerprint, str) else None
    with _lock:
        if key is not None and key in _measured:
            return _measured[key]
        cached = _read_cache().get(key) if key is not None else None
        if isinstance(cached, (int, float)) and cached > 0:
            _measured[key] = float(cached)
            return float(cached)
        spread = probe_spread(encoder)  # type: ignore[arg-type]
        if not spread > 0:  # cosines that never vary give no scale to follow: keep the fixed floor, never fail a search
            spread = BUNDLED_PROBE_SPREAD
        if key is not None:
            _measured[key] = spread
            _write_cache(key, spread)
        return spread


def _cache_file() -> Path:
    return kosearch_home() / "models" / CACHE_NAME


def _read_cache() -> dict[str, float]:
    try:
        entries = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _write_cache(key: str, spread: float) -> None:
    """Add one entry, written atomically (a temporary file renamed over the old one); a cache that cannot be
    written is not an error: the spread is measured again next process."""
    try:
        folder = _cache_file().parent
        folder.mkdir(parents=True, exist_ok=True)
        entries = {**_read_cache(), key: spread}
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".probe-spread-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entries, out, indent=1, sort_keys=True)
        os.replace(temporary, _cache_file())
    except OSError:
        return
