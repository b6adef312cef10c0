"""Property-based fuzzing of every document reader: random and mutated files never escape the documents stage.

Hypothesis generates the files: random bytes under every extension, random text in each text format's
own alphabet (quotes and delimiters for CSV, escapes for JSON, tags for HTML...), and valid files
(Korean text, and PDF/DOCX/HWPX/HWP written by their own libraries, see document_writers.py) with
bytes flipped, cut, inserted or repeated; the ZIP packages (DOCX, HWPX) also with one part's XML
mutated and the package rebuilt, so the parser, not only the ZIP layer, sees the damage.

The properties, for every generated file:

- ``read_document`` returns a Document or a SkippedFile and never raises;
- a SkippedFile has a reason the reader foresaw: never ``could not read: SomeError``, the catch-all
  that means a reader let a library's exception out (see ``kosearch.documents._read``);
- a Document has at least one sentence, every sentence has a letter or digit, valid Unicode and a
  span inside the text it points into (for plain text, exactly its own text);
- a binary reader raises nothing but ``UnreadableFile``, and its records point into its extracted text;
- at the index level, every file of a fuzzed folder is counted as indexed or as skipped with a reason,
  on the first run and on the re-run.

Examples are kept few per test (``FUZZ_SCALE`` multiplies them: ``KOSEARCH_FUZZ_SCALE=50`` for a long
run); the index-level test and the larger runs are marked slow. ``KOSEARCH_FUZZ_REPORT=counts.json``
writes how many files (and in-memory texts) were generated and checked, per test, for
docs/benchmarks.md.
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import kosearch
from document_writers import write_docx, write_hangul, write_pdf
from kosearch.documents import Document, SkippedFile, read_document
from kosearch.documents.decode import UnreadableFile, decode_bytes, read_text
from kosearch.documents.readers import READERS, BinaryReader, read_records
from kosearch.documents.split import split_records
from kosearch.textclean import clean_text
from kosearch_testing import HashingEncoder

FUZZ_SCALE = max(1, int(os.environ.get("KOSEARCH_FUZZ_SCALE", "1")))
GENERATED: collections.Counter[tuple[str, str]] = collections.Counter()
"""(test, "files" or "texts") -> inputs generated and checked, for ``KOSEARCH_FUZZ_REPORT``."""


def generated(kind: str, count: int = 1) -> None:
    GENERATED[(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0].split("::")[-1], kind)] += count


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    """Write the counts when asked: every example checked, passing ones and those hypothesis shrank."""
    yield
    target = os.environ.get("KOSEARCH_FUZZ_REPORT")
    if target:
        per_test: dict[str, dict[str, int]] = {}
        for (test, kind), count in sorted(GENERATED.items()):
            per_test.setdefault(test, {})[kind] = count
        totals = {kind: sum(c for (_, k), c in GENERATED.items() if k == kind) for kind in ("files", "texts")}
        Path(target).write_text(json.dumps({"scale": FUZZ_SCALE, "totals": totals, "per_test": per_test}, indent=1) + "\n")


def fuzz(examples: int) -> settings:
    """Few examples by default, no deadline (the first Kiwi call takes a second), fixtures allowed."""
    return settings(
        max_examples=examples * FUZZ_SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


TEXT_FORMATS = ["txt", "md", "csv", "tsv", "jsonl", "html"]
BINARY_FORMATS = ["pdf", "docx", "hwpx", "hwp"]

SEED_TEXT = {
    "txt": "공지사항\n\n다음 주 월요일부터 주차장 공사가 시작됩니다. 차량은 후문을 이용하십시오.\n",
    "md": "# 수치 해석 **개요**\n\n이 문서는 [수치 해석](https://example.org) 프로그램을 설명한다.\n\n- 첫째 항목이다\n",
    "csv": '번호,영화,리뷰\n1,별빛 기차,"음악, 영상이 좋았다."\n2,마지막 수업,"주인공이 ""괜찮아""라고 말한다."\n',
    "tsv": "번호\t리뷰\n1\t정말 재미있게 봤어요.\n2\t배우들의 연기가 훌륭했다.\n",
    "jsonl": '{"id": 1, "text": "첫 문장이다.", "meta": {"score": 1.5}}\n{"text": "둘째 \\uc904\\uc774\\ub2e4."}\n',
    "html": "<html><body><h1>이용 안내 &amp; 휴관일</h1><p>도서관은 <b>매주 월요일</b>에 쉽니다.</p></body></html>",
}
ALPHABETS = {
    "txt": "가나다 한국어문장이다.!?~:;\"' \t\n\r",
    "md": "가나다 문장이다.#*_`[]()!|>-+=~:\\<>/ \t\n1.xX^",
    "csv": 'a가나 문장이다.,"\t\n\r 1.5-',
    "tsv": 'a가나 문장이다.\t",\n\r 1.5-',
    "jsonl": '{}[]":,\\u0041d800nrtbf/ 가나문장이다.0123456789eE+-truefalsn\t\n',
    "html": "<>/&;#x09abpscriptyledivbr!- 가나 문장이다.=\"'\t\n?[]CDATA",
}
MAGIC = [b"", b"%PDF-1.4\n", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xef\xbb\xbf", b"\xff\xfe", b"HWP Document File"]
MINUTES = [
    "주민자치회 회의록",
    "회의는 4월 2일 저녁 7시에 주민센터 2층 회의실에서 열렸다.",
    [["안건", "결정"], ["놀이터 보수", "바닥 고무판을 5월 안에 교체하기로 했다."]],
    "다음 회의는 5월 7일에 열린다.",
]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    """A valid file of every format, binary ones written by their own libraries."""
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    files = {fmt: text.encode("utf-8") for fmt, text in SEED_TEXT.items()}
    files["pdf"] = write_pdf(folder / "a.pdf", [["첫 쪽의 문장이다. 둘째 문장이다."], ["둘째 쪽의 문장이다."]]).read_bytes()
    files["docx"] = write_docx(folder / "a.docx", MINUTES).read_bytes()
    files["hwpx"] = write_hangul(folder / "a.hwpx", MINUTES, "hwpx").read_bytes()
    files["hwp"] = write_hangul(folder / "a.hwp", MINUTES, "hwp").read_bytes()
    return files


# -- mutations ------------------------------------------------------------------------------------------

EDGE_VALUES = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\x01\x00"]
_edit = st.tuples(
    st.sampled_from(["flip", "delete", "insert", "truncate", "repeat", "edge"]),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.integers(min_value=0, max_value=255),
    st.binary(min_size=1, max_size=16),
)
edits = st.lists(_edit, min_size=1, max_size=4)


def mutate(data: bytes, changes: list) -> bytes:
    """Apply the drawn edits, each at a position given as a fraction of the current length."""
    out = bytearray(data)
    for kind, where, number, chunk in changes:
        if not out:
            out.extend(chunk)
            continue
        at = int(where * len(out))
        if kind == "flip":
            out[at] ^= number or 1
        elif kind == "delete":
            del out[at : at + 1 + number % 64]
        elif kind == "insert":
            out[at:at] = chunk
        elif kind == "truncate":
            del out[at:]
        elif kind == "repeat":
            out[at:at] = out[at : at + 1 + number]
        else:
            out[at : at + 4] = EDGE_VALUES[number % len(EDGE_VALUES)]
    return bytes(out)


XML_TOKENS = [
    "<", ">", "/>", "</w:p>", "<w:tbl>", "<w:tc>", "<w:tr>", 'w:gridSpan w:val="99999"', 'w:val="-1"', "&#0;",
    "&amp;", '"', "<hp:p>", "</hp:p>", "<hp:tbl>", 'rowCnt="99999"', 'colCnt="0"', "<hp:tc>", 'colSpan="100000"',
    'rowSpan="0"', "\x00", '<!DOCTYPE x [<!ENTITY a "aaaaaaaa">]>', "&a;", "가나다",
]
xml_edits = st.lists(
    st.tuples(
        st.sampled_from(["token", "delete", "number", "repeat"]),
        st.floats(min_value=0, max_value=1, exclude_max=True),
        st.sampled_from(XML_TOKENS),
        st.sampled_from(["0", "-1", "99999999", "4294967296", "x", ""]),
    ),
    min_size=1,
    max_size=3,
)


def mutate_package(data: bytes, member: int, changes: list, drop: bool) -> bytes:
    """The ZIP package with one XML part edited (or left out), rebuilt so it still opens as a ZIP."""
    source = zipfile.ZipFile(io.BytesIO(data))
    names = source.namelist()
    xml_names = [name for name in names if name.endswith((".xml", ".rels", ".hpf"))] or names
    victim = xml_names[member % len(xml_names)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for name in names:
            content = source.read(name)
            if name == victim:
                if drop:
                    continue
                content = _edit_xml(content.decode("utf-8", "replace"), changes).encode("utf-8", "surrogatepass")
            target.writestr(name, content)
    return buffer.getvalue()


def _edit_xml(text: str, changes: list) -> str:
    for kind, where, token, number in changes:
        at = int(where * len(text))
        if kind == "token":
            text = text[:at] + token + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + 1 + len(token) * 3 :]
        elif kind == "number":
            numbers = list(re.finditer(r'"(\d+)"', text))
            if numbers:
                match = numbers[int(where * len(numbers))]
                text = text[: match.start(1)] + number + text[match.end(1) :]
        else:
            text = text[:at] + text[at : at + 200] + text[at:]
    return text


# -- the properties -------------------------------------------------------------------------------------


def has_content(text: str) -> bool:
    return any(char.isalnum() for char in text)


def check_outcome(path: Path) -> Document | SkippedFile:
    """``read_document``'s contract on any file (see the module docstring)."""
    item = read_document(path)
    assert isinstance(item, (Document, SkippedFile)), item
    if isinstance(item, SkippedFile):
        assert item.reason and item.reason.strip()
        item.reason.encode("utf-8")
        assert not item.reason.startswith("could not read:"), f"a reader let an exception out: {item.reason}"
        return item
    assert item.sentences, "a file read without a sentence must be skipped with a reason"
    source = None
    if item.format in TEXT_FORMATS:
        source = clean_text(read_text(path).text)
    for sentence in item.sentences:
        sentence.text.encode("utf-8")
        assert has_content(sentence.text), sentence
        assert 0 <= sentence.start < sentence.end and sentence.line >= 1, sentence
        assert sentence.page is None or sentence.page >= 1
        if source is not None:
            assert sentence.end <= len(source), (sentence, len(source))
            if item.format == "txt":
                assert source[sentence.start : sentence.end] == sentence.text
    for warning in item.warnings:
        warning.encode("utf-8")
    return item


def check_records(result, source: str) -> None:
    """Every record lies inside the text it points into, character by character when it is mapped."""
    for record in result.records:
        assert record.text
        assert 0 <= record.start < record.end <= len(source), (record, len(source))
        if record.verbatim:
            assert source[record.start : record.end] == record.text, record
        else:
            assert len(record.char_starts) == len(record.text) == len(record.char_ends)
            assert all(0 <= a < b <= len(source) for a, b in zip(record.char_starts, record.char_ends)), record


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    generated("files")
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- random input ---------------------------------------------------------------------------------------


@fuzz(60)
@given(fmt=st.sampled_from(TEXT_FORMATS + BINARY_FORMATS), magic=st.sampled_from(MAGIC), data=st.binary(max_size=2000))
def test_random_bytes_under_every_extension_are_read_or_skipped_with_a_reason(tmp_path, fmt, magic, data):
    check_outcome(write(tmp_path, f"random.{fmt}", magic + data))


@fuzz(40)
@given(data=st.data(), fmt=st.sampled_from(TEXT_FORMATS))
def test_random_text_in_each_format_gives_located_records_and_sentences(data, fmt):
    alphabet = st.sampled_from(list(ALPHABETS[fmt])) | st.characters(exclude_categories=["Cs"])
    raw = data.draw(st.text(alphabet, max_size=400))
    generated("texts")
    source = clean_text(raw.replace("\r\n", "\n").replace("\r", "\n"))
    result = read_records(source, fmt)
    check_records(result, source)
    for mode in ("sentence", "passage"):
        for sentence in split_records(result.records, source=source, mode=mode):
            assert has_content(sentence.text) and 0 <= sentence.start < sentence.end <= len(source), sentence


@fuzz(40)
@given(fmt=st.sampled_from(TEXT_FORMATS), changes=edits)
def test_mutated_text_files_are_read_or_skipped_with_a_reason(tmp_path, seeds, fmt, changes):
    check_outcome(write(tmp_path, f"mutated.{fmt}", mutate(seeds[fmt], changes)))


# -- mutated binary documents ---------------------------------------------------------------------------


def check_binary(path: Path, fmt: str) -> None:
    reader = READERS[fmt]
    assert isinstance(reader, BinaryReader)
    try:
        result = reader.read(path)
    except UnreadableFile as unreadable:
        assert unreadable.reason
    else:
        check_records(result, result.source)
    check_outcome(path)


@fuzz(25)
@given(fmt=st.sampled_from(BINARY_FORMATS), changes=edits)
def test_mutated_binary_documents_raise_only_unreadable_file(tmp_path, seeds, fmt, changes):
    check_binary(write(tmp_path, f"mutated.{fmt}", mutate(seeds[fmt], changes)), fmt)


@fuzz(25)
@given(fmt=st.sampled_from(["docx", "hwpx"]), member=st.integers(0, 50), changes=xml_edits, drop=st.booleans())
def test_docx_and_hwpx_with_a_damaged_xml_part_raise_only_unreadable_file(tmp_path, seeds, fmt, member, changes, drop):
    check_binary(write(tmp_path, f"damaged.{fmt}", mutate_package(seeds[fmt], member, changes, drop)), fmt)


@pytest.mark.slow
@fuzz(300)
@given(fmt=st.sampled_from(BINARY_FORMATS), changes=edits, member=st.integers(0, 50), xml=xml_edits)
def test_many_mutated_binary_documents(tmp_path, seeds, fmt, changes, member, xml):
    data = seeds[fmt]
    if fmt in ("docx", "hwpx"):
        data = mutate_package(data, member, xml, drop=False)
    check_binary(write(tmp_path, f"mutated.{fmt}", mutate(data, changes)), fmt)


# -- decoding: damage is reported, never read as another code page ---------------------------------------

hangul_text = st.text(
    st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3) | st.sampled_from(list(" .,\n")), min_size=20, max_size=200
).filter(lambda text: sum("\uac00" <= char <= "\ud7a3" for char in text) >= 10)


def assert_refused_as_damaged_utf8_or_still_utf8(data: bytes) -> None:
    try:
        decoded = decode_bytes(data)
    except UnreadableFile as unreadable:
        assert unreadable.reason.startswith("undecodable bytes: not valid UTF-8"), unreadable.reason
    else:  # the damage happened to leave valid UTF-8
        assert decoded.encoding == "utf-8", (decoded.encoding, decoded.text[:40])


@fuzz(60)
@given(text=hangul_text, where=st.floats(min_value=0, max_value=1, exclude_max=True), kind=st.sampled_from(["delete", "flip"]))
def test_utf8_korean_with_one_damaged_byte_is_refused_not_read_as_mojibake(text, where, kind):
    data = bytearray(text.encode("utf-8"))
    at = int(where * len(data))
    assume(data[at] >= 0x80)  # damage a byte of a Hangul syllable
    generated("texts")
    if kind == "delete":
        del data[at]
    else:
        data[at] ^= 0x40
    assert_refused_as_damaged_utf8_or_still_utf8(bytes(data))


@fuzz(60)
@given(text=hangul_text, spots=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=2, max_size=8),
       ascii_words=st.integers(min_value=0, max_value=20))
def test_utf8_korean_damaged_in_several_places_is_refused_not_read_as_mojibake(text, spots, ascii_words):
    """More damage than one spot per 100 characters (a short file with a few bad bytes, as a helper's 20-byte file
    that came out as Greek cp737): still refused as UTF-8 to repair, never read as another code page. Up to one
    damaged spot per five syllables: a file with more damage than that may read as anything (8 spots in 30
    characters can leave less than half of its non-ASCII bytes in syllables)."""
    assume(len(spots) <= sum("\uac00" <= char <= "\ud7a3" for char in text) // 5)
    data = bytearray((" ".join(["hello"] * ascii_words) + " " + text).encode("utf-8"))
    for where in spots:
        at = int(where * len(data))
        data[at] = 0x80 if data[at] < 0x80 else data[at] ^ 0x40
    generated("texts")
    assert_refused_as_damaged_utf8_or_still_utf8(bytes(data))


@fuzz(40)
@given(text=hangul_text)
def test_cp949_korean_is_still_recognised(text):
    assume(text.strip())
    generated("texts")
    decoded = decode_bytes(text.encode("cp949"))
    assert decoded.encoding == "cp949" and decoded.text == text


# -- the index: every file is counted ----------------------------------------------------------------------


fuzzed_file = st.tuples(st.sampled_from(TEXT_FORMATS + BINARY_FORMATS), edits, st.booleans())


def index_fuzzed_folder(tmp_path: Path, seeds: dict[str, bytes], files: list) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    generated("files", len(files))
    for number, (fmt, changes, pristine) in enumerate(files):
        (folder / f"{number:03d}.{fmt}").write_bytes(seeds[fmt] if pristine else mutate(seeds[fmt], changes))
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as index:
        first = index.add_folder(folder)
        second = index.add_folder(folder)
        stored = index.store.metadata.db.execute("select count(*) from documents").fetchone()[0]
        sentences = index.store.metadata.db.execute("select count(*) from sentences").fetchone()[0]
    assert first.files_added + len(first.skipped) == len(files), first
    assert second.files_unchanged + len(second.skipped) == len(files), second
    assert sorted(s.path for s in first.skipped) == sorted(s.path for s in second.skipped)
    assert all(skipped.reason and not skipped.reason.startswith("could not read:") for skipped in first.skipped)
    assert stored == first.files_added and sentences == first.sentences_added >= first.files_added
    assert sum(pristine for _, _, pristine in files) <= first.files_added  # valid files are never lost


@fuzz(4)
@given(files=st.lists(fuzzed_file, min_size=1, max_size=8))
def test_a_folder_of_fuzzed_files_is_every_file_indexed_or_skipped(tmp_path_factory, seeds, files):
    index_fuzzed_folder(tmp_path_factory.mktemp("fuzz-folder"), seeds, files)


@pytest.mark.slow
@fuzz(40)
@given(files=st.lists(fuzzed_file, min_size=5, max_size=30))
def test_many_folders_of_fuzzed_files(tmp_path_factory, seeds, files):
    index_fuzzed_folder(tmp_path_factory.mktemp("fuzz-folder"), seeds, files)
