"""Hostile files and queries: each one is reported or cleaned, none ends the run.

Every hostile file sits in a folder with a good file; the run must finish, the good file must be
searchable, and the hostile one must be indexed with a warning or listed as skipped with a reason.
Text that reaches the encoder and SQLite must be valid Unicode (the mock encoder encodes to UTF-8,
so it fails on a lone surrogate exactly where a tokenizer would).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

import kosearch
import kosearch.documents as documents_module
from kosearch.documents import SkippedFile, iter_documents
from kosearch.documents.decode import UnreadableFile, read_text
from kosearch.textclean import clean_text, escape_path, unescape_path
from kosearch_testing import HashingEncoder

GOOD = "도서관은 월요일에 휴관합니다. 열람실은 화요일부터 다시 엽니다.\n"


def good_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    return folder


def index_twice(tmp_path: Path, folder: Path | bytes):
    """Index ``folder`` and index it again; both reports, and the texts stored."""
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        first = idx.add_folder(folder, unit="sentence")
        second = idx.add_folder(folder)
        texts = [row[0] for row in idx.store.metadata.db.execute("select text from sentences")]
        paths = [row[0] for row in idx.store.metadata.db.execute("select path from documents")]
    return first, second, texts, paths


def assert_valid_unicode(*texts: str) -> None:
    for text in texts:
        text.encode("utf-8")  # raises on a lone surrogate


# -- JSON Lines that defeat Python's parser ---------------------------------------------------------


def test_jsonl_nested_100000_deep_is_a_warning_and_the_other_lines_are_indexed(tmp_path):
    folder = good_folder(tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    (folder / "deep.jsonl").write_text(
        json.dumps({"text": "첫 줄은 멀쩡한 문장입니다."}, ensure_ascii=False) + "\n" + deep + "\n", encoding="utf-8"
    )
    first, second, texts, _ = index_twice(tmp_path, folder)
    assert first.files_added == 2 and not first.skipped
    assert any("deep.jsonl: line 2" in warning and "nested too deeply" in warning for warning in first.warnings)
    assert "첫 줄은 멀쩡한 문장입니다." in texts
    assert second.files_unchanged == 2


def test_jsonl_line_with_a_5000_digit_number_keeps_its_text(tmp_path):
    folder = good_folder(tmp_path)
    (folder / "number.jsonl").write_text(
        '{"id": ' + "7" * 5000 + ', "score": 1.5, "text": "숫자가 아주 긴 줄의 문장입니다."}\n', encoding="utf-8"
    )
    first, _, texts, _ = index_twice(tmp_path, folder)
    assert first.files_added == 2 and not first.skipped and not first.warnings
    assert "숫자가 아주 긴 줄의 문장입니다." in texts


def test_jsonl_lone_surrogate_and_nul_become_replacement_characters_at_their_offsets(tmp_path):
    folder = good_folder(tmp_path)
    source = '{"text": "깨진 \\ud800 글자가 있는 문장입니다."}\n{"text": "널 \\u0000 문자가 있는 문장입니다."}\n'
    (folder / "surrogate.jsonl").write_text(source, encoding="utf-8")
    first, second, texts, _ = index_twice(tmp_path, folder)
    assert first.files_added == 2 and not first.skipped
    assert "깨진 \ufffd 글자가 있는 문장입니다." in texts and "널 \ufffd 문자가 있는 문장입니다." in texts
    assert_valid_unicode(*texts)
    assert second.files_unchanged == 2
    (document,) = [d for d in iter_documents(folder / "surrogate.jsonl")]
    broken = document.sentences[0]
    span = source[broken.start : broken.end]
    assert span.startswith("깨진") and "\\ud800" in span and span.endswith("문장입니다.")


def test_jsonl_surrogate_key_reaches_the_report_as_valid_text(tmp_path):
    folder = good_folder(tmp_path)
    (folder / "keys.jsonl").write_text('{"\\ud800본문": "열쇠가 이상한 필드의 문장입니다."}\n', encoding="utf-8")
    (skipped,) = list(iter_documents(folder / "keys.jsonl", text_fields=["nothing"]))
    # No field chosen, so no sentence: the file is skipped, and the warning naming the key is the reason.
    assert isinstance(skipped, SkippedFile) and skipped.reason.startswith("no text to index: ")
    assert "\ufffd본문" in skipped.reason
    assert_valid_unicode(skipped.reason)


# -- failures nobody foresaw: any exception while reading one file -----------------------------------


@pytest.mark.parametrize(
    "error",
    [RecursionError("maximum recursion depth exceeded"), ValueError("9" * 5000), MemoryError(), TypeError("bad")],
    ids=["RecursionError", "ValueError-5000-chars", "MemoryError", "TypeError"],
)
def test_any_exception_while_splitting_one_file_skips_that_file(tmp_path, monkeypatch, error):
    folder = good_folder(tmp_path)
    (folder / "hostile.txt").write_text("이 파일은 분할기를 망가뜨립니다.\n", encoding="utf-8")
    real_split = documents_module.split_records

    def split_records(records, **kwargs):
        if any("망가뜨립니다" in record.text for record in records):
            raise error
        return real_split(records, **kwargs)

    monkeypatch.setattr(documents_module, "split_records", split_records)
    first, _, texts, _ = index_twice(tmp_path, folder)
    assert first.files_added == 1 and GOOD.split(". ")[0] + "." in texts
    (skipped,) = first.skipped
    assert skipped.path == "hostile.txt"
    assert skipped.reason.startswith(f"could not read: {type(error).__name__}")
    assert len(skipped.reason) < 300  # the 5,000-character message is not pasted in


def test_a_reader_failure_between_files_keeps_the_work_and_removes_nothing(tmp_path, monkeypatch):
    folder = good_folder(tmp_path)
    (folder / "a.txt").write_text("치타가 먹이를 쫓는다.\n", encoding="utf-8")
    (folder / "b.txt").write_text("사자는 무리를 지어 사냥한다.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(folder)
    (folder / "a.txt").write_text("치타가 초원을 달린다.\n", encoding="utf-8")
    real_read = documents_module._read

    def read(found, *args, **kwargs):
        if found.relpath == "b.txt":
            raise RuntimeError("the disk went away")
        return real_read(found, *args, **kwargs)

    monkeypatch.setattr(documents_module, "_read", read)
    with kosearch.Index.open(tmp_path / "idx", HashingEncoder(), writable=True) as idx:
        report = idx.add_folder(folder)
    assert report.files_updated == 1 and report.files_removed == 0
    assert any("reading stopped early" in w and "RuntimeError: the disk went away" in w for w in report.warnings)
    with kosearch.Index.open(tmp_path / "idx", HashingEncoder()) as idx:
        texts = {hit.text for hit in idx.search("치타", k=10)}
        assert "치타가 초원을 달린다." in texts  # durable: the update before the failure was committed
        assert "사자는 무리를 지어 사냥한다." in {hit.text for hit in idx.search("사자", k=10)}  # not pruned
        assert idx.info().documents == 3


def test_a_missing_folder_still_raises_the_users_error(tmp_path):
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        with pytest.raises(kosearch.errors.KosearchError, match="does not exist"):
            idx.add_folder(tmp_path / "nowhere")


# -- file names that are not UTF-8 ------------------------------------------------------------------


def test_undecodable_file_name_is_stored_escaped_and_unchanged_on_rerun(tmp_path):
    folder = good_folder(tmp_path)
    descriptor = os.open(os.fsencode(folder) + b"/\xff\xfe.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(descriptor, "이름이 깨진 파일의 문장입니다.\n".encode())
    os.close(descriptor)
    first, second, _, paths = index_twice(tmp_path, folder)
    assert first.files_added == 2 and not first.skipped
    assert sorted(paths) == ["\\xff\\xfe.txt", "good.txt"]
    assert (second.files_unchanged, second.files_added, second.files_removed) == (2, 0, 0)
    with kosearch.Index.open(tmp_path / "idx", HashingEncoder()) as idx:
        hit = idx.search("이름이 깨진 파일", k=1)[0]
    assert hit.path == "\\xff\\xfe.txt"
    assert os.fsencode(Path(hit.document_root) / unescape_path(hit.path)) == os.fsencode(folder) + b"/\xff\xfe.txt"


def test_undecodable_folder_name_and_link_target_reach_sqlite_as_valid_text(tmp_path):
    root = os.fsencode(tmp_path) + b"/\xffdocs"
    os.mkdir(root)
    Path(os.fsdecode(root), "good.txt").write_text(GOOD, encoding="utf-8")
    outside = os.fsencode(tmp_path) + b"/\xfe-outside.txt"
    Path(os.fsdecode(outside)).write_text(GOOD, encoding="utf-8")
    os.symlink(outside, root + b"/link.txt")
    first, second, _, _ = index_twice(tmp_path, Path(os.fsdecode(root)))
    assert first.files_added == 1 and second.files_unchanged == 1
    assert first.root.endswith("/\\xffdocs")
    (link,) = first.skipped
    assert link.path == "link.txt" and "\\xfe-outside.txt" in link.reason
    with kosearch.Index.open(tmp_path / "idx", HashingEncoder()) as idx:
        assert idx.info().roots == [first.root]
        (stored,) = idx.info().skipped
        assert "\\xfe-outside.txt" in stored.reason


@pytest.mark.parametrize(
    "name", ["\udcff\udcfe.txt", "\\xff.txt", "plain 문서.txt", "a\nb\x1b[31m.txt", "\\\\x41", "\ud800.txt", "\\"]
)
def test_path_escape_is_printable_reversible_and_leaves_ordinary_names_alone(name):
    escaped = escape_path(name)
    assert_valid_unicode(escaped)
    assert escaped.isprintable()
    assert unescape_path(escaped) == name
    if name == "plain 문서.txt":
        assert escaped == name


def test_path_escapes_of_different_names_differ():
    names = ["\udcff.txt", "\\xff.txt", "\\\\xff.txt", "\xff.txt", "\x1b.txt", "\\x1b.txt"]
    assert len({escape_path(name) for name in names}) == len(names)


def test_clean_text_replaces_one_for_one():
    assert clean_text("a\ud800b\x00c\udfff") == "a\ufffdb\ufffdc\ufffd"
    plain = "온전한 문장"
    assert clean_text(plain) is plain


def test_skipped_file_fields_are_made_valid_text():
    skipped = SkippedFile("\udcff.txt", "reason \ud800 with \x00")
    assert_valid_unicode(skipped.path, skipped.reason)


# -- FIFOs, sockets and devices ------------------------------------------------------------------


def special_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder with a good file and every special file this machine lets us make -> expected kinds."""
    folder = good_folder(tmp_path)
    expected = {}
    os.mkfifo(folder / "pipe.txt")
    expected["pipe.txt"] = "FIFO"
    os.mkfifo(folder / "pipe-without-extension")
    expected["pipe-without-extension"] = "FIFO"
    os.mkfifo(os.fsencode(folder) + b"/\xffpipe.txt")
    expected["\\xffpipe.txt"] = "FIFO"  # reported under its escaped name, like an indexed file
    os.symlink(folder / "pipe.txt", folder / "link-to-pipe.txt")  # inside the folder, so followed
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.txt"))
    server.close()
    expected["socket.txt"] = "socket"
    try:
        os.mknod(folder / "null.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        expected["null.txt"] = "character device"
    except (OSError, AttributeError):
        pass  # needs CAP_MKNOD; the FIFO and socket cases still run
    return folder, expected


@pytest.mark.timeout(60)
def test_fifos_sockets_and_devices_are_reported_and_never_opened(tmp_path):
    folder, expected = special_folder(tmp_path)
    first, second, _, _ = index_twice(tmp_path, folder)
    assert first.files_added == 1
    reasons = {skipped.path: skipped.reason for skipped in first.skipped}
    assert set(reasons) == set(expected)  # the link reaches the FIFO already reported under its own name
    for name, kind in expected.items():
        assert reasons[name] == f"not a regular file ({kind}); not read"
    assert second.files_unchanged == 1


@pytest.mark.timeout(60)
def test_reading_a_fifo_refuses_instead_of_blocking(tmp_path):
    """A file replaced by a FIFO after discovery: opening it for reading would wait for a writer."""
    fifo = tmp_path / "late.txt"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(read_text(fifo))
        except UnreadableFile as refused:
            outcome.append(refused)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the reader so the test process can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("read_text blocked on a FIFO")
    (refused,) = outcome
    assert isinstance(refused, UnreadableFile) and refused.reason == "not a regular file (FIFO); not read"


# -- queries -----------------------------------------------------------------------------------------


def test_a_query_with_a_lone_surrogate_is_cleaned(tmp_path):
    folder = good_folder(tmp_path)
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(folder)
        hits = idx.search("도서관\ud800 휴관\x00", k=1)
        assert hits and "도서관" in hits[0].text
        assert len(idx.search_batch(["\udcff", "열람실"], k=1)) == 2


@pytest.mark.slow
def test_hostile_jsonl_and_query_through_the_bundled_encoder(tmp_path):
    folder = good_folder(tmp_path)
    (folder / "broken.jsonl").write_text(
        '{"text": "치타가 \\ud800 먹이를 쫓는다."}\n' + "[" * 100_000 + "\n", encoding="utf-8"
    )
    with kosearch.Index.create(tmp_path / "idx") as idx:
        report = idx.add_folder(folder)
        assert report.files_added == 2 and not report.skipped
        hits = idx.search("치타가 \udc00 먹이를 쫓는다", k=2)
    assert hits[0].text == "치타가 \ufffd 먹이를 쫓는다." and hits[0].path == "broken.jsonl"


def test_nul_in_a_decoded_file_is_replaced_and_offsets_stay_exact(tmp_path):
    """A UTF-8 file with a BOM is decoded before the NUL test for binaries, so a NUL can reach the text."""
    folder = good_folder(tmp_path)
    (folder / "bom.txt").write_bytes(b"\xef\xbb\xbf" + "앞부분\x00 뒤에 이어지는 문장입니다.\n".encode())
    (document,) = list(iter_documents(folder / "bom.txt"))
    (sentence,) = document.sentences
    assert sentence.text == "앞부분\ufffd 뒤에 이어지는 문장입니다."
    decoded = (folder / "bom.txt").read_bytes()[3:].decode()
    assert decoded[sentence.start : sentence.end].replace("\x00", "\ufffd") == sentence.text
