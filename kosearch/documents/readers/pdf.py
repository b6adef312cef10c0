"""PDF (.pdf): the text layer of every page, with its page number, through PDFium.

Library: pypdfium2 (Apache-2.0 / BSD-3-Clause bindings to PDFium, the PDF engine of Chromium;
monthly releases). It is chosen over pypdf (BSD, pure Python) for speed: on a 40-page Korean PDF
both recover every sentence, and pypdf takes about 6 times as long
(``bench/pdf_text_extraction.py``), which adds up over a folder of reports. PDFium also carries
the CMaps of the Korean CID fonts (Adobe-Korea1) that Korean office PDFs name without embedding.

A page whose text layer is empty but which shows an image is almost always a scan. kosearch does
not run OCR, so such pages are reported by number in a warning and the rest of the file is
indexed; a PDF without text on any page is skipped with that reason. A password-protected or
damaged file is skipped with PDFium's own account of what is wrong.
"""

from __future__ import annotations

from pathlib import Path

from kosearch.documents.decode import UnreadableFile
from kosearch.documents.readers.base import ReadResult, needs_library
from kosearch.documents.readers.extracted import ExtractedText

_OCR_HINT = "kosearch does not run OCR; give it a PDF with a text layer (e.g. made by ocrmypdf)"


def read_pdf(path: Path) -> ReadResult:
    """Records of every page's text, each with ``page`` set and ``line`` counted on its page."""
    pdfium = needs_library("pypdfium2", "pypdfium2", "pdf")
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        raise UnreadableFile(_open_failure(pdfium, error)) from None
    try:
        return _read_pages(pdfium, pdf)
    finally:
        pdf.close()


def _read_pages(pdfium, pdf) -> ReadResult:
    extracted = ExtractedText()
    scanned: list[int] = []
    failed: list[str] = []
    pages = len(pdf)
    if pages == 0:
        raise UnreadableFile("the PDF has no pages")
    for number in range(1, pages + 1):
        try:
            page = pdf[number - 1]
        except pdfium.PdfiumError as error:
            failed.append(f"page {number} cannot be read ({error})")
            continue
        try:
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
            finally:
                textpage.close()
            if not extracted.add_page(text, number) and _shows_an_image(pdfium, page):
                scanned.append(number)
        except pdfium.PdfiumError as error:
            failed.append(f"page {number} cannot be read ({error})")
        finally:
            page.close()
    if not extracted.records:
        if scanned:
            raise UnreadableFile(f"no text layer on any of its {pages} page(s) (a scan?); {_OCR_HINT}")
        raise UnreadableFile(f"no text on any of its {pages} page(s)" + (f": {failed[0]}" if failed else ""))
    warnings = list(failed)
    if scanned:
        warnings.append(f"{_pages_phrase(scanned)}: no text layer (scanned?), not indexed; {_OCR_HINT}")
    return extracted.result("no text", warnings)


def _shows_an_image(pdfium, page) -> bool:
    """Whether the page draws an image (directly or inside a form XObject)."""
    for _ in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=4):
        return True
    return False


def _open_failure(pdfium, error) -> str:
    code = getattr(error, "err_code", None)
    if code == pdfium.raw.FPDF_ERR_PASSWORD:
        return "password-protected PDF: kosearch cannot read encrypted files; save a copy without a password"
    if code == pdfium.raw.FPDF_ERR_SECURITY:
        return "PDF protected by an unsupported security handler (DRM); save a copy without protection"
    if code in (pdfium.raw.FPDF_ERR_FORMAT, pdfium.raw.FPDF_ERR_FILE):
        return f"not a readable PDF (corrupt or truncated?): {error}"
    return f"PDF cannot be opened: {error}"


def _pages_phrase(numbers: list[int]) -> str:
    """``"page 3"`` or ``"pages 2-4, 7"``."""
    spans: list[str] = []
    first = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        spans.append(str(first) if first == previous else f"{first}-{previous}")
        if number is not None:
            first = previous = number
    return f"page {numbers[0]}" if len(numbers) == 1 else f"pages {', '.join(spans)}"
