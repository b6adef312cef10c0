"""Metadata filters: both spellings parse to the same conditions, compile to SQL with bound values,
and select exactly the rows a hand-written predicate selects."""

from __future__ import annotations

import json
import sqlite3

import pytest

from kosearch.errors import KosearchError
from kosearch.search.filters import Condition, Filter, FilterError, parse_condition


def test_where_strings_parse_to_conditions():
    assert parse_condition("format = 'pdf'") == Condition("format", "=", "pdf")
    assert parse_condition("rating >= 9") == Condition("rating", ">=", 9)
    assert parse_condition("score < -0.5") == Condition("score", "<", -0.5)
    assert parse_condition("path GLOB 'finance/*'") == Condition("path", "glob", "finance/*")
    assert parse_condition("format in ('pdf', \"docx\")") == Condition("format", "in", ("pdf", "docx"))
    assert parse_condition("format NOT IN ('pdf')") == Condition("format", "not in", ("pdf",))
    assert parse_condition("제목 = '공지'") == Condition("제목", "=", "공지")
    assert parse_condition("author = 'O''Brien'") == Condition("author", "=", "O'Brien")
    assert parse_condition("flag != true") == Condition("flag", "!=", True)
    assert parse_condition("page = null") == Condition("page", "=", None)


def test_mapping_spelling_means_the_same():
    mapped = Filter.parse({"format": "pdf", "rating": {">=": 9, "<": 11}, "lang": ["ko", "en"]})
    written = Filter.parse(["format = 'pdf'", "rating >= 9", "rating < 11", "lang IN ('ko', 'en')"])
    assert mapped == written


@pytest.mark.parametrize(
    "text",
    ["rating", "rating >=", "rating ~ 3", "= 3", "rating >= nine", "format IN 'pdf'", "format IN ()",
     "format IN ('a',)", "path GLOB 3", "rating >= null", "1abc = 2", "rating >= 9 extra"],
)
def test_bad_expressions_get_a_clear_error(text):
    with pytest.raises(FilterError) as caught:
        parse_condition(text)
    assert isinstance(caught.value, KosearchError)
    assert "filter" in str(caught.value)


def test_bad_mappings_get_a_clear_error():
    for where in ({"rating": {}}, {"rating": {"~": 3}}, {"format": {"in": "pdf"}}, {"x": object()},
                  {"x": float("nan")}, 42):
        with pytest.raises(FilterError):
            Filter.parse(where)


ROWS = [
    # (sentence id, path, format, page, fields)
    (1, "finance/a.pdf", "pdf", 1, {"rating": 9, "lang": "ko"}),
    (2, "finance/b.docx", "docx", None, {"rating": 3, "lang": "ko"}),
    (3, "news/c.txt", "txt", None, {"rating": 10, "lang": "en", "공개": True}),
    (4, "news/d.pdf", "pdf", 2, {"lang": "ko", "note": "'; drop table s; --"}),
    (5, "x'y/e.csv", "csv", None, {}),
]


@pytest.fixture()
def database():
    db = sqlite3.connect(":memory:")
    db.execute("create table documents (id integer primary key, root text, path text, format text, "
               "size int, modified text, indexed_at text)")
    db.execute("create table sentences (id integer primary key, document_id int, page int, line int, fields text)")
    for sentence_id, path, fmt, page, fields in ROWS:
        db.execute("insert into documents values (?, '/r', ?, ?, 0, '', '')", [sentence_id, path, fmt])
        db.execute("insert into sentences values (?, ?, ?, 1, ?)", [sentence_id, sentence_id, page, json.dumps(fields, ensure_ascii=False)])
    return db


def selected(db, where) -> list[int]:
    sql, parameters = Filter.parse(where).to_sql()
    rows = db.execute(
        f"select s.id from sentences s join documents d on d.id = s.document_id where {sql} order by s.id",
        parameters,
    )
    return [row[0] for row in rows]


def expected(predicate) -> list[int]:
    return [row[0] for row in ROWS if predicate(*row[1:])]


@pytest.mark.parametrize(
    ("where", "predicate"),
    [
        ({"format": "pdf"}, lambda path, fmt, page, fields: fmt == "pdf"),
        ("path GLOB 'finance/*'", lambda path, fmt, page, fields: path.startswith("finance/")),
        ("rating >= 9", lambda path, fmt, page, fields: fields.get("rating", -1) >= 9),
        ({"rating": {">=": 3, "<": 10}}, lambda path, fmt, page, fields: 3 <= fields.get("rating", -1) < 10),
        ({"lang": ["en"]}, lambda path, fmt, page, fields: fields.get("lang") == "en"),
        ("lang NOT IN ('en')", lambda path, fmt, page, fields: fields.get("lang") not in (None, "en")),
        ("page = null", lambda path, fmt, page, fields: page is None),
        ("page != null", lambda path, fmt, page, fields: page is not None),
        ({"공개": True}, lambda path, fmt, page, fields: fields.get("공개") is True),
        (["format = 'pdf'", "page >= 2"], lambda path, fmt, page, fields: fmt == "pdf" and (page or 0) >= 2),
        ("path = 'x''y/e.csv'", lambda path, fmt, page, fields: path == "x'y/e.csv"),
        (None, lambda *row: True),
    ],
)
def test_filters_select_what_the_predicate_selects(database, where, predicate):
    assert selected(database, where) == expected(predicate)


def test_values_and_field_names_never_enter_the_sql_text(database):
    hostile = "'; drop table sentences; --"
    sql, parameters = Filter.parse({"note": hostile, "secret_field": 1}).to_sql()
    assert hostile not in sql and "secret_field" not in sql
    assert hostile in parameters
    assert selected(database, {"note": hostile}) == []
    assert database.execute("select count(*) from sentences").fetchone()[0] == len(ROWS)
