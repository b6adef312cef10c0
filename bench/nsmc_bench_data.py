"""NSMC reviews for the hybrid benchmarks: reading them, writing them as an indexable folder, and the
stub encoder that stands in for the real one where encoding is not what is measured.

Shared by ``bench_hybrid_latency.py`` (query latency and filtered search at 100k-1M units) and
``bench_ingest_lexical.py`` (what the lexical index costs at ingest).
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NSMC = ROOT.parent / "shared" / "data" / "nsmc" / "nsmc_reviews.tsv.gz"
SAMPLE_QUESTIONS = ROOT / "corpora" / "sample_questions" / "queries.jsonl"
PARTS = 100
"""Reviews are dealt round-robin into this many files, so ``path = 'part_007.txt'`` selects 1% of the
units and ``path GLOB 'part_01?.txt'`` 10%: filters of known selectivity on a built-in field."""


def read_reviews(limit: int | None = None) -> list[tuple[int, str]]:
    """(rating, review) of NSMC in file order, empty reviews left out."""
    reviews: list[tuple[int, str]] = []
    with gzip.open(NSMC, "rt", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            _, _, rating, review = line.rstrip("\n").split("\t", 3)
            review = " ".join(review.split())
            if review:
                reviews.append((int(rating), review))
                if limit is not None and len(reviews) >= limit:
                    break
    return reviews


def write_parts(reviews: list[str], folder: Path, parts: int = PARTS) -> None:
    """One review per line, review i in ``part_{i % parts:03d}.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    buckets: list[list[str]] = [[] for _ in range(parts)]
    for position, review in enumerate(reviews):
        buckets[position % parts].append(review)
    for number, bucket in enumerate(buckets):
        (folder / f"part_{number:03d}.txt").write_text("\n".join(bucket) + "\n", encoding="utf-8")


def sample_questions(batches: tuple[int, ...] = (1,)) -> list[str]:
    """The hand-written questions over corpora/sample (h-lexical), if present in this checkout.

    Only batch 1 by default: the 60 questions the latency results in docs/benchmarks.md were timed
    with. Batch 2 (60 more, issue 11) was written to measure retrieval quality; taking it here would
    silently change those benchmarks' query sets.
    """
    for path in (SAMPLE_QUESTIONS, ROOT.parent / "lexical" / "corpora" / "sample_questions" / "queries.jsonl"):
        if path.is_file():
            texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            source = path.parent / "questions.jsonl"
            if source.is_file():
                records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
                batch = {record["question"]: int(record.get("batch", 1)) for record in records}
                texts = [text for text in texts if batch.get(text, 1) in batches]
            return texts
    return []


class StubDocumentEncoder:
    """The real encoder's identity and query encoding, random unit vectors for documents.

    Encoding a million reviews with the real model takes hours on this machine; the stored vectors'
    values do not change the cost of an exact (Flat) search, so the index is built with random ones.
    Queries go through the real encoder, so the timed path encodes them exactly as a user's query.
    """

    def __init__(self, real, seed: int = 0) -> None:
        self.real = real
        self.name, self.fingerprint, self.dimension = real.name, real.fingerprint, real.dimension
        self.prompts, self.device = real.prompts, real.device
        self._rng = np.random.default_rng(seed)
        self.seconds = 0.0

    def encode_documents(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        started = time.perf_counter()
        vectors = self._rng.standard_normal((len(texts), self.dimension), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        self.seconds += time.perf_counter() - started
        return vectors

    def encode_queries(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        return self.real.encode_queries(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def machine_load() -> str:
    """1/5/15-minute load averages and the core count: how busy the shared machine was."""
    import os

    try:
        averages = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        averages = "unknown"
    return f"load {averages} on {os.cpu_count()} cores"
