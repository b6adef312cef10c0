"""The living index (issue 7): readers during writes, migration of a turn-one index, deletes and
compaction, ANN by size, as a user meets them through ``kosearch.Index`` and the CLI.

Plumbing runs on the deterministic ``HashingEncoder``; the last test goes through the real bundled
encoder. Record texts name their own id and version, so every hit a reader gets can be checked
against what was live at some committed generation: a hit of a deleted record, an old version of
an upserted one, or a mix of two generations in one result shows up as a text no state holds.
Kills, disk-full and corruption are tested elsewhere (tests of ``kosearch check``).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import kosearch
from kosearch.store import ann
from kosearch.store.metadata import SCHEMA_VERSION
from kosearch_testing import HashingEncoder
from legacy_index import TURN_ONE_COMMIT, TURN_ONE_MANIFEST_KEYS, TURN_ONE_SCHEMA, write_turn_one_index

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CHILD_PATH = [str(TESTS), str(ROOT)]
K = 6
BASE = 30
"""Records that are never deleted, so every search has at least this many units to return."""
WORDS = ["도서관", "버스", "영화", "날씨", "치타", "사자", "코끼리", "기차", "바다", "산"]


def _text(record_id: str, version: int) -> str:
    word = WORDS[int(hashlib.md5(record_id.encode()).hexdigest(), 16) % len(WORDS)]
    return f"{record_id} 기록의 버전 {version} {word} 이야기"


class Writer:
    """Drives one writer through adds, upserts, deletes and compactions, keeping every committed state."""

    def __init__(self, index: kosearch.Index, seed: int = 0) -> None:
        self.index = index
        self.rng = random.Random(seed)
        self.live: dict[str, str] = {}
        self.states: list[dict[str, str]] = []
        self.next_id = 0
        self.versions: dict[str, int] = {}

    def _commit(self) -> None:
        self.states.append(dict(self.live))

    def add(self, count: int, prefix: str = "r") -> list[str]:
        ids = [f"{prefix}{self.next_id + i}" for i in range(count)]
        self.next_id += count
        texts = [_text(i, 0) for i in ids]
        self.index.add_texts(texts, ids=ids)
        self.live.update(zip(ids, texts))
        self.versions.update(dict.fromkeys(ids, 0))
        self._commit()
        return ids

    def upsert(self, count: int) -> list[str]:
        ids = self.rng.sample(sorted(self.live), count)
        for record_id in ids:
            self.versions[record_id] += 1
        texts = [_text(i, self.versions[i]) for i in ids]
        self.index.upsert_texts(texts, ids=ids)
        self.live.update(zip(ids, texts))
        self._commit()
        return ids

    def delete(self, count: int) -> list[str]:
        candidates = sorted(i for i in self.live if not i.startswith("base"))
        ids = self.rng.sample(candidates, min(count, len(candidates)))
        self.index.delete(ids=ids)
        for record_id in ids:
            del self.live[record_id]
        self._commit()
        return ids

    def compact(self) -> None:
        self.index.compact()  # the live set does not change, only the segments under it
        self._commit()


def _check_results(results: list[list[tuple[str, str]]], states: list[dict[str, str]], k: int) -> list[str]:
    """Problems: a result shorter than k, or one no single committed state holds entirely."""
    problems = []
    state_items = [set(state.items()) for state in states]
    for number, hits in enumerate(results):
        if len(hits) != k:
            problems.append(f"result {number}: {len(hits)} hits, not {k}")
        if not any(set(hits) <= items for items in state_items):
            stray = [hit for hit in hits if not any(hit in items for items in state_items)]
            problems.append(f"result {number}: no committed state holds {hits} (never live: {stray})")
    return problems


def _writer_rounds(writer: Writer, rounds: int, reader: kosearch.Index | None = None) -> None:
    """Adds, upserts, deletes and compactions; with ``reader``, checks it sees each commit at once."""
    for round_number in range(rounds):
        added = writer.add(3)
        if reader is not None:  # the next search of an Index opened once sees the commit
            for record_id in added:
                hit = reader.search(writer.live[record_id], k=1, mode="dense")[0]
                assert (hit.path, hit.text) == (record_id, writer.live[record_id])
        upserted = writer.upsert(2)
        if reader is not None:
            for record_id in upserted:
                hit = reader.search(writer.live[record_id], k=1, mode="dense")[0]
                assert (hit.path, hit.text) == (record_id, writer.live[record_id])
        deleted = writer.delete(2)
        if reader is not None:
            for record_id in deleted:
                assert record_id not in {hit.path for hit in reader.search(_text(record_id, 0), k=K)}
        if round_number % 4 == 3:
            writer.compact()


# -- readers in other threads and processes during writes -------------------------------------------


@pytest.mark.slow
def test_many_threads_search_one_index_while_a_writer_adds_upserts_deletes_and_compacts(tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "BREAK_EVEN", 4)  # x 384/64: compactions above 24 units build HNSW
    encoder = HashingEncoder()
    folder = tmp_path / "idx"
    with kosearch.Index.create(folder, encoder) as index:
        writer = Writer(index)
        writer.add(BASE, prefix="base")
        reader = kosearch.Index.open(folder, encoder)
        stop = threading.Event()
        results: list[list[tuple[str, str]]] = []
        errors: list[str] = []

        def search_loop(number: int) -> None:
            rng = random.Random(number)
            mode = "dense" if number % 2 else "hybrid"
            while not stop.is_set():
                query = f"{rng.choice(WORDS)} 기록의 버전 {rng.randrange(3)}"
                try:
                    hits = reader.search(query, k=K, mode=mode, context=number % 2)
                except Exception as error:  # noqa: BLE001 - any error from a healthy index is a failure
                    errors.append(f"thread {number}: {type(error).__name__}: {error}")
                    return
                results.append([(hit.path, hit.text) for hit in hits])

        threads = [threading.Thread(target=search_loop, args=(number,)) for number in range(6)]
        for thread in threads:
            thread.start()
        try:
            _writer_rounds(writer, 16, reader)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        segments = index.store.segment_entries()
        reader.close()
    assert errors == []
    assert len(results) > 50, "the reader threads hardly searched during the writes"
    assert _check_results(results, writer.states, K) == []
    assert any(entry.factory == ann.ANN_FACTORY for entry in segments), "no compaction built an ANN segment"


READER_SCRIPT = textwrap.dedent(
    """
    import json, random, sys, time
    from pathlib import Path
    import kosearch
    from kosearch_testing import HashingEncoder

    folder, out, ready, stop, seed = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
    words = {words!r}
    encoder, rng = HashingEncoder(), random.Random(seed)
    held = kosearch.Index.open(folder, encoder)
    held.search("기록", k=1, mode="hybrid")  # loads Kiwi (seconds): ready means ready to search at speed
    ready.touch()
    with out.open("w") as handle:
        number = 0
        while not stop.exists():
            query = f"{{rng.choice(words)}} 기록의 버전 {{rng.randrange(3)}}"
            try:
                if number % 5 == 4:  # a fresh open now and then, as a short-lived reader would
                    with kosearch.Index.open(folder, encoder) as fresh:
                        hits = fresh.search(query, k={k}, mode="dense")
                else:
                    hits = held.search(query, k={k}, mode="hybrid" if number % 2 else "dense")
                handle.write(json.dumps({{"hits": [[h.path, h.text] for h in hits]}}, ensure_ascii=False) + "\\n")
            except Exception as error:
                handle.write(json.dumps({{"error": f"{{type(error).__name__}}: {{error}}"}}) + "\\n")
            handle.flush()
            number += 1
    held.close()
    """
).format(words=WORDS, k=K)


@pytest.mark.slow
def test_reader_processes_never_see_an_error_a_short_result_or_a_deleted_row_during_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "BREAK_EVEN", 4)
    encoder = HashingEncoder()
    folder = tmp_path / "idx"
    prelude = f"import sys\nsys.path[:0] = {CHILD_PATH!r}\n"
    with kosearch.Index.create(folder, encoder) as index:
        writer = Writer(index, seed=1)
        writer.add(BASE, prefix="base")
        stop = tmp_path / "stop"
        readers = []
        for number in range(2):
            readers.append(
                subprocess.Popen(
                    [sys.executable, "-c", prelude + READER_SCRIPT, str(folder), str(tmp_path / f"out{number}"),
                     str(tmp_path / f"ready{number}"), str(stop), str(number)],
                    cwd=TESTS, stderr=subprocess.PIPE, text=True,
                )
            )
        try:
            deadline = time.monotonic() + 120
            while not all((tmp_path / f"ready{n}").exists() for n in range(2)) and time.monotonic() < deadline:
                assert all(reader.poll() is None for reader in readers), "a reader process died at start"
                time.sleep(0.05)
            _writer_rounds(writer, 16)
            time.sleep(0.5)  # let the readers search the last generation too
        finally:
            stop.touch()
            stderr = [reader.communicate(timeout=120)[1] for reader in readers]
    assert [reader.returncode for reader in readers] == [0, 0], stderr
    lines = [json.loads(line) for n in range(2) for line in (tmp_path / f"out{n}").read_text().splitlines()]
    assert [line["error"] for line in lines if "error" in line] == []
    results = [[tuple(hit) for hit in line["hits"]] for line in lines]
    assert len(results) > 40, "the reader processes hardly searched during the writes"
    assert _check_results(results, writer.states, K) == []
    final = set(writer.live.items())
    assert any(set(hits) <= final for hits in results[-10:]), "no reader saw the last generation"


# -- migration of a turn-one index ------------------------------------------------------------------


TURN_ONE_FILES = {
    "a.txt": ["치타가 먹이를 쫓는다.", "사자는 무리를 지어 사냥한다."],
    "b.md": ["도서관은 월요일에 휴관한다.", "버스 노선이 다음 달에 바뀐다."],
    "notes/c.txt": ["코끼리는 코로 물을 마신다.", "오늘 날씨가 맑고 따뜻하다.", "영화가 정말 재미있었다."],
}
QUERIES = ["치타 먹이", "도서관 휴관", "버스 노선", "날씨", "영화 재미"]


def _folder_state(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def _ranked(index: kosearch.Index, queries: list[str], k: int = 5, **options) -> list[list[tuple]]:
    return [[(hit.path, hit.text, hit.line, round(hit.score, 5)) for hit in index.search(q, k=k, **options)] for q in queries]


def _check_turn_one_migration(folder: Path, encoder) -> None:
    """Read-only open changes nothing; the first writer migrates; results are equal before and after."""
    before = _folder_state(folder)
    (vectors_file,) = [name for name in before if name.startswith("vectors.")]
    with kosearch.Index.open(folder, encoder) as reader:
        results = _ranked(reader, QUERIES, mode="dense")
        default_mode = _ranked(reader, QUERIES)  # no lexical index yet: searched densely
        info = reader.info()
        assert info.segments == 1 and info.deleted_vectors == 0
        assert info.sentences == sum(len(sentences) for sentences in TURN_ONE_FILES.values())
    assert results[0][0][1] == "치타가 먹이를 쫓는다."
    assert default_mode == results
    assert _folder_state(folder) == before, "a read-only open wrote to the index"

    with kosearch.Index.open(folder, encoder, writable=True) as writer:
        assert _ranked(writer, QUERIES, mode="dense") == results
    names = set(_folder_state(folder))
    assert vectors_file not in names
    with sqlite3.connect(folder / "metadata.sqlite") as db:
        manifest = {key: json.loads(value) for key, value in db.execute("select key, value from manifest")}
    assert "vectors_file" not in manifest and manifest["schema_version"] == SCHEMA_VERSION
    (segment,) = manifest["segments"]
    assert f"{segment['name']}.faiss" in names and segment["count"] == info.sentences

    with kosearch.Index.open(folder, encoder) as reader:
        assert _ranked(reader, QUERIES, mode="dense") == results
        info = reader.info()
    assert info.segments == 1 and info.segment_details[0]["name"] == segment["name"]
    assert info.segment_details[0]["factory"] == "Flat"

    # The migrated index takes records and deletions like any other.
    with kosearch.Index.open(folder, encoder, writable=True) as writer:
        writer.add_texts(["새로 들어온 기록이다"], ids=["new"])
        writer.delete(paths=["a.txt"])
        hits = writer.search("치타 먹이", k=10, mode="dense")
        assert "a.txt" not in {hit.path for hit in hits} and "new" in {hit.path for hit in hits}


def test_a_turn_one_index_opens_read_only_and_its_first_writer_migrates_it(tmp_path):
    encoder = HashingEncoder()
    folder = write_turn_one_index(tmp_path / "old", tmp_path / "docs", TURN_ONE_FILES, encoder)
    _check_turn_one_migration(folder, encoder)


@pytest.mark.slow
def test_an_index_written_by_turn_one_code_itself_migrates(tmp_path):
    """The fixture generator against the real thing: turn one's own code (from git) builds an index,
    which must have the generator's schema and manifest keys, and migrate the same way."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", TURN_ONE_COMMIT, "kosearch"], capture_output=True,
    )
    if archive.returncode != 0:
        pytest.skip(f"git history with {TURN_ONE_COMMIT} is not available here")
    old_code = tmp_path / "turn-one"
    old_code.mkdir()
    subprocess.run(["tar", "-x", "-C", str(old_code)], input=archive.stdout, check=True)
    docs = tmp_path / "docs"
    for path, sentences in TURN_ONE_FILES.items():
        (docs / path).parent.mkdir(parents=True, exist_ok=True)
        (docs / path).write_text("\n".join(sentences) + "\n", encoding="utf-8")
    build = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(old_code)!r}, {str(TESTS)!r}]
        import kosearch
        assert kosearch.__file__.startswith({str(old_code)!r}), kosearch.__file__
        from kosearch_testing import HashingEncoder
        with kosearch.Index.create({str(tmp_path / 'old')!r}, model=HashingEncoder()) as idx:
            idx.add_folder({str(docs)!r})
        """
    )
    subprocess.run([sys.executable, "-c", build], check=True, cwd=tmp_path, capture_output=True, timeout=300)
    folder = tmp_path / "old"
    with sqlite3.connect(folder / "metadata.sqlite") as db:
        schema = [row[0] for row in db.execute("select sql from sqlite_master where sql is not null")]
        keys = {row[0] for row in db.execute("select key from manifest")}
    assert schema == TURN_ONE_SCHEMA
    assert keys == TURN_ONE_MANIFEST_KEYS
    assert sorted(name for name in _folder_state(folder) if name.endswith(".faiss")) == ["vectors.000001.faiss"]
    _check_turn_one_migration(folder, HashingEncoder())


# -- deleting 10% of the documents, then compacting -------------------------------------------------


def _write_documents(folder: Path, count: int = 30, lines: int = 4) -> Path:
    folder.mkdir(parents=True)
    for number in range(count):
        text = "\n".join(
            f"{number}번 문서 {line}번 줄: {WORDS[(number + line) % len(WORDS)]}와 {WORDS[(number * 3 + line) % len(WORDS)]}"
            for line in range(lines)
        )
        (folder / f"doc_{number:02d}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


def _segment_files(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir() if path.name.startswith("segment.")}


def test_deleting_a_tenth_then_compacting_frees_disk_and_equals_a_fresh_build(tmp_path):
    encoder = HashingEncoder(dimension=384)  # the bundled encoder's size: vectors weigh what they will
    docs = _write_documents(tmp_path / "docs", lines=10)
    removed = ["doc_03.txt", "doc_14.txt", "doc_25.txt"]
    folder = tmp_path / "idx"
    with kosearch.Index.create(folder, encoder) as index:
        index.add_folder(docs, unit="sentence", checkpoint_sentences=60)
        segments_before = _segment_files(folder)
        assert len(segments_before) >= 4
        report = index.remove(removed)
        assert (report.documents, report.sentences) == (3, 30)
        assert index.store.deleted_count() == 30
    at_rest_before = sum(path.stat().st_size for path in folder.iterdir())  # as `kosearch remove` leaves it
    with kosearch.Index.open(folder, encoder, writable=True) as index:
        segment_bytes_before = sum((folder / name).stat().st_size for name in _segment_files(folder))
        compaction = index.compact()
        segment_bytes_after = sum((folder / name).stat().st_size for name in _segment_files(folder))
        assert compaction.vectors_dropped == 30 and compaction.segments_after == 1
        assert index.store.deleted_count() == 0
        compacted = {mode: _ranked(index, QUERIES + ["3번 문서", "14번 문서 2번 줄"], k=10, mode=mode)
                     for mode in ("dense", "hybrid", "lexical")}
    assert compaction.bytes_after < compaction.bytes_before
    assert sum(path.stat().st_size for path in folder.iterdir()) < at_rest_before  # as `kosearch compact` leaves it
    assert segment_bytes_after < segment_bytes_before
    with sqlite3.connect(folder / "metadata.sqlite") as db:
        assert db.execute("select count(*) from tombstones").fetchone()[0] == 0
        (segment,) = json.loads(db.execute("select value from manifest where key = 'segments'").fetchone()[0])
        (postings,) = json.loads(db.execute("select value from manifest where key = 'lexical_segments'").fetchone()[0])
    assert postings["count"] == segment["count"]  # the merged postings dropped the deleted units too
    assert _segment_files(folder) == {f"{segment['name']}.faiss", f"{postings['name']}.lexical.npz"}, (
        "merged segments' files were left behind"
    )
    assert not segments_before & _segment_files(folder)

    fresh_docs = tmp_path / "fresh_docs"
    shutil.copytree(docs, fresh_docs)
    for name in removed:
        (fresh_docs / name).unlink()
    with kosearch.Index.create(tmp_path / "fresh", encoder) as fresh:
        fresh.add_folder(fresh_docs, unit="sentence")
        expected = {mode: _ranked(fresh, QUERIES + ["3번 문서", "14번 문서 2번 줄"], k=10, mode=mode)
                    for mode in ("dense", "hybrid", "lexical")}
    assert compacted == expected
    assert not {hit[0] for result in compacted["dense"] for hit in result} & set(removed)


# -- compaction above the ANN break-even -------------------------------------------------------------


@pytest.mark.slow
def test_compaction_above_the_break_even_builds_ann_with_its_recall_shown_by_info(tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "BREAK_EVEN", 20)  # x 384/64 = 120 units for these 64-d vectors
    encoder = HashingEncoder()
    folder = tmp_path / "idx"
    with kosearch.Index.create(folder, encoder) as index:
        writer = Writer(index)
        for _ in range(3):
            writer.add(100)
        assert {entry.factory for entry in index.store.segment_entries()} == {"Flat"}
        index.compact()
        (entry,) = index.store.segment_entries()
        writer.delete(5)
        sample = random.Random(0).sample(sorted(writer.live), 20)
        found = [index.search(writer.live[record_id], k=1, mode="dense")[0].path for record_id in sample]
    assert entry.factory == ann.ANN_FACTORY and entry.count == 300
    assert entry.recall_at_10 is not None and ann.TARGET_RECALL <= entry.recall_at_10 <= 1.0
    assert entry.recall_at_10_ids is not None and 0.0 < entry.recall_at_10_ids <= entry.recall_at_10
    assert found == sample
    with sqlite3.connect(folder / "metadata.sqlite") as db:
        (recorded,) = json.loads(db.execute("select value from manifest where key = 'segments'").fetchone()[0])
    assert recorded["factory"] == ann.ANN_FACTORY and recorded["recall_at_10"] == entry.recall_at_10
    assert recorded["recall_at_10_ids"] == entry.recall_at_10_ids

    run = subprocess.run(
        [sys.executable, "-m", "kosearch", "info", str(folder), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["segments"] == 1 and info["sentences"] == 295 and info["deleted_vectors"] == 5
    (detail,) = info["segment_details"]
    assert detail["factory"] == ann.ANN_FACTORY and detail["recall_at_10"] == entry.recall_at_10
    assert detail["recall_at_10_ids"] == entry.recall_at_10_ids
    text = subprocess.run(
        [sys.executable, "-m", "kosearch", "info", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert (
        f"{ann.ANN_FACTORY} recall@10 {entry.recall_at_10:.3f} with ties, {entry.recall_at_10_ids:.3f} by ids"
        in text.stdout
    )
    assert "deleted vectors 5" in text.stdout

    # A manifest written before ties were counted: one recall_at_10, measured by ids, and no
    # recall_at_10_ids. It opens, and its figure is shown (and reported) as what it is.
    old = {key: value for key, value in recorded.items() if key != "recall_at_10_ids"}
    old["recall_at_10"] = 0.929
    with sqlite3.connect(folder / "metadata.sqlite") as db:
        db.execute("update manifest set value = ? where key = 'segments'", (json.dumps([old]),))
    with kosearch.Index.open(folder, encoder) as index:
        (entry,) = index.store.segment_entries()
        assert index.search(writer.live[sample[0]], k=1, mode="dense")[0].path == sample[0]
    assert entry.recall_at_10 is None and entry.recall_at_10_ids == 0.929
    info = json.loads(subprocess.run(
        [sys.executable, "-m", "kosearch", "info", str(folder), "--json"], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    ).stdout)
    assert info["segment_details"][0]["recall_at_10"] is None and info["segment_details"][0]["recall_at_10_ids"] == 0.929
    text = subprocess.run(
        [sys.executable, "-m", "kosearch", "info", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert f"{ann.ANN_FACTORY} recall@10 0.929 by ids (ties not counted)" in text.stdout


# -- the user path through the real bundled encoder --------------------------------------------------


@pytest.mark.slow
def test_records_compaction_and_a_reader_thread_through_the_bundled_encoder(tmp_path):
    folder = tmp_path / "notes"
    notes = {
        "n1": "도서관은 월요일에 휴관한다.",
        "n2": "버스 노선이 다음 달에 바뀐다.",
        "n3": "치타가 먹이를 쫓아 빠르게 달린다.",
        "n4": "오늘은 비가 많이 와서 우산이 필요하다.",
    }
    with kosearch.Index.open_or_create(folder) as index:
        index.add_texts(list(notes.values()), metadata=[{"user": 1}] * len(notes), ids=list(notes))
        states = [dict(notes)]
        reader = kosearch.Index.open(folder, index.encoder)
        stop, results, errors = threading.Event(), [], []

        def search_loop() -> None:
            while not stop.is_set():
                try:
                    results.append([(hit.path, hit.text) for hit in reader.search("도서관이 쉬는 날", k=3)])
                except Exception as error:  # noqa: BLE001
                    errors.append(f"{type(error).__name__}: {error}")
                    return

        thread = threading.Thread(target=search_loop)
        thread.start()
        try:
            index.upsert_texts(["도서관은 화요일에 휴관한다."], ids=["n1"])
            notes["n1"] = "도서관은 화요일에 휴관한다."
            states.append(dict(notes))
            index.add_texts(["공원 산책로가 새로 열렸다."], metadata=[{"user": 2}], ids=["n5"])
            notes["n5"] = "공원 산책로가 새로 열렸다."
            states.append(dict(notes))
            index.delete(ids=["n2"])
            del notes["n2"]
            states.append(dict(notes))
            report = index.compact()
            states.append(dict(notes))
            time.sleep(0.5)
        finally:
            stop.set()
            thread.join(timeout=120)
        top = reader.search("도서관이 쉬는 날", k=3)
        filtered = reader.search("산책", k=3, where={"user": 2})
        reader.close()
    assert errors == []
    assert results, "the reader thread never searched"
    assert _check_results(results, states, 3) == []
    assert (top[0].path, top[0].text) == ("n1", "도서관은 화요일에 휴관한다.")
    assert "n2" not in {hit.path for hit in top}
    assert [hit.path for hit in filtered] == ["n5"]
    assert report.vectors_dropped == 2 and report.segments_after == 1  # the old n1 and n2
