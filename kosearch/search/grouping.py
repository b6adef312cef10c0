"""Hits as documents: a ranking of units cut to each document's best one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from kosearch.search.fusion import FusedHit

Key = TypeVar("Key", int, str)


def first_per_document(ranked: Sequence[FusedHit[Key]], document_of: Mapping[Key, int], k: int) -> list[FusedHit[Key]]:
    """The best-ranked unit of each document, in ranking order, at most ``k`` of them."""
    seen: set[int] = set()
    chosen: list[FusedHit[Key]] = []
    for hit in ranked:
        document = document_of.get(hit.key)
        if document is None or document in seen:
            continue
        seen.add(document)
        chosen.append(hit)
        if len(chosen) == k:
            break
    return chosen
