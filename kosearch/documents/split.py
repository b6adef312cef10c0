"""Korean sentence splitting with Kiwi, keeping every sentence's place in the file.

Kiwi splits on morphology (a sentence can end in ``-다`` without a full stop), which rule-based
splitters get wrong for Korean. Loading it takes about a second, so there is one instance per
process, made on first use. All records of a file go to Kiwi in one call: given an iterable it
spreads the texts over its worker threads.

Sentence text is never rewritten: for plain text ``file_text[start:end] == sentence.text``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from kosearch.documents.records import Record
from kosearch.documents.types import Sentence

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

SplitMode = Literal["sentence", "passage"]
DEFAULT_MAX_CHARS = 1000
"""Longer sentences are cut at whitespace: e5-style encoders read at most 512 tokens, about 1000
Korean characters, and a run-on 'sentence' is usually a table or a list that lost its newlines."""
DEFAULT_PASSAGE_CHARS = 300
DEFAULT_PASSAGE_OVERLAP = 1
"""Sentences a passage shares with the one before it, so an answer cut by a passage boundary is
still whole in one of them."""
KIWI_CHUNK_CHARS = 4000
"""Longer records reach Kiwi in pieces: its time grows faster than linearly with one text's length
(a 760,000-character line takes minutes whole, seconds in pieces), and pieces run in parallel."""

_kiwi: Kiwi | None = None
_kiwi_lock = threading.Lock()


def get_kiwi() -> Kiwi:
    """The process-wide Kiwi instance, created on first use."""
    global _kiwi
    if _kiwi is None:
        with _kiwi_lock:
            if _kiwi is None:
                from kiwipiepy import Kiwi

                # The typo and multi-word dictionaries serve morphological analysis, not sentence
                # boundaries; leaving them out makes loading four times faster.
                # num_workers=-1: one thread per core, used when a file's records go in as one batch.
                _kiwi = Kiwi(num_workers=-1, load_typo_dict=False, load_multi_dict=False)
    return _kiwi


def release_kiwi() -> None:
    """Forget the process-wide Kiwi instance (its memory goes once no caller still holds it); the next
    ``get_kiwi`` makes a new one. For a long phase of a run that needs no Kiwi (an indexing run's merge)."""
    global _kiwi
    with _kiwi_lock:
        _kiwi = None


def split_records(
    records: Sequence[Record],
    *,
    source: str | None = None,
    mode: SplitMode = "sentence",
    max_chars: int = DEFAULT_MAX_CHARS,
    passage_chars: int = DEFAULT_PASSAGE_CHARS,
    passage_overlap: int = DEFAULT_PASSAGE_OVERLAP,
) -> list[Sentence]:
    """Split records into sentences (or passages of consecutive sentences) located in the file.

    ``source`` is the decoded file text; passages made only of plain-text records take their text
    from it, so the whitespace between sentences is the file's own. Consecutive passages of one
    block share ``passage_overlap`` sentences (0: passages that do not overlap).
    """
    if passage_overlap < 0:
        raise ValueError("passage_overlap must be at least 0")
    if mode not in ("sentence", "passage"):
        raise ValueError(f"mode must be 'sentence' or 'passage', not {mode!r}")
    if max_chars < 1 or passage_chars < 1:
        raise ValueError("max_chars and passage_chars must be at least 1")
    pieces = list(_sentence_pieces(records, max_chars))
    if mode == "sentence":
        return [_to_sentence(record, begin, stop) for record, begin, stop in pieces]
    return list(_passages(pieces, passage_chars, source, passage_overlap))


def split_text(
    text: str,
    *,
    mode: SplitMode = "sentence",
    max_chars: int = DEFAULT_MAX_CHARS,
    passage_chars: int = DEFAULT_PASSAGE_CHARS,
) -> list[Sentence]:
    """Split one plain string as a single record; offsets are into ``text``."""
    record = Record(text, 1, 0, len(text))
    return split_records([record], source=text, mode=mode, max_chars=max_chars, passage_chars=passage_chars)


def _sentence_pieces(records: Sequence[Record], max_chars: int) -> Iterator[tuple[Record, int, int]]:
    """``(record, begin, stop)`` for every kept sentence, as offsets into ``record.text``."""
    chunks = [(record, start, stop) for record in records for start, stop in _kiwi_chunks(record.text)]
    if not chunks:
        return
    results = get_kiwi().split_into_sents(
        (record.text[start:stop] for record, start, stop in chunks), return_sub_sents=False
    )
    for (record, offset, _), sentences in zip(chunks, results):
        for sentence in sentences:
            for begin, stop in _cut_long(record.text, offset + sentence.start, offset + sentence.end, max_chars):
                if _has_content(record.text, begin, stop):
                    yield record, begin, stop


def _kiwi_chunks(text: str, limit: int = KIWI_CHUNK_CHARS) -> list[tuple[int, int]]:
    """Cut a long record into pieces Kiwi handles quickly, at a line break, a sentence end or a space."""
    chunks: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > limit:
        window_start, window_stop = start + limit // 2, start + limit
        cut = text.rfind("\n", window_start, window_stop)
        if cut < 0:
            ends = [text.rfind(mark, window_start, window_stop) for mark in (". ", "? ", "! ", "다 ")]
            cut = max(ends) + 1 if max(ends) >= 0 else text.rfind(" ", window_start, window_stop)
        if cut <= start:
            cut = window_stop  # no space in the window: cut mid-word (max_chars would cut there anyway)
        chunks.append((start, cut))
        start = cut
    chunks.append((start, len(text)))
    return chunks


def _has_content(text: str, begin: int, stop: int) -> bool:
    """False for sentences of punctuation, symbols or emoji only, which carry nothing to search for."""
    return any(char.isalnum() for char in text[begin:stop])


def _cut_long(text: str, begin: int, stop: int, max_chars: int) -> Iterable[tuple[int, int]]:
    """Pieces of at most ``max_chars``, cut at the last whitespace that fits (mid-word only if none)."""
    while stop - begin > max_chars:
        limit = begin + max_chars
        cut = limit
        while cut > begin and not text[cut].isspace():
            cut -= 1
        if cut == begin:
            cut = limit
        piece_stop = cut
        while piece_stop > begin and text[piece_stop - 1].isspace():
            piece_stop -= 1
        yield begin, piece_stop
        begin = cut
        while begin < stop and text[begin].isspace():
            begin += 1
    if stop > begin:
        yield begin, stop


def _to_sentence(record: Record, begin: int, stop: int) -> Sentence:
    start, end = record.span(begin, stop)
    return Sentence(record.text[begin:stop], record.line_at(begin), start, end, record.page, record.fields)


def _passages(
    pieces: Sequence[tuple[Record, int, int]], passage_chars: int, source: str | None, overlap: int = 0
) -> Iterator[Sentence]:
    """Consecutive sentences of one block grouped while the passage stays within ``passage_chars``.

    A sentence longer than ``passage_chars`` becomes a passage of its own rather than being cut.
    The next passage of the same block starts with the last ``overlap`` sentences of the one before
    when they fit with its next sentence; a passage holding nothing new is not made.
    """

    def too_long(group: list[tuple[Record, int, int]]) -> bool:
        return len(_passage(group, source).text) > passage_chars

    group: list[tuple[Record, int, int]] = []
    fresh = 0  # sentences of ``group`` that no passage made so far holds
    for piece in pieces:
        if group and (piece[0].block != group[0][0].block or too_long([*group, piece])):
            if fresh:
                yield _passage(group, source)
            carried = group[-overlap:] if overlap and piece[0].block == group[0][0].block else []
            group = carried if carried and not too_long([*carried, piece]) else []
            fresh = 0
        group.append(piece)
        fresh += 1
    if group and fresh:
        yield _passage(group, source)


def _passage(group: Sequence[tuple[Record, int, int]], source: str | None) -> Sentence:
    first_record, first_begin, first_stop = group[0]
    last_record, last_begin, last_stop = group[-1]
    start = first_record.span(first_begin, first_stop)[0]
    end = last_record.span(last_begin, last_stop)[1]
    if source is not None and all(record.verbatim for record, _, _ in group):
        text = source[start:end]
    else:
        text = _joined_text(group)
    return Sentence(text, first_record.line_at(first_begin), start, end, first_record.page, first_record.fields)


def _joined_text(group: Sequence[tuple[Record, int, int]]) -> str:
    """Sentences of one record keep the text between them; sentences of different records meet at a newline."""
    parts: list[str] = []
    previous: tuple[Record, int] | None = None
    for record, begin, stop in group:
        if previous is not None:
            previous_record, previous_stop = previous
            parts.append(record.text[previous_stop:begin] if previous_record is record else "\n")
        parts.append(record.text[begin:stop])
        previous = (record, stop)
    return "".join(parts)
