"""``kosearch check [--repair]`` (``Index.check``/``Index.repair``), damaged files, and a disk that fills up.

Each kind of damage is made by hand on a small index built with the stub encoder, then: what does
``open`` say, what does ``check`` say (naming the file and the repair), and does ``--repair`` bring
back an index whose searches equal the undamaged one's. One test repairs through the real bundled
encoder and the real CLI.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kosearch
from kosearch.cli import app
from kosearch.errors import IndexCorruptError, KosearchError
from kosearch_testing import HashingEncoder

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
QUERIES = ("3번 문서의 4번째 문장", "날씨가 맑다", "기록")


def _write_docs(folder: Path, files: int = 6, lines: int = 10, tag: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(files):
        (folder / f"doc{number:02d}.txt").write_text(
            "\n".join(f"{tag}{number}번 문서의 {line}번째 문장입니다. 날씨가 맑다." for line in range(lines)) + "\n",
            encoding="utf-8",
        )
    return folder


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """An index of several segments, with tombstones and records: the undamaged original."""
    base = tmp_path_factory.mktemp("check")
    docs = _write_docs(base / "docs")
    with kosearch.Index.create(base / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence", checkpoint_sentences=25)
        idx.remove(["doc01.txt"])
        idx.add_texts(["첫 기록이다. 둘째 문장.", "두 번째 기록."], ids=["a", "b"])
    return base


@pytest.fixture
def index(pristine, tmp_path) -> Path:
    """A copy of the pristine index (and its documents, at the same relative place) to damage."""
    shutil.copytree(pristine, tmp_path / "copy")
    return tmp_path / "copy" / "idx"


def _results(index: Path, *, bm25_scores: bool = True) -> list:
    """Each query's hits per mode. ``bm25_scores=False``: only how many lexical and hybrid hits come
    back, for a repair that forgets tombstones and so rebuilds the postings from the live rows: the
    deleted units then leave the BM25 statistics (they count there until compaction, as in Lucene),
    which moves scores and may reorder ties and terms near the idf floor. That the rebuilt postings
    rank as a fresh build does is checked in test_segments (compaction) and test_postings (migration,
    postings repair); here the dense hits must stay exactly the same."""
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        results = []
        for query in QUERIES:
            for mode in ("dense", "lexical", "hybrid"):
                hits = [(round(hit.score, 5), hit.text, hit.path) for hit in idx.search(query, k=8, mode=mode)]
                results.append(hits if bm25_scores or mode == "dense" else len(hits))
        return results


def _segments(index: Path) -> list[dict]:
    with sqlite3.connect(index / "metadata.sqlite") as db:
        return json.loads(db.execute("select value from manifest where key = 'segments'").fetchone()[0])


def _sql(index: Path, *statements: str) -> None:
    db = sqlite3.connect(index / "metadata.sqlite")
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_healthy_index_checks_healthy(pristine):
    report = kosearch.Index.check(pristine / "idx")
    assert report.healthy and report.findings == []
    assert report.counts["sentences"] == report.counts["vectors"] == report.counts["lexical_rows"] == 103
    assert report.counts["tombstones"] == 20 and report.counts["segments"] >= 3
    result = _cli("check", str(pristine / "idx"))
    assert result.exit_code == 0 and "healthy" in result.output
    result = _cli("check", str(pristine / "idx"), "--json")
    assert result.exit_code == 0 and json.loads(result.output)["healthy"] is True


def _damage_segment(index: Path, how: str) -> Path:
    path = index / f"{_segments(index)[1]['name']}.faiss"
    data = bytearray(path.read_bytes())
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "nan":  # the vectors' bytes overwritten (0xff... is NaN as float32)
        data[len(data) // 2 : len(data) // 2 + 256] = b"\xff" * 256
        path.write_bytes(bytes(data))
    elif how == "flipped":  # ordinary numbers where others were: only the recorded CRC-32 tells
        data[len(data) // 2 : len(data) // 2 + 16] = b"\x3f" * 16
        path.write_bytes(bytes(data))
    elif how == "other-count":  # a whole, readable segment file that is not the one the manifest describes
        entries = [
            dict(entry, count=entry["count"] + 1) if f"{entry['name']}.faiss" == path.name else entry
            for entry in _segments(index)
        ]
        _sql(index, f"update manifest set value = '{json.dumps(entries)}' where key = 'segments'")
    return path


@pytest.mark.parametrize("how", ["missing", "truncated", "nan", "flipped", "other-count"])
def test_a_damaged_segment_is_named_by_open_and_check_and_repair_encodes_its_rows_again(index, pristine, how):
    before = _results(pristine / "idx", bm25_scores=False)
    path = _damage_segment(index, how)
    if how not in ("nan", "flipped"):  # a header that reads fine is all open looks at (check reads the vectors)
        with pytest.raises(IndexCorruptError) as refused:
            kosearch.Index.open(index)
        assert path.name in str(refused.value) and "kosearch check" in str(refused.value)
    report = kosearch.Index.check(index)
    assert not report.healthy
    (finding,) = report.errors
    assert finding.kind == "segment" and finding.file == str(path) and finding.repairable
    if how == "flipped":
        assert "CRC-32" in finding.message
    result = _cli("check", str(index))
    assert result.exit_code == 1 and path.name in result.output and "--repair" in result.output

    repaired = kosearch.Index.repair(index, HashingEncoder())
    assert repaired.healthy and repaired.findings == [], repaired
    assert any("encoded" in action for action in repaired.repaired)
    assert not path.exists() or path.name not in {f"{entry['name']}.faiss" for entry in _segments(index)}
    assert _results(index, bm25_scores=False) == before
    assert _cli("check", str(index)).exit_code == 0


def test_lost_lexical_rows_and_a_damaged_fts_index_are_analysed_again(index, pristine):
    before = _results(pristine / "idx")
    _sql(index, "delete from lexical where rowid in (select id from sentences limit 5)")
    report = kosearch.Index.check(index)
    assert [finding.kind for finding in report.errors] == ["lexical"] and "5 rows without postings" in report.errors[0].message
    assert kosearch.Index.repair(index, HashingEncoder()).healthy
    assert _results(index) == before

    _sql(index, "update lexical_data set block = zeroblob(length(block)) where id > 1")
    report = kosearch.Index.check(index)
    assert [finding.kind for finding in report.errors] == ["lexical"] and "integrity" in report.errors[0].message
    repaired = kosearch.Index.repair(index, HashingEncoder())
    assert repaired.healthy and any("new lexical index" in action for action in repaired.repaired)
    assert _results(index) == before


def test_rows_tombstones_and_counts_that_disagree_are_repaired(index, pristine):
    docs = pristine / "docs"  # the folder the copied index records (only read here)
    with sqlite3.connect(index / "metadata.sqlite") as db:
        doc3 = db.execute("select id from documents where path = 'doc03.txt'").fetchone()[0]
        doc4 = db.execute("select id from documents where path = 'doc04.txt'").fetchone()[0]
    _sql(
        index,
        # a row of doc03 lost (its vector stays: a vector without a row; doc03 lacks a unit)
        f"delete from lexical where rowid = (select min(id) from sentences where document_id = {doc3})",
        f"delete from sentences where id = (select min(id) from sentences where document_id = {doc3})",
        # doc04's document row lost (its units belong to no document)
        f"delete from documents where id = {doc4}",
        # a tombstone of no vector, and a wrong count
        "insert into tombstones (id) values (999999)",
        "update manifest set value = '7' where key = 'sentences'",
    )
    with pytest.raises(IndexCorruptError, match="inconsistent"):
        kosearch.Index.open(index)
    kinds = sorted(finding.kind for finding in kosearch.Index.check(index).errors)
    assert kinds == ["documents", "documents", "manifest", "vectors", "vectors"]
    repaired = kosearch.Index.repair(index, HashingEncoder())
    assert repaired.healthy, repaired
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        assert len(idx) == 103 - 1 - 20 and all(hit.path != "doc04.txt" for hit in idx.search("4번 문서", k=20))
    # doc03 was marked unfinished and doc04 is gone: indexing the folder again brings both back whole.
    with kosearch.Index.open(index, HashingEncoder(), writable=True) as idx:
        report = idx.add_folder(docs)
        assert (report.files_updated, report.files_added) == (1, 2)  # doc03 re-read; doc04 and doc01 added back
    assert kosearch.Index.check(index).findings == []


def test_stale_files_are_a_warning_that_repair_removes(index):
    (index / "segment.000099.faiss").write_bytes(b"left by a killed run")
    (index / "segment.000100.faiss.tmp").write_bytes(b"half written")
    report = kosearch.Index.check(index)
    assert report.healthy and sorted(Path(f.file).name for f in report.findings) == [
        "segment.000099.faiss", "segment.000100.faiss.tmp"
    ]
    assert _cli("check", str(index)).exit_code == 0
    result = _cli("check", str(index), "--repair", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["findings"] == []
    assert not (index / "segment.000099.faiss").exists() and not (index / "segment.000100.faiss.tmp").exists()


def test_a_segment_without_a_checksum_is_a_warning_and_compact_gives_it_one(index, pristine):
    """Segments written before kosearch recorded CRC-32s cannot show damage inside their vectors:
    check says so (a warning, not an error) and compaction rewrites them with one."""
    entries = [{key: value for key, value in entry.items() if key != "crc32"} for entry in _segments(index)]
    _sql(index, f"update manifest set value = '{json.dumps(entries)}' where key = 'segments'")
    report = kosearch.Index.check(index)
    unchecked = [f for f in report.findings if f.kind == "segment"]
    assert report.healthy and len(unchecked) == len(entries)
    assert all(f.severity == "warning" and "no checksum" in f.message and "compact" in f.repair for f in unchecked)
    with kosearch.Index.open(index, HashingEncoder(), writable=True) as idx:
        idx.compact()
    assert all(entry.get("crc32") is not None for entry in _segments(index))
    assert kosearch.Index.check(index).findings == []
    # Compaction drops the deleted units from the BM25 statistics (test_segments: equal to a fresh build).
    assert _results(index, bm25_scores=False) == _results(pristine / "idx", bm25_scores=False)


def test_compact_does_not_wait_for_a_reader_to_empty_the_wal(index):
    """A reader holding a snapshot (a running service) keeps the WAL: compaction returns without
    waiting out SQLite's busy timeout for it."""
    with kosearch.Index.open(index, HashingEncoder()) as reader, kosearch.Index.open(
        index, HashingEncoder(), writable=True
    ) as writer:
        reader.search("날씨가 맑다", k=3)  # its view holds a read snapshot
        writer.delete(ids=["a"])
        report = writer.compact()
    assert report.seconds < 4.5  # SQLite's busy timeout is 5 s: waiting for the reader would exceed it


def test_a_corrupted_sqlite_page_is_named_and_repair_says_to_rebuild(index):
    with sqlite3.connect(index / "metadata.sqlite") as db:
        db.execute("pragma wal_checkpoint(truncate)")
        root = db.execute("select rootpage from sqlite_master where name = 'sentences'").fetchone()[0]
        page = db.execute("pragma page_size").fetchone()[0]
    data = bytearray((index / "metadata.sqlite").read_bytes())
    data[(root - 1) * page : root * page] = b"\x5a" * page
    (index / "metadata.sqlite").write_bytes(bytes(data))
    # Opening reads what a search needs; the damaged page is met by the first search, as a clear error.
    with pytest.raises(IndexCorruptError, match="metadata.sqlite") as refused:
        with kosearch.Index.open(index, HashingEncoder()) as idx:
            idx.search("날씨", k=3)
    assert "malformed" in str(refused.value)
    report = kosearch.Index.check(index)
    (finding,) = report.errors
    assert finding.kind == "sqlite" and not finding.repairable and "kosearch index DOCS" in finding.repair
    result = _cli("check", str(index), "--repair")
    assert result.exit_code == 1 and "metadata.sqlite" in result.output and "rebuild the index" in result.output


def test_check_of_a_folder_without_an_index_and_a_bad_option():
    runner = CliRunner()
    missing = runner.invoke(app, ["check", "/nonexistent/kosearch-index"])
    assert missing.exit_code == 1 and "no kosearch index" in str(missing.exception or missing.output)
    assert runner.invoke(app, ["check"]).exit_code == 2
    assert runner.invoke(app, ["check", "x", "--no-such-option"]).exit_code == 2


def test_repair_refuses_while_another_process_writes(index):
    with kosearch.Index.open(index, HashingEncoder(), writable=True):
        with pytest.raises(KosearchError, match="another kosearch process is writing"):
            kosearch.Index.repair(index, HashingEncoder())
        report = kosearch.Index.check(index)  # a read-only check still runs, and says what it skipped
        assert report.healthy and [finding.kind for finding in report.findings] == ["lock"]


# -- a disk that fills up during a commit ------------------------------------------------------------

FULL_DISK = """
    import resource, signal, sys
    sys.path[:0] = {paths!r}
    import kosearch.index
    from kosearch_testing import HashingEncoder

    # The stub encoder stands in for the index's model wherever the CLI would load it.
    kosearch.index._as_encoder = lambda model, device, encoder_backend=None, precision=None, encoder_process=None: HashingEncoder(dimension={dimension})
    from kosearch.documents.split import get_kiwi
    get_kiwi()  # the analyzer's model is read before the limit, as a long run has it loaded already
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    from kosearch.cli import main
    sys.argv = ["kosearch", "index", sys.argv[1], "--index", sys.argv[2], "--quiet"]
    main()
"""


@pytest.mark.parametrize("where,dimension,limit", [("segment", 1024, 400_000), ("sqlite", 8, 150_000)])
def test_a_disk_that_fills_up_during_a_commit_is_one_line_and_the_last_commit_stays(tmp_path, where, dimension, limit):
    docs = _write_docs(tmp_path / "docs", files=4, lines=10)
    index = tmp_path / "idx"
    with kosearch.Index.create(index, HashingEncoder(dimension=dimension)) as idx:
        idx.add_folder(docs, unit="sentence")
    _write_docs(tmp_path / "docs" / "more", files=30, lines=40, tag="추가 ")
    with kosearch.Index.open(index, HashingEncoder(dimension=dimension)) as idx:
        generation, before = idx.store.generation, [h.text for h in idx.search("날씨", k=5)]
    script = textwrap.dedent(FULL_DISK.format(paths=[str(TESTS), str(ROOT)], dimension=dimension, limit=limit))
    run = subprocess.run([sys.executable, "-c", script, str(docs), str(index)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not write the index"), run.stderr
    assert ("File too large" in lines[0]) if where == "segment" else ("metadata.sqlite" in lines[0])
    with kosearch.Index.open(index, HashingEncoder(dimension=dimension)) as idx:
        assert idx.store.generation == generation and len(idx) == 80
        assert [h.text for h in idx.search("날씨", k=5)] == before
    assert kosearch.Index.check(index).healthy
    # With room again, the same command completes.
    with kosearch.Index.open(index, HashingEncoder(dimension=dimension), writable=True) as idx:
        idx.add_folder(docs)
        assert len(idx) == 80 + 30 * 40 * 2
    assert kosearch.Index.check(index).findings == []


def test_records_api_on_a_full_disk_raises_one_clear_error(tmp_path):
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path[:0] = {[str(TESTS), str(ROOT)]!r}
        import kosearch
        from kosearch.errors import IndexWriteError
        from kosearch_testing import HashingEncoder

        with kosearch.Index.open_or_create(sys.argv[1], HashingEncoder(dimension=2048)) as idx:
            idx.add_texts(["첫 기록."], ids=["first"])
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
            try:
                idx.add_texts([f"{{i}}번째 기록이다." for i in range(100)])
            except IndexWriteError as error:
                print(error)
        """
    )
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "idx")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "could not write the index" in run.stdout, run.stderr
    with kosearch.Index.open(tmp_path / "idx", HashingEncoder(dimension=2048)) as idx:
        assert [hit.path for hit in idx.search("기록", k=5)] == ["first"]
    assert [Path(name).name for name in (tmp_path / "idx").iterdir() if ".tmp" in name.name] == []


# -- the real bundled encoder ---------------------------------------------------------------------


@pytest.mark.slow
def test_repair_through_the_bundled_encoder_and_the_cli(tmp_path):
    docs = _write_docs(tmp_path / "docs", files=4, lines=6)
    index = tmp_path / "idx"
    env_path = {"PYTHONPATH": str(ROOT)}
    kosearch_cli = [sys.executable, "-m", "kosearch"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        import os

        return subprocess.run([*kosearch_cli, *args], capture_output=True, text=True, timeout=900,
                              env={**os.environ, **env_path}, cwd=tmp_path)

    assert cli("index", str(docs), "--index", str(index), "--unit", "sentence", "--quiet").returncode == 0
    with kosearch.Index.open(index) as idx:
        before = [[(round(h.score, 4), h.text) for h in idx.search(q, k=5, mode="dense")] for q in QUERIES]
    (index / f"{_segments(index)[0]['name']}.faiss").unlink()
    checked = cli("check", str(index), "--json")
    assert checked.returncode == 1 and json.loads(checked.stdout)["healthy"] is False
    repaired = cli("check", str(index), "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "encoded" in repaired.stdout
    with kosearch.Index.open(index) as idx:
        after = [[(round(h.score, 4), h.text) for h in idx.search(q, k=5, mode="dense")] for q in QUERIES]
    assert after == before


@pytest.mark.slow
def test_a_full_disk_through_the_real_cli_and_bundled_encoder(tmp_path):
    import os

    docs = _write_docs(tmp_path / "docs", files=4, lines=10)
    index = tmp_path / "idx"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "kosearch", "index", str(docs), "--index", str(index), "--unit", "sentence", "--quiet"]
    assert subprocess.run(command, env=env, timeout=900, capture_output=True).returncode == 0
    with kosearch.Index.open(index) as idx:
        generation, before = idx.store.generation, [hit.text for hit in idx.search("날씨", k=5)]
    _write_docs(docs / "more", files=30, lines=40, tag="추가 ")

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    full = subprocess.run(command, env=env, timeout=900, capture_output=True, text=True, preexec_fn=small_disk)
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    assert full.stderr.strip().splitlines()[-1].startswith("error: could not write the index"), full.stderr
    with kosearch.Index.open(index) as idx:
        assert idx.store.generation == generation and [hit.text for hit in idx.search("날씨", k=5)] == before
    assert subprocess.run(command, env=env, timeout=900, capture_output=True).returncode == 0
    with kosearch.Index.open(index) as idx:
        assert len(idx) == 80 + 30 * 40 * 2
    assert kosearch.Index.check(index).findings == []
