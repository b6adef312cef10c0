"""Hangul word processor documents: HWP 5 (.hwp, an OLE compound file) and HWPX (.hwpx, OWPML XML
in a ZIP package), both through dochan.

Library: dochan (MIT, pure Python with no dependencies; reads HWP 5, including compressed and
distribution documents, and HWPX; 20-odd releases since 2025). Candidates weighed:

- pyhwp, the long-standing HWP 5 parser, is AGPL-3.0, which kosearch (MIT) does not take on;
- python-hwpx (Apache-2.0) reads HWPX and converts HWP 5 to HWPX on the way in, but calls itself
  alpha and is built for editing; kosearch uses it in its tests to *write* .hwp and .hwpx
  fixtures, so the reader and the writer are independent implementations;
- a home-made olefile reader of the BodyText record streams would cover plain text only, where
  dochan also handles tables, captions, notes and the container's damage and limits.

dochan never raises on a bad document; it lists problems as ``ERR:``/``WARN:`` strings. A file with
no text and an ``ERR:`` is skipped with that message; a file with text keeps its text and each
``ERR:`` becomes a warning. A password- or DRM-protected HWP file is skipped with that reason.

Body paragraphs, table cells (a merged cell once), table and picture captions, footnotes and
endnotes are read in document order; headers, footers and memos are left out. Each paragraph with
text is one record and ``line`` is its number; pages are a matter of layout and are not stored.
"""

from __future__ import annotations

from pathlib import Path

from kosearch.documents.decode import UnreadableFile
from kosearch.documents.readers.base import ReadResult, needs_library
from kosearch.documents.readers.extracted import ExtractedText

MAX_DEPTH = 32
"""Tables and notes nested deeper than this are not read (only a hostile file nests so deep)."""
_NOTE_TYPES = {"footnote", "endnote"}


def read_hwp(path: Path) -> ReadResult:
    """Records of an HWP 5 document's paragraphs and table cells."""
    return _read_hangul(path, "HWP")


def read_hwpx(path: Path) -> ReadResult:
    """Records of an HWPX document's paragraphs and table cells."""
    return _read_hangul(path, "HWPX")


HWP3_SIGNATURE = b"HWP Document File V3"
"""How an HWP 3 file (Hangul 97 and older, not an OLE file) begins; neither reader handles it."""


def _read_hangul(path: Path, kind: str) -> ReadResult:
    with path.open("rb") as handle:
        if handle.read(len(HWP3_SIGNATURE)) == HWP3_SIGNATURE:
            raise UnreadableFile(
                "an HWP 3 document (Hangul 97 or older); kosearch reads HWP 5 and HWPX: save it again in a newer Hangul"
            )
    dochan = needs_library("dochan", "dochan", kind.lower())
    try:
        document = dochan.Dochan(str(path)).doc
    except Exception as error:  # dochan reports parse failures in doc.errors; this is anything else
        raise UnreadableFile(f"not a readable {kind} file: {type(error).__name__}: {error}") from None
    header = document.file_header
    if header is not None and (header.is_encrypted or header.is_drm):
        raise UnreadableFile(
            f"password- or DRM-protected {kind} document: kosearch cannot decrypt it; save a copy without protection"
        )
    extracted = ExtractedText()
    for section in document.sections:
        _add_elements(section.elements, extracted, depth=0)
    errors = [message for message in document.errors if message.startswith("ERR")]
    if not extracted.records and errors:
        raise UnreadableFile(f"not a readable {kind} file (corrupt or truncated?): dochan says {errors[0]!r}")
    warnings = [f"partly unreadable: dochan says {message!r}" for message in errors]
    return extracted.result("no text (the document is empty or holds only images)", warnings)


def _add_elements(elements, extracted: ExtractedText, depth: int) -> None:
    from dochan.model.document import Paragraph
    from dochan.model.header_footer import Footnote
    from dochan.model.image import Image
    from dochan.model.table import Table

    if depth > MAX_DEPTH:
        return
    for element in elements:
        if isinstance(element, Paragraph):
            extracted.add_paragraph(element.text)
        elif isinstance(element, Table):
            for row in element.rows:
                for cell in row:
                    if not cell.is_merged_away:
                        _add_elements(cell.paragraphs, extracted, depth + 1)
            _add_elements(element.caption, extracted, depth + 1)
        elif isinstance(element, Image):
            _add_elements(element.caption, extracted, depth + 1)
        elif isinstance(element, Footnote) and element.type in _NOTE_TYPES:
            _add_elements(element.paragraphs, extracted, depth + 1)
        # Headers, footers and memos (Footnote of type 'comment') are left out on purpose.
