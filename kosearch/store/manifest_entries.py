"""Reading the manifest's lists of segment entries (``segments``, ``lexical_segments``) with one set of checks.

A manifest is data a crash, a bug or a person may have damaged, and its entries name files the writer
later removes; so every entry is checked before it is used: its name is ``segment.NNNNNN`` (never a
path), its fields parse, its count is not negative, and no name appears twice. Numpy- and faiss-free,
so both the vector segments and the postings (read in processes without faiss) share it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

SEGMENT_NAME = re.compile(r"segment\.[0-9]{6,}")

Entry = TypeVar("Entry")


def checked_entries(
    raw: Any,
    *,
    key: str,
    noun: str,
    bad_name: Callable[[Any], str],
    build: Callable[[str, dict], Entry],
    problem: Callable[[str], Exception],
) -> list[Entry]:
    """The entries of the manifest's list ``key``, each made by ``build(name, item)``.

    ``noun`` names one entry in messages ("segment", "lexical segment"); ``bad_name`` words the
    message for a name that is not ``segment.NNNNNN``; ``problem`` makes the exception raised.
    """
    if not isinstance(raw, list):
        raise problem(f"the manifest's {key} is {raw!r}, not a list")
    entries = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not SEGMENT_NAME.fullmatch(name):
            raise problem(bad_name(name))
        try:
            entry = build(name, item)
        except (KeyError, TypeError, ValueError):
            raise problem(f"the manifest's entry of {noun} {name} is malformed ({item!r})") from None
        if entry.count < 0:  # type: ignore[attr-defined]
            raise problem(f"the manifest's entry of {noun} {name} has a negative count")
        entries.append(entry)
    if len({entry.name for entry in entries}) != len(entries):  # type: ignore[attr-defined]
        raise problem(f"the manifest names a {noun} twice")
    return entries
