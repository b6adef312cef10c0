"""The Qdrant vector backend (``kosearch.store.qdrant_backend``) in local mode: no server needed.

Every behaviour is checked against the FAISS backend on the same data: same records, same
deterministic encoder, same queries, so the hits must be the same units with the same scores
(Qdrant's local mode searches exactly, like a Flat segment). Then what only a database needs:
orphan points of a killed writer, readers pinned across a compaction, long id lists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_client", reason="the qdrant extra is not installed (pip install 'kosearch[qdrant]')")

import kosearch
from kosearch.errors import KosearchError
from kosearch.store import qdrant_backend
from kosearch.errors import IndexChangedError
from kosearch.store.vector_backend import parse_vector_store
from kosearch_testing import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = ["치타가", "사자는", "코끼리는", "버스가", "도서관은", "학생들이", "기차는", "고양이가"]
VERBS = ["먹이를 쫓는다", "무리를 지어 사냥한다", "물을 마신다", "노선을 바꾼다", "월요일에 쉰다",
         "시험을 본다", "천천히 달린다", "창가에서 잔다"]
PLACES = ["초원에서", "도시에서", "강가에서", "밤에", "아침에", "학교 앞에서"]
QUERIES = ["치타 먹이", "도서관 휴관", "버스 노선", "고양이 잠", "강가 물", "학생 시험"]


@pytest.fixture(autouse=True)
def _fuse_over_the_whole_corpus(monkeypatch):
    """Hybrid fusion normalises over the union of each signal's top candidates. The hashing encoder
    gives many exact ties, so which tied units make the 100th dense candidate depends on the backend's
    rounding, and with it the normalisation; with more candidates than units both backends fuse over
    the same set, and hybrid hits must then agree to the last digit like dense ones."""
    from kosearch.search import hybrid

    monkeypatch.setattr(hybrid, "FUSION_CANDIDATES", 1000)


def _records(count: int, seed: int = 0) -> tuple[list[str], list[dict], list[str]]:
    rng = np.random.default_rng(seed)
    texts, metadata, ids = [], [], []
    for number in range(count):
        texts.append(
            f"{SUBJECTS[rng.integers(len(SUBJECTS))]} {PLACES[rng.integers(len(PLACES))]} "
            f"{VERBS[rng.integers(len(VERBS))]} {number}번"
        )
        metadata.append({"user": int(number % 5), "score": float(rng.random())})
        ids.append(f"r{number}")
    return texts, metadata, ids


def _pair(tmp_path: Path, encoder) -> tuple[kosearch.Index, kosearch.Index]:
    faiss_index = kosearch.Index.create(tmp_path / "faiss", encoder)
    qdrant_index = kosearch.Index.create(tmp_path / "qdrant", encoder, vector_store="qdrant:local")
    for idx in (faiss_index, qdrant_index):
        idx.store.record_unit("sentence")
    return faiss_index, qdrant_index


def _hits(idx: kosearch.Index, **options) -> list[list[tuple[int, float]]]:
    return [[(hit.sentence_id, hit.score) for hit in hits] for hits in idx.search_batch(QUERIES, **options)]


def _assert_same_hits(got: list[list[tuple[int, float]]], expected: list[list[tuple[int, float]]]) -> None:
    """Same units at the same ranks with the same scores; only units whose scores tie may swap.

    Qdrant's local mode and FAISS round float32 dot products differently in the last bits, so two
    units that tie in one may come in either order in the other (and so may a tie at rank k)."""
    assert len(got) == len(expected)
    for row_got, row_expected in zip(got, expected):
        assert len(row_got) == len(row_expected)
        np.testing.assert_allclose([s for _, s in row_got], [s for _, s in row_expected], atol=1e-5)
        for (got_id, _), (expected_id, expected_score) in zip(row_got, row_expected):
            if got_id != expected_id:
                tied = {i for i, s in row_expected if abs(s - expected_score) < 1e-5}
                boundary = abs(expected_score - row_expected[-1][1]) < 1e-5
                assert got_id in tied or boundary, (row_got, row_expected)


def _assert_same(faiss_index: kosearch.Index, qdrant_index: kosearch.Index) -> None:
    assert len(faiss_index) == len(qdrant_index)
    for options in (
        dict(k=10, mode="dense"),
        dict(k=10),  # hybrid: the dense half comes from the backend
        dict(k=10, mode="lexical"),  # the BM25 postings files: the same whichever backend holds the vectors
        dict(k=7, mode="dense", where={"user": 3}),
        dict(k=5, mode="dense", where={"score": {">=": 0.9}}),
        dict(k=5, mode="dense", group_by="document"),
    ):
        expected = _hits(faiss_index, **options)
        _assert_same_hits(_hits(qdrant_index, **options), expected)
        assert all(len(row) == options["k"] for row in expected) or options.get("where")
    assert [(p.a.sentence_id, p.b.sentence_id) for p in qdrant_index.paraphrases(top=10)] == [
        (p.a.sentence_id, p.b.sentence_id) for p in faiss_index.paraphrases(top=10)
    ]


def test_same_hits_as_faiss_through_add_upsert_delete_compact(tmp_path):
    encoder = HashingEncoder()
    faiss_index, qdrant_index = _pair(tmp_path, encoder)
    texts, metadata, ids = _records(300)
    try:
        for idx in (faiss_index, qdrant_index):
            idx.add_texts(texts[:200], metadata[:200], ids[:200])
            idx.add_texts(texts[200:], metadata[200:], ids[200:])
        _assert_same(faiss_index, qdrant_index)

        for idx in (faiss_index, qdrant_index):
            idx.upsert_texts(["치타가 강가에서 먹이를 쫓는다 고친 기록"] * 3, [{"user": 3}] * 3, ids=ids[:3])
            assert idx.delete(ids=ids[10:60]) == 50
            assert idx.delete(where={"user": 4}) > 0
        _assert_same(faiss_index, qdrant_index)
        assert qdrant_index.info().deleted_vectors == faiss_index.info().deleted_vectors > 0

        reports = [idx.compact() for idx in (faiss_index, qdrant_index)]
        assert reports[0].vectors_dropped == reports[1].vectors_dropped > 0
        assert qdrant_index.info().deleted_vectors == 0
        _assert_same(faiss_index, qdrant_index)
        points = qdrant_index.store._vectors
        assert points.stored(None) == len(qdrant_index)  # the deleted points are gone from the collection
        # Qdrant's compaction merged the postings files too: only live units are left in them.
        postings = qdrant_index.store.manifest["lexical_segments"]
        assert sum(entry["count"] for entry in postings) == len(qdrant_index)
        assert {path.name for path in (tmp_path / "qdrant").glob("segment.*.lexical.npz")} == {
            f"{entry['name']}.lexical.npz" for entry in postings
        }
        assert not list((tmp_path / "qdrant").glob("segment.*.faiss"))  # postings need no FAISS segment
    finally:
        faiss_index.close()
        qdrant_index.close()

    with kosearch.Index.open(tmp_path / "faiss", encoder) as f, kosearch.Index.open(tmp_path / "qdrant", encoder) as q:
        assert q.info().vector_store == "qdrant (local, collection kosearch)"
        assert q.info().vector_backend == "qdrant" and f.info().vector_store == "faiss"
        _assert_same(f, q)


def test_long_id_lists_are_post_filtered_and_still_give_k(tmp_path, monkeypatch):
    """Past ``ID_LIST_LIMIT`` ids, allowed and deleted ids are applied to over-fetched results."""
    encoder = HashingEncoder()
    faiss_index, qdrant_index = _pair(tmp_path, encoder)
    texts, metadata, ids = _records(240, seed=1)
    try:
        for idx in (faiss_index, qdrant_index):
            idx.add_texts(texts, metadata, ids)
            idx.delete(ids=ids[:90])  # many tombstones: excluded after the search, not in the request
        monkeypatch.setattr(qdrant_backend, "ID_LIST_LIMIT", 8)
        _assert_same(faiss_index, qdrant_index)
        # A filter whose best units are mostly deleted: the loop must dig until k pass.
        only = dict(k=12, mode="dense", where={"user": {"in": [1, 2]}})
        _assert_same_hits(_hits(qdrant_index, **only), _hits(faiss_index, **only))
        assert all(len(row) == 12 for row in _hits(qdrant_index, **only))
    finally:
        faiss_index.close()
        qdrant_index.close()


def test_reader_sees_new_commits(tmp_path):
    encoder = HashingEncoder()
    texts, metadata, ids = _records(40, seed=2)
    with kosearch.Index.create(tmp_path / "q", encoder, vector_store="qdrant:local") as writer:
        writer.add_texts(texts[:20], metadata[:20], ids[:20])
        with kosearch.Index.open(tmp_path / "q", encoder) as reader:  # one process: they share one client
            assert len(reader) == len(writer)
            before = {hit.path for hit in reader.search("버스", k=50, mode="dense")}
            writer.add_texts(texts[20:], metadata[20:], ids[20:])
            writer.delete(ids=ids[:5])
            after = {hit.path for hit in reader.search("버스", k=50, mode="dense")}
            assert len(reader) == 35
            assert after == {hit.path for hit in writer.search("버스", k=50, mode="dense")}
            assert after != before and not after & set(ids[:5])


def test_reader_pinned_across_a_compaction_is_refused_not_misled(tmp_path):
    encoder = HashingEncoder()
    texts, metadata, ids = _records(30, seed=3)
    with kosearch.Index.create(tmp_path / "q", encoder, vector_store="qdrant:local") as writer:
        writer.add_texts(texts, metadata, ids)
        with kosearch.Index.open(tmp_path / "q", encoder) as reader:
            store = reader.store
            query = encoder.encode_queries(["치타"])
            with store.reading() as view:
                pinned = store.dense_search(query, 30)[1]
                writer.delete(ids=ids[:10])  # generation g+1: tombstones; the pinned view still shows them
                assert np.array_equal(store.dense_search(query, 30)[1], pinned)
                writer.compact()  # the points are deleted: the pinned generation can no longer be answered
                with pytest.raises(IndexChangedError, match="search again"):
                    store.dense_search(query, 30)
            # Unpinned, a search simply moves to the newest generation.
            assert len(reader.search("치타", k=30, mode="dense")) == 20


KILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    sys.path[:0] = [{root!r}, {tests!r}]
    import kosearch
    from kosearch.store.qdrant_backend import QdrantPoints
    from kosearch_testing import HashingEncoder

    write = QdrantPoints.write

    def write_then_die(self, *args, **kwargs):
        segments = write(self, *args, **kwargs)  # the points are in the collection ...
        os._exit(9)  # ... and the SQLite commit never happens

    QdrantPoints.write = write_then_die
    with kosearch.Index.open({folder!r}, HashingEncoder(), writable=True) as idx:
        idx.add_texts(["고아가 될 점 하나", "고아가 될 점 둘"], ids=["o1", "o2"])
    """
)


def test_killed_writer_leaves_orphans_that_no_reader_sees_and_the_next_writer_removes(tmp_path):
    encoder = HashingEncoder()
    folder = tmp_path / "q"
    texts, metadata, ids = _records(20, seed=4)
    with kosearch.Index.create(folder, encoder, vector_store="qdrant:local") as idx:
        idx.add_texts(texts, metadata, ids)
        generation = idx.store.generation
    script = KILLED_WRITER.format(root=str(ROOT), tests=str(ROOT / "tests"), folder=str(folder))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr

    with kosearch.Index.open(folder, encoder) as reader:
        assert reader.store.generation == generation and len(reader) == 20
        points = reader.store._vectors
        assert points.stored(None) == 22  # the two orphans are in the collection ...
        hits = reader.search("고아가 될 점", k=25, mode="dense")
        assert len(hits) == 20 and not any(hit.text.startswith("고아") for hit in hits)  # ... and invisible
    with kosearch.Index.open(folder, encoder, writable=True) as writer:
        assert writer.store._vectors.stored(None) == 20  # the next writer deleted them before writing
        writer.add_texts(["새 기록 하나"], ids=["n1"])
        assert [hit.path for hit in writer.search("새 기록 하나", k=1, mode="dense")] == ["n1"]
        assert writer.store._vectors.stored(None) == 21 == len(writer)


def test_killed_compaction_leaves_a_consistent_index(tmp_path, monkeypatch):
    """Points deleted, tombstones not yet: still excluded, and the next compaction finishes."""
    encoder = HashingEncoder()
    folder = tmp_path / "q"
    texts, metadata, ids = _records(20, seed=5)
    with kosearch.Index.create(folder, encoder, vector_store="qdrant:local") as idx:
        idx.add_texts(texts, metadata, ids)
        idx.delete(ids=ids[:4])
        store = idx.store

        def fail(*args, **kwargs):
            raise RuntimeError("killed")

        monkeypatch.setattr(store, "_check_commit", fail)
        with pytest.raises(RuntimeError):
            idx.compact()
    monkeypatch.undo()
    with kosearch.Index.open(folder, encoder, writable=True) as idx:
        assert len(idx) == 16 and idx.info().deleted_vectors == 4
        assert idx.store._vectors.stored(None) == 16
        assert {hit.path for hit in idx.search("기록", k=20, mode="dense")} == set(ids[4:])
        assert idx.compact().vectors_dropped == 4
        assert idx.info().deleted_vectors == 0 and len(idx) == 16


def test_vector_store_is_recorded_and_kept(tmp_path):
    encoder = HashingEncoder()
    with kosearch.Index.create(tmp_path / "q", encoder, vector_store="qdrant:local/notes") as idx:
        idx.add_texts(["하나"], ids=["a"])
    assert (tmp_path / "q" / "qdrant" / "collection" / "notes").is_dir()
    with pytest.raises(KosearchError, match="keeps its vectors in qdrant .local, collection notes., not faiss"):
        kosearch.Index.open(tmp_path / "q", encoder, writable=True, vector_store="faiss")
    with kosearch.Index.open_or_create(tmp_path / "q", encoder, vector_store="qdrant:local/notes") as idx:
        assert len(idx) == 1
    with kosearch.Index.create(tmp_path / "f", encoder) as idx:
        idx.add_texts(["하나"], ids=["a"])
    with pytest.raises(KosearchError, match="keeps its vectors in faiss"):
        kosearch.Index.open_or_create(tmp_path / "f", encoder, vector_store="qdrant:local")
    with pytest.raises(KosearchError, match="applies to FAISS segments"):
        kosearch.Index.create(tmp_path / "h", encoder, vector_store="qdrant:local", faiss_factory="HNSW32")


def test_vector_store_forms():
    assert parse_vector_store(None) == parse_vector_store("faiss") == {}
    assert parse_vector_store("qdrant:local") == {"kind": "qdrant", "path": "qdrant", "collection": "kosearch"}
    assert parse_vector_store("qdrant://db.example:7000/docs") == {
        "kind": "qdrant", "url": "http://db.example:7000", "collection": "docs"
    }
    assert parse_vector_store("qdrants://db.example/docs")["url"] == "https://db.example:6333"
    for bad in ("qdrant://host:6333", "qdrant://user:pw@host/c", "milvus://x/y", "qdrant:local/../x", "qdrant:locally"):
        with pytest.raises(KosearchError, match="--vector-store"):
            parse_vector_store(bad)


def test_missing_package_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "qdrant_client", None)  # what an install without the extra sees
    with pytest.raises(KosearchError, match=r'pip install "kosearch\[qdrant\]"'):
        kosearch.Index.create(tmp_path / "q", HashingEncoder(), vector_store="qdrant:local")
    assert not (tmp_path / "q" / "metadata.sqlite").exists()


def test_unreachable_server_is_one_clear_line_and_leaves_no_index(tmp_path):
    with pytest.raises(KosearchError, match=r"Qdrant \(qdrant \(http://127.0.0.1:9/c\)\) failed"):
        kosearch.Index.create(tmp_path / "q", HashingEncoder(), vector_store="qdrant://127.0.0.1:9/c")
    assert not (tmp_path / "q" / "metadata.sqlite").exists()


def test_local_storage_held_by_another_process_is_a_clear_error(tmp_path):
    encoder = HashingEncoder()
    with kosearch.Index.create(tmp_path / "q", encoder, vector_store="qdrant:local") as idx:
        idx.add_texts(["하나"], ids=["a"])
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from qdrant_client import QdrantClient
            client = QdrantClient(path={str((tmp_path / 'q' / 'qdrant').resolve())!r})
            print("ready", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(KosearchError, match="local mode serves one process at a time"):
            kosearch.Index.open(tmp_path / "q", encoder)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.slow
def test_cli_index_info_and_query_with_the_bundled_encoder(tmp_path):
    """The user's path: ``kosearch index --vector-store qdrant:local``, ``info``, ``query``; same hits as FAISS."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "animals.txt").write_text(
        "치타는 가장 빠른 육상 동물이다.\n사자는 무리를 지어 사냥한다.\n코끼리는 코로 물을 마신다.\n", encoding="utf-8"
    )
    (docs / "city.txt").write_text(
        "도서관은 월요일에 휴관한다.\n버스 노선이 다음 달에 바뀐다.\n시청 앞에서 축제가 열린다.\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}

    def kosearch_cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "kosearch", *args], capture_output=True, text=True, env=env, timeout=600
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    kosearch_cli("index", str(docs), "--index", str(tmp_path / "q"), "--vector-store", "qdrant:local", "--quiet")
    kosearch_cli("index", str(docs), "--index", str(tmp_path / "f"), "--quiet")
    info = json.loads(kosearch_cli("info", str(tmp_path / "q"), "--json"))
    assert info["vector_store"] == "qdrant (local, collection kosearch)" and info["sentences"] > 0
    assert "qdrant (local, collection kosearch)" in kosearch_cli("info", str(tmp_path / "q"))
    hits = {}
    for name in ("q", "f"):
        out = kosearch_cli("query", str(tmp_path / name), "빠른 동물", "-k", "3", "--json")
        hits[name] = [(hit["text"], round(hit["score"], 4)) for hit in json.loads(out)["hits"]]
    assert hits["q"] == hits["f"] and "치타" in hits["q"][0][0]
    # Indexing the same folder again re-encodes nothing and keeps the backend.
    kosearch_cli("index", str(docs), "--index", str(tmp_path / "q"), "--quiet")
    assert json.loads(kosearch_cli("info", str(tmp_path / "q"), "--json"))["sentences"] == info["sentences"]
