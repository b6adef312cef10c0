"""Segment files and their manifest entries: immutable FAISS files that an index is the union of.

A segment ``segment.NNNNNN`` is written once (``segment.NNNNNN.faiss``, fsynced and renamed into
place) and never changed: a commit adds one for the vectors added since the last commit, and
compaction replaces several by one. ``NNNNNN`` is the generation that committed it, so a name
is never reused for different contents once committed. Next to it, ``segment.NNNNNN.lexical.npz``
holds BM25 postings (``kosearch.store.postings``); those files are listed in the manifest's own
``lexical_segments`` (a Qdrant index has them without any FAISS segment), so the entry's ``lexical``
flag stays unused (False).

The manifest lists the segments (``segments``: a list of entries) and the write-time facts a
reader needs without opening the file: how many vectors it holds, their id range (to find the
deleted ids that concern it), which FAISS index it is and, for an approximate one, its measured
recall@10 (``recall_at_10``, counting equally close neighbours as found, and ``recall_at_10_ids``,
by ids; ``kosearch.store.ann.recall_at_k``; an entry written before ties were counted has only the
by-ids figure, under ``recall_at_10``, and reads as ``recall_at_10_ids``) and, for an HNSW graph, the
``ef_construction`` it was built with; and the file's CRC-32, which ``kosearch check`` compares (``kosearch.store.check``): a
reader maps the file without reading it, so damage inside the vectors would go unseen otherwise. An index made before segments has one FAISS file named by ``vectors_file``
(``vectors.NNNNNN.faiss``); it reads as one legacy segment until its first writer converts it.

This module also holds the merge policy: which segments compaction merges on its own.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from kosearch.errors import IndexCorruptError
from kosearch.store.durable import sync_folder, write_file_atomically
from kosearch.store.manifest_entries import checked_entries
from kosearch.store.vectors import VectorStore, load_vector_store

"""The only names a segment entry may hold."""
LEGACY_VECTORS_FILE = re.compile(r"vectors\.[0-9]{6,}\.faiss")
"""The only names the ``vectors_file`` of an index made before segments may hold."""
REMOVABLE_FILE = re.compile(
    r"(?:segment\.[0-9]{6,}\.(?:faiss|lexical\.npz)|vectors\.[0-9]{6,}\.faiss)(?:\.tmp)?"
)
"""The only names a writer ever removes (when the committed manifest does not name them)."""
SEGMENTS_PER_TIER = 10
"""A tier (segments of the same order of magnitude) is merged into one when it holds this many."""


@dataclass(frozen=True)
class SegmentEntry:
    """What the manifest records about one segment."""

    name: str
    count: int
    factory: str = "Flat"
    min_id: int = 0
    max_id: int = 0
    recall_at_10: float | None = None
    """Recall@10 counting a returned neighbour as found when it is as close as the exact 10th
    (``kosearch.store.ann.recall_at_k``): what tuning aims at. None for an exact segment, and for
    one measured before ties were counted (its figure is ``recall_at_10_ids``)."""
    lexical: bool = False
    crc32: int | None = None
    """CRC-32 of the FAISS file as written, which ``kosearch check`` compares (opening does not read
    the whole file); None for a segment written before checksums were recorded."""
    recall_at_10_ids: float | None = None
    """Recall@10 by ids: the share of the exact top-10 ids the index returns (never above
    ``recall_at_10``; lower where stored vectors repeat)."""
    ef_construction: int | None = None
    """The build depth of an HNSW segment's graph; None for other factories and for a graph built
    before it was recorded (FAISS's default 40 then). Compaction rebuilds a graph built shallower
    than ``kosearch.store.ann.EF_CONSTRUCTION`` (``ann.graph_outdated``)."""

    @property
    def legacy(self) -> bool:
        """A ``vectors.NNNNNN`` file of an index made before segments."""
        return self.name.startswith("vectors.")

    @property
    def file(self) -> str:
        return f"{self.name}.faiss"

    @property
    def lexical_file(self) -> str:
        return f"{self.name}.lexical.npz"

    def files(self) -> list[str]:
        return [self.file, self.lexical_file] if self.lexical else [self.file]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def segment_name(generation: int) -> str:
    return f"segment.{generation:06d}"


def entries_of(manifest: dict[str, Any], problem) -> list[SegmentEntry]:
    """The manifest's segments, checked; ``problem(text)`` makes the error for a bad one.

    Names are checked before anything is opened: a manifest naming a path outside the folder
    (absolute, ``..``) or any other file is damage, never a file to read or remove.
    """
    if "segments" not in manifest:
        name = manifest["vectors_file"]
        if not isinstance(name, str) or not LEGACY_VECTORS_FILE.fullmatch(name):
            raise problem(
                f"the manifest's vectors_file {name!r} is not a vector file name inside the index folder "
                f"(expected vectors.NNNNNN.faiss)"
            )
        factory = str(manifest.get("faiss_factory", "Flat"))
        return [SegmentEntry(name[: -len(".faiss")], int(manifest["sentences"]), factory, 0, -1)]
    return checked_entries(
        manifest["segments"],
        key="segments",
        noun="segment",
        bad_name=lambda name: (
            f"the manifest names a segment {name!r}, which is not a segment name inside the index "
            f"folder (expected segment.NNNNNN)"
        ),
        build=lambda name, item: SegmentEntry(
            name=name,
            count=int(item["count"]),
            factory=str(item.get("factory", "Flat")),
            min_id=int(item.get("min_id", 0)),
            max_id=int(item.get("max_id", -1)),
            **_recalls(item),
            lexical=bool(item.get("lexical", False)),
            crc32=None if item.get("crc32") is None else int(item["crc32"]),
            ef_construction=None if item.get("ef_construction") is None else int(item["ef_construction"]),
        ),
        problem=problem,
    )


def _recalls(item: dict[str, Any]) -> dict[str, float | None]:
    """An entry's two recall figures. An entry without ``recall_at_10_ids`` was written before ties
    were counted: its ``recall_at_10`` was measured by ids, so that is where it goes."""

    def number(key: str) -> float | None:
        return None if item.get(key) is None else float(item[key])

    if "recall_at_10_ids" not in item:
        return {"recall_at_10": None, "recall_at_10_ids": number("recall_at_10")}
    return {"recall_at_10": number("recall_at_10"), "recall_at_10_ids": number("recall_at_10_ids")}


def entry_for(name: str, store: VectorStore, factory: str, recall: float | None = None) -> SegmentEntry:
    ids = store.ids()
    low, high = (int(ids.min()), int(ids.max())) if len(ids) else (0, -1)
    return SegmentEntry(name, store.count(), factory, low, high, recall)


def file_crc32(path: Path, chunk: int = 1 << 22) -> int:
    """CRC-32 of a file, read in chunks (a segment may be gigabytes)."""
    value = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            value = zlib.crc32(block, value)
    return value


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a second name of ``source`` (a copy where the file system has no hard links)."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        write_file_atomically(target.parent, target.name, lambda temporary: shutil.copyfile(source, temporary))
    sync_folder(target.parent)


def load_segment(folder: Path, entry: SegmentEntry, device: str, backend: str | None) -> VectorStore:
    """Open a segment's vectors, memory-mapped where FAISS can; a file that does not match is damage."""
    store = load_vector_store(folder / entry.file, device, backend, mmap=True)
    if store.count() != entry.count:
        raise IndexCorruptError(
            f"{folder / entry.file} holds {store.count()} vectors, the manifest says {entry.count}"
        )
    return store


def with_id_range(entry: SegmentEntry, store: VectorStore) -> SegmentEntry:
    """A legacy entry (id range unknown until its file is read) completed from its vectors."""
    if entry.max_id >= entry.min_id or store.count() == 0:
        return entry
    ids = store.ids()
    return replace(entry, min_id=int(ids.min()), max_id=int(ids.max()))


def tier(count: int) -> int:
    """Segments of the same order of magnitude (by vectors held) share a tier."""
    return int(math.log10(max(count, 1)))


def tier_to_merge(entries: list[SegmentEntry]) -> list[SegmentEntry]:
    """The segments compaction merges on its own: the smallest tier holding ``SEGMENTS_PER_TIER``.

    A log-structured policy in the manner of Lucene's tiered merge policy: each vector is rewritten
    about once per tier it climbs (10x in size), so indexing N vectors in checkpoints of c writes
    about ``N * (1 + log10(N / c))`` vectors' bytes, instead of ``N^2 / (2c)`` for rewriting the
    whole store at each checkpoint. Empty (all deleted) segments are always worth merging away.
    """
    by_tier: dict[int, list[SegmentEntry]] = {}
    for entry in entries:
        by_tier.setdefault(tier(entry.count), []).append(entry)
    for level in sorted(by_tier):
        if len(by_tier[level]) >= SEGMENTS_PER_TIER:
            return by_tier[level]
    return []


def tombstones_within(tombstones: np.ndarray, entry: SegmentEntry) -> np.ndarray:
    """The sorted deleted ids in ``entry``'s id range: every deleted id of that segment, maybe more."""
    if entry.max_id < entry.min_id:
        return tombstones
    low = np.searchsorted(tombstones, entry.min_id, side="left")
    high = np.searchsorted(tombstones, entry.max_id, side="right")
    return tombstones[low:high]
