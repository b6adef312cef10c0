"""Writers of small Korean documents in the binary formats kosearch reads, for tests and the sample corpus.

Each format is written by its own library (reportlab for PDF, python-docx, python-hwpx for HWPX and
HWP 5), so the readers are checked against files made by code independent of them. A document is a
list of blocks: a string is a paragraph, a list of rows (lists of cell strings) is a table. The
output is deterministic: the same blocks give the same bytes, so generated files can be committed.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

Block = str | Sequence[Sequence[str]]
KOREAN_FONT = "HYSMyeongJo-Medium"
"""One of reportlab's built-in CID fonts (Adobe-Korea1): no font file is needed, and the PDF names
the font instead of embedding it, as many Korean office PDFs do."""


def write_pdf(
    path: Path,
    pages: Sequence[Sequence[str]],
    *,
    image_only_pages: Sequence[int] = (),
    password: str | None = None,
) -> Path:
    """A PDF with one page per entry of ``pages`` (paragraphs, wrapped to the page width).

    Pages whose 1-based number is in ``image_only_pages`` show a grey image and no text, like a
    scan. With ``password`` the file is encrypted with that user password (RC4, 128 bits).
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate
    from reportlab.lib.pdfencrypt import StandardEncryption

    pdfmetrics.registerFont(UnicodeCIDFont(KOREAN_FONT))
    style = ParagraphStyle("korean", fontName=KOREAN_FONT, fontSize=11, leading=17, spaceAfter=8)
    story: list = []
    for number, paragraphs in enumerate(pages, start=1):
        if number > 1:
            story.append(PageBreak())
        if number in image_only_pages:
            story.append(Image(_grey_png(), width=300, height=200))
        story.extend(Paragraph(_escape(text), style) for text in paragraphs)
    encrypt = StandardEncryption(password, canPrint=1, strength=128) if password else None
    path.parent.mkdir(parents=True, exist_ok=True)
    SimpleDocTemplate(str(path), pagesize=A4, invariant=True, encrypt=encrypt, title="kosearch", author="").build(story)
    return path


def write_docx(path: Path, blocks: Sequence[Block]) -> Path:
    """A Word document; the first block is a heading if it is a string."""
    import docx

    document = docx.Document()
    for index, block in enumerate(blocks):
        if isinstance(block, str):
            if index == 0:
                document.add_heading(block, level=1)
            else:
                document.add_paragraph(block)
        else:
            table = document.add_table(rows=len(block), cols=len(block[0]))
            for row, cells in enumerate(block):
                for column, text in enumerate(cells):
                    table.cell(row, column).text = text
    properties = document.core_properties  # fixed, so the bytes do not depend on the clock
    properties.author = properties.last_modified_by = "kosearch"
    properties.created = properties.modified = datetime(2024, 1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(_fixed_zip_times(buffer.getvalue()))
    return path


def write_hangul(path: Path, blocks: Sequence[Block], format: str = "hwpx") -> Path:
    """An HWPX (``format="hwpx"``) or HWP 5 (``format="hwp"``) document written by python-hwpx."""
    from hwpx import HwpxDocument

    document = HwpxDocument.new()
    first = True
    for block in blocks:
        if isinstance(block, str):
            if first:
                document.paragraphs[0].text = block
            else:
                document.add_paragraph(block)
        else:
            table = document.add_table(len(block), len(block[0]))
            for row, cells in enumerate(block):
                for column, text in enumerate(cells):
                    table.set_cell_text(row, column, text)
        first = False
    # python-hwpx gives paragraphs and tables random ids; numbered in order instead, the bytes repeat.
    package = _fixed_zip_times(document.to_bytes(), _number_ids)
    data = package if format == "hwpx" else HwpxDocument.open(package).to_bytes(format="hwp")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _number_ids(name: str, data: bytes) -> bytes:
    if not (name.startswith("Contents/section") and name.endswith(".xml")):
        return data
    counter = iter(range(1, 1 << 31))
    return re.sub(rb' id="[1-9][0-9]*"', lambda _: b' id="%d"' % next(counter), data)


def encrypt_docx(source: Path, target: Path, password: str) -> Path:
    """An encrypted copy of a DOCX (ECMA-376 agile encryption, as Word writes it), by msoffcrypto-tool."""
    from msoffcrypto.format.ooxml import OOXMLFile

    with source.open("rb") as plain, target.open("wb") as encrypted:
        OOXMLFile(plain).encrypt(password, encrypted)
    return target


def mark_hwp_encrypted(path: Path) -> Path:
    """Set the 'password' bit of an HWP 5 file's FileHeader (olefile rewrites the stream in place)."""
    import olefile

    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        header = bytearray(ole.openstream("FileHeader").read())
        properties = struct.unpack_from("<I", header, 36)[0]
        struct.pack_into("<I", header, 36, properties | 0b10)
        ole.write_stream("FileHeader", bytes(header))
    return path


def _grey_png() -> io.BytesIO:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (60, 40), 128).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def _escape(text: str) -> str:
    """reportlab paragraphs are mini-markup: the document text must not be read as tags."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fixed_zip_times(data: bytes, change: Callable[[str, bytes], bytes] | None = None) -> bytes:
    """The same ZIP package with every member dated 2024-01-01 (and passed through ``change``), so the
    output does not depend on the clock."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = member.compress_type
            info.external_attr = member.external_attr
            content = source.read(member.filename)
            target.writestr(info, change(member.filename, content) if change else content)
    return buffer.getvalue()
