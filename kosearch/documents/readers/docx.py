"""Word documents (.docx): body paragraphs and table cells, in reading order, through python-docx.

Library: python-docx (MIT; the standard reader and writer of WordprocessingML, maintained since
2013, release 1.2 in 2025). Its ``iter_inner_content`` yields paragraphs and tables in the order
they appear, and table cells hold paragraphs (and tables) of their own, so one walk covers the body.
A merged cell is reported once. Headers, footers and comments are left out: they repeat on every
page or are not part of the text. Text boxes inside drawings are not read by python-docx.

Each paragraph (or cell paragraph) with text is one record; ``line`` is its number. An encrypted
document is an OLE file, not a ZIP package, and is skipped with that reason (see
:mod:`kosearch.documents.readers.packages`).
"""

from __future__ import annotations

from pathlib import Path

from kosearch.documents.decode import UnreadableFile
from kosearch.documents.readers.base import ReadResult, needs_library
from kosearch.documents.readers.extracted import ExtractedText
from kosearch.documents.readers.packages import check_zip_package

MAX_TABLE_DEPTH = 32
"""Tables nested deeper than this are not read (only a hostile file nests them so deep)."""


def read_docx(path: Path) -> ReadResult:
    """Records of the body's paragraphs and table cells; ``line`` is the paragraph number."""
    if path.name.startswith("~$"):
        raise UnreadableFile("a Word lock file (~$...), left while the document is open in Word; not a document")
    check_zip_package(path, "DOCX")
    docx = needs_library("docx", "python-docx", "docx")
    extracted = ExtractedText()
    try:
        document = docx.Document(str(path))
        _add_blocks(document, extracted, docx, depth=0)
    except UnreadableFile:
        raise
    except Exception as error:  # python-docx lets zipfile, KeyError and lxml errors through on broken parts
        raise UnreadableFile(f"not a readable DOCX file (corrupt?): {type(error).__name__}: {error}") from None
    return extracted.result("no text (the document is empty or holds only images)")


def _add_blocks(container, extracted: ExtractedText, docx, depth: int) -> None:
    for block in container.iter_inner_content():
        if isinstance(block, docx.text.paragraph.Paragraph):
            extracted.add_paragraph(block.text)
        elif isinstance(block, docx.table.Table) and depth < MAX_TABLE_DEPTH:
            seen: set = set()  # the <w:tc> elements themselves: lxml keeps one proxy per element held
            for row in block.rows:
                for cell in row.cells:
                    # A merged cell comes back once per grid column it spans, as the same <w:tc>.
                    if cell._tc not in seen:
                        seen.add(cell._tc)
                        _add_blocks(cell, extracted, docx, depth + 1)
