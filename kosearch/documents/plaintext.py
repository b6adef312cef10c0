"""Plain text (.txt): paragraphs and lines as records, with no change to the text at all.

Kiwi does not treat a newline as a sentence boundary, so the reader must decide where lines end
sentences. In Korean text files a line is usually a unit of its own (a title, a list entry, one
review per line), so a line break ends a record, except where the paragraph looks hard-wrapped:
a long line that does not finish a sentence is joined to the next one.
"""

from __future__ import annotations

from kosearch.documents.records import Record, trimmed_span, verbatim_record

_SENTENCE_FINAL = frozenset(".!?。！？…~:;)]}\"'”’」』》〉>다요죠까")
"""Characters that end a line which finishes a sentence (punctuation, closing brackets and quotes,
and the endings of Korean declaratives, requests and questions)."""
WRAP_MIN_CHARS = 30
"""Shorter lines are never treated as wrapped: titles, labels and short entries stay on their own."""
WRAP_MIN_SHARE = 0.75
"""A wrapped line fills most of the width of the paragraph's longest line."""


def read_plain_text(source: str) -> list[Record]:
    """Split plain text into records: one per line, or per run of hard-wrapped lines."""
    records: list[Record] = []
    for block, paragraph in enumerate(_paragraphs(source)):
        longest = max(end - start for start, end, _ in paragraph)
        group_start, _, group_line = paragraph[0]
        for index, (start, end, _) in enumerate(paragraph):
            is_last = index == len(paragraph) - 1
            if is_last or not _is_wrapped(source[start:end], longest):
                records.append(verbatim_record(source, group_start, end, group_line, block))
                if not is_last:
                    group_start, _, group_line = paragraph[index + 1]
    return records


def _paragraphs(source: str) -> list[list[tuple[int, int, int]]]:
    """Blank-line separated runs of ``(start, end, line)`` for each line's trimmed content."""
    paragraphs: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    position = 0
    for line_number, line in enumerate(source.split("\n"), start=1):
        start, end = trimmed_span(source, position, position + len(line))
        position += len(line) + 1
        if start == end:
            if current:
                paragraphs.append(current)
                current = []
        else:
            current.append((start, end, line_number))
    if current:
        paragraphs.append(current)
    return paragraphs


def _is_wrapped(line: str, longest: int) -> bool:
    return (
        len(line) >= WRAP_MIN_CHARS
        and len(line) >= WRAP_MIN_SHARE * longest
        and line[-1] not in _SENTENCE_FINAL
    )
