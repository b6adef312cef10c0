"""Segment postings (kosearch/store/postings.py): BM25 checked against bm25s and SQLite FTS5, over one or
several segments, with tombstones and filters; the memory-mapped file; compaction's merge."""

from __future__ import annotations

import random
import sqlite3
import zipfile
from contextlib import closing

import numpy as np
import pytest

from kosearch.errors import IndexCorruptError
from kosearch.search.morphemes import MorphemeAnalyzer, fts5_match_expression
from kosearch.store.postings import LexicalSegments, SegmentPostings, bm25_search, lexical_file_name

SENTENCES = [
    "은행은 오후 4시에 문을 닫습니다.",
    "은행을 찾아가서 통장을 만들었다.",
    "은행에서 1,000원짜리 지폐를 바꿨어요.",
    "GPU 서버와 gpu 드라이버를 점검했다.",
    "민원실 전화번호는 031-000-1234입니다.",
    "주민센터 주차장은 밤 10시 이후에는 이용할 수 없습니다.",
    "깨끗하고 조용한 방이 마음에 들었다.",
    "KoSolve는 공학 계산을 위한 수치 해석 프로그램이다.",
    "금리 인상 소식에 주식 시장이 흔들렸다.",
    "도서관에서 책을 빌리고 은행 앱으로 이체했다.",
    "오늘 점심은 비빔밥이다.",
    "주말에는 은행 문이 닫혀 있다.",
]


def random_corpus(seed: int = 0, documents: int = 200) -> tuple[list[list[str]], list[list[str]]]:
    """Documents of varying length over a skewed vocabulary (some terms in most documents), and queries."""
    rng = random.Random(seed)
    vocabulary = [f"t{n}" for n in range(60)] + ["한국어", "은행"]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    corpus = [rng.choices(vocabulary, weights, k=rng.randint(0 if n == 7 else 1, 25)) for n in range(documents)]
    queries = [rng.choices(vocabulary, k=rng.randint(1, 5)) for _ in range(40)] + [["t0", "t0", "t7"], ["unknown"], ["은행"]]
    return corpus, queries


def scattered_ids(count: int, seed: int = 0) -> np.ndarray:
    """Unit ids as a store hands them out after deletes: increasing with gaps, given in shuffled order."""
    ids = np.cumsum(np.random.default_rng(seed).integers(1, 5, size=count)) + 100
    return np.random.default_rng(seed + 1).permutation(ids)


def split(ids: np.ndarray, corpus: list, parts: int) -> list[SegmentPostings]:
    """Segments as commits make them: consecutive runs of ids."""
    order = np.argsort(ids)
    return [
        SegmentPostings.build(ids[chunk], [corpus[i] for i in chunk]) for chunk in np.array_split(order, parts)
    ]


def as_vector(results: list[tuple[int, float]], ids: np.ndarray) -> np.ndarray:
    """Scores in the corpus's order (0 for units not returned)."""
    where = {int(i): n for n, i in enumerate(ids)}
    vector = np.zeros(len(ids))
    for unit, score in results:
        vector[where[unit]] = score
    return vector


@pytest.fixture(scope="module")
def analyzer() -> MorphemeAnalyzer:
    return MorphemeAnalyzer()


@pytest.mark.parametrize("parts", [1, 4])
@pytest.mark.parametrize("k1,b", [(1.2, 0.75), (1.5, 0.3), (0.9, 1.0)])
def test_scores_equal_bm25s_lucene_over_one_or_many_segments(parts, k1, b):
    bm25s = pytest.importorskip("bm25s")
    corpus, queries = random_corpus()
    ids = scattered_ids(len(corpus))
    segments = split(ids, corpus, parts)
    reference = bm25s.BM25(k1=k1, b=b, method="lucene")
    reference.index(corpus, show_progress=False)
    for query in queries:
        known = [token for token in query if token in reference.vocab_dict]
        expected = reference.get_scores(known) if known else np.zeros(len(corpus))
        found = bm25_search(segments, query, len(corpus), k1=k1, b=b, idf="lucene")
        np.testing.assert_allclose(as_vector(found, ids), expected, rtol=2e-6, atol=1e-7)
        assert len(found) == int((expected > 0).sum())


def test_korean_morphemes_score_as_bm25s_robertson(analyzer):
    """FTS5's idf (the default) on real Kiwi tokens; query terms in fewer than half the units, where bm25s's
    Robertson idf (floored at 0) and FTS5's (floored at 1e-6) agree."""
    bm25s = pytest.importorskip("bm25s")
    corpus = analyzer.analyze_batch(SENTENCES)
    ids = np.arange(len(corpus)) * 3 + 1
    reference = bm25s.BM25(k1=1.2, b=0.75, method="robertson")
    reference.index(corpus, show_progress=False)
    for text in ("은행 문 닫는 시간", "주식 금리", "gpu 드라이버 점검", "주차장 이용 시간"):
        query = analyzer.analyze(text)
        known = [token for token in query if token in reference.vocab_dict]
        assert known, text
        expected = reference.get_scores(known)
        for parts in (1, 3):
            found = bm25_search(split(ids, corpus, parts), query, 10)
            np.testing.assert_allclose(as_vector(found, ids), expected, rtol=2e-6, atol=1e-7)
    top = bm25_search([SegmentPostings.build(ids, [" ".join(t) for t in corpus])], analyzer.analyze("은행 문 닫는 시간"), 1)
    assert top[0][0] == ids[0]  # 은행은 오후 4시에 문을 닫습니다.


@pytest.mark.parametrize("parts", [1, 3])
def test_ranking_and_scores_are_fts5_bm25(parts):
    """Same tokens in an FTS5 table: the same ids in the same order, and -bm25() = (k1 + 1) x our score."""
    corpus, queries = random_corpus(seed=1)
    ids = scattered_ids(len(corpus), seed=3)
    segments = split(ids, corpus, parts)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE lexical USING fts5(tokens, tokenize='unicode61 remove_diacritics 0')")
    db.executemany("INSERT INTO lexical(rowid, tokens) VALUES (?, ?)", [(int(i), " ".join(t)) for i, t in zip(ids, corpus)])
    for query in queries:
        expected = db.execute(
            "SELECT rowid, -bm25(lexical) FROM lexical WHERE lexical MATCH ? ORDER BY bm25(lexical), rowid LIMIT 15",
            (fts5_match_expression(query),),
        ).fetchall()
        found = bm25_search(segments, query, 15)
        assert [unit for unit, _ in found] == [rowid for rowid, _ in expected], query
        np.testing.assert_allclose([2.2 * score for _, score in found], [score for _, score in expected], rtol=1e-9)


def test_tombstones_are_never_returned_but_still_counted_until_compaction():
    corpus, queries = random_corpus(seed=2)
    ids = scattered_ids(len(corpus), seed=2)
    segments = split(ids, corpus, 3)
    deleted = np.sort(ids)[::3]
    for query in queries:
        every = bm25_search(segments, query, len(corpus))
        kept = bm25_search(segments, query, 10, excluded=deleted)
        assert not set(unit for unit, _ in kept) & set(deleted.tolist())
        # statistics include the deleted units: the survivors keep their scores and their order
        assert kept == [(unit, score) for unit, score in every if unit not in set(deleted.tolist())][:10]


def test_a_filter_applies_before_ranking_so_k_results_come_back():
    corpus = [["은행", "금리"]] * 50 + [["은행"] + ["잡음"] * 20] * 50
    ids = np.arange(1000, 1100)
    segments = split(ids, corpus, 4)
    allowed = ids[50:][::2]  # 25 units, all ranked below the 50 better ones
    found = bm25_search(segments, ["은행", "금리"], 10, allowed=allowed)
    assert len(found) == 10 and {unit for unit, _ in found} <= set(allowed.tolist())
    assert [unit for unit, _ in found] == sorted(allowed.tolist())[:10]  # ties go to the lower id
    both = bm25_search(segments, ["은행"], 30, allowed=allowed, excluded=allowed[:5])
    assert len(both) == 20 and not {unit for unit, _ in both} & set(allowed[:5].tolist())
    assert bm25_search(segments, ["은행"], 10, allowed=np.array([], dtype=np.int64)) == []
    assert bm25_search(segments, ["없는말"], 10) == [] and bm25_search(segments, [], 10) == []
    with pytest.raises(ValueError):
        bm25_search(segments, ["은행"], 0)


@pytest.mark.parametrize("parts", [1, 3])
def test_scoring_a_few_allowed_units_one_by_one_gives_the_accumulated_scores_exactly(parts, monkeypatch):
    """Completion and narrow filters score only their units (a binary search per unit and term); the
    result must be the accumulating path's, to the last bit, with tombstones and ties as there."""
    from kosearch.store import postings

    corpus, queries = random_corpus(seed=5, documents=600)
    ids = scattered_ids(len(corpus), seed=5)
    segments = split(ids, corpus, parts)
    rng = np.random.default_rng(5)
    deleted = np.sort(rng.choice(ids, 40, replace=False))
    for query in queries:
        allowed = rng.choice(ids, 12, replace=False)
        sparse = bm25_search(segments, query, 8, allowed=allowed, excluded=deleted, k1=1.1, b=0.4)
        monkeypatch.setattr(postings, "_few", lambda *args: False)
        accumulated = bm25_search(segments, query, 8, allowed=allowed, excluded=deleted, k1=1.1, b=0.4)
        monkeypatch.setattr(postings, "_few", lambda *args: True)
        forced = bm25_search(segments, query, 8, allowed=allowed, excluded=deleted, k1=1.1, b=0.4)
        monkeypatch.undo()
        assert sparse == accumulated == forced  # floats compared exactly
    # Allowed ids that are also deleted, and a segment holding none of the allowed ids.
    order = np.sort(ids)
    allowed = np.concatenate([deleted[:5], order[:6]])  # the first segment's lowest ids (and 5 deleted ones)
    for query in queries[:10]:
        monkeypatch.setattr(postings, "_few", lambda *args: True)
        forced = bm25_search(segments, query, 20, allowed=allowed, excluded=deleted)
        monkeypatch.undo()
        assert forced == [hit for hit in bm25_search(segments, query, len(corpus), excluded=deleted)
                          if hit[0] in set(allowed.tolist())][:20]
        assert not {unit for unit, _ in forced} & set(deleted.tolist())
    assert postings._few(12, 3, 600) is False and postings._few(100, 3, 1_232_224) is True


def test_save_load_is_memory_mapped_a_plain_npz_and_searches_the_same(tmp_path):
    corpus, queries = random_corpus(seed=4)
    ids = scattered_ids(len(corpus), seed=4)
    built = SegmentPostings.build(ids, [" ".join(t) for t in corpus])
    path = tmp_path / lexical_file_name("segment.000003")
    built.save(path)
    assert path.name == "segment.000003.lexical.npz" and [p.name for p in tmp_path.iterdir()] == [path.name]
    loaded = SegmentPostings.load(path)
    for name in ("ids", "lengths", "term_bytes", "term_offsets", "post_offsets", "positions", "frequencies"):
        array = getattr(loaded, name)
        assert not array.flags.writeable and not array.flags.owndata, name  # a view of the read-only map
        assert array.ctypes.data % 64 == 0, name
        np.testing.assert_array_equal(array, getattr(built, name))
    with np.load(path) as plain:  # an ordinary .npz as well
        np.testing.assert_array_equal(plain["positions"], built.positions)
    for query in queries:
        assert bm25_search([loaded], query, 20) == bm25_search([built], query, 20)


def test_a_damaged_file_is_a_clear_error(tmp_path):
    path = tmp_path / "segment.000001.lexical.npz"
    SegmentPostings.build([1, 2], ["은행 금리", "주식"]).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match="segment.000001.lexical.npz"):
        SegmentPostings.load(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ids.npy", b"x" * 100)
    with pytest.raises(IndexCorruptError, match="rebuild"):
        SegmentPostings.load(path)


def test_merge_drops_tombstones_and_equals_a_fresh_build_of_the_rest(tmp_path):
    corpus, queries = random_corpus(seed=5)
    ids = scattered_ids(len(corpus), seed=5)
    segments = split(ids, corpus, 4)
    segments[1].save(tmp_path / "one.npz")
    segments[1] = SegmentPostings.load(tmp_path / "one.npz")  # merging reads mapped segments too
    deleted = np.sort(ids)[1::4]
    merged = SegmentPostings.merge([segments[2], segments[0], segments[3], segments[1]], excluded=deleted)
    keep = ~np.isin(ids, deleted)
    fresh = SegmentPostings.build(ids[keep], [t for t, k in zip(corpus, keep) if k])
    for name in ("ids", "lengths", "term_bytes", "term_offsets", "post_offsets", "positions", "frequencies"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(fresh, name), err_msg=name)
    everything_deleted = SegmentPostings.merge(segments[:1], excluded=segments[0].ids)
    assert everything_deleted.count == 0 and everything_deleted.terms() == []
    assert bm25_search([everything_deleted], queries[0], 5) == []


def test_build_refuses_repeated_ids_and_mismatched_lengths():
    with pytest.raises(ValueError, match="unique"):
        SegmentPostings.build([1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="2 ids but 1"):
        SegmentPostings.build([1, 2], ["a"])


def test_lexical_segments_reuse_loaded_segments_for_the_next_generation(tmp_path):
    first, second = SegmentPostings.build([1, 2], ["은행 금리", "주식"]), SegmentPostings.build([3], ["은행"])
    first.save(tmp_path / lexical_file_name("segment.000001"))
    second.save(tmp_path / lexical_file_name("segment.000002"))
    view = LexicalSegments.open(tmp_path, ["segment.000001"])
    loads: list[str] = []

    def load(name: str) -> SegmentPostings:
        loads.append(name)
        return SegmentPostings.load(tmp_path / lexical_file_name(name))

    newer = view.with_segments(["segment.000001", "segment.000002"], load)
    assert loads == ["segment.000002"] and len(newer) == 3 and newer.names == ["segment.000001", "segment.000002"]
    assert [unit for unit, _ in newer.search(["은행"], 10)] == [3, 1]
    assert [unit for unit, _ in newer.search(["은행"], 10, excluded=np.array([3]))] == [1]
    assert [unit for unit, _ in view.search(["은행"], 10)] == [1]  # the older view is unchanged


def test_same_hits_as_the_fts5_lexical_search_of_a_kosearch_index(tmp_path, analyzer):
    """The product's lexical search (postings files) ranks as FTS5's ``bm25()`` over the same stored
    morphemes at k1 = 1.2, b = 0.75 (``-bm25() == 2.2 * score``), split into segments or not."""
    from kosearch.search.morphemes import fts5_match_expression
    import kosearch
    from kosearch_testing import HashingEncoder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    (docs / "b.txt").write_text("은행 금리가 크게 내려갔다.\n주민센터는 9시에 문을 엽니다.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
    with sqlite3.connect(tmp_path / "idx" / "metadata.sqlite") as db:
        rows = db.execute("select rowid, tokens from lexical").fetchall()
    segments = split(np.array([i for i, _ in rows]), [t for _, t in rows], 2)
    with kosearch.Index.open(tmp_path / "idx", HashingEncoder()) as idx:
        for text in ("은행 문 닫는 시간", "주민센터 몇 시에 열어요", "금리", "gpu 점검"):
            hits = idx.search(text, k=5, mode="lexical", bm25_k1=1.2, bm25_b=0.75)
            terms = list(dict.fromkeys(analyzer.analyze(text)))
            found = bm25_search(segments, terms, 5)
            with sqlite3.connect(tmp_path / "idx" / "metadata.sqlite") as db:
                fts5 = db.execute(
                    "select rowid, -bm25(lexical) from lexical where lexical match ? order by bm25(lexical), rowid limit 5",
                    (fts5_match_expression(terms),),
                ).fetchall()
            assert [hit.sentence_id for hit in hits] == [unit for unit, _ in found] == [unit for unit, _ in fts5], text
            np.testing.assert_allclose([hit.lexical_score for hit in hits], [score for _, score in found], rtol=1e-9)
            np.testing.assert_allclose([2.2 * hit.lexical_score for hit in hits], [score for _, score in fts5], rtol=1e-9)


# -- the store's postings files: migration of an FTS5-only index, damage, repair --------------------


def _fts5_only(index_folder):
    """Make ``index_folder`` what a kosearch before postings files wrote: the FTS5 table alone."""
    for path in index_folder.glob("segment.*.lexical.npz"):
        path.unlink()
    # closed here, not when the collector gets to it: the last connection to close checkpoints the WAL into
    # the database file, which would otherwise land inside the "a reader writes nothing" window below
    with closing(sqlite3.connect(index_folder / "metadata.sqlite")) as db, db:
        db.execute("delete from manifest where key = 'lexical_segments'")


def _state(folder):
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir() if path.name != "write.lock"}


def _lexical_results(folder, encoder):
    import kosearch

    with kosearch.Index.open(folder, encoder) as idx:
        return [
            [(hit.sentence_id, round(hit.score, 6)) for hit in idx.search(text, k=5, mode=mode, bm25_k1=0.9, bm25_b=0.4)]
            for text in ("은행 문 닫는 시간", "금리", "주민센터") for mode in ("lexical", "hybrid")
        ]


def _sentence_index(tmp_path):
    """An index of SENTENCES, one unit each, by the hashing stub encoder; its folder."""
    import kosearch
    from kosearch_testing import HashingEncoder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    folder = tmp_path / "idx"
    with kosearch.Index.create(folder, HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
    return folder


def test_an_fts5_only_index_is_searched_as_before_and_its_next_writer_writes_its_postings(tmp_path):
    import json

    import kosearch
    from kosearch_testing import HashingEncoder

    folder = _sentence_index(tmp_path)
    expected = _lexical_results(folder, HashingEncoder())
    _fts5_only(folder)
    before = _state(folder)
    assert _lexical_results(folder, HashingEncoder()) == expected  # a reader builds the postings in memory
    assert _state(folder) == before  # and writes nothing
    assert kosearch.Index.check(folder).healthy
    with kosearch.Index.open(folder, HashingEncoder(), writable=True) as idx:  # the next writer
        assert idx.store.manifest["lexical_segments"]
    with sqlite3.connect(folder / "metadata.sqlite") as db:
        (entry,) = json.loads(db.execute("select value from manifest where key = 'lexical_segments'").fetchone()[0])
    assert (folder / f"{entry['name']}.lexical.npz").is_file() and entry["count"] == len(SENTENCES)
    assert _lexical_results(folder, HashingEncoder()) == expected
    report = kosearch.Index.check(folder)
    assert report.healthy and report.findings == [], report


@pytest.mark.parametrize("how", ["missing", "flipped"])
def test_a_damaged_postings_file_is_found_by_open_and_check_and_repair_rebuilds_it(tmp_path, how):
    import kosearch
    from kosearch.errors import IndexCorruptError
    from kosearch_testing import HashingEncoder

    folder = _sentence_index(tmp_path)
    expected = _lexical_results(folder, HashingEncoder())
    (path,) = folder.glob("segment.*.lexical.npz")
    if how == "missing":
        path.unlink()
        with pytest.raises(IndexCorruptError) as refused:
            kosearch.Index.open(folder, HashingEncoder())
        assert path.name in str(refused.value) and "kosearch check" in str(refused.value)
    else:
        data = bytearray(path.read_bytes())
        data[-200] ^= 0xFF  # inside the last member's data: the header still reads
        path.write_bytes(bytes(data))
    report = kosearch.Index.check(folder)
    (finding,) = report.errors
    assert finding.kind == "postings" and finding.file == str(path) and finding.repairable
    repaired = kosearch.Index.repair(folder, HashingEncoder())
    assert repaired.healthy and repaired.findings == [], repaired
    assert any("postings" in action for action in repaired.repaired)
    assert _lexical_results(folder, HashingEncoder()) == expected
