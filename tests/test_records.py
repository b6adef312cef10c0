"""The records API (``Index.add_texts``, ``upsert_texts``, ``delete``) and ``kosearch remove``/``compact``.

Plumbing runs on the mock encoder; one test goes through the real bundled encoder. Every write is
followed by a search, because what matters is what the next query returns.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kosearch
from kosearch.cli import app
from kosearch.errors import RecordError, RecordExistsError
from kosearch.store.metadata import SCHEMA_VERSION
from kosearch_testing import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture
def notes(tmp_path, encoder):
    """A new, empty writable index."""
    with kosearch.Index.create(tmp_path / "notes", encoder) as idx:
        yield idx


def _paths(hits) -> list[str]:
    return [hit.path for hit in hits]


def _write_folder(folder: Path) -> Path:
    (folder / "old" / "2019" / "deep").mkdir(parents=True)
    (folder / "new").mkdir()
    (folder / "old" / "2019" / "a.txt").write_text("치타가 먹이를 쫓는다.\n", encoding="utf-8")
    (folder / "old" / "2019" / "b.txt").write_text("사자는 무리를 지어 사냥한다.\n", encoding="utf-8")
    (folder / "old" / "2019" / "deep" / "c.txt").write_text("코끼리는 코로 물을 마신다.\n", encoding="utf-8")
    (folder / "old" / "notes.md").write_text("# 메모\n\n도서관은 월요일에 휴관한다.\n", encoding="utf-8")
    (folder / "new" / "d.txt").write_text("버스 노선이 다음 달에 바뀐다.\n", encoding="utf-8")
    return folder


# -- ids and metadata ---------------------------------------------------------------------------


def test_ids_and_metadata_round_trip(tmp_path, encoder):
    with kosearch.Index.open_or_create(tmp_path / "notes", encoder) as idx:
        idx.store.record_unit("sentence")  # this test is about sentence splitting (the default unit is passage)
        ids = idx.add_texts(
            ["첫 문장입니다. 둘째 문장도 있다.", "두 번째 기록", "세 번째 기록"],
            metadata=[
                {"user": 3, "score": 0.5, "public": True, "tag": "일기", "author": {"name": "민수"}},
                {"user": 4},
                None,
            ],
            ids=["n1", "n2", "n3"],
        )
        assert ids == ["n1", "n2", "n3"]
        generated = idx.add_texts(["아이디 없는 기록", "또 하나"])
        assert len(set(generated)) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in generated)
        assert len(idx) == 6  # the first record is two sentences
    with kosearch.Index.open(tmp_path / "notes", encoder) as reader:
        assert reader.info().documents == 5 and reader.info().roots == []
        hits = reader.search("첫 문장입니다", k=10, mode="dense")
        first = hits[0]
        assert (first.path, first.text, first.document_root) == ("n1", "첫 문장입니다.", "")
        assert first.fields == {"user": 3, "score": 0.5, "public": True, "tag": "일기", "author.name": "민수"}
        assert isinstance(first.fields["user"], int) and isinstance(first.fields["score"], float)
        # Metadata filters exactly like CSV/JSONL fields: typed comparisons, dotted keys, booleans.
        assert set(_paths(reader.search("기록", k=10, where={"user": 3}))) == {"n1"}
        assert set(_paths(reader.search("기록", k=10, where={"user": {">=": 3}}))) == {"n1", "n2"}
        assert set(_paths(reader.search("기록", k=10, where="author.name = '민수'"))) == {"n1"}
        assert set(_paths(reader.search("기록", k=10, where={"public": True}))) == {"n1"}
        assert set(_paths(reader.search("기록", k=10, where="format = 'record'"))) == {"n1", "n2", "n3", *generated}
        assert set(_paths(reader.search("기록", k=10, mode="lexical"))) >= {"n2", "n3"}  # postings too


def test_passage_index_splits_records_into_passages(tmp_path, encoder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("하나.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        idx.add_folder(folder, unit="passage")
        idx.add_texts(["짧은 문장 하나. 짧은 문장 둘.\n\n다른 문단이다."], ids=["p"])
        texts = sorted(h.text for h in idx.search("문장", k=10, where="format = 'record'"))
    assert texts == ["다른 문단이다.", "짧은 문장 하나. 짧은 문장 둘."]


def test_upsert_replaces_text_and_metadata(notes, encoder):
    notes.add_texts(["고양이가 소파에서 잔다", "강아지가 공원을 달린다"], metadata=[{"user": 3}, {"user": 4}], ids=["n1", "n2"])
    assert notes.upsert_texts(["고친 문장: 새가 하늘을 난다"], metadata=[{"user": 9}], ids=["n1"]) == ["n1"]
    assert len(notes) == 2 and notes.info().documents == 2
    hits = notes.search("새가 하늘을 난다", k=5)
    assert hits[0].path == "n1" and hits[0].text == "고친 문장: 새가 하늘을 난다" and hits[0].fields == {"user": 9}
    assert "고양이가 소파에서 잔다" not in [h.text for h in notes.search("고양이가 소파에서 잔다", k=5)]
    assert notes.search("문장", k=5, where={"user": 3}) == []
    # Replacing is total: metadata not given again is gone.
    notes.upsert_texts(["고친 문장: 새가 하늘을 난다"], ids=["n1"])
    assert notes.search("새", k=5, where={"user": 9}) == []
    # The same text and metadata again change nothing and encode nothing.
    encoder.calls.clear()
    before = notes.info().updated, len(notes)
    notes.upsert_texts(["고친 문장: 새가 하늘을 난다"], ids=["n1"])
    assert encoder.calls == [] and (notes.info().updated, len(notes)) == before
    # An unknown id is added.
    notes.upsert_texts(["물고기가 헤엄친다"], metadata=[{"user": 5}], ids=["n3"])
    assert _paths(notes.search("물고기", k=1)) == ["n3"] and len(notes) == 3


def test_duplicate_id_is_a_clear_error(notes):
    notes.add_texts(["첫 기록"], ids=["n1"])
    with pytest.raises(RecordExistsError, match=r"'n1'.*upsert_texts"):
        notes.add_texts(["새 기록", "다른 기록"], ids=["n9", "n1"])
    assert len(notes) == 1 and _paths(notes.search("기록", k=5)) == ["n1"]  # n9 was not added either
    with pytest.raises(RecordError, match="'x' is given twice"):
        notes.add_texts(["a", "b"], ids=["x", "x"])
    # Uniqueness is the database's too, not only this check's.
    with pytest.raises(sqlite3.IntegrityError):
        notes.store.metadata.db.execute(
            "insert into documents (id, root, path, record_id) values (999, 'elsewhere', 'p', 'n1')"
        )


def test_a_failed_call_changes_nothing(notes, encoder):
    notes.add_texts(["남는 기록"], ids=["keep"])

    def broken(texts):
        raise RuntimeError("encoder failed")

    from kosearch import records

    with pytest.raises(RuntimeError):
        records.add_texts(notes.store, broken, ["사라질 기록"], ids=["gone"])
    assert notes.delete(ids=["gone"]) == 0
    notes.add_texts(["다음 기록"], ids=["next"])  # the writer goes on
    assert sorted(_paths(notes.search("기록", k=5))) == ["keep", "next"]


# -- delete -------------------------------------------------------------------------------------


def test_delete_by_ids_paths_and_where(tmp_path, encoder):
    folder = _write_folder(tmp_path / "docs")
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        idx.add_folder(folder)
        idx.add_texts(["치타 기록", "사자 기록", "코끼리 기록"], metadata=[{"user": 3}, {"user": 4}, {"user": 4}], ids=["r1", "r2", "r3"])
        assert idx.info().documents == 8

        assert idx.delete(ids=["r1", "unknown"]) == 1
        assert "r1" not in _paths(idx.search("치타", k=10))
        assert idx.delete(ids=["unknown"]) == 0

        # '*' stays inside one folder; the folder's deeper file is left.
        assert idx.delete(paths=["old/2019/*.txt"]) == 2
        remaining = _paths(idx.search("동물", k=20))
        assert "old/2019/a.txt" not in remaining and "old/2019/deep/c.txt" in remaining
        # A folder stands for everything under it; '**' crosses folders.
        assert idx.delete(paths=["old/2019"]) == 1
        assert idx.delete(paths=["**/*.md"]) == 1
        # Paths never match records, even a record whose id looks like a path.
        assert idx.delete(paths=["r2"]) == 0

        # where + ids narrow each other: r2 and r3 both have user 4, only r3 is named.
        assert idx.delete(ids=["r3"], where={"user": 4}) == 1
        assert idx.delete(ids=["r2"], where={"user": 3}) == 0
        assert idx.delete(where={"user": 4}) == 1
        assert idx.delete(where="format = 'txt'") == 1  # new/d.txt
        assert idx.info().documents == 0 and len(idx) == 0
        assert idx.search("버스", k=5) == []
    with kosearch.Index.open(tmp_path / "idx", encoder) as reader:
        assert len(reader) == 0 and reader.info().documents == 0


def test_removed_file_comes_back_when_its_folder_is_indexed_again(tmp_path, encoder):
    folder = _write_folder(tmp_path / "docs")
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        idx.add_folder(folder)
        report = idx.remove(["new/d.txt", "nothing/*.txt"])
        assert (report.documents, report.sentences, report.unmatched) == (1, 1, ["nothing/*.txt"])
        assert "new/d.txt" not in _paths(idx.search("버스 노선", k=10))
        assert idx.add_folder(folder).files_added == 1
        assert _paths(idx.search("버스 노선", k=1)) == ["new/d.txt"]


def test_paths_on_disk_are_matched_inside_their_folder(tmp_path, encoder, monkeypatch):
    folder = _write_folder(tmp_path / "docs")
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        idx.add_folder(folder)
        assert idx.remove([str(folder / "new" / "d.txt")]).documents == 1  # absolute
        monkeypatch.chdir(tmp_path)
        assert idx.remove(["docs/old/notes.md"]).documents == 1  # from the current folder, as a shell hands it
        assert idx.remove([str(tmp_path / "elsewhere.txt")]).unmatched == [str(tmp_path / "elsewhere.txt")]


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda idx: idx.add_texts("한 문장"), "list of strings"),
        (lambda idx: idx.add_texts(["좋다", 3]), r"texts\[1\] is int, not a string"),
        (lambda idx: idx.add_texts([None]), r"texts\[0\] is NoneType"),
        (lambda idx: idx.add_texts(["  \n"]), r"texts\[0\] is empty"),
        (lambda idx: idx.add_texts(["a"], metadata={"user": 3}), "one dict per text, not a single dict"),
        (lambda idx: idx.add_texts(["a"], metadata="user=3"), "one dict per text, not str"),
        (lambda idx: idx.add_texts(["a"], metadata=["user=3"]), r"metadata\[0\] is str, not a dict"),
        (lambda idx: idx.add_texts(["a"], metadata=[3]), r"metadata\[0\] is int, not a dict"),
        (lambda idx: idx.add_texts(["a", "b"], metadata=[{}]), "2 texts but 1 metadata"),
        (lambda idx: idx.add_texts(["a"], metadata=[{"tags": ["x", "y"]}]), "'tags' is a list"),
        (lambda idx: idx.add_texts(["a"], metadata=[{"path": "x"}]), "'path' is a built-in field"),
        (lambda idx: idx.add_texts(["a"], metadata=[{"user id": 3}]), "not a name a filter can use"),
        (lambda idx: idx.add_texts(["a"], metadata=[{"x": math.nan}]), "finite number"),
        (lambda idx: idx.add_texts(["a"], metadata=[{"x": object()}]), "'x' is object"),
        (lambda idx: idx.add_texts(["a"], metadata=[{3: "x"}]), "keys are strings"),
        (lambda idx: idx.add_texts(["a"], ids=[1]), r"ids\[0\] is int.*str\(value\)"),
        (lambda idx: idx.add_texts(["a"], ids="n1"), "ids is a list of strings"),
        (lambda idx: idx.add_texts(["a"], ids=["a", "b"]), "1 texts but 2 ids"),
        (lambda idx: idx.add_texts(["a"], ids=["bad\x00id"]), "NUL"),
        (lambda idx: idx.upsert_texts(["a"], ids=None), "upsert_texts needs ids"),
        # found by schemathesis (POST /texts {"texts": ["\u0088"]} was a 500): a text with no unit
        (lambda idx: idx.add_texts(["\u0088"]), r"texts\[0\] has no letter or digit"),
        (lambda idx: idx.add_texts(["좋은 기록", "?! ..."]), r"texts\[1\] has no letter or digit"),
        (lambda idx: idx.upsert_texts(["--"], ids=["n1"]), r"texts\[0\] has no letter or digit"),
        (lambda idx: idx.delete(), "ids=, paths= or where="),
        (lambda idx: idx.delete(where={}), "empty filter"),
        (lambda idx: idx.delete(ids="n1"), "ids is a list of strings"),
    ],
)
def test_bad_input_is_a_clear_error(notes, call, message):
    notes.add_texts(["있는 기록"], ids=["n1"])
    with pytest.raises(RecordError, match=message):
        call(notes)
    assert len(notes) == 1 and notes.info().documents == 1


def test_read_only_index_says_how_to_write(tmp_path, encoder):
    kosearch.Index.create(tmp_path / "idx", encoder).close()
    with kosearch.Index.open(tmp_path / "idx", encoder) as reader:
        with pytest.raises(RecordError, match=r"writable=True"):
            reader.add_texts(["a"])
        with pytest.raises(RecordError, match=r"writable=True"):
            reader.delete(ids=["a"])


def test_a_reader_sees_each_records_commit_on_its_next_search(tmp_path, encoder):
    with kosearch.Index.create(tmp_path / "idx", encoder) as writer:
        writer.add_texts(["첫 기록"], ids=["a"])
        with kosearch.Index.open(tmp_path / "idx", encoder) as reader:
            assert _paths(reader.search("기록", k=5)) == ["a"]
            writer.add_texts(["둘째 기록"], ids=["b"])
            assert sorted(_paths(reader.search("기록", k=5))) == ["a", "b"]  # no reopen, no refresh
            writer.delete(ids=["a"])
            assert _paths(reader.search("기록", k=5)) == ["b"]
            assert not reader.refresh()  # already current


RECORDS_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{tests!r}, {root!r}]
    import kosearch
    from kosearch_testing import HashingEncoder

    class SlowEncoder(HashingEncoder):
        def encode_documents(self, texts, **kwargs):
            time.sleep(0.05)
            return super().encode_documents(texts)

    with kosearch.Index.open_or_create(sys.argv[1], SlowEncoder()) as idx:
        idx.store.record_unit("sentence")
        for batch in range(30):
            ids = [f"b{{batch}}-{{i}}" for i in range(5)]
            texts = [f"{{batch}}번 묶음의 {{i}}번 기록이다. 둘째 문장도 있다." for i in range(5)]
            idx.upsert_texts(texts, metadata=[{{"batch": batch}}] * 5, ids=ids)
            if batch % 3 == 2:
                idx.delete(ids=[f"b{{batch - 1}}-{{i}}" for i in range(5)])
    """
)


def _records_table(index: Path) -> list[tuple]:
    db = sqlite3.connect(index / "metadata.sqlite")
    try:
        return db.execute(
            "select d.record_id, d.sentences, s.position, s.text, s.fields from documents d "
            "join sentences s on s.document_id = d.id order by d.record_id, s.position"
        ).fetchall()
    finally:
        db.close()


def _generation(index: Path) -> int:
    try:
        with sqlite3.connect(index / "metadata.sqlite", timeout=5) as db:
            row = db.execute("select value from manifest where key = 'generation'").fetchone()
            return int(row[0]) if row else -1
    except sqlite3.Error:
        return -1


def test_a_kill_during_adds_and_deletes_leaves_whole_calls_and_a_rerun_equals_a_clean_build(tmp_path):
    script = tmp_path / "records.py"
    script.write_text(RECORDS_SCRIPT.format(tests=str(Path(__file__).parent), root=str(ROOT)))
    index = tmp_path / "idx"
    child = subprocess.Popen([sys.executable, str(script), str(index)])
    deadline = time.monotonic() + 120
    while _generation(index) < 8 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.poll() is None, "the run finished before it could be interrupted"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    with kosearch.Index.open(index, HashingEncoder()) as idx:
        rows = _records_table(index)
        assert 0 < len(rows) == len(idx)
        batches: dict[int, set[str]] = {}
        for record_id, units, _, _, fields in rows:
            assert units == 2 and json.loads(fields)["batch"] == int(record_id[1:].split("-")[0])
            batches.setdefault(int(record_id[1:].split("-")[0]), set()).add(record_id)
        assert all(len(ids) == 5 for ids in batches.values())  # one call, one commit
        assert idx.search("기록", k=1)
    subprocess.run([sys.executable, str(script), str(index)], check=True, timeout=300)
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, str(script), str(clean)], check=True, timeout=300)
    assert _records_table(index) == _records_table(clean)
    assert len(_records_table(clean)) == 2 * 5 * 20  # 30 batches, 10 of them deleted
    with kosearch.Index.open(index, HashingEncoder()) as rerun, kosearch.Index.open(clean, HashingEncoder()) as fresh:
        for query in ("7번 묶음의 3번 기록", "둘째 문장"):
            # Sorted, so that equal scores (ties broken by unit id, which differ) compare equal.
            found = [sorted((round(h.score, 5), h.text) for h in opened.search(query, k=5)) for opened in (rerun, fresh)]
            assert found[0] == found[1]


# -- schema migration ---------------------------------------------------------------------------


def _make_schema_1(index: Path) -> None:
    """Turn an index into what kosearch wrote before records: no record_id column, schema_version 1."""
    db = sqlite3.connect(index / "metadata.sqlite")
    with db:
        db.execute("drop index idx_documents_record_id")
        db.execute("alter table documents drop column record_id")
        db.execute("update manifest set value = '1' where key = 'schema_version'")
    db.close()


def test_an_index_from_before_records_is_migrated_by_its_first_writer(tmp_path, encoder):
    folder = _write_folder(tmp_path / "docs")
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        idx.add_folder(folder)
    _make_schema_1(tmp_path / "idx")
    db = sqlite3.connect(tmp_path / "idx" / "metadata.sqlite")
    assert "record_id" not in {row[1] for row in db.execute("pragma table_info(documents)")}
    db.close()

    with kosearch.Index.open(tmp_path / "idx", encoder) as reader:  # a reader opens it as it is
        assert _paths(reader.search("치타", k=1)) == ["old/2019/a.txt"]
    with kosearch.Index.open(tmp_path / "idx", encoder, writable=True) as writer:
        writer.add_texts(["기록 하나"], metadata=[{"user": 1}], ids=["r1"])
        with pytest.raises(RecordExistsError):
            writer.add_texts(["기록 둘"], ids=["r1"])
        assert writer.delete(paths=["new"]) == 1

    db = sqlite3.connect(tmp_path / "idx" / "metadata.sqlite")
    manifest = dict(db.execute("select key, value from manifest"))
    assert json.loads(manifest["schema_version"]) == SCHEMA_VERSION == 3
    unique = [row for row in db.execute("pragma index_list(documents)") if row[1] == "idx_documents_record_id"]
    assert unique and unique[0][2] == 1
    assert db.execute("select count(*) from documents where record_id is null").fetchone()[0] == 4
    db.close()
    with kosearch.Index.open(tmp_path / "idx", encoder) as reader:
        assert _paths(reader.search("기록 하나", k=1, where={"user": 1})) == ["r1"]
        assert reader.info().documents == 5


def test_an_index_from_a_newer_kosearch_is_refused(tmp_path, encoder):
    kosearch.Index.create(tmp_path / "idx", encoder).close()
    db = sqlite3.connect(tmp_path / "idx" / "metadata.sqlite")
    with db:
        db.execute("update manifest set value = ? where key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    db.close()
    with pytest.raises(kosearch.KosearchError, match="newer kosearch"):
        kosearch.Index.open(tmp_path / "idx", encoder)


# -- the command line ---------------------------------------------------------------------------


def test_cli_remove_and_compact(tmp_path, encoder):
    folder = _write_folder(tmp_path / "docs")
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        idx.add_folder(folder)
        idx.add_texts(["기록"], ids=["r1"])
        total = len(idx)
        in_old = len(idx.search("기록", k=50, where="path GLOB 'old/*'"))
    runner = CliRunner()
    result = runner.invoke(app, ["remove", str(tmp_path / "idx"), "old/2019/*.txt", "nowhere.txt", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["documents"], report["sentences"], report["unmatched"]) == (2, 2, ["nowhere.txt"])
    assert report["sentences_total"] == total - 2

    result = runner.invoke(app, ["remove", str(tmp_path / "idx"), "old"])
    assert result.exit_code == 0, result.output
    assert f"Removed 2 documents ({in_old - 2} sentences)" in result.stdout
    assert f"{total - in_old} sentences in the index" in result.stdout

    result = runner.invoke(app, ["remove", str(tmp_path / "idx"), "old"])  # nothing left to match
    assert result.exit_code == 1 and "no indexed document matches old" in result.output

    result = runner.invoke(app, ["compact", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sentences"] == total - in_old == 2
    result = runner.invoke(app, ["compact", str(tmp_path / "idx")])
    assert result.exit_code == 0 and "Compacted" in result.stdout
    with kosearch.Index.open(tmp_path / "idx", encoder) as reader:
        assert sorted(_paths(reader.search("버스 기록", k=5))) == ["new/d.txt", "r1"]


def test_cli_remove_errors_are_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kosearch", "remove", str(tmp_path / "missing"), "a.txt"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: no kosearch index in") and "Traceback" not in result.stderr


# -- the real encoder ---------------------------------------------------------------------------


@pytest.mark.slow
def test_records_through_the_bundled_encoder(tmp_path):
    with kosearch.Index.open_or_create(tmp_path / "notes") as idx:  # the bundled encoder
        idx.add_texts(
            ["고양이가 소파 위에서 낮잠을 잔다.", "내일은 비가 많이 온다고 한다.", "주식 시장이 크게 하락했다."],
            metadata=[{"user": 3}, {"user": 4}, {"user": 3}],
            ids=["cat", "rain", "stock"],
        )
        assert _paths(idx.search("고양이가 자고 있다", k=3, mode="dense"))[0] == "cat"
        assert _paths(idx.search("날씨 예보", k=1, mode="dense")) == ["rain"]
        assert _paths(idx.search("날씨 예보", k=3, where={"user": 3}))[0] in {"cat", "stock"}
        idx.upsert_texts(["강아지가 공원에서 공을 쫓는다."], metadata=[{"user": 3}], ids=["cat"])
        assert _paths(idx.search("개가 공놀이를 한다", k=1, mode="dense")) == ["cat"]
        hits = idx.search("고양이가 자고 있다", k=3, mode="dense")
        assert "고양이가 소파 위에서 낮잠을 잔다." not in [hit.text for hit in hits]
        # The stored vector is the new text's: its score is the encoder's own cosine.
        query = "공원에서 노는 강아지"
        expected = float(idx.encoder.encode_queries([query])[0] @ idx.encoder.encode_documents(["강아지가 공원에서 공을 쫓는다."])[0])
        cat = [hit for hit in idx.search(query, k=3, mode="dense") if hit.path == "cat"][0]
        assert cat.score == pytest.approx(expected, abs=1e-4)
        assert idx.delete(ids=["rain"]) == 1
        assert "rain" not in _paths(idx.search("날씨 예보", k=3))
    with kosearch.Index.open(tmp_path / "notes") as reader:
        assert sorted(_paths(reader.search("날씨", k=5))) == ["cat", "stock"]
