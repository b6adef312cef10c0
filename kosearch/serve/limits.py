"""What one request may ask of the service, declared once: the app checks these and the CLI exposes them.

A search service is reachable by whoever can reach its port, so every dimension of a request that
costs memory or time is bounded, and crossing a bound is a clear 4xx (413 for a body, 422 for a
field) instead of a slow request, an exhausted worker or a 500.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceLimits:
    max_query_chars: int = 2000
    """Longest query text; the encoder truncates at 512 tokens anyway, and Kiwi's time grows with length."""
    max_k: int = 100
    """Most hits per query (also the most pairs per paraphrase page divided by ten, see ``max_pairs``)."""
    max_batch: int = 64
    """Most queries in one POST /search, and most texts in one write."""
    max_context: int = 10
    """Most neighbouring sentences on each side of a hit."""
    max_pairs: int = 1000
    """Most paraphrase pairs in one response."""
    max_body_bytes: int = 1_048_576
    """Largest request body (1 MiB): enough for a batch of long texts, small enough to hold in memory."""
    max_text_chars: int = 100_000
    """Longest text one write may add (a long document is better indexed from a folder)."""
