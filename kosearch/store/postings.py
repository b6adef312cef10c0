"""BM25 postings of one immutable segment, stored next to its FAISS file, and ranking over many segments.

Why not FTS5: SQLite's ``bm25()`` is called once per matching row through FTS5's auxiliary-function
API, and an OR query over Korean morphemes matches a large share of rows (영화 is in a quarter of
NSMC's reviews); at a million units that made hybrid search three times dense-only
(docs/benchmarks.md, "Lexical query latency"). Here a query reads only the postings of its terms,
as numpy arrays, and scores them in a few vector operations.

On disk: ``segment.NNNNNN.lexical.npz``, an ordinary *uncompressed* ``.npz`` (``np.load`` reads it)
whose members are written so that each array's data starts on a 64-byte boundary of the file;
:meth:`SegmentPostings.load` maps the file once (``np.memmap``, read-only) and views each member in
place, so opening a segment reads a few kilobytes and the pages a query touches are the only ones
brought in (and shared between processes through the page cache). One file, so that it is written
like the FAISS file: a temporary name, fsync, rename, fsync of the folder. Members:

=================  ===============  ==================================================================
``ids``            int64, n         unit (sentence) ids, ascending; a unit's *position* is its index
``lengths``        uint32, n        token count of each unit (repeats counted), BM25's ``|d|``
``term_bytes``     uint8            the terms' UTF-8 bytes, concatenated, in byte order
``term_offsets``   int64, V + 1     term t is ``term_bytes[term_offsets[t]:term_offsets[t + 1]]``
``post_offsets``   int64, V + 1     term t's postings are ``[post_offsets[t], post_offsets[t + 1])``
``positions``      uint32, P        unit positions of each term's postings, ascending within a term
``frequencies``    uint16/uint32, P the term's count in that unit (uint16 unless a count needs more)
=================  ===============  ==================================================================

This is a CSR matrix terms x units: a term's document frequency is ``post_offsets[t + 1] -
post_offsets[t]``. Terms are looked up by binary search over the mapped bytes (no dictionary is
built at load), about 17 comparisons for 100,000 terms.

Scoring (:func:`bm25_search`) is BM25 in Lucene's form without the constant ``(k1 + 1)`` factor, as
:mod:`kosearch.search.bm25` and ``bm25s`` compute it::

    score(d) = sum over query terms t of  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

with N, avgdl and df summed over all the segments searched, so adding a segment changes every score
exactly as it would in one index built from everything. Units deleted since a segment was written
(tombstones) are excluded from the results but still counted in N, avgdl and df until compaction
rewrites their segment, as Lucene does; the scores drift by the share of deleted units, never the
set of units found. ``idf`` is ``"robertson"`` by default, ``ln((N - df + 0.5) / (df + 0.5))``
floored at 1e-6, which is what FTS5's ``bm25()`` computes: rankings are FTS5's, and ``-bm25()`` is
``(k1 + 1)`` times the score here (tested). ``"lucene"`` is ``ln(1 + (N - df + 0.5) / (df + 0.5))``.

A filter's allowed ids are applied before the top k is taken, so k units come back whenever k
allowed units share a term with the query.

:class:`LexicalSegments` is what a store view holds: the loaded segments of one generation by name,
and the one ``search`` the store calls; a newer generation's view reuses the already-loaded ones.
:meth:`SegmentPostings.merge` is compaction's half: the postings of several segments, tombstoned
units dropped, as one segment, without re-analysing any text.
"""

from __future__ import annotations

import bisect
import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from kosearch.errors import IndexCorruptError
from kosearch.store.durable import replace_durably
from kosearch.store.manifest_entries import checked_entries


IdfVariant = Literal["robertson", "lucene"]
ROBERTSON_IDF_FLOOR = 1e-6
"""What FTS5 puts in place of an idf <= 0 (a term in half the units or more)."""
ALIGN = 64
MEMBERS = ("ids", "lengths", "term_bytes", "term_offsets", "post_offsets", "positions", "frequencies")
FORMAT_VERSION = 1


class _TermView(Sequence[bytes]):
    """The sorted terms as a sequence of bytes, read from the mapped arrays on demand (for bisect)."""

    def __init__(self, term_bytes: np.ndarray, term_offsets: np.ndarray) -> None:
        self._bytes, self._offsets = term_bytes, term_offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index):  # type: ignore[override]
        start, stop = int(self._offsets[index]), int(self._offsets[index + 1])
        return self._bytes[start:stop].tobytes()


@dataclass(frozen=True, eq=False)
class SegmentPostings:
    """The inverted index of one segment's units (see the module docstring for the arrays)."""

    ids: np.ndarray
    lengths: np.ndarray
    term_bytes: np.ndarray
    term_offsets: np.ndarray
    post_offsets: np.ndarray
    positions: np.ndarray
    frequencies: np.ndarray

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, ids: np.ndarray | Sequence[int], tokens: Sequence[str] | Sequence[Sequence[str]]) -> SegmentPostings:
        """Postings of units ``ids`` whose tokens are ``tokens`` (space-joined strings, as the store
        receives them from ingest, or lists of tokens); any order of ids, each id once."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(tokens):
            raise ValueError(f"{len(ids)} ids but {len(tokens)} token lists")
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            raise ValueError("unit ids must be unique")
        vocabulary: dict[str, int] = {}
        term_numbers: list[int] = []
        lengths = np.zeros(len(ids), dtype=np.uint32)
        for position, original in enumerate(order.tolist()):
            unit = tokens[original]
            unit = unit.split() if isinstance(unit, str) else unit
            lengths[position] = len(unit)
            setdefault = vocabulary.setdefault
            term_numbers.extend([setdefault(term, len(vocabulary)) for term in unit])
        terms = list(vocabulary)
        encoded = [term.encode("utf-8") for term in terms]
        sorted_order = sorted(range(len(terms)), key=encoded.__getitem__)
        rank = np.empty(len(terms), dtype=np.int64)
        rank[np.asarray(sorted_order, dtype=np.int64)] = np.arange(len(terms), dtype=np.int64)
        unit_of_token = np.repeat(np.arange(len(ids), dtype=np.int64), lengths.astype(np.int64))
        term_of_token = rank[np.asarray(term_numbers, dtype=np.int64)] if term_numbers else np.zeros(0, np.int64)
        keys, counts = np.unique(term_of_token * max(len(ids), 1) + unit_of_token, return_counts=True)
        post_terms, positions = np.divmod(keys, max(len(ids), 1))
        return cls._from_parts(
            ids, lengths, [encoded[i] for i in sorted_order], post_terms, positions, counts
        )

    @classmethod
    def _from_parts(
        cls,
        ids: np.ndarray,
        lengths: np.ndarray,
        terms: list[bytes],
        post_terms: np.ndarray,
        positions: np.ndarray,
        counts: np.ndarray,
    ) -> SegmentPostings:
        """From postings sorted by (term number, position); ``terms`` in byte order, each with postings."""
        term_offsets = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum([len(term) for term in terms], out=term_offsets[1:])
        post_offsets = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(post_terms, minlength=len(terms)), out=post_offsets[1:])
        frequency_type = np.uint16 if (len(counts) == 0 or counts.max() <= np.iinfo(np.uint16).max) else np.uint32
        return cls(
            ids=np.ascontiguousarray(ids, dtype=np.int64),
            lengths=np.ascontiguousarray(lengths, dtype=np.uint32),
            term_bytes=np.frombuffer(b"".join(terms), dtype=np.uint8).copy(),
            term_offsets=term_offsets,
            post_offsets=post_offsets,
            positions=np.ascontiguousarray(positions, dtype=np.uint32),
            frequencies=np.ascontiguousarray(counts, dtype=frequency_type),
        )

    @classmethod
    def merge(cls, segments: Sequence[SegmentPostings], excluded: np.ndarray | None = None) -> SegmentPostings:
        """One segment holding the units of ``segments`` except ``excluded`` ids (compaction).

        Works on the postings alone (no text, no Kiwi): terms are remapped to the merged dictionary,
        units renumbered in id order, and terms whose every unit was dropped leave the dictionary.
        """
        excluded = _as_ids(excluded)
        kept_ids, kept_lengths, remaps = [], [], []
        for segment in segments:
            keep = ~_contains(excluded, segment.ids) if excluded is not None else np.ones(segment.count, bool)
            kept_ids.append(np.asarray(segment.ids)[keep])
            kept_lengths.append(np.asarray(segment.lengths)[keep])
            remaps.append(keep)
        ids = np.concatenate(kept_ids) if kept_ids else np.zeros(0, np.int64)
        lengths = np.concatenate(kept_lengths) if kept_lengths else np.zeros(0, np.uint32)
        order = np.argsort(ids, kind="stable")
        if len(ids) > 1 and not (ids[order][1:] > ids[order][:-1]).all():
            raise ValueError("the segments to merge share unit ids")
        new_position = np.empty(len(ids), dtype=np.int64)
        new_position[order] = np.arange(len(ids), dtype=np.int64)
        vocabulary = sorted({term for segment in segments for term in segment.terms()})
        post_terms, positions, counts = [], [], []
        base = 0
        for segment, keep in zip(segments, remaps):
            terms = segment.terms()
            term_map = np.asarray([bisect.bisect_left(vocabulary, term) for term in terms], dtype=np.int64)
            local_new = np.full(segment.count, -1, dtype=np.int64)
            local_new[keep] = new_position[base : base + int(keep.sum())]
            base += int(keep.sum())
            frequencies = np.diff(np.asarray(segment.post_offsets))
            mapped = local_new[np.asarray(segment.positions, dtype=np.int64)]
            alive = mapped >= 0
            post_terms.append(np.repeat(term_map, frequencies)[alive])
            positions.append(mapped[alive])
            counts.append(np.asarray(segment.frequencies)[alive].astype(np.uint32))
        post_terms_all = np.concatenate(post_terms) if post_terms else np.zeros(0, np.int64)
        positions_all = np.concatenate(positions) if positions else np.zeros(0, np.int64)
        counts_all = np.concatenate(counts) if counts else np.zeros(0, np.uint32)
        by_term = np.lexsort((positions_all, post_terms_all))
        post_terms_all, positions_all, counts_all = post_terms_all[by_term], positions_all[by_term], counts_all[by_term]
        used = np.zeros(len(vocabulary), dtype=bool)
        used[post_terms_all] = True
        renumber = np.cumsum(used) - 1
        return cls._from_parts(
            ids[order], lengths[order], [term for term, u in zip(vocabulary, used) if u],
            renumber[post_terms_all], positions_all, counts_all,
        )

    # -- reading -------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Units in the segment (deleted ones included until compaction)."""
        return len(self.ids)

    @cached_property
    def total_length(self) -> int:
        """Sum of the units' token counts (computed once: a pass over n lengths)."""
        return int(np.asarray(self.lengths).sum(dtype=np.int64))

    def terms(self) -> list[bytes]:
        """Every term, UTF-8 encoded, in byte order."""
        data = np.asarray(self.term_bytes).tobytes()
        offsets = np.asarray(self.term_offsets).tolist()
        return [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]

    def holding(self, ids: np.ndarray) -> np.ndarray:
        """Which of the sorted unique ``ids`` the segment holds (sorted)."""
        return np.asarray(self.ids)[_positions_of(self, ids)]

    def term_number(self, term: str) -> int:
        """The term's row in the postings, or -1 if no unit of the segment holds it."""
        wanted = term.encode("utf-8")
        view = _TermView(self.term_bytes, self.term_offsets)
        at = bisect.bisect_left(view, wanted)
        return at if at < len(view) and view[at] == wanted else -1

    def postings(self, term_number: int) -> tuple[np.ndarray, np.ndarray]:
        """(unit positions, term frequencies) of one term."""
        start, stop = int(self.post_offsets[term_number]), int(self.post_offsets[term_number + 1])
        return self.positions[start:stop], self.frequencies[start:stop]

    # -- files ---------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the segment so that ``path`` either does not exist or holds all of it.

        Written to ``path + '.tmp'``, fsynced, renamed over ``path``, and the folder fsynced, as the
        FAISS segment files are.
        """
        path = Path(path)
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for name in MEMBERS:
                    _write_member(archive, handle, name + ".npy", np.ascontiguousarray(getattr(self, name)))
                _write_member(archive, handle, "format.npy", np.array([FORMAT_VERSION], dtype=np.int64))
            handle.flush()
            os.fsync(handle.fileno())
        replace_durably(temporary, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SegmentPostings:
        """The segment at ``path``, its arrays memory-mapped read-only (nothing is read but headers)."""
        path = Path(path)
        try:
            mapped = np.memmap(path, dtype=np.uint8, mode="r")
            with zipfile.ZipFile(path) as archive:
                members = {info.filename: info for info in archive.infolist()}
                arrays = {name: _view_member(mapped, members[name + ".npy"]) for name in (*MEMBERS, "format")}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise IndexCorruptError(
                f"lexical segment {path} cannot be read ({error}); the index is damaged: rebuild it "
                f"with `kosearch index DOCS --index {path.parent}` into a new folder"
            ) from None
        version = int(arrays.pop("format")[0])
        if version != FORMAT_VERSION:
            raise IndexCorruptError(
                f"lexical segment {path} has format {version}, this kosearch reads {FORMAT_VERSION}; "
                f"upgrade kosearch or rebuild the index"
            )
        segment = cls(**arrays)
        segment._check(path)
        return segment

    def _check(self, path: Path) -> None:
        """Cheap consistency checks (O(V + n) at most is not paid: only sizes and end offsets)."""
        n, v = len(self.ids), len(self.term_offsets) - 1
        problems = []
        if len(self.lengths) != n:
            problems.append("lengths and ids differ in size")
        if len(self.post_offsets) != v + 1 or (v >= 0 and int(self.post_offsets[-1]) != len(self.positions)):
            problems.append("postings offsets do not cover the postings")
        if len(self.frequencies) != len(self.positions):
            problems.append("frequencies and positions differ in size")
        if v >= 0 and int(self.term_offsets[-1]) != len(self.term_bytes):
            problems.append("term offsets do not cover the term bytes")
        if problems:
            raise IndexCorruptError(f"lexical segment {path} is damaged ({'; '.join(problems)}); rebuild the index")


def _npy_header(array: np.ndarray, data_start: int) -> bytes:
    """A .npy (version 1.0) header padded so that the data after it starts at a multiple of ALIGN."""
    header = repr({"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape})
    fixed = len(np.lib.format.MAGIC_PREFIX) + 2 + 2  # magic, version, header length
    length = len(header) + 1
    length += (-(data_start + fixed + length)) % ALIGN
    padded = header.ljust(length - 1) + "\n"
    return np.lib.format.magic(1, 0) + len(padded).to_bytes(2, "little") + padded.encode("latin1")


def _write_member(archive: zipfile.ZipFile, handle, name: str, array: np.ndarray) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    # Local header: 30 bytes + name; zip64 adds a 20-byte extra field for members over 4 GB.
    big = array.nbytes + 4096 > zipfile.ZIP64_LIMIT
    data_start = handle.tell() + 30 + len(name.encode()) + (20 if big else 0)
    header = _npy_header(array, data_start)
    info.file_size = len(header) + array.nbytes
    with archive.open(info, "w", force_zip64=big) as member:
        member.write(header)
        if array.nbytes:
            member.write(memoryview(array).cast("B"))


def _view_member(mapped: np.ndarray, info: zipfile.ZipInfo) -> np.ndarray:
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"member {info.filename} is compressed")
    local = mapped[info.header_offset : info.header_offset + 30].tobytes()
    if local[:4] != b"PK\x03\x04":
        raise ValueError(f"member {info.filename} has no local header")
    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    preamble = mapped[start : start + 10].tobytes()
    if preamble[:6] != np.lib.format.MAGIC_PREFIX or preamble[6:8] != b"\x01\x00":
        raise ValueError(f"member {info.filename} is not a version 1.0 .npy")
    header_length = int.from_bytes(preamble[8:10], "little")
    header = eval_header(mapped[start + 10 : start + 10 + header_length].tobytes().decode("latin1"))
    dtype = np.lib.format.descr_to_dtype(header["descr"])
    shape = tuple(header["shape"])
    offset = start + 10 + header_length
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if header["fortran_order"] or offset + size > len(mapped):
        raise ValueError(f"member {info.filename} is truncated or not C-ordered")
    # A plain ndarray view of the map: memmap subclass bookkeeping on every slice costs microseconds.
    return mapped[offset : offset + size].view(np.ndarray).view(dtype).reshape(shape)


def eval_header(text: str) -> dict:
    """The dict literal of a .npy header, parsed without ``eval``."""
    import ast

    value = ast.literal_eval(text.strip())
    if not isinstance(value, dict) or not {"descr", "fortran_order", "shape"} <= set(value):
        raise ValueError("not a .npy header")
    return value


# -- ranking -------------------------------------------------------------------------------------


def _as_ids(ids: np.ndarray | Sequence[int] | None) -> np.ndarray | None:
    if ids is None:
        return None
    ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
    return ids


def _contains(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Boolean mask: which of ``values`` are in the sorted unique array ``sorted_ids``."""
    if len(sorted_ids) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return sorted_ids[at] == values


def _positions_of(segment: SegmentPostings, ids: np.ndarray) -> np.ndarray:
    """Positions in ``segment`` of those ``ids`` (sorted, unique) that it holds."""
    segment_ids = np.asarray(segment.ids)
    if len(segment_ids) == 0 or len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = np.searchsorted(ids, [segment_ids[0], segment_ids[-1] + 1])  # only ids in the segment's range
    ids = ids[lo:hi]
    at = np.minimum(np.searchsorted(segment_ids, ids), len(segment_ids) - 1)
    return at[segment_ids[at] == ids]


def _idf(df: np.ndarray, n: int, variant: IdfVariant) -> np.ndarray:
    ratio = (n - df + 0.5) / (df + 0.5)
    if variant == "lucene":
        return np.log1p(ratio)
    return np.maximum(np.log(ratio), ROBERTSON_IDF_FLOOR)


def bm25_search(
    segments: Sequence[SegmentPostings],
    query_terms: Sequence[str],
    k: int,
    *,
    excluded: np.ndarray | Sequence[int] | None = None,
    allowed: np.ndarray | Sequence[int] | None = None,
    k1: float = 1.2,
    b: float = 0.75,
    idf: IdfVariant = "robertson",
) -> list[tuple[int, float]]:
    """The ``k`` best ``(unit id, BM25 score)`` over ``segments``, best first, ties to the lower id.

    ``query_terms``: the query's tokens (a repeated term counts as often as it appears).
    ``excluded``: ids never returned (tombstones). ``allowed``: if given, only these ids are
    returned (a filter), applied before the top k is taken. Only units with a score > 0 (sharing a
    term with the query) are returned. N, avgdl and df are summed over all ``segments``.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if k1 < 0 or not 0 <= b <= 1:
        raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, not k1={k1}, b={b}")
    repeats = Counter(query_terms)
    if not repeats or not segments:
        return []
    terms = list(repeats)
    numbers = np.array([[segment.term_number(term) for term in terms] for segment in segments], dtype=np.int64)
    df = np.zeros((len(segments), len(terms)), dtype=np.int64)
    for s, segment in enumerate(segments):
        found = numbers[s] >= 0
        if found.any():
            offsets = np.asarray(segment.post_offsets)
            df[s, found] = offsets[numbers[s, found] + 1] - offsets[numbers[s, found]]
    n = sum(segment.count for segment in segments)
    average_length = sum(segment.total_length for segment in segments) / max(n, 1)
    weights = _idf(df.sum(axis=0).astype(np.float64), n, idf) * np.array([repeats[t] for t in terms], dtype=np.float64)
    excluded_ids, allowed_ids = _as_ids(excluded), _as_ids(allowed)
    if allowed_ids is not None and len(allowed_ids) == 0:
        return []
    found_ids: list[np.ndarray] = []
    found_scores: list[np.ndarray] = []
    for s, segment in enumerate(segments):
        ids, scores = _segment_top(segment, numbers[s], weights, average_length, k, k1, b, excluded_ids, allowed_ids)
        found_ids.append(ids)
        found_scores.append(scores)
    ids = np.concatenate(found_ids)
    scores = np.concatenate(found_scores)
    order = np.lexsort((ids, -scores))[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


def _segment_top(
    segment: SegmentPostings,
    numbers: np.ndarray,
    weights: np.ndarray,
    average_length: float,
    k: int,
    k1: float,
    b: float,
    excluded: np.ndarray | None,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """At most k best (ids, scores) of one segment, plus any tied with its k-th."""
    present = np.flatnonzero(numbers >= 0)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float64))
    if len(present) == 0:
        return empty
    lengths = segment.lengths
    norm_scale = k1 * b / max(average_length, 1e-12)
    norm_base = k1 * (1.0 - b)
    allowed_positions = None if allowed is None else _positions_of(segment, allowed)
    if allowed_positions is not None and _few(len(allowed_positions), len(present), segment.count):
        ids, scores = _scores_at(segment, allowed_positions, numbers[present], weights[present], norm_base, norm_scale)
        if excluded is not None and len(excluded):
            keep = ~_contains(excluded, ids)  # sorted and unique (_as_ids)
            ids, scores = ids[keep], scores[keep]
        return _best_with_ties(ids[scores > 0], scores[scores > 0], k)
    scores = np.zeros(segment.count, dtype=np.float64)
    for term in present:
        positions, frequencies = segment.postings(int(numbers[term]))
        tf = frequencies.astype(np.float64)
        norm = norm_base + norm_scale * lengths[positions]
        scores[positions] += weights[term] * tf / (tf + norm)
    if excluded is not None and len(excluded):
        scores[_positions_of(segment, excluded)] = 0.0
    if allowed_positions is not None:
        candidates = allowed_positions[scores[allowed_positions] > 0]
    else:
        candidates = np.flatnonzero(scores > 0)
    return _best_with_ties(np.asarray(segment.ids)[candidates], scores[candidates], k)


def _best_with_ties(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (ids, scores), unordered, plus any tied with the k-th (the caller orders and cuts)."""
    if len(ids) > k:
        keep = scores >= np.partition(scores, len(scores) - k)[len(scores) - k]
        ids, scores = ids[keep], scores[keep]
    return ids, scores


def _few(allowed: int, terms: int, count: int) -> bool:
    """Whether scoring ``allowed`` units one by one (a binary search per unit and term) is cheaper than
    accumulating every posting of the terms into an array of the segment's ``count`` units. Completion
    (a hundred dense candidates) and narrow filters take the first path; a 1.23M-unit segment's array
    alone is 10 MB to clear per query."""
    return allowed * max(terms, 1) * 32 < count


def _scores_at(
    segment: SegmentPostings,
    positions: np.ndarray,
    numbers: np.ndarray,
    weights: np.ndarray,
    norm_base: float,
    norm_scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, BM25) of the units at ``positions`` (sorted), the terms added in the same order and with the
    same arithmetic as the accumulating path, so both give the same floats."""
    scores = np.zeros(len(positions), dtype=np.float64)
    lengths = np.asarray(segment.lengths)[positions]
    for number, weight in zip(numbers, weights):
        term_positions, frequencies = segment.postings(int(number))
        # Search with the postings' own dtype (uint32): mixed with int64, numpy would first convert the
        # whole postings list, reading every page of it (the cost this path exists to avoid).
        at = np.searchsorted(term_positions, positions.astype(term_positions.dtype, copy=False))
        at = np.minimum(at, max(len(term_positions) - 1, 0))
        holds = np.asarray(term_positions)[at] == positions
        tf = np.asarray(frequencies)[at[holds]].astype(np.float64)
        norm = norm_base + norm_scale * lengths[holds]
        scores[holds] += weight * tf / (tf + norm)
    return np.asarray(segment.ids)[positions], scores


# -- what the store holds ------------------------------------------------------------------------


class LexicalSegments:
    """The lexical side of one store view: loaded segments by name, searched together.

    Immutable, like the view that holds it; :meth:`with_segments` makes the next generation's,
    reusing the segments both name (they are immutable files) and loading only new ones. A writer
    can add its uncommitted units as an in-memory :meth:`SegmentPostings.build` under a name no
    file has (e.g. ``"pending"``), so it sees its own writes.
    """

    def __init__(self, segments: Mapping[str, SegmentPostings] | None = None) -> None:
        self._segments = dict(segments or {})

    @classmethod
    def open(cls, folder: Path, names: Iterable[str]) -> LexicalSegments:
        """The segments ``names`` (``segment.NNNNNN``) of an index folder."""
        return cls().with_segments(names, lambda name: SegmentPostings.load(folder / lexical_file_name(name)))

    def with_segments(self, names: Iterable[str], load: Callable[[str], SegmentPostings]) -> LexicalSegments:
        """A view of exactly ``names``: loaded ones kept, others loaded with ``load(name)``."""
        return LexicalSegments({name: self._segments.get(name) or load(name) for name in names})

    @property
    def names(self) -> list[str]:
        return list(self._segments)

    def __len__(self) -> int:
        """Units in all segments, deleted ones included."""
        return sum(segment.count for segment in self._segments.values())

    def segment(self, name: str) -> SegmentPostings:
        return self._segments[name]

    def search(
        self,
        query_terms: Sequence[str],
        k: int,
        excluded: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        extra: Sequence[SegmentPostings] = (),
    ) -> list[tuple[int, float]]:
        """:func:`bm25_search` over every segment of the view (and ``extra``: a writer's pending units),
        with FTS5's idf."""
        return bm25_search(
            [*self._segments.values(), *extra], query_terms, k, excluded=excluded, allowed=allowed, k1=k1, b=b
        )

    def deleted_within(self, tombstones: np.ndarray) -> int:
        """How many of the sorted unique ``tombstones`` the segments hold (they still count in ``len``)."""
        return sum(len(_positions_of(segment, tombstones)) for segment in self._segments.values())


@dataclass(frozen=True)
class LexicalEntry:
    """What the manifest's ``lexical_segments`` records about one postings file."""

    name: str
    count: int
    min_id: int = 0
    max_id: int = -1
    crc32: int | None = None

    @property
    def file(self) -> str:
        return lexical_file_name(self.name)

    def to_dict(self) -> dict:
        return {"name": self.name, "count": self.count, "min_id": self.min_id, "max_id": self.max_id, "crc32": self.crc32}

    @classmethod
    def for_segment(cls, name: str, segment: SegmentPostings, crc32: int | None) -> LexicalEntry:
        ids = np.asarray(segment.ids)
        low, high = (int(ids[0]), int(ids[-1])) if len(ids) else (0, -1)
        return cls(name, segment.count, low, high, crc32)


def lexical_entries_of(manifest: Mapping, problem: Callable[[str], Exception]) -> list[LexicalEntry] | None:
    """The manifest's ``lexical_segments``, checked like ``segments`` (names inside the folder, each once);
    None when it has none (an index without postings files: older, or without a lexical index)."""
    raw = manifest.get("lexical_segments")
    if raw is None:
        return None
    return checked_entries(
        raw,
        key="lexical_segments",
        noun="lexical segment",
        bad_name=lambda name: f"the manifest names a lexical segment {name!r}, which is not segment.NNNNNN",
        build=lambda name, item: LexicalEntry(
            name, int(item["count"]), int(item.get("min_id", 0)), int(item.get("max_id", -1)),
            None if item.get("crc32") is None else int(item["crc32"]),
        ),
        problem=problem,
    )


def load_checked(folder: Path, entry: LexicalEntry) -> SegmentPostings:
    """A postings file whose unit count is the one its entry records (else ``IndexCorruptError``)."""
    segment = SegmentPostings.load(folder / entry.file)
    if segment.count != entry.count:
        raise IndexCorruptError(f"{folder / entry.file} holds {segment.count} units, the manifest says {entry.count}")
    return segment


LEXICAL_FILE = re.compile(r"segment\.[0-9]{6,}\.lexical\.npz(?:\.tmp)?")
"""Postings files (and their half-written temporaries) that a writer removes when no commit names them."""


def lexical_file_name(segment_name: str) -> str:
    """``segment.000003`` -> ``segment.000003.lexical.npz``, the file next to ``segment.000003.faiss``."""
    return f"{segment_name}.lexical.npz"
