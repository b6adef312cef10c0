"""PDF, DOCX, HWPX, HWP 5 and HTML: the text, its locations, and the reasons a file is skipped.

Every fixture is written here by the format's own library (see document_writers.py): reportlab with
a Korean CID font for PDF, python-docx, python-hwpx for HWPX and HWP 5, msoffcrypto-tool to encrypt
a DOCX. The readers (pypdfium2, python-docx, dochan, html.parser) are other code, so a passing test
means the two sides agree on the file, not that a reader read back its own output.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import kosearch
from document_writers import encrypt_docx, mark_hwp_encrypted, write_docx, write_hangul, write_pdf
from kosearch.documents import Document, SkippedFile, iter_documents, read_document
from kosearch.documents.readers import READERS, BinaryReader, read_records
from kosearch.documents.split import split_records
from kosearch_testing import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]

NOTICE_PAGE_1 = [
    "햇살동 주민센터는 건물 안전 점검을 위해 3월 14일 목요일 하루 동안 모든 민원 업무를 쉬며, "
    "급한 서류는 가까운 달빛동 주민센터에서 발급받을 수 있습니다. 양해해 주셔서 고맙습니다.",
    "점검 시간은 오전 9시부터 오후 6시까지입니다.",
]
NOTICE_PAGE_2 = ["햇살 도서관은 매주 월요일에 문을 닫습니다. 대출한 책은 무인 반납함에 넣어 주세요."]
MINUTES = [
    "주민자치회 회의록",
    "회의는 4월 2일 저녁 7시에 주민센터 2층 회의실에서 열렸다.",
    [["안건", "결정"], ["놀이터 보수", "놀이터 바닥 고무판을 5월 안에 교체하기로 했다."], ["벚꽃 축제", "축제 기간을 이틀에서 사흘로 늘렸다."]],
    "다음 회의는 5월 7일에 열린다.",
]


def flat(text: str) -> str:
    """Whitespace runs as one space: a PDF line break inside a sentence is a space to a reader."""
    return re.sub(r"\s+", " ", text).strip()


def sentences(document: Document) -> list[tuple[str, int | None, int]]:
    return [(flat(s.text), s.page, s.line) for s in document.sentences]


def read(path: Path) -> Document:
    item = read_document(path)
    assert isinstance(item, Document), item
    return item


def skipped(path: Path) -> SkippedFile:
    item = read_document(path)
    assert isinstance(item, SkippedFile), item
    return item


# -- PDF ----------------------------------------------------------------------------------------------


def test_pdf_text_comes_with_page_numbers_and_lines_on_the_page(tmp_path):
    document = read(write_pdf(tmp_path / "안내문.pdf", [NOTICE_PAGE_1, NOTICE_PAGE_2]))
    assert document.format == "pdf" and document.encoding == "binary"
    found = sentences(document)
    assert found == [
        ("햇살동 주민센터는 건물 안전 점검을 위해 3월 14일 목요일 하루 동안 모든 민원 업무를 쉬며, "
         "급한 서류는 가까운 달빛동 주민센터에서 발급받을 수 있습니다.", 1, 1),
        ("양해해 주셔서 고맙습니다.", 1, 2),  # the paragraph wrapped: this sentence starts on the second line
        ("점검 시간은 오전 9시부터 오후 6시까지입니다.", 1, 4),
        ("햇살 도서관은 매주 월요일에 문을 닫습니다.", 2, 1),
        ("대출한 책은 무인 반납함에 넣어 주세요.", 2, 1),
    ]
    assert not document.warnings


def test_pdf_sentence_offsets_point_into_the_extracted_text(tmp_path):
    path = write_pdf(tmp_path / "a.pdf", [NOTICE_PAGE_1, NOTICE_PAGE_2])
    result = READERS["pdf"].read(path)
    assert isinstance(READERS["pdf"], BinaryReader) and result.source
    for sentence in split_records(result.records, source=result.source):
        assert result.source[sentence.start : sentence.end] == sentence.text


def test_pdf_passages_do_not_cross_pages(tmp_path):
    path = write_pdf(tmp_path / "a.pdf", [["첫 쪽의 짧은 문장이다."], ["둘째 쪽의 짧은 문장이다."]])
    passages = read_document(path, mode="passage", passage_chars=300).sentences
    assert [(flat(p.text), p.page) for p in passages] == [("첫 쪽의 짧은 문장이다.", 1), ("둘째 쪽의 짧은 문장이다.", 2)]


def test_a_scanned_page_is_reported_and_the_rest_indexed(tmp_path):
    path = write_pdf(tmp_path / "a.pdf", [["첫 쪽은 글자가 있다."], [], ["셋째 쪽도 글자가 있다."]], image_only_pages=[2])
    document = read(path)
    assert [(text, page) for text, page, _ in sentences(document)] == [("첫 쪽은 글자가 있다.", 1), ("셋째 쪽도 글자가 있다.", 3)]
    [warning] = document.warnings
    assert "page 2" in warning and "no text layer (scanned?)" in warning and "OCR" in warning


def test_a_pdf_that_is_all_scan_is_skipped_with_that_reason(tmp_path):
    item = skipped(write_pdf(tmp_path / "scan.pdf", [[], []], image_only_pages=[1, 2]))
    assert "no text layer on any of its 2 page(s) (a scan?)" in item.reason and "OCR" in item.reason


def test_encrypted_and_corrupt_pdfs_are_skipped_with_clear_reasons(tmp_path):
    encrypted = write_pdf(tmp_path / "locked.pdf", [["비밀 문서의 문장이다."]], password="secret")
    assert encrypted.read_bytes().count(b"/Encrypt") >= 1
    assert skipped(encrypted).reason.startswith("password-protected PDF")
    whole = write_pdf(tmp_path / "whole.pdf", [NOTICE_PAGE_1]).read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(whole[: len(whole) // 2])
    assert skipped(truncated).reason.startswith("not a readable PDF (corrupt or truncated?)")
    (tmp_path / "fake.pdf").write_text("이것은 PDF가 아니다.", encoding="utf-8")
    assert skipped(tmp_path / "fake.pdf").reason.startswith("not a readable PDF")


# -- DOCX ---------------------------------------------------------------------------------------------


def test_docx_paragraphs_and_table_cells_in_reading_order(tmp_path):
    document = read(write_docx(tmp_path / "회의록.docx", MINUTES))
    assert document.format == "docx"
    assert [(text, line) for text, page, line in sentences(document)] == [
        ("주민자치회 회의록", 1),
        ("회의는 4월 2일 저녁 7시에 주민센터 2층 회의실에서 열렸다.", 2),
        ("안건", 3),
        ("결정", 4),
        ("놀이터 보수", 5),
        ("놀이터 바닥 고무판을 5월 안에 교체하기로 했다.", 6),
        ("벚꽃 축제", 7),
        ("축제 기간을 이틀에서 사흘로 늘렸다.", 8),
        ("다음 회의는 5월 7일에 열린다.", 9),
    ]
    assert all(s.page is None for s in document.sentences)


def test_docx_merged_cell_is_read_once_and_empty_paragraphs_do_not_count(tmp_path):
    import docx

    word = docx.Document()
    word.add_paragraph("")
    table = word.add_table(rows=2, cols=2)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "두 칸을 합친 셀이다."
    table.cell(1, 0).text = "왼쪽"
    table.cell(1, 1).text = "오른쪽"
    word.add_paragraph("표 다음 문단이다.")
    word.save(tmp_path / "merged.docx")
    assert [(text, line) for text, _, line in sentences(read(tmp_path / "merged.docx"))] == [
        ("두 칸을 합친 셀이다.", 1), ("왼쪽", 2), ("오른쪽", 3), ("표 다음 문단이다.", 4)
    ]


def test_encrypted_corrupt_empty_and_lock_docx_files_are_skipped(tmp_path):
    plain = write_docx(tmp_path / "plain.docx", MINUTES)
    encrypted = encrypt_docx(plain, tmp_path / "locked.docx", "secret")
    assert encrypted.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"  # an OLE file, as Word writes encrypted files
    assert skipped(encrypted).reason.startswith("password-protected (encrypted) DOCX file")
    truncated = tmp_path / "truncated.docx"
    truncated.write_bytes(plain.read_bytes()[:2000])
    assert skipped(truncated).reason.startswith("not a readable DOCX file (corrupt or truncated?)")
    empty = write_docx(tmp_path / "empty.docx", [])
    assert skipped(empty).reason.startswith("no text")
    lock = tmp_path / "~$회의록.docx"
    lock.write_bytes(b"\x0bkosearch" + b"\x00" * 150)
    assert "lock file" in skipped(lock).reason


# -- HWPX and HWP 5 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("format", ["hwpx", "hwp"])
def test_hangul_documents_paragraphs_and_table_cells(tmp_path, format):
    path = write_hangul(tmp_path / f"보고서.{format}", MINUTES, format)
    document = read(path)
    assert document.format == format
    assert [(text, line) for text, _, line in sentences(document)] == [
        ("주민자치회 회의록", 1),
        ("회의는 4월 2일 저녁 7시에 주민센터 2층 회의실에서 열렸다.", 2),
        ("안건", 3),
        ("결정", 4),
        ("놀이터 보수", 5),
        ("놀이터 바닥 고무판을 5월 안에 교체하기로 했다.", 6),
        ("벚꽃 축제", 7),
        ("축제 기간을 이틀에서 사흘로 늘렸다.", 8),
        ("다음 회의는 5월 7일에 열린다.", 9),
    ]


def test_the_hwp_fixture_is_a_real_hwp5_compound_file(tmp_path):
    import olefile

    path = write_hangul(tmp_path / "a.hwp", MINUTES, "hwp")
    assert olefile.isOleFile(str(path))
    with olefile.OleFileIO(str(path)) as ole:
        assert ole.openstream("FileHeader").read(17) == b"HWP Document File"
        assert ole.exists("BodyText/Section0") and ole.exists("DocInfo")


def test_encrypted_and_corrupt_hangul_files_are_skipped(tmp_path):
    locked = mark_hwp_encrypted(write_hangul(tmp_path / "locked.hwp", MINUTES, "hwp"))
    assert skipped(locked).reason.startswith("password- or DRM-protected HWP document")
    for format in ("hwp", "hwpx"):
        whole = write_hangul(tmp_path / f"whole.{format}", MINUTES, format).read_bytes()
        truncated = tmp_path / f"truncated.{format}"
        truncated.write_bytes(whole[: len(whole) // 2])
        reason = skipped(truncated).reason
        assert reason.startswith(f"not a readable {format.upper()} file (corrupt or truncated?)"), reason
    old = tmp_path / "hangul97.hwp"
    old.write_bytes(b"HWP Document File V3.00 \x1a\x01\x02\x03\x04\x05" + "옛 문서".encode("cp949") * 20)
    assert skipped(old).reason.startswith("an HWP 3 document (Hangul 97 or older)")


# -- HTML ---------------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><title>햇살 도서관 안내</title>
<style>p { color: #333; } /* 숨은 글 */</style>
<script>var hidden = "스크립트 속 글은 보이지 않는다.";</script></head>
<body><h1>이용 안내 &amp; 휴관일</h1>
<p>도서관은 <b>매주 월요일</b>에
쉽니다. 문의는 &#54620;&#xAE00; 안내 창구로 하세요.</p>
<!-- 주석 속 글도 보이지 않는다. -->
<ul><li>대출은 한 번에 다섯 권까지</li><li>반납은<br>무인 반납함에</li></ul>
<noscript>자바스크립트를 켜 주세요.</noscript>
</body></html>
"""


def test_html_visible_text_by_block_with_lines():
    result = read_records(PAGE, "html")
    found = [(flat(s.text), s.line) for s in split_records(result.records, source=PAGE)]
    assert found == [
        ("햇살 도서관 안내", 2),
        ("이용 안내 & 휴관일", 5),
        ("도서관은 매주 월요일에 쉽니다.", 6),
        ("문의는 한글 안내 창구로 하세요.", 7),
        ("대출은 한 번에 다섯 권까지", 9),
        ("반납은", 9),
        ("무인 반납함에", 9),
    ]


def test_html_offsets_cover_the_markup_of_each_sentence():
    result = read_records(PAGE, "html")
    by_text = {flat(s.text): PAGE[s.start : s.end] for s in split_records(result.records, source=PAGE)}
    assert by_text["이용 안내 & 휴관일"] == "이용 안내 &amp; 휴관일"
    assert by_text["도서관은 매주 월요일에 쉽니다."] == "도서관은 <b>매주 월요일</b>에\n쉽니다."
    assert by_text["문의는 한글 안내 창구로 하세요."] == "문의는 &#54620;&#xAE00; 안내 창구로 하세요."


def test_html_text_is_never_taken_as_markup_twice():
    source = "<p>&lt;script&gt;alert(1)&lt;/script&gt; 는 글자일 뿐이다.</p>"
    [sentence] = split_records(read_records(source, "html").records, source=source)
    assert sentence.text == "<script>alert(1)</script> 는 글자일 뿐이다."


# -- the documents stage ------------------------------------------------------------------------------


def test_binary_documents_are_hashed_from_raw_bytes_and_not_reparsed_when_unchanged(tmp_path, monkeypatch):
    path = write_docx(tmp_path / "a.docx", MINUTES)
    [first] = iter_documents(tmp_path)
    assert first.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and first.size == path.stat().st_size
    monkeypatch.setitem(READERS, "docx", BinaryReader(lambda path: pytest.fail("an unchanged file must not be parsed")))
    [again] = iter_documents(tmp_path, is_unchanged=lambda relpath, sha256: sha256 == first.sha256)
    assert again.unchanged and again.sentences == []


def test_binary_documents_over_the_size_limit_are_skipped_before_parsing(tmp_path, monkeypatch):
    write_pdf(tmp_path / "big.pdf", [NOTICE_PAGE_1])
    monkeypatch.setitem(READERS, "pdf", BinaryReader(lambda path: pytest.fail("an oversized file must not be parsed")))
    [item] = iter_documents(tmp_path, max_bytes=100)
    assert isinstance(item, SkippedFile) and item.reason.startswith("file too large")


def test_a_missing_library_skips_only_its_files_with_the_install_command(tmp_path, monkeypatch):
    write_pdf(tmp_path / "a.pdf", [NOTICE_PAGE_1])
    (tmp_path / "b.txt").write_text("텍스트 파일은 여전히 읽힌다.", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # what an environment without it looks like
    pdf, text = iter_documents(tmp_path)
    assert isinstance(pdf, SkippedFile) and pdf.reason == "reading .pdf files needs the pypdfium2 package: pip install pypdfium2"
    assert isinstance(text, Document) and text.sentences


def test_a_folder_of_every_format_is_discovered_and_read(tmp_path):
    write_pdf(tmp_path / "a.pdf", [NOTICE_PAGE_1])
    write_docx(tmp_path / "b.docx", MINUTES)
    write_hangul(tmp_path / "c.hwpx", MINUTES)
    write_hangul(tmp_path / "d.hwp", MINUTES, "hwp")
    (tmp_path / "e.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "f.HTM").write_text(PAGE, encoding="utf-8")
    items = list(iter_documents(tmp_path))
    assert [(item.relpath, item.format) for item in items] == [
        ("a.pdf", "pdf"), ("b.docx", "docx"), ("c.hwpx", "hwpx"), ("d.hwp", "hwp"), ("e.html", "html"), ("f.HTM", "html")
    ]
    assert all(isinstance(item, Document) and item.sentences for item in items)


# -- through the index --------------------------------------------------------------------------------


def _office_folder(folder: Path) -> Path:
    write_pdf(folder / "안내문.pdf", [NOTICE_PAGE_1, NOTICE_PAGE_2])
    write_docx(folder / "회의록.docx", MINUTES)
    return folder


def test_hits_carry_the_page_of_a_pdf_and_the_paragraph_of_a_docx(tmp_path):
    folder = _office_folder(tmp_path / "docs")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as index:
        report = index.add_folder(folder)
        assert report.files_added == 2 and not report.skipped
        library = index.search("햇살 도서관은 매주 월요일에 문을 닫습니다.", k=1)[0]
        minutes = index.search("축제 기간을 이틀에서 사흘로 늘렸다.", k=1)[0]
    assert (library.path, library.page, library.line) == ("안내문.pdf", 2, 1)
    assert library.location == "안내문.pdf p.2" and library.to_dict()["page"] == 2
    assert (minutes.path, minutes.page, minutes.line) == ("회의록.docx", None, 8)
    assert minutes.location == "회의록.docx:8" and minutes.to_dict()["page"] is None


def test_an_index_from_before_pages_gains_the_column_when_opened(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "a.txt").write_text("오래된 색인의 문장이다.", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as index:
        index.add_folder(tmp_path / "old")
    with sqlite3.connect(tmp_path / "idx" / "metadata.sqlite") as db:
        db.execute("alter table sentences drop column page")  # the schema an earlier kosearch wrote
    with kosearch.Index.open(tmp_path / "idx", HashingEncoder(), writable=True) as index:
        index.add_folder(_office_folder(tmp_path / "docs"))
        old = index.search("오래된 색인의 문장이다.", k=1)[0]
        new = index.search("햇살 도서관은 매주 월요일에 문을 닫습니다.", k=1)[0]
    assert (old.path, old.page, old.line) == ("a.txt", None, 1)
    assert (new.path, new.page) == ("안내문.pdf", 2)


@pytest.mark.slow
def test_real_encoder_finds_a_sentence_from_page_two_and_the_cli_shows_the_page(tmp_path):
    folder = _office_folder(tmp_path / "docs")
    with kosearch.Index.create(tmp_path / "idx") as index:
        index.add_folder(folder)
        [hit] = index.search("월요일에 도서관이 쉬나요?", k=1)
        [minutes] = index.search("놀이터 바닥은 언제 바꾸나요", k=1)
    assert hit.path == "안내문.pdf" and hit.page == 2 and "월요일" in hit.text
    assert minutes.path == "회의록.docx" and "고무판" in minutes.text
    run = subprocess.run(
        [sys.executable, "-m", "kosearch", "query", str(tmp_path / "idx"), "월요일에 도서관이 쉬나요?", "-k", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True, env={**os.environ, "COLUMNS": "200"},
    )
    assert "안내문.pdf p.2" in run.stdout
