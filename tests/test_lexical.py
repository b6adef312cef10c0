"""Lexical retrieval parts: Kiwi morpheme tokens, BM25 (checked against bm25s and SQLite FTS5), fusion."""

from __future__ import annotations

import math
import random
import re
import sqlite3

import numpy as np
import pytest

from kosearch.search.bm25 import BM25Index, BM25Parameters, CollectionStatistics, idf, score_candidates
from kosearch.search.fusion import FusedHit, convex_fusion, minmax_normalise, reciprocal_rank_fusion, zscore_normalise
from kosearch.search.morphemes import LexicalOptions, MorphemeAnalyzer, fts5_match_expression

SENTENCES = [
    "은행은 오후 4시에 문을 닫습니다.",
    "은행을 찾아가서 통장을 만들었다.",
    "은행에서 1,000원짜리 지폐를 바꿨어요.",
    "GPU 서버와 gpu 드라이버를 점검했다.",
    "민원실 전화번호는 031-000-1234입니다.",
    "주민센터 주차장은 밤 10시 이후에는 이용할 수 없습니다.",
    "깨끗하고 조용한 방이 마음에 들었다.",
    "KoSolve는 공학 계산을 위한 수치 해석 프로그램이다.",
]


@pytest.fixture(scope="module")
def analyzer() -> MorphemeAnalyzer:
    return MorphemeAnalyzer()


# --------------------------------------------------------------------------------------- morphemes
def test_particles_and_endings_leave_the_same_noun_token(analyzer):
    forms = [analyzer.analyze(text) for text in ("은행은", "은행을", "은행에서", "은행이랑")]
    assert forms == [["은행"]] * 4


def test_conjugated_verbs_give_one_lemma_and_bare_stems_are_optional(analyzer):
    assert analyzer.analyze("문을 닫습니다") == analyzer.analyze("문을 닫았다") == ["문", "닫다"]
    assert analyzer.analyze("아름다운 꽃") == ["아름답다", "꽃"]  # irregular (VA-I) stem restored
    stems = MorphemeAnalyzer(LexicalOptions(predicate_lemma=False))
    assert stems.analyze("문을 닫았다") == ["문", "닫"]


def test_numbers_latin_and_serials_are_normalised(analyzer):
    assert "1000" in analyzer.analyze("1,000원")
    assert analyzer.analyze("GPU")[0] == analyzer.analyze("gpu")[0] == "gpu"
    assert MorphemeAnalyzer(LexicalOptions(lowercase=False)).analyze("GPU") == ["GPU"]
    assert analyzer.analyze("전화 031-000-1234") == ["전화", "031", "000", "1234"]
    assert "깨끗" in analyzer.analyze("깨끗한 방")  # XR root of a 하다-adjective


def test_tag_choice_filters_particles_and_all_keeps_them(analyzer):
    everything = MorphemeAnalyzer(LexicalOptions(tags=frozenset({"*"}))).analyze("은행에서")
    assert everything == ["은행", "에서"]
    assert analyzer.analyze("은행에서") == ["은행"]


def test_question_words_are_not_tokens(analyzer):
    assert analyzer.analyze("주차비 얼마예요?") == ["주차", "비"]  # 얼마 dropped
    no_stop_list = MorphemeAnalyzer(LexicalOptions(stopwords=frozenset()))
    assert no_stop_list.analyze("주차비 얼마예요?") == ["주차", "비", "얼마"]
    assert "어떻다" in no_stop_list.analyze("전입 신고는 어떻게 해요?")
    assert "어떻다" not in analyzer.analyze("전입 신고는 어떻게 해요?")


def test_derived_words_are_split_into_their_parts_by_default(analyzer):
    assert "고맙다" in analyzer.analyze("고마움을 전하다")
    assert "고마움" in MorphemeAnalyzer(LexicalOptions(split_complex=False)).analyze("고마움을 전하다")


def test_noun_bigrams_let_a_whole_compound_meet_its_parts():
    bigrams = MorphemeAnalyzer(LexicalOptions(noun_bigrams=True))
    whole = bigrams.analyze("이 프로그램은 연립방정식을 수치적으로 푼다")  # Kiwi keeps this one whole (NNP)
    parts = bigrams.analyze("연립 일차 방정식")
    assert "연립방정식" in whole and "방정식" not in whole
    assert {"연립", "방정", "정식"} <= set(whole) & set(parts)


def test_batch_analysis_equals_one_by_one(analyzer):
    assert analyzer.analyze_batch(SENTENCES) == [analyzer.analyze(text) for text in SENTENCES]
    assert analyzer.analyze_batch([]) == []


def test_tokens_read_back_unchanged_by_fts5_unicode61(analyzer):
    """FTS5 re-tokenises the stored text; each analyzer token must stay exactly one FTS5 term."""
    tokens = analyzer.analyze_batch(SENTENCES + ["v1.2.3 버전과 https://example.com/a_b 주소, 3.14와 漢字"])
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE lexical USING fts5(tokens, tokenize='unicode61 remove_diacritics 0')")
    db.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(lexical, 'instance')")
    db.executemany("INSERT INTO lexical(rowid, tokens) VALUES (?, ?)", [(n, " ".join(t)) for n, t in enumerate(tokens)])
    stored = {n: [] for n in range(len(tokens))}
    for term, row, offset in db.execute("SELECT term, doc, offset FROM terms ORDER BY doc, offset"):
        stored[row].append(term)
    assert stored == dict(enumerate(tokens))
    assert all(re.fullmatch(r"[^\W_]+", token) for row in tokens for token in row)


def test_options_round_trip_through_a_dict():
    options = LexicalOptions(
        tags=frozenset({"NNG", "SL"}), predicate_lemma=True, noun_bigrams=True, stopwords=frozenset({"뭐/NP"}), split_complex=False
    )
    assert LexicalOptions.from_dict(options.to_dict()) == options
    assert options.to_dict()["tags"] == ["NNG", "SL"]
    assert LexicalOptions.from_dict({}) == LexicalOptions()


# --------------------------------------------------------------------------------------------- bm25
def random_corpus(seed: int = 0, documents: int = 60) -> tuple[list[list[str]], list[list[str]]]:
    """Documents of varying length over a skewed vocabulary (some terms in most documents), and queries."""
    rng = random.Random(seed)
    vocabulary = [f"t{n}" for n in range(40)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    corpus = [rng.choices(vocabulary, weights, k=rng.randint(1, 25)) for _ in range(documents)]
    queries = [rng.choices(vocabulary, k=rng.randint(1, 5)) for _ in range(30)] + [["t0", "t0", "t7"], ["unknown"]]
    return corpus, queries


@pytest.mark.parametrize("k1,b", [(1.2, 0.75), (1.5, 0.3), (0.9, 1.0)])
def test_bm25_scores_equal_bm25s(k1, b):
    bm25s = pytest.importorskip("bm25s")
    corpus, queries = random_corpus()
    index = BM25Index(corpus, BM25Parameters(k1=k1, b=b))
    reference = bm25s.BM25(k1=k1, b=b, method="lucene")
    reference.index(corpus, show_progress=False)
    for query in queries:
        known = [token for token in query if token in reference.vocab_dict]
        expected = reference.get_scores(known) if known else np.zeros(len(corpus))
        np.testing.assert_allclose(index.scores(query), expected, rtol=2e-6, atol=1e-7)


def test_bm25_on_korean_tokens_ranks_like_bm25s(analyzer):
    bm25s = pytest.importorskip("bm25s")
    corpus = analyzer.analyze_batch(SENTENCES)
    index = BM25Index(corpus)
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index(corpus, show_progress=False)
    query = analyzer.analyze("은행 문 닫는 시간")
    known = [token for token in query if token in reference.vocab_dict]
    np.testing.assert_allclose(index.scores(query), reference.get_scores(known), rtol=2e-6, atol=1e-7)
    assert index.search(query, 1)[0][0] == 0


def test_robertson_variant_is_fts5_bm25_up_to_the_k1_plus_1_factor():
    corpus, queries = random_corpus(seed=1)
    parameters = BM25Parameters(idf="robertson")
    index = BM25Index(corpus, parameters)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE lexical USING fts5(tokens)")
    db.executemany("INSERT INTO lexical(rowid, tokens) VALUES (?, ?)", [(n + 1, " ".join(t)) for n, t in enumerate(corpus)])
    for query in queries:
        rows = db.execute(
            "SELECT rowid, -bm25(lexical) FROM lexical WHERE lexical MATCH ?", (fts5_match_expression(query),)
        ).fetchall()
        expected = np.zeros(len(corpus))
        for rowid, score in rows:
            expected[rowid - 1] = score / (parameters.k1 + 1)
        np.testing.assert_allclose(index.scores(query), expected, rtol=1e-9, atol=1e-12)


def test_idf_by_hand():
    assert idf(1, 4) == pytest.approx(math.log(1 + 3.5 / 1.5))
    assert idf(1, 4, "robertson") == pytest.approx(math.log(3.5 / 1.5))
    assert idf(3, 4, "robertson") == 1e-6  # ln(1.5 / 3.5) < 0: FTS5's floor


def test_candidate_scoring_equals_the_full_index():
    corpus, queries = random_corpus(seed=2)
    index = BM25Index(corpus)
    statistics = index.statistics
    picked = [5, 0, 17, 59, 17]
    for query in queries:
        full = index.scores(query)
        np.testing.assert_allclose(index.score_documents(query, picked), full[picked], rtol=1e-12)
        np.testing.assert_allclose(
            score_candidates(query, [corpus[n] for n in picked], statistics), full[picked], rtol=1e-12
        )


def test_search_returns_matches_only_best_first_ties_by_number():
    index = BM25Index([["a"], ["b"], ["a"], ["a", "a"], []])
    assert [number for number, _ in index.search(["a"], 10)] == [3, 0, 2]
    assert index.search(["a"], 2) == index.search(["a"], 10)[:2]
    assert index.search(["zzz"], 5) == []
    with pytest.raises(ValueError):
        index.search(["a"], 0)


def test_statistics_of_an_empty_collection():
    statistics = CollectionStatistics(0, 0, {})
    assert statistics.average_length == 0.0
    assert score_candidates(["a"], [], statistics).shape == (0,)


def test_invalid_parameters_are_refused():
    with pytest.raises(ValueError):
        BM25Parameters(b=1.5)
    with pytest.raises(ValueError):
        BM25Parameters(idf="atire")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- fusion
DENSE = {"a": 0.9, "b": 0.7, "c": 0.5}
LEXICAL = {"b": 10.0, "d": 4.0, "c": 6.0}


def test_minmax_normalisation():
    assert minmax_normalise({"x": 2.0, "y": 4.0, "z": 3.0}) == {"x": 0.0, "y": 1.0, "z": 0.5}
    assert minmax_normalise({"x": 7.0, "y": 7.0}) == {"x": 1.0, "y": 1.0}
    assert minmax_normalise({}) == {}


def test_convex_fusion_by_hand():
    w = 0.3
    dense_norm = {"a": 1.0, "b": (0.7 - 0.5) / (0.9 - 0.5), "c": 0.0}
    lexical_norm = {"b": 1.0, "c": (6.0 - 4.0) / (10.0 - 4.0), "d": 0.0}
    expected = {key: (1 - w) * dense_norm.get(key, 0.0) + w * lexical_norm.get(key, 0.0) for key in "abcd"}
    hits = convex_fusion(DENSE, LEXICAL, lexical_weight=w, normalisation="minmax")
    assert [hit.key for hit in hits] == ["a", "b", "c", "d"]  # 0.7, 0.65, 0.1, 0.0
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.key])
        assert hit.dense_score == DENSE.get(hit.key) and hit.lexical_score == LEXICAL.get(hit.key)
    assert hits[-1] == FusedHit("d", 0.0, None, 4.0)
    assert [hit.key for hit in convex_fusion(DENSE, LEXICAL, lexical_weight=0.9, normalisation="minmax")] == ["b", "c", "a", "d"]
    assert [hit.key for hit in convex_fusion(DENSE, LEXICAL, k=2, normalisation="minmax")] == ["a", "b"]


def test_zscore_normalisation():
    z = zscore_normalise({"x": 1.0, "y": 2.0, "z": 3.0})
    assert z == pytest.approx({"x": -(1.5**0.5), "y": 0.0, "z": 1.5**0.5})  # population std sqrt(2/3)
    assert zscore_normalise({"x": 7.0, "y": 7.0}) == {"x": 0.0, "y": 0.0}
    assert zscore_normalise({}) == {}


def test_zscore_fusion_by_hand_with_lexical_completion():
    w = 0.3
    dense = {"a": 0.9, "b": 0.7, "c": 0.5}
    lexical = {"b": 10.0, "d": 4.0}
    scored = {"c": 1.0}  # c is a dense candidate the lexical list missed; a has no query term at all

    def z(values):  # over all four candidates, population std
        mean = sum(values.values()) / len(values)
        std = (sum((v - mean) ** 2 for v in values.values()) / len(values)) ** 0.5
        return {key: (v - mean) / std for key, v in values.items()}

    dense_z = z({"a": 0.9, "b": 0.7, "c": 0.5, "d": 0.5})  # d takes the dense list's floor
    lexical_z = z({"a": 0.0, "b": 10.0, "c": 1.0, "d": 4.0})  # a scores 0: completion says no term matches
    expected = {key: (1 - w) * dense_z[key] + w * lexical_z[key] for key in "abcd"}
    hits = convex_fusion(dense, lexical, lexical_weight=w, lexical_scored=scored, dense_std_floor=None)
    assert {hit.key: hit.score for hit in hits} == pytest.approx(expected)
    assert [hit.key for hit in hits] == sorted(expected, key=lambda key: -expected[key])
    by_key = {hit.key: hit for hit in hits}
    assert by_key["c"].lexical_score == 1.0 and by_key["a"].lexical_score is None and by_key["d"].dense_score is None
    # Without completion c and a take the lexical floor (4.0): c ties d on the lexical side and
    # beats it on the dense one, where its real BM25 (1.0) puts it below d.
    assert [hit.key for hit in hits].index("c") > [hit.key for hit in hits].index("d")
    uncompleted = [hit.key for hit in convex_fusion(dense, lexical, lexical_weight=w, dense_std_floor=None)]
    assert uncompleted.index("c") < uncompleted.index("d")


def _population(values):
    mean = sum(values) / len(values)
    return mean, (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5


def test_dense_std_floor_divides_a_narrow_dense_list_by_the_floor_not_its_std():
    w, floor = 0.3, 0.01
    dense = {"a": 0.805, "b": 0.80, "c": 0.79}
    lexical = {"b": 5.0, "d": 2.0}
    scored = {"c": 1.0}
    keys = ["a", "b", "c", "d"]
    dense_values = [0.805, 0.80, 0.79, 0.79]  # d: the dense list's floor
    lexical_values = [0.0, 5.0, 1.0, 2.0]
    d_mean, d_std = _population(dense_values)
    l_mean, l_std = _population(lexical_values)
    assert d_std < floor
    expected = {
        key: (1 - w) * (dv - d_mean) / floor + w * (lv - l_mean) / l_std
        for key, dv, lv in zip(keys, dense_values, lexical_values)
    }
    hits = convex_fusion(dense, lexical, lexical_weight=w, lexical_scored=scored, dense_std_floor=floor)
    assert {hit.key: hit.score for hit in hits} == pytest.approx(expected)
    assert [hit.key for hit in hits] == sorted(expected, key=lambda key: -expected[key])
    assert convex_fusion(dense, lexical, lexical_scored=scored) == hits  # the default floor is 0.01
    # The lexical side and min-max do not use it.
    assert convex_fusion(dense, lexical, normalisation="minmax", dense_std_floor=floor) == convex_fusion(
        dense, lexical, normalisation="minmax", dense_std_floor=None
    )


def test_a_dense_list_that_barely_separates_its_candidates_moves_the_mix_less():
    # The same dense order (a > b > c) and the same lexical scores (b > c), once with cosines spread
    # wide (std 0.08, above the floor: plain z-scores) and once compressed 20-fold around the same
    # mean (std 0.004). Plain z-scores rank both the same; with the floor, the compressed list counts
    # less and the lexical favourite b overtakes a.
    lexical = {"b": 4.0, "c": 2.0}
    wide = {"a": 0.90, "b": 0.80, "c": 0.70}
    narrow = {key: 0.80 + (value - 0.80) / 20 for key, value in wide.items()}
    plain = [[hit.key for hit in convex_fusion(d, lexical, dense_std_floor=None)] for d in (wide, narrow)]
    assert plain[0] == plain[1] == ["a", "b", "c"]
    assert convex_fusion(wide, lexical) == convex_fusion(wide, lexical, dense_std_floor=None)
    assert [hit.key for hit in convex_fusion(narrow, lexical)][0] == "b"


def test_weights_zero_and_one_reproduce_each_signal():
    assert [hit.key for hit in convex_fusion(DENSE, LEXICAL, lexical_weight=0.0)][:3] == ["a", "b", "c"]
    # d is lexical's worst candidate, normalised to 0 like a candidate lexical never returned (a):
    # the tie goes to the dense score.
    assert [hit.key for hit in convex_fusion(DENSE, LEXICAL, lexical_weight=1.0)] == ["b", "c", "a", "d"]


def test_rrf_by_hand():
    hits = reciprocal_rank_fusion(DENSE, LEXICAL)
    expected = {"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63 + 1 / 62, "d": 1 / 63}
    assert [hit.key for hit in hits] == ["b", "c", "a", "d"]
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.key])
    assert reciprocal_rank_fusion(DENSE, LEXICAL, rrf_k=0)[0].score == pytest.approx(1 / 2 + 1 / 1)


def test_ties_break_by_dense_score_then_lexical_then_key():
    # x and y only lexical, tied in score; p and q tie in fused score, q has the higher dense score.
    hits = convex_fusion(
        {"p": 0.2, "q": 0.4, "r": 0.6}, {"p": 3.0, "y": 1.0, "x": 1.0, "r": 2.0}, lexical_weight=0.5, normalisation="minmax"
    )
    fused = {hit.key: hit.score for hit in hits}
    assert fused["p"] == pytest.approx(0.5) and fused["q"] == pytest.approx(0.25) and fused["x"] == fused["y"] == 0.0
    assert [hit.key for hit in hits] == ["r", "p", "q", "x", "y"]
    tied = reciprocal_rank_fusion({"m": 1.0, "n": 1.0}, {})  # equal dense scores: ranks by key
    assert [hit.key for hit in tied] == ["m", "n"] and tied[0].score > tied[1].score


def test_one_signal_empty_or_both():
    assert [hit.key for hit in convex_fusion({}, LEXICAL)] == ["b", "c", "d"]
    assert [hit.key for hit in convex_fusion(DENSE, {})] == ["a", "b", "c"]
    assert convex_fusion({}, {}) == [] and reciprocal_rank_fusion({}, {}) == []


def test_fusion_refuses_bad_arguments():
    with pytest.raises(ValueError):
        convex_fusion(DENSE, LEXICAL, lexical_weight=1.5)
    with pytest.raises(ValueError):
        convex_fusion({"a": float("nan")}, LEXICAL)
    with pytest.raises(ValueError):
        convex_fusion(DENSE, LEXICAL, normalisation="sigmoid")
    for floor in (0.0, -0.01):
        with pytest.raises(ValueError):
            convex_fusion(DENSE, LEXICAL, dense_std_floor=floor)
    with pytest.raises(ValueError):
        reciprocal_rank_fusion(DENSE, LEXICAL, k=0)
