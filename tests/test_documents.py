"""The documents stage: discovery, decoding, the readers, Kiwi splitting and the facade.

The offset tests are the heart of it: a hit is shown in its file by (line, start, end), so for every
sentence the decoded file text at [start, end) must be the sentence (plain text, CSV) or hold its
characters in order (Markdown and JSON, whose markup or escapes sit in between).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import random
from pathlib import Path

import pytest

from kosearch.documents import Document, Sentence, SkippedFile, iter_documents, read_document
from kosearch.documents import decode as decode_module
from kosearch.documents.decode import UnreadableFile, decode_bytes, read_text
from kosearch.documents.discover import FoundFile, discover
from kosearch.documents.fields import choose_text_fields, is_text_field_name
from kosearch.documents.readers import read_records
from kosearch.documents.split import KIWI_CHUNK_CHARS, _kiwi_chunks, get_kiwi, split_records, split_text
from kosearch.errors import KosearchError

NSMC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nsmc" / "nsmc_reviews.tsv.gz"

KOREAN = "공지사항입니다. 다음 주 월요일부터 주차장 공사가 시작됩니다. 차량은 후문을 이용해 주십시오."


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def relpaths(items) -> list[str]:
    return [item.relpath if isinstance(item, FoundFile) else item.path for item in items]


def is_subsequence(needle: str, haystack: str) -> bool:
    remaining = iter(haystack)
    return all(char in remaining for char in needle)


def assert_located(sentences: list[Sentence], source: str, *, exact: bool) -> None:
    """Every sentence is at [start, end) of the source: exactly, or as its characters in order."""
    assert sentences
    for sentence in sentences:
        span = source[sentence.start : sentence.end]
        if exact:
            assert span == sentence.text
        else:
            assert span[0] == sentence.text[0] and span[-1] == sentence.text[-1], (sentence, span)
            assert is_subsequence(sentence.text, span), (sentence, span)


# -- discovery ----------------------------------------------------------------------------------------


def test_discovery_is_sorted_recursive_and_leaves_out_hidden_and_foreign_files(tmp_path):
    for name in ["b.txt", "a.MD", "sub/c.csv", "sub/deeper/d.jsonl", "e.tsv", "z/notes.TXT",
                 ".hidden.txt", ".git/config.txt", "sub/.cache/x.md", "image.png", "data.json", "README"]:
        write(tmp_path / name, "문장이다.")
    found = list(discover(tmp_path))
    assert all(isinstance(item, FoundFile) for item in found)  # foreign files are not "skipped"
    assert relpaths(found) == ["a.MD", "b.txt", "e.tsv", "sub/c.csv", "sub/deeper/d.jsonl", "z/notes.TXT"]
    assert [item.format for item in found] == ["md", "txt", "tsv", "csv", "jsonl", "txt"]
    assert all(item.path.is_absolute() and item.path.is_file() for item in found)


def test_symlink_leaving_the_root_is_skipped_with_a_reason(tmp_path):
    outside = write(tmp_path / "outside" / "secret.txt", "비밀 문장이다.")
    root = tmp_path / "root"
    write(root / "own.txt", "내 문장이다.")
    (root / "link.txt").symlink_to(outside)
    (root / "linked_dir").symlink_to(outside.parent, target_is_directory=True)
    (root / "tool.so").symlink_to(write(tmp_path / "outside" / "tool.so", b"\x7fELF"))  # not a document: silent
    found = list(discover(root))
    assert relpaths(found) == ["link.txt", "linked_dir", "own.txt"]
    skipped = [item for item in found if isinstance(item, SkippedFile)]
    assert {item.path for item in skipped} == {"link.txt", "linked_dir"}
    assert all("outside the indexed folder" in item.reason for item in skipped)


def test_symlink_loops_and_second_names_are_not_followed(tmp_path):
    write(tmp_path / "docs" / "a.txt", "문장이다.")
    (tmp_path / "docs" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "again").symlink_to(tmp_path / "docs", target_is_directory=True)
    (tmp_path / "a_alias.txt").symlink_to(tmp_path / "docs" / "a.txt")
    found = list(discover(tmp_path))
    # The real path wins even though the aliases sort first; nothing is reported twice.
    assert relpaths(found) == ["docs/a.txt"]


def test_symlink_inside_the_root_to_something_unreached_is_followed(tmp_path):
    write(tmp_path / ".drafts" / "plan.md", "# 계획\n\n초안이다.")
    (tmp_path / "plan.md").symlink_to(tmp_path / ".drafts" / "plan.md")
    (tmp_path / "broken.txt").symlink_to(tmp_path / "missing.txt")
    found = list(discover(tmp_path))
    assert relpaths(found) == ["broken.txt", "plan.md"]
    assert isinstance(found[0], SkippedFile) and "broken" in found[0].reason
    assert isinstance(found[1], FoundFile)


def test_a_single_file_root_yields_that_file(tmp_path):
    path = write(tmp_path / "one.txt", "하나뿐인 문장이다.")
    assert [(item.relpath, item.format) for item in discover(path)] == [("one.txt", "txt")]
    slides = write(tmp_path / "slides.pptx", b"PK")
    [skipped] = discover(slides)
    assert isinstance(skipped, SkippedFile) and "unsupported file type .pptx" in skipped.reason


def test_a_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(KosearchError, match="does not exist"):
        list(discover(tmp_path / "nowhere"))


def test_ignore_file_leaves_out_matching_paths(tmp_path):
    for name in ["README.md", "docs/README.md", "docs/keep.md", "drafts/x.txt", "notes/drafts/y.txt", "a/b/c.txt"]:
        write(tmp_path / name, "문장이다.")
    write(tmp_path / ".kosearchignore", "# comments are fine\nREADME.md\ndrafts/\na/b/*.txt\n")
    assert relpaths(discover(tmp_path)) == ["docs/keep.md"]


# -- decoding -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (KOREAN.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + KOREAN.encode("utf-8"), "utf-8-sig"),
        (KOREAN.encode("cp949"), "cp949"),
        (KOREAN.encode("euc-kr"), "cp949"),  # EUC-KR is reported as its superset
        ("똠방각하 햏, 뷁. ".encode("cp949") + KOREAN.encode("cp949"), "cp949"),  # characters only CP949 has
        ("안녕하세요".encode("cp949"), "cp949"),  # short: charset-normalizer alone guesses Big5
        (codecs.BOM_UTF16_LE + KOREAN.encode("utf-16-le"), "utf-16"),
    ],
    ids=["utf-8", "utf-8-bom", "cp949", "euc-kr", "cp949-only-syllables", "cp949-short", "utf-16-bom"],
)
def test_encodings_are_detected_and_the_text_recovered(data, encoding):
    decoded = decode_bytes(data)
    assert decoded.encoding == encoding
    assert decoded.text.endswith(KOREAN) or decoded.text == "안녕하세요"
    assert "\ufeff" not in decoded.text
    assert decoded.size == len(data)


def test_newlines_are_normalised_and_hash_is_of_the_raw_bytes(tmp_path):
    data = "첫 줄이다.\r\n둘째 줄이다.\r셋째 줄이다.\n".encode("cp949")
    decoded = read_text(write(tmp_path / "notice.txt", data))
    assert decoded.text == "첫 줄이다.\n둘째 줄이다.\n셋째 줄이다.\n"
    assert decoded.sha256 == hashlib.sha256(data).hexdigest() and decoded.encoding == "cp949"


@pytest.mark.parametrize("text", ["“Sí…” dijo él.", "Él dijo: “Sí…”, y nada más.",
                                  "Привет, как дела? Всё хорошо."])
def test_a_short_single_byte_file_whose_bytes_happen_to_make_a_syllable_is_still_read(text):
    """cp1252's "í…" is the UTF-8 bytes of one Hangul syllable: a file must not be refused as damaged Korean
    UTF-8 for that (it takes two syllables and half of the non-ASCII bytes)."""
    encoding = "cp1251" if text.startswith("Привет") else "cp1252"
    decoded = decode_bytes(text.encode(encoding))
    assert decoded.text == text, (decoded.encoding, decoded.text)


def test_short_korean_utf8_with_a_few_bad_bytes_is_refused_not_read_as_another_code_page():
    data = b"hello \xc3\x28 \x80\x81 world " + "안녕".encode("utf-8")  # a helper's file: it came out as cp737
    with pytest.raises(UnreadableFile, match=r"^undecodable bytes: not valid UTF-8 \(bad byte at offset 6, and others"):
        decode_bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b" \n\t\r\n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary file (contains NUL bytes)"),
        (random.Random(0).randbytes(4000).replace(b"\x00", b"\x01"), "binary file (no text encoding"),
        (
            KOREAN.encode("utf-8")[:40] + b"\xff" + KOREAN.encode("utf-8")[40:],
            "undecodable bytes: not valid UTF-8 (bad byte at offset 40)",
        ),
    ],
    ids=["empty", "whitespace", "nul-bytes", "random-bytes", "damaged-utf8"],
)
def test_unreadable_bytes_are_refused_with_a_clear_reason(data, reason):
    with pytest.raises(UnreadableFile) as caught:
        decode_bytes(data)
    assert caught.value.reason.startswith(reason)


def test_oversized_files_are_refused_before_being_read(tmp_path, monkeypatch):
    path = write(tmp_path / "big.txt", "가" * 2000)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("an oversized file must not be read"))
    with pytest.raises(UnreadableFile, match=r"file too large: .* over the .* MiB limit \(raise max_bytes"):
        read_text(path, max_bytes=1000)


# -- readers ------------------------------------------------------------------------------------------


def sentences_of(source: str, format: str, **options) -> list[Sentence]:
    result = read_records(source, format, options.pop("text_fields", None))
    return split_records(result.records, source=source, **options)


def test_plain_text_sentences_are_exact_slices_with_their_lines():
    source = (
        "공지사항\n"
        "  다음 주 월요일부터 주차장 공사가 시작됩니다. 차량은 후문을 이용하십시오.\n\n\n"
        "이 논문에서는 희소 행렬의 고윳값을 빠르게 계산하는 새로운 반복\n"
        "알고리즘을 제안한다. 제안한 방법은 기존 방법보다 세 배 빠르다\n"
        "치타가 먹이를 쫓고 있다\n"
    )
    sentences = sentences_of(source, "txt")
    assert_located(sentences, source, exact=True)
    assert [s.text for s in sentences] == [
        "공지사항",  # a title line stays apart from the sentence below it
        "다음 주 월요일부터 주차장 공사가 시작됩니다.",
        "차량은 후문을 이용하십시오.",
        "이 논문에서는 희소 행렬의 고윳값을 빠르게 계산하는 새로운 반복\n알고리즘을 제안한다.",  # hard wrap joined
        "제안한 방법은 기존 방법보다 세 배 빠르다",
        "치타가 먹이를 쫓고 있다",
    ]
    assert [s.line for s in sentences] == [1, 2, 2, 5, 6, 7]


def test_markdown_markup_is_dropped_but_offsets_point_into_the_original():
    source = (
        "---\ntitle: 메모\n---\n"
        "# 수치 해석 **개요** #\n\n"
        "이 문서는 [수치 해석](https://example.org/x) 프로그램을 설명한다. 함수 `solve`를\n"
        "호출하면 해를 얻는다.\n\n"
        "- 첫째 항목이다\n"
        "- [x] 완료된 *작업*이다\n"
        "> 인용된 문장이다.\n\n"
        "```python\nprint('코드 속 문장은 빠진다.')\n```\n\n"
        "| 이름 | 설명 |\n|---|:---:|\n| 치타 | 가장 빠른 육상 동물이다. |\n\n"
        "snake_case 와 2 * 3 은 그대로 남는다.\n"
    )
    sentences = sentences_of(source, "md")
    assert_located(sentences, source, exact=False)
    texts = [s.text for s in sentences]
    assert texts == [
        "수치 해석 개요",
        "이 문서는 수치 해석 프로그램을 설명한다.",
        "함수 solve를\n호출하면 해를 얻는다.",
        "첫째 항목이다",
        "완료된 작업이다",
        "인용된 문장이다.",
        "치타",
        "가장 빠른 육상 동물이다.",
        "snake_case 와 2 * 3 은 그대로 남는다.",
    ]
    joined = "\n".join(texts)
    for markup in ("#", "](", "https", "`", "**", "|", "title", "코드", "이름"):
        assert markup not in joined
    heading = sentences[0]
    assert source[heading.start : heading.end] == "수치 해석 **개요"
    assert [s.line for s in sentences] == [4, 6, 6, 9, 10, 11, 19, 19, 21]


def test_csv_quoted_fields_keep_commas_quotes_and_newlines_and_report_the_rows_first_line():
    source = (
        "번호,영화,평점,리뷰\n"
        '1,별빛 기차,9,"음악, 영상, 이야기가 고루 좋았다."\n'
        '2,마지막 수업,8,"주인공이 ""괜찮아""라고 말한다.\n둘째 줄에서 끝난다."\n'
        "3,바다의 노래,10,정말 재미있게 봤어요.\n"
    )
    sentences = sentences_of(source, "csv")
    assert [(s.text, s.line) for s in sentences] == [
        ("음악, 영상, 이야기가 고루 좋았다.", 2),
        ('주인공이 "괜찮아"라고 말한다.', 3),
        ("둘째 줄에서 끝난다.", 3),  # the record's line, though the field goes on below
        ("정말 재미있게 봤어요.", 5),
    ]
    assert source[sentences[1].start : sentences[1].end] == '주인공이 ""괜찮아""라고 말한다.'
    assert_located([s for s in sentences if '"' not in s.text], source, exact=True)


def test_tsv_quote_marks_used_as_text_do_not_swallow_following_rows():
    source = (
        "id\tsentence1\tsentence2\n"
        '1\t"안녕," 그가 말했다.\t그는 인사했다.\n'
        '2\t"완전히 인용된 문장이다."\t평범한 문장이다.\n'
        "3\t셋째 행이다.\t따옴표 하나\" 뿐이다.\n"
    )
    sentences = sentences_of(source, "tsv")
    assert [(s.text, s.line) for s in sentences] == [
        ('"안녕," 그가 말했다.', 2),
        ("그는 인사했다.", 2),
        ("완전히 인용된 문장이다.", 3),
        ("평범한 문장이다.", 3),
        ("셋째 행이다.", 4),
        ('따옴표 하나" 뿐이다.', 4),
    ]
    for sentence in sentences:
        assert source[sentence.start : sentence.end] == sentence.text


def test_table_columns_are_chosen_by_name_then_by_content_or_as_requested():
    assert [is_text_field_name(n) for n in ["review", "sentence1", "Q", "본문 내용", "text_id", "label", "title"]] == [
        True, True, True, True, False, False, False,
    ]
    by_content = "code,comment_len,memo\nA1,3,오늘은 날씨가 정말 좋아서 산책을 했다\nB2,5,내일은 비가 온다고 하니 우산을 챙겨야겠다\n"
    result = read_records(by_content, "csv")
    assert [r.text for r in result.records] == ["오늘은 날씨가 정말 좋아서 산책을 했다", "내일은 비가 온다고 하니 우산을 챙겨야겠다"]
    requested = read_records("a,b\n첫 값이다,둘째 값이다\n", "csv", ["B", "missing"])
    assert [r.text for r in requested.records] == ["둘째 값이다"]
    assert requested.warnings and "'missing' not found" in requested.warnings[0]
    chosen, warnings = choose_text_fields(["id", "tag"], {"id": ["1", "2"], "tag": ["좋음", "별로"]})
    assert chosen == ["tag"] and "pass text_fields" in warnings[0]


def test_jsonl_reads_nested_fields_through_escapes_and_reports_malformed_lines():
    lines = [
        json.dumps({"id": 1, "review": {"title": "좋음", "text": '사장님이 "천천히 드세요"라고 했다.\n다시 갈 것이다.'}}, ensure_ascii=False),
        "{not json",
        "",
        json.dumps({"id": 2, "review": {"text": "유니코드 이스케이프 문장이다."}}),  # ensure_ascii: \uXXXX
        json.dumps({"id": 3, "review": {"text": ["목록 속 첫 문장이다.", "목록 속 둘째 문장이다."]}}, ensure_ascii=False),
    ]
    source = "\n".join(lines) + "\n"
    result = read_records(source, "jsonl")
    assert result.warnings == [
        "line 2: not valid JSON (Expecting property name enclosed in double quotes, column 2); line skipped"
    ]
    sentences = split_records(result.records, source=source)
    assert [(s.text, s.line) for s in sentences] == [
        ('사장님이 "천천히 드세요"라고 했다.', 1),
        ("다시 갈 것이다.", 1),
        ("유니코드 이스케이프 문장이다.", 4),
        ("목록 속 첫 문장이다.", 5),
        ("목록 속 둘째 문장이다.", 5),
    ]
    assert source[sentences[0].start : sentences[0].end] == '사장님이 \\"천천히 드세요\\"라고 했다.'
    escaped = source[sentences[2].start : sentences[2].end]
    assert escaped.startswith("\\uc720") and escaped.endswith(".") and json.loads(f'"{escaped}"') == sentences[2].text
    titles = read_records(source, "jsonl", ["review.title"])
    assert [r.text for r in titles.records] == ["좋음"]


# -- splitting ----------------------------------------------------------------------------------------


def test_kiwi_is_one_lazily_created_instance():
    assert get_kiwi() is get_kiwi()


def test_punctuation_only_sentences_are_dropped():
    source = "좋은 영화다.\n...\n!!! ??\n😀😀\nㅋㅋㅋ\n"
    assert [s.text for s in get_kiwi().split_into_sents("...")] == ["..."]  # Kiwi itself keeps them
    assert [s.text for s in sentences_of(source, "txt")] == ["좋은 영화다.", "ㅋㅋㅋ"]


def test_long_sentences_are_cut_at_whitespace():
    words = ["가나다라마바사"] * 400  # one 3199-character "sentence" with no full stop
    text = " ".join(words)
    pieces = split_text(text, max_chars=100)
    assert all(len(p.text) <= 100 for p in pieces) and len(pieces) > 30
    assert all(text[p.start : p.end] == p.text for p in pieces)
    assert " ".join(p.text for p in pieces) == text  # cut only at spaces, nothing lost
    assert all(p.text.endswith("사") and p.text.startswith("가") for p in pieces)
    unbroken = split_text("가" * 250, max_chars=100)  # no whitespace at all: cut mid-word
    assert [len(p.text) for p in unbroken] == [100, 100, 50]


def test_long_records_reach_kiwi_in_chunks_without_losing_sentences():
    sentences = [f"{number}번째 문장은 여기에서 끝난다." for number in range(700)]
    text = " ".join(sentences)
    chunks = _kiwi_chunks(text)
    assert len(chunks) >= 3 and chunks[0][0] == 0 and chunks[-1][1] == len(text)
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(chunks, chunks[1:]))
    assert all(stop - start <= KIWI_CHUNK_CHARS for start, stop in chunks)
    assert [s.text for s in split_text(text)] == sentences  # cuts fall between sentences


def test_passage_mode_groups_consecutive_sentences_of_a_paragraph():
    source = (
        "첫째 문장이다. 둘째 문장이다. 셋째 문장이다.\n"
        "넷째 문장은 다음 줄에 있다.\n\n"
        "다른 문단의 문장이다. 이것도 같은 문단이다.\n"
    )
    sentences = sentences_of(source, "txt")
    passages = sentences_of(source, "txt", mode="passage", passage_chars=40, passage_overlap=0)
    assert [p.text for p in passages] == [
        "첫째 문장이다. 둘째 문장이다. 셋째 문장이다.",
        "넷째 문장은 다음 줄에 있다.",
        "다른 문단의 문장이다. 이것도 같은 문단이다.",
    ]
    assert all(source[p.start : p.end] == p.text for p in passages)
    assert [p.line for p in passages] == [1, 2, 4]
    # By default a passage starts with the last sentence of the one before it in the same paragraph.
    overlapping = sentences_of(source, "txt", mode="passage", passage_chars=40)
    assert [p.text for p in overlapping] == [
        "첫째 문장이다. 둘째 문장이다. 셋째 문장이다.",
        "셋째 문장이다.\n넷째 문장은 다음 줄에 있다.",
        "다른 문단의 문장이다. 이것도 같은 문단이다.",
    ]
    assert all(source[p.start : p.end] == p.text for p in overlapping)
    assert [p.line for p in overlapping] == [1, 1, 4]
    wide = sentences_of(source, "txt", mode="passage", passage_chars=300)
    assert [w.text for w in wide] == [source[: source.index("\n\n")], source[source.index("\n\n") + 2 :].strip()]
    # Grouping never loses or reorders a sentence.
    assert "".join(w.text for w in wide).replace("\n", "").replace(" ", "") == "".join(
        s.text for s in sentences
    ).replace("\n", "").replace(" ", "")
    with pytest.raises(ValueError, match="mode"):
        sentences_of(source, "txt", mode="chapter")


# -- the facade ---------------------------------------------------------------------------------------


def test_iter_documents_streams_one_file_at_a_time(tmp_path, monkeypatch):
    for number in range(3):
        write(tmp_path / f"doc{number}.txt", f"{number}번 문서의 문장이다.")
    reads: list[str] = []
    original = decode_module.read_text

    def counting_read_text(path, max_bytes):
        reads.append(Path(path).name)
        return original(path, max_bytes)

    monkeypatch.setattr("kosearch.documents.read_text", counting_read_text)
    documents = iter_documents(tmp_path)
    first = next(documents)
    assert isinstance(first, Document) and reads == ["doc0.txt"]
    assert [d.relpath for d in documents] == ["doc1.txt", "doc2.txt"]
    assert reads == ["doc0.txt", "doc1.txt", "doc2.txt"]


def test_iter_documents_reports_skips_inline_or_through_on_skip(tmp_path):
    write(tmp_path / "good.md", "# 제목\n\n본문 문장이다.")
    write(tmp_path / "empty.txt", b"")
    write(tmp_path / "binary.csv", b"a,b\x00\x01")
    write(tmp_path / "rows.jsonl", '{"text": "좋은 줄이다."}\n{broken\n')
    items = list(iter_documents(tmp_path))
    assert [(type(i).__name__, i.relpath if isinstance(i, Document) else i.path) for i in items] == [
        ("SkippedFile", "binary.csv"),
        ("SkippedFile", "empty.txt"),
        ("Document", "good.md"),
        ("Document", "rows.jsonl"),
    ]
    good = items[2]
    assert good.format == "md" and good.encoding == "utf-8" and good.size == len("# 제목\n\n본문 문장이다.".encode())
    assert [s.text for s in good.sentences] == ["제목", "본문 문장이다."]
    assert items[3].warnings and "line 2" in items[3].warnings[0]
    skipped: list[SkippedFile] = []
    documents = list(iter_documents(tmp_path, on_skip=skipped.append))
    assert all(isinstance(d, Document) for d in documents) and len(documents) == 2
    assert [s.path for s in skipped] == ["binary.csv", "empty.txt"]


def test_unchanged_files_are_hashed_but_not_split(tmp_path, monkeypatch):
    write(tmp_path / "old.txt", "이미 색인된 문장이다.")
    write(tmp_path / "new.txt", "새로 추가된 문장이다.")
    old_hash = hashlib.sha256("이미 색인된 문장이다.".encode()).hexdigest()
    split_calls: list[int] = []
    original = split_records

    def counting_split(records, **options):
        split_calls.append(len(records))
        return original(records, **options)

    monkeypatch.setattr("kosearch.documents.split_records", counting_split)
    calls: list[tuple[str, str]] = []

    def is_unchanged(relpath: str, sha256: str) -> bool:
        calls.append((relpath, sha256))
        return (relpath, sha256) == ("old.txt", old_hash)

    new, old = iter_documents(tmp_path, is_unchanged=is_unchanged)
    assert old.unchanged and old.sentences == [] and old.sha256 == old_hash
    assert not new.unchanged and [s.text for s in new.sentences] == ["새로 추가된 문장이다."]
    assert split_calls == [1] and [relpath for relpath, _ in calls] == ["new.txt", "old.txt"]


def test_read_document_matches_iter_documents(tmp_path):
    write(tmp_path / "sub" / "a.txt", "한 문장이다. 두 문장이다.")
    [from_walk] = list(iter_documents(tmp_path))
    single = read_document(tmp_path / "sub" / "a.txt", tmp_path)
    assert single == from_walk and single.relpath == "sub/a.txt"
    assert read_document(tmp_path / "sub" / "a.txt").relpath == "a.txt"
    assert isinstance(read_document(write(tmp_path / "x.docx", b"PK"), tmp_path), SkippedFile)


@pytest.mark.slow
@pytest.mark.skipif(not NSMC.exists(), reason="needs ../shared/data/nsmc")
def test_real_reviews_tsv_offsets_are_exact(tmp_path):
    with gzip.open(NSMC, "rt", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(3001)]
    path = write(tmp_path / "reviews.tsv", "".join(lines))
    [document] = list(iter_documents(path))
    source = read_text(path).text
    assert len(document.sentences) > 3000 and not document.warnings
    for sentence in document.sentences:
        if '""' not in source[sentence.start : sentence.end]:  # a doubled quote stands for one character
            assert source[sentence.start : sentence.end] == sentence.text
        assert sentence.text.replace('"', "") in lines[sentence.line - 1].replace('"', "")
