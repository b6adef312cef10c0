"""HTML (.html, .htm): the visible text, each block element a record, located in the file.

The standard library's ``html.parser`` is enough here (browsers' leniency is what it implements,
and nothing is fetched or executed), so no library is added. Text inside ``script``, ``style``,
``template`` and ``noscript`` is not visible and is left out; comments and declarations too.
A block element (a paragraph, heading, list item, table cell, ``<br>``...) ends a record, inline
elements (``<b>``, ``<a>``, ``<span>``) do not, so a sentence marked up in the middle stays whole.

Offsets point into the decoded file, like Markdown's: character references (``&amp;``, ``&#54620;``)
are decoded, and each decoded character maps to the whole reference. Runs of whitespace become one
space, or the newlines they contain, so ``line`` is the file line where a sentence starts.
"""

from __future__ import annotations

import html
from bisect import bisect_right
from collections.abc import Sequence
from html.parser import HTMLParser

from kosearch.documents.readers.base import ReadResult
from kosearch.documents.records import Record, mapped_record

HIDDEN = frozenset({"script", "style", "template", "noscript"})
BLOCKS = frozenset(
    "address article aside blockquote br caption dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr legend li main nav ol option p pre section summary table "
    "tbody td tfoot th thead title tr ul body head html".split()
)


def read_html(source: str, text_fields: Sequence[str] | None = None) -> ReadResult:
    """Records of the visible text of an HTML document (``text_fields`` does not apply)."""
    parser = _VisibleText(source)
    parser.feed(source)
    parser.close()
    parser.end_block()
    return ReadResult(parser.records)


class _VisibleText(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)  # references come separately, so offsets stay exact
        self.source = source
        self.line_starts = [0] + [index + 1 for index, char in enumerate(source) if char == "\n"]
        self.records: list[Record] = []
        self.chars: list[tuple[str, int, int]] = []
        self.hidden = 0
        self.block = 0

    # -- positions ------------------------------------------------------------------------------

    def position(self) -> int:
        """File offset of the parser's current position (``getpos`` gives line and column)."""
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def line_of(self, offset: int) -> int:
        return bisect_right(self.line_starts, offset)

    # -- structure ------------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in HIDDEN:
            self.hidden += 1
        elif tag in BLOCKS:
            self.end_block()

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCKS:
            self.end_block()

    def end_block(self) -> None:
        record = mapped_record(_collapse_whitespace(self.chars), 0, self.block)
        self.chars = []
        if record is not None:
            record.line = self.line_of(record.start)
            self.records.append(record)
            self.block += 1

    # -- text -----------------------------------------------------------------------------------

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        start = self.position()
        if self.chars and "\n" in self.source[self.chars[-1][2] : start]:
            # A tag or comment between two runs of text broke a line: keep the line count true.
            gap_start = self.chars[-1][2]
            for at in range(gap_start, start):
                if self.source[at] == "\n":
                    self.chars.append(("\n", at, at + 1))
        self.chars.extend((char, start + index, start + index + 1) for index, char in enumerate(data))

    def handle_entityref(self, name: str) -> None:
        self._reference(name)

    def handle_charref(self, name: str) -> None:
        self._reference("#" + name)

    def _reference(self, name: str) -> None:
        if self.hidden:
            return
        start = self.position()
        end = start + 1 + len(name)
        if self.source.startswith(";", end):
            end += 1
        for char in html.unescape(self.source[start:end]):
            self.chars.append((char, start, end))


def _collapse_whitespace(chars: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Each run of whitespace becomes its newlines, or one space if it has none (as browsers show it)."""
    kept: list[tuple[str, int, int]] = []
    run: list[tuple[str, int, int]] = []
    for item in [*chars, ("x", -1, -1)]:
        if item[0].isspace():
            run.append(item)
            continue
        if run:
            newlines = [(char, start, end) for char, start, end in run if char == "\n"]
            kept.extend(newlines or [(" ", run[0][1], run[0][2])])
            run = []
        kept.append(item)
    return kept[:-1]
