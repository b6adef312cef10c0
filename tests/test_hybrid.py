"""Hybrid retrieval plumbing: the lexical index beside the vectors, modes, fusion, grouping, highlights.

A stub encoder keeps these fast; tests/test_hybrid_cli.py runs the user's path through the real one.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import kosearch
from kosearch.errors import KosearchError
from kosearch.search.morphemes import MorphemeAnalyzer
from kosearch_testing import HashingEncoder


class TableEncoder(HashingEncoder):
    """Vectors chosen per text (others from the hashing encoder): lets a test decide what dense finds."""

    def __init__(self, table: dict[str, np.ndarray], dimension: int = 64) -> None:
        super().__init__(dimension)
        self.table = {text: vector / np.linalg.norm(vector) for text, vector in table.items()}

    def _encode(self, texts):
        vectors = super()._encode(texts)
        for row, text in enumerate(texts):
            if text in self.table:
                vectors[row] = self.table[text]
        return vectors


def _lexical_rows(index_path: Path) -> dict[int, str]:
    with sqlite3.connect(index_path / "metadata.sqlite") as db:
        return dict(db.execute("select rowid, tokens from lexical"))


def _sentence_rows(index_path: Path) -> dict[int, str]:
    with sqlite3.connect(index_path / "metadata.sqlite") as db:
        return dict(db.execute("select id, text from sentences"))


def _assert_lexical_matches_sentences(index_path: Path) -> None:
    lexical, sentences = _lexical_rows(index_path), _sentence_rows(index_path)
    assert set(lexical) == set(sentences)
    analyzer = MorphemeAnalyzer()
    for sentence_id, text in sentences.items():
        assert lexical[sentence_id] == " ".join(analyzer.analyze(text))


def test_lexical_rows_follow_sentence_rows_on_add_update_remove(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("은행에서 돈을 찾았어요.\n오늘은 비가 온다.\n", encoding="utf-8")
    (docs / "b.txt").write_text("주식 시장이 크게 올랐다.\n", encoding="utf-8")
    index = tmp_path / "idx"
    with kosearch.Index.create(index, HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
    _assert_lexical_matches_sentences(index)
    assert len(_lexical_rows(index)) == 3

    (docs / "a.txt").write_text("금리가 내려갔다.\n", encoding="utf-8")
    (docs / "b.txt").unlink()
    (docs / "c.txt").write_text("새 문서의 문장입니다.\n", encoding="utf-8")
    with kosearch.Index.open(index, HashingEncoder(), writable=True) as idx:
        idx.add_folder(docs, unit="sentence")
        assert [hit.text for hit in idx.search("주식", mode="lexical")] == []
        assert [hit.text for hit in idx.search("금리", mode="lexical")] == ["금리가 내려갔다."]
    _assert_lexical_matches_sentences(index)
    assert sorted(_sentence_rows(index).values()) == ["금리가 내려갔다.", "새 문서의 문장입니다."]


def test_a_failed_checkpoint_leaves_rows_postings_and_vectors_of_one_generation(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for number in range(6):
        (docs / f"d{number}.txt").write_text(f"{number}번 문서의 은행 문장입니다.\n", encoding="utf-8")
    index = tmp_path / "idx"

    class FailingEncoder(HashingEncoder):
        def encode_documents(self, texts, batch_size=None, show_progress_bar=False):
            if len(self.calls) >= 3:
                raise RuntimeError("killed")
            return super().encode_documents(texts)

    with kosearch.Index.create(index, FailingEncoder()) as idx:
        with pytest.raises(RuntimeError):
            idx.add_folder(docs, unit="sentence", checkpoint_sentences=1)  # checkpoints every sentence, then dies
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        committed = len(idx)
        assert 0 < committed < 6
        assert idx.store.has_lexical
        assert len(idx.search("은행", k=10, mode="lexical")) == committed
    _assert_lexical_matches_sentences(index)


@pytest.mark.parametrize("k1, b", [(1.2, 0.75), (0.9, 0.4), (1.2, 0.0)])
def test_lexical_scores_equal_bm25s_on_the_same_tokens(tmp_path, k1, b):
    """The product's BM25 (postings files, through ``Index.search(bm25_k1=, bm25_b=)``) is bm25s's
    robertson BM25 on the tokens the index stored, for the k1 and b asked for; and b changes the
    ranking the way length normalisation should (b = 0: the long sentence with 은행 twice wins)."""
    bm25s = pytest.importorskip("bm25s")
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = [
        "은행 금리가 크게 내려갔다.",
        "은행에서 돈을 찾았어요 은행 직원이 친절했다.",
        "주식 시장이 크게 올랐다.",
        "날씨가 맑고 바람이 분다.",
        "금리 인상 소식에 시장이 흔들렸다.",
        "도서관에서 책을 빌렸다.",
        "오늘 점심은 비빔밥이다.",
    ]
    (docs / "a.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    index = tmp_path / "idx"
    query = "은행 금리"
    with kosearch.Index.create(index, HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
        own = idx.search(query, k=10, mode="lexical", bm25_k1=k1, bm25_b=b)  # the writer's view
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        hits = idx.search(query, k=10, mode="lexical", bm25_k1=k1, bm25_b=b)  # a reader's: the files
    rows = _lexical_rows(index)
    ids = sorted(rows)
    corpus = [rows[i].split() for i in ids]
    vocabulary = {token: number for number, token in enumerate(sorted({t for doc in corpus for t in doc}))}
    retriever = bm25s.BM25(method="robertson", k1=k1, b=b)
    retriever.index(bm25s.tokenization.Tokenized(ids=[[vocabulary[t] for t in doc] for doc in corpus], vocab=vocabulary), show_progress=False)
    expected = retriever.get_scores(MorphemeAnalyzer().analyze(query))
    expected_by_id = {sentence_id: float(score) for sentence_id, score in zip(ids, expected) if score > 0}
    for found in (hits, own):
        assert {hit.sentence_id: hit.lexical_score for hit in found} == pytest.approx(expected_by_id, rel=1e-5)
        assert [hit.sentence_id for hit in found] == sorted(expected_by_id, key=lambda i: (-expected_by_id[i], i))
    # Length normalisation: a smaller b lifts the longest matching unit against the shortest one.
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        usual = {hit.sentence_id: hit.lexical_score for hit in idx.search(query, k=10, mode="lexical", bm25_k1=k1, bm25_b=0.75)}
    lengths = {i: len(rows[i].split()) for i in expected_by_id}
    longest, shortest = max(lengths, key=lengths.get), min(lengths, key=lengths.get)
    assert lengths[longest] > lengths[shortest]
    scores = {hit.sentence_id: hit.lexical_score for hit in hits}
    if b < 0.75:
        assert scores[longest] / scores[shortest] > usual[longest] / usual[shortest]


def _controlled_index(tmp_path) -> Path:
    only_dense = "고양이가 창가에서 졸고 있다."
    only_lexical = "금리 발표가 오늘 있었다."
    fillers = [f"{number}번째 평범한 문장입니다." for number in range(5)]
    axis = np.eye(64, dtype=np.float32)
    table = {only_dense: axis[0], only_lexical: axis[2], "금리": axis[0]}
    for filler in fillers:
        table[filler] = 0.2 * axis[0] + 0.98 * axis[1]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("\n".join([only_dense, only_lexical, *fillers]) + "\n", encoding="utf-8")
    index = tmp_path / "idx"
    with kosearch.Index.create(index, TableEncoder(table)) as idx:
        idx.add_folder(docs, unit="sentence")
    return index, TableEncoder(table)


def test_hybrid_finds_what_only_one_signal_finds(tmp_path):
    index, encoder = _controlled_index(tmp_path)
    with kosearch.Index.open(index, encoder) as idx:
        dense = [hit.text for hit in idx.search("금리", k=2, mode="dense")]
        lexical = [hit.text for hit in idx.search("금리", k=2, mode="lexical")]
        hybrid = idx.search("금리", k=2)  # hybrid is the default for an index with a lexical index
    assert "금리 발표가 오늘 있었다." not in dense and "고양이가 창가에서 졸고 있다." in dense
    assert lexical == ["금리 발표가 오늘 있었다."]
    assert {hit.text for hit in hybrid} == {"고양이가 창가에서 졸고 있다.", "금리 발표가 오늘 있었다."}
    assert all(hit.mode == "hybrid" and hit.fused_score == hit.score for hit in hybrid)
    by_text = {hit.text: hit for hit in hybrid}
    assert by_text["금리 발표가 오늘 있었다."].lexical_score > 0
    assert by_text["고양이가 창가에서 졸고 있다."].lexical_score is None
    assert by_text["고양이가 창가에서 졸고 있다."].dense_score == pytest.approx(1.0, abs=1e-5)


def test_completion_scores_dense_candidates_the_lexical_list_missed(tmp_path, monkeypatch):
    """A dense candidate outside the lexical top list gets its real BM25, not the list's floor."""
    import kosearch.search.hybrid as hybrid
    from kosearch.search.completion import lexical_scores_of

    answer = "금리 인상 소식에 시장 분위기가 하루 종일 크게 흔들렸다."  # one 금리 in a long sentence: a low BM25
    shorter = [f"금리 {word}." for word in ("동결", "발표", "전망", "예상")]  # 금리 in short sentences: higher
    axis = np.eye(64, dtype=np.float32)
    table = {answer: axis[0], "금리": axis[0], **{text: 0.3 * axis[0] + 0.95 * axis[1] for text in shorter}}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("\n".join([answer, *shorter, "고양이가 잔다."]) + "\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", TableEncoder(table)) as idx:
        idx.add_folder(docs, unit="sentence")
        everything = {hit.text: hit.lexical_score for hit in idx.search("금리", k=10, mode="lexical")}
        assert min(everything, key=everything.get) == answer  # the lexical list's last
        store = idx.store
        ids = {hit.text: hit.sentence_id for hit in idx.search("금리", k=10, mode="dense")}
        from kosearch.search.bm25 import DEFAULT_B, DEFAULT_K1

        looked_up = lexical_scores_of(store, ["금리"], list(ids.values()), k1=DEFAULT_K1, b=DEFAULT_B)
        assert {text: looked_up.get(i) for text, i in ids.items()} == pytest.approx(
            {text: everything.get(text) for text in ids}
        )  # the same BM25 as the full lexical search, None (left out) for 고양이
        assert lexical_scores_of(store, ["금리"], [], k1=DEFAULT_K1, b=DEFAULT_B) == {}
        # Lists of 2: the answer is dense's first but not in the lexical top 2.
        monkeypatch.setattr(hybrid, "MIN_CANDIDATES", 2)
        monkeypatch.setattr(hybrid, "FUSION_CANDIDATES", 2)
        hits = {hit.text: hit for hit in idx.search("금리", k=3)}
    assert hits[answer].lexical_score == pytest.approx(everything[answer])
    assert hits[answer].dense_score == pytest.approx(1.0, abs=1e-5)


def test_rrf_and_weight_change_the_fusion(tmp_path):
    index, encoder = _controlled_index(tmp_path)
    with kosearch.Index.open(index, encoder) as idx:
        lexical_first = idx.search("금리", k=1, lexical_weight=0.9)[0]
        dense_first = idx.search("금리", k=1, lexical_weight=0.1)[0]
        rrf = idx.search("금리", k=2, fusion="rrf")
    assert lexical_first.text == "금리 발표가 오늘 있었다."
    assert dense_first.text == "고양이가 창가에서 졸고 있다."
    # Dense ranks: the cat 1, five fillers 2-6, the rate sentence 7; lexical: the rate sentence 1.
    assert [hit.text for hit in rrf] == ["금리 발표가 오늘 있었다.", "고양이가 창가에서 졸고 있다."]
    assert [hit.score for hit in rrf] == pytest.approx([1 / 61 + 1 / 67, 1 / 61])


def test_highlights_point_at_the_query_morphemes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("은행에서 돈을 찾았어요.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
        hit = idx.search("은행 돈 찾기", k=1)[0]
    assert [hit.text[start:end] for start, end in hit.highlights] == ["은행", "돈", "찾"]
    assert json.loads(json.dumps(hit.to_dict()))["highlights"] == [[0, 2], [5, 6], [8, 9]]


def test_group_by_document_returns_k_distinct_documents(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for number in range(4):
        (docs / f"d{number}.txt").write_text(
            "\n".join(f"은행 금리 이야기 {number}-{line}번 문장." for line in range(30)) + "\n", encoding="utf-8"
        )
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
        plain = idx.search("은행 금리", k=3)
        grouped = idx.search("은행 금리", k=3, group_by="document")
        everything = idx.search("은행 금리", k=10, group_by="document")
    assert len({hit.path for hit in plain}) < 3  # without grouping, one document fills the top
    assert len(grouped) == 3 and len({hit.path for hit in grouped}) == 3
    assert len(everything) == 4 and len({hit.path for hit in everything}) == 4


def test_filtered_query_returns_k_when_k_units_match_at_one_percent(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    rows = ["review,group,rating"]
    for number in range(1000):
        group = "rare" if number % 100 == 7 else "common"
        rows.append(f"은행 금리가 {number}번 바뀐 이야기,{group},{number % 10}")
    (docs / "reviews.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
        for mode in ("dense", "lexical", "hybrid"):
            hits = idx.search("은행 금리", k=10, mode=mode, where="group = 'rare'")
            assert len(hits) == 10, mode
            assert {hit.fields["group"] for hit in hits} == {"rare"}
        numeric = idx.search("은행 금리", k=200, mode="dense", where=["rating >= 9", "group = 'common'"])
        assert len(numeric) == 100 and all(hit.fields["rating"] == 9 for hit in numeric)
        assert isinstance(numeric[0].fields["rating"], int)
        assert idx.search("은행", k=5, where="rating >= 10") == []  # as text, '9' >= 10 would hold in SQLite
        by_mapping = idx.search("은행", k=5, where={"rating": {">=": 8}, "format": "csv"})
        assert len(by_mapping) == 5 and all(hit.fields["rating"] >= 8 for hit in by_mapping)
        assert idx.search("은행", k=5, where="path GLOB 'other/*'") == []


def test_dense_search_falls_back_to_exact_scoring_when_the_ann_misses_a_filter(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    rows = ["review,group"] + [f"{number}번 문장의 내용,{'rare' if number % 50 == 0 else 'common'}" for number in range(300)]
    (docs / "r.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder(), faiss_factory="HNSW8,Flat") as idx:
        idx.add_folder(docs, unit="sentence")
        hits = idx.search("문장", k=6, mode="dense", where="group = 'rare'")
    assert len(hits) == 6


@pytest.mark.parametrize(
    "where",
    ["rating >>= 9", "rating", "= 9", "rating IN 9", {"rating": {"~": 1}}, 42, "rating >= nine"],
)
def test_bad_filters_are_clear_errors(tmp_path, where):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("은행 문장.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
        with pytest.raises(KosearchError, match="filter"):
            idx.search("은행", where=where)


def test_bad_mode_fusion_group_are_clear_errors(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("은행 문장.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
        for options, message in (
            ({"mode": "semantic"}, "dense, lexical, hybrid"),
            ({"fusion": "sum"}, "convex, rrf"),
            ({"group_by": "page"}, "document"),
            ({"lexical_weight": 2.0}, "between 0 and 1"),
        ):
            with pytest.raises(KosearchError, match=message):
                idx.search("은행", **options)


def _make_old(index: Path) -> None:
    """Turn an index into what the code before the lexical index wrote: no postings, fields, mtime, unit."""
    with sqlite3.connect(index / "metadata.sqlite") as db:
        db.execute("drop table lexical")
        db.execute("alter table sentences drop column fields")
        db.execute("alter table documents drop column modified")
        db.execute("delete from manifest where key in ('lexical', 'unit')")


def test_an_index_without_a_lexical_index_searches_densely_until_indexed_again(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("은행에서 돈을 찾았어요.\n오늘은 비가 온다.\n", encoding="utf-8")
    index = tmp_path / "idx"
    with kosearch.Index.create(index, HashingEncoder()) as idx:
        idx.add_folder(docs, unit="sentence")
    _make_old(index)
    with kosearch.Index.open(index, HashingEncoder()) as idx:  # a reader does not migrate
        hits = idx.search("은행", k=1)
        assert hits[0].mode == "dense" and hits[0].lexical_score is None and hits[0].fields == {}
        assert idx.search("은행", k=1, where="modified >= '2000'") == []  # no dates stored yet
        with pytest.raises(KosearchError, match="kosearch index"):
            idx.search("은행", mode="lexical")
    with sqlite3.connect(index / "metadata.sqlite") as db:
        assert "lexical" not in {row[0] for row in db.execute("select name from sqlite_master")}

    with kosearch.Index.open(index, HashingEncoder(), writable=True) as idx:
        report = idx.add_folder(docs)  # no unit: an old index holds sentences
    assert report.files_unchanged == 1 and report.sentences_added == 0  # nothing re-encoded
    _assert_lexical_matches_sentences(index)
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        hits = idx.search("은행", k=1)
        assert hits[0].mode == "hybrid" and hits[0].lexical_score > 0
        assert [hit.text for hit in idx.search("은행", mode="lexical")] == ["은행에서 돈을 찾았어요."]
        assert idx.store.manifest["unit"] == "sentence"


def test_an_index_keeps_its_unit(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("은행에서 돈을 찾았어요. 오늘은 비가 온다.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs, unit="passage")
        with pytest.raises(KosearchError, match="--unit passage"):
            idx.add_folder(docs, unit="sentence")
        idx.add_folder(docs)  # no unit given: the index's own
        hit = idx.search("비가 오다", k=1)[0]
    assert hit.text == "은행에서 돈을 찾았어요. 오늘은 비가 온다."
    assert hit.best_sentence is not None
    start, end = hit.best_sentence
    assert hit.text[start:end] == "오늘은 비가 온다."


def test_a_new_index_takes_the_default_unit(tmp_path):
    from kosearch.ingest import DEFAULT_UNIT

    docs = tmp_path / "docs"
    docs.mkdir()
    # Three sentences, so that BM25's idf of a term in one of them is positive (with two, FTS5's
    # ln((N - df + 0.5) / (df + 0.5)) is 0 and the lexical signal cannot tell them apart).
    (docs / "a.txt").write_text("은행에서 돈을 찾았어요. 오늘은 비가 온다. 내일은 맑겠다.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(docs)
        assert idx.store.manifest["unit"] == DEFAULT_UNIT
        expected = (
            ["은행에서 돈을 찾았어요. 오늘은 비가 온다. 내일은 맑겠다."]
            if DEFAULT_UNIT == "passage"
            else ["오늘은 비가 온다."]
        )
        assert [hit.text for hit in idx.search("비", k=1, mode="lexical")] == expected
