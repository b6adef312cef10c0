"""Result records returned by the public API: plain, frozen, JSON-friendly dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kosearch.types import SkippedFile


def location(path: str, line: int, page: int | None) -> str:
    """A sentence's place as a person looks it up: ``report.pdf p.3`` or ``notes.txt:12``."""
    return f"{path} p.{page}" if page is not None else f"{path}:{line}"


@dataclass(frozen=True)
class IndexedSentence:
    """A sentence as stored in an index, with enough location to open its file at the right line."""

    sentence_id: int
    text: str
    path: str
    """Path of the file relative to ``document_root``, with '/' separators."""
    line: int
    start: int
    end: int
    document_root: str
    """Absolute path of the folder that was indexed."""
    page: int | None = None
    """1-based page of a PDF sentence; None for formats without pages."""
    fields: dict[str, Any] = field(default_factory=dict)
    """Typed metadata of the unit (non-text CSV/TSV/JSONL columns); empty if none."""

    @property
    def location(self) -> str:
        """Where to look: ``path p.N`` for a page of a PDF, ``path:line`` otherwise."""
        return location(self.path, self.line, self.page)


@dataclass(frozen=True)
class Hit:
    """One search result: a stored unit (sentence or passage) and how well it matches the query."""

    score: float
    """What the ranking used, higher is better: cosine similarity (mode ``dense``), BM25 (``lexical``)
    or the fused score (``hybrid``)."""
    text: str
    path: str
    line: int
    sentence_id: int
    start: int
    end: int
    document_root: str
    context_before: tuple[str, ...] = ()
    """Sentences just before this one in the same file, oldest first (empty unless asked for)."""
    context_after: tuple[str, ...] = ()
    page: int | None = None
    """1-based page of a PDF hit (``line`` is then the line on that page); None for formats without pages."""
    dense_score: float | None = None
    """Cosine similarity, when the dense signal returned this unit."""
    lexical_score: float | None = None
    """BM25 score (k1 = 1.2, b = 0.75 over Kiwi morphemes), when the lexical signal returned this unit."""
    fused_score: float | None = None
    """The fused score (hybrid mode only)."""
    mode: str = "dense"
    """The mode that produced the hit: ``dense``, ``lexical`` or ``hybrid``."""
    highlights: tuple[tuple[int, int], ...] = ()
    """Character spans ``[start, end)`` in ``text`` of the query's morphemes."""
    best_sentence: tuple[int, int] | None = None
    """Character span in ``text`` of the sentence of a passage that matched best; None for sentence units."""
    fields: dict[str, Any] = field(default_factory=dict)
    """Typed metadata of the unit (non-text CSV/TSV/JSONL columns); empty if none."""

    @property
    def location(self) -> str:
        """Where to look: ``path p.N`` for a page of a PDF, ``path:line`` otherwise."""
        return location(self.path, self.line, self.page)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pair:
    """Two sentences of an index that say nearly the same thing."""

    score: float
    a: IndexedSentence
    b: IndexedSentence
    copies_a: int = 1
    """How many sentences in the index have exactly ``a.text`` (exact duplicates are reported once)."""
    copies_b: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    """What one indexing run did; the CLI prints it and ``--json`` emits it."""

    root: str
    files_added: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    sentences_added: int = 0
    sentences_removed: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Things read but worth a look: malformed JSONL lines, guessed text columns, ..."""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RemovalReport:
    """What one ``Index.delete`` / ``Index.remove`` (``kosearch remove``) took out of an index."""

    documents: int = 0
    """Documents (files or records) removed, each with all its units."""
    sentences: int = 0
    """Units (sentences or passages) removed with them."""
    unmatched: list[str] = field(default_factory=list)
    """The ids or paths given that named nothing in the index."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexInfo:
    """A summary of an index, read from its manifest and tables without loading the encoder."""

    path: str
    model: str
    fingerprint: str
    dimension: int
    prompts: dict[str, str]
    vector_backend: str
    faiss_factory: str
    documents: int
    sentences: int
    size_bytes: int
    kosearch_version: str
    created: str
    updated: str
    roots: list[str]
    skipped: list[SkippedFile]
    segments: int = 0
    deleted_vectors: int = 0
    """Vectors of deleted units still in segment files, until compaction."""
    segment_details: list[dict[str, Any]] = field(default_factory=list)
    """Per segment: name, count, factory, min_id, max_id, recall_at_10 (with ties) and recall_at_10_ids
    (by ids), measured for approximate ones, ef_construction for an HNSW graph, lexical."""

    encoder_backend: str | None = None
    """The encoder backend that made the vectors where it changes them (``"onnx-int8"``); None: float32 vectors
    (torch or onnx, interchangeable)."""
    unit: str | None = None
    """What a hit is, ``sentence`` or ``passage``; None for a new index no run has filled yet."""
    lexical: dict[str, Any] | None = None
    """The options its lexical index was analysed with (``LexicalOptions.to_dict()``); None when it
    has no lexical index and is searched densely only."""
    vector_store: str = "faiss"
    """Where its vectors live: ``faiss`` (segment files in the folder) or ``qdrant (...)``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CompactionReport:
    """What one compaction did: segments merged, deleted vectors dropped, disk space before and after."""

    segments_before: int
    segments_after: int
    vectors_dropped: int
    bytes_before: int
    bytes_after: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckFinding:
    """One thing ``kosearch check`` found wrong (``error``) or worth knowing (``warning``) in an index."""

    kind: str
    """What part: ``sqlite``, ``manifest``, ``segment``, ``vectors``, ``lexical``, ``documents``, ``stale_file``, ``lock``."""
    severity: str
    """``error``: the index is damaged (open or search may fail, or return wrong hits); ``warning``: it is
    consistent, but something is left over or unfinished."""
    message: str
    """What is wrong, naming the file or rows."""
    repair: str
    """What ``kosearch check --repair`` does about it, or the next step when it cannot."""
    repairable: bool
    """Whether ``--repair`` can rebuild it from what the index still holds."""
    file: str | None = None
    """The file concerned, when there is one."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckReport:
    """What ``Index.check`` / ``Index.repair`` (``kosearch check [--repair]``) found, and did.

    ``findings`` is the state of the index as it is now: after a repair, what the check run after the
    repair still finds. ``repaired`` lists what the repair did, ``found_before`` what it started from.
    """

    path: str
    findings: list[CheckFinding]
    counts: dict[str, int]
    """What was verified: segments, vectors (live), sentences (rows), documents, tombstones, lexical rows."""
    repaired: list[str] = field(default_factory=list)
    found_before: list[CheckFinding] = field(default_factory=list)

    @property
    def errors(self) -> list[CheckFinding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def healthy(self) -> bool:
        """No errors (warnings, such as files left by a killed run, do not make an index unhealthy)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}
