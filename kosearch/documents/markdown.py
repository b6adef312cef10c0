"""Markdown (.md): keep the prose, drop the markup, remember where every kept character was.

Code blocks, front matter, heading hashes, list bullets, table pipes, link targets, HTML tags and
emphasis markers would otherwise be embedded as if they were words. Instead of rewriting the text,
the reader decides for each character whether it is prose, so every sentence still maps to its
exact characters in the file. Paragraphs follow Markdown's own rule: consecutive lines are one
paragraph (a soft line break is not a sentence boundary); headings, list items, table cells and
blank lines start new records (a table's header row is left out: it labels, it
does not say anything). Indented code blocks are not recognised: in practice they are rare
next to fenced ones and easily confused with list continuations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kosearch.documents.records import Record, mapped_record

# Patterns applied with ``pattern.match(line, pos)`` have no '^': match() is anchored at ``pos`` already,
# while '^' would only match at the very start of the line.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]^]+\]:\s*\S")
_FOOTNOTE_DEFINITION = re.compile(r" {0,3}\[\^[^\]]+\]:[ \t]*")
_BLOCKQUOTE = re.compile(r" {0,3}>[ \t]?")
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]+|$)")
_HEADING_CLOSE = re.compile(r"[ \t]+#+[ \t]*$")
# At most three digits, so a line opening with a date ("2024. 3. 14.") is not taken for a list.
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_TABLE_PIPE = re.compile(r"(?<!\\)\|")

_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]\n]*)\](\([^)\n]*\)|\[[^\]\n]*\])")
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):[^>\s]*>")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--.*?-->")
_FOOTNOTE_REFERENCE = re.compile(r"\[\^[^\]\s]+\]")
_STRONG_OR_STRIKE = re.compile(r"\*\*|__|~~")
_ESCAPE = re.compile(r"\\(?=[!-/:-@\[-`{-~])")


@dataclass
class _Block:
    """Lines collected for one record: ``(char, file_start, file_end)`` for every kept character."""

    line: int
    chars: list[tuple[str, int, int]] = field(default_factory=list)


def read_markdown(source: str) -> list[Record]:
    """Split a Markdown document into prose records whose characters map back into ``source``."""
    return _MarkdownReader(source).read()


class _MarkdownReader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.records: list[Record] = []
        self.paragraph: _Block | None = None

    def read(self) -> list[Record]:
        lines = self.source.split("\n")
        position = 0
        fence: str | None = None
        skip_until = _front_matter_end(lines)
        in_comment = False
        in_table = False
        quote_depth = 0
        for index, line in enumerate(lines):
            line_start, line_number = position, index + 1
            position += len(line) + 1
            if index < skip_until:
                continue
            if in_comment:
                if "-->" in line:
                    in_comment = False
                self._end_paragraph()
                continue
            if fence is not None:
                if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                    fence = None
                continue
            fence_match = _FENCE.match(line)
            if fence_match:
                fence = fence_match.group(1)
                self._end_paragraph()
                continue
            if line.lstrip().startswith("<!--") and "-->" not in line:
                in_comment = True
                self._end_paragraph()
                continue
            offset, depth = 0, 0
            while quote := _BLOCKQUOTE.match(line, offset):  # '>' markers are not prose
                offset, depth = quote.end(), depth + 1
            if depth != quote_depth:  # entering or leaving a quotation ends the paragraph
                self._end_paragraph()
                quote_depth = depth
            content = line[offset:]
            if not content.strip() or _THEMATIC_BREAK.match(content) or _REFERENCE_DEFINITION.match(content):
                self._end_paragraph()
                in_table = False
                continue
            if _SETEXT_UNDERLINE.match(content) and self.paragraph is not None:
                self._end_paragraph()  # the paragraph above was a heading: already its own record
                continue
            next_line = lines[index + 1] if index + 1 < len(lines) else ""
            if _TABLE_SEPARATOR.match(content) and ("|" in content or in_table):
                continue
            starts_table = "|" in content and "|" in next_line and bool(_TABLE_SEPARATOR.match(next_line))
            if starts_table or (in_table and "|" in content):
                self._end_paragraph()
                if in_table:  # the header row only labels the columns
                    self._table_row(line, line_start + offset, offset, line_number)
                in_table = True
                continue
            in_table = False
            self._text_line(line, line_start, offset, line_number)
        self._end_paragraph()
        return self.records

    def _text_line(self, line: str, line_start: int, offset: int, line_number: int) -> None:
        end = len(line)
        heading = _HEADING.match(line, offset)
        item = None if heading else _LIST_ITEM.match(line, offset)
        footnote = None if heading or item else _FOOTNOTE_DEFINITION.match(line, offset)
        if heading:
            self._end_paragraph()
            closing = _HEADING_CLOSE.search(line, heading.end())
            end = closing.start() if closing else end
            self._emit(_Block(line_number, _inline_chars(line[heading.end() : end], line_start + heading.end())))
            return
        marker = item or footnote
        if marker:
            self._end_paragraph()
            offset = marker.end()
        if self.paragraph is None:
            self.paragraph = _Block(line_number)
        elif self.paragraph.chars:
            # A soft line break: keep it as the file's own newline character.
            newline_at = line_start - 1
            self.paragraph.chars.append(("\n", newline_at, newline_at + 1))
        self.paragraph.chars.extend(_inline_chars(line[offset:end], line_start + offset))

    def _table_row(self, line: str, content_start: int, offset: int, line_number: int) -> None:
        content = line[offset:]
        cell_start = 0
        for pipe in [*_TABLE_PIPE.finditer(content), None]:
            cell_end = pipe.start() if pipe else len(content)
            self._emit(_Block(line_number, _inline_chars(content[cell_start:cell_end], content_start + cell_start)))
            cell_start = pipe.end() if pipe else cell_end

    def _end_paragraph(self) -> None:
        if self.paragraph is not None:
            self._emit(self.paragraph)
            self.paragraph = None

    def _emit(self, block: _Block) -> None:
        # Each record is its own block: a Markdown paragraph already groups the lines that belong together.
        record = mapped_record(block.chars, block.line, block=len(self.records))
        if record is not None:
            self.records.append(record)


def _front_matter_end(lines: list[str]) -> int:
    """Index of the first line after a YAML front-matter block, or 0 if there is none."""
    if not lines or lines[0].strip() != "---":
        return 0
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            return index + 1
    return 0


def _inline_chars(text: str, file_start: int) -> list[tuple[str, int, int]]:
    """The prose characters of one line's inline content, each with its file offsets."""
    removed = bytearray(len(text))
    protected = bytearray(len(text))

    def remove(start: int, end: int) -> None:
        for index in range(start, end):
            if not protected[index]:
                removed[index] = 1

    for match in _CODE_SPAN.finditer(text):
        # Keep the code's words (`kosearch index` is part of the sentence), drop the backticks.
        remove(match.start(1), match.end(1))
        remove(match.end(2), match.end())
        for index in range(match.start(2), match.end(2)):
            protected[index] = 1
    for pattern in (_AUTOLINK, _HTML_TAG, _FOOTNOTE_REFERENCE):
        for match in pattern.finditer(text):
            remove(match.start(), match.end())
    for match in _IMAGE_OR_LINK.finditer(text):
        remove(match.start(), match.start(1))  # '[' or '!['
        remove(match.end(1), match.end())  # '](url)' or '][ref]'
    for pattern in (_STRONG_OR_STRIKE, _ESCAPE):
        for match in pattern.finditer(text):
            remove(match.start(), match.end())
    for index, char in enumerate(text):
        if char in "*_" and not removed[index] and _is_emphasis_marker(text, index):
            remove(index, index + 1)
    return [(char, file_start + index, file_start + index + 1) for index, char in enumerate(text) if not removed[index]]


def _is_emphasis_marker(text: str, index: int) -> bool:
    """A lone * or _ that opens or closes emphasis (not ``2 * 3``, not ``snake_case``)."""
    before = text[index - 1] if index > 0 else " "
    after = text[index + 1] if index + 1 < len(text) else " "
    if text[index] == "*":
        return not (before.isspace() and after.isspace())
    return not (before.isalnum() and after.isalnum())
