"""The bundled sample corpus (corpora/sample) keeps the promises of its own README.

The README is the corpus's specification: its tables (files, queries, planted paraphrase pairs,
exact duplicates) are parsed here and checked against what the documents stage actually reads, so
the description cannot drift from the files.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kosearch.documents import Document, iter_documents

SAMPLE = Path(__file__).resolve().parents[1] / "corpora" / "sample"
README = (SAMPLE / "README.md").read_text(encoding="utf-8")


def readme_table(section: str) -> list[list[str]]:
    """The body rows of the first table under a '## section' heading, as lists of cell texts."""
    body = README.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in body.splitlines() if line.startswith("|")]
    cells = [[cell.strip().strip("`") for cell in row] for row in rows]
    return [row for row in cells[2:]]  # after the header and the |---| line


@pytest.fixture(scope="module")
def documents() -> dict[str, Document]:
    items = list(iter_documents(SAMPLE))
    assert all(isinstance(item, Document) for item in items), "no sample file may be skipped"
    return {item.relpath: item for item in items}


@pytest.fixture(scope="module")
def sentences(documents) -> list[tuple[str, str]]:
    """(relative path, sentence text) for every sentence of the corpus, in index order."""
    return [(path, s.text) for path, doc in documents.items() for s in doc.sentences]


def test_files_formats_and_size(documents, sentences):
    assert len(documents) >= 11
    assert {doc.format for doc in documents.values()} >= {"txt", "md", "csv", "jsonl", "pdf", "docx", "hwpx", "hwp", "html"}
    assert len(sentences) >= 320
    assert "README.md" not in documents  # described by .kosearchignore, not indexed
    assert all(not doc.warnings for doc in documents.values())


def test_at_least_four_domains_with_real_content(documents):
    per_domain = Counter()
    for path, doc in documents.items():
        per_domain[path.split("/", 1)[0]] += len(doc.sentences)
    assert len(per_domain) >= 4 and min(per_domain.values()) >= 40, per_domain


def test_exactly_one_file_is_cp949_and_it_decodes_cleanly(documents):
    cp949 = [doc for doc in documents.values() if doc.encoding == "cp949"]
    assert len(cp949) == 1
    raw = cp949[0].path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # genuinely legacy-encoded, not ASCII that any detector would accept
    texts = [s.text for s in cp949[0].sentences]
    assert len(texts) >= 30 and all("\ufffd" not in t for t in texts)
    assert all(re.search("[가-힣]", t) for t in texts)


def test_readme_file_table_matches_the_files(documents):
    rows = readme_table("Files")
    listed = {row[0]: row for row in rows}
    assert set(listed) == set(documents)
    expected_encoding = {"UTF-8": "utf-8", "UTF-8 with BOM": "utf-8-sig", "**CP949**": "cp949", "binary": "binary"}
    for path, row in listed.items():
        assert expected_encoding[row[3]] == documents[path].encoding, path
        assert int(row[4]) == len(documents[path].sentences), path
    total = re.search(r"(\d+) in all", README)
    assert total and int(total.group(1)) == sum(len(doc.sentences) for doc in documents.values())


def test_the_pdf_reports_its_pages(documents):
    [pdf] = [doc for doc in documents.values() if doc.format == "pdf"]
    assert sorted({s.page for s in pdf.sentences}) == [1, 2]
    assert all(s.page is None for doc in documents.values() if doc.format != "pdf" for s in doc.sentences)


def test_office_documents_are_what_their_script_writes(documents, tmp_path, monkeypatch):
    """The committed files and corpora/make_sample_documents.py hold the same text (compared as read,
    so a writer library's new version that changes bytes but not text does not fail this)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample_documents", SAMPLE.parent / "make_sample_documents.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "FOLDER", tmp_path)
    script.main()
    rebuilt = {doc.relpath: doc for doc in iter_documents(tmp_path)}
    committed = {path.split("/", 1)[1]: doc for path, doc in documents.items() if path.startswith("문서/")}
    assert set(rebuilt) == set(committed)
    for name, doc in committed.items():
        assert [(s.text, s.line, s.page) for s in rebuilt[name].sentences] == [
            (s.text, s.line, s.page) for s in doc.sentences
        ], name


def test_planted_paraphrase_pairs_are_sentences_of_the_corpus(sentences):
    rows = readme_table("Planted paraphrase pairs")
    assert len(rows) >= 15
    where = {}
    for path, text in sentences:
        where.setdefault(text, set()).add(path)
    files = set()
    for first, second, first_file, second_file in (row[:4] for row in rows):
        assert first != second
        assert where.get(first) == {first_file}, first
        assert where.get(second) == {second_file}, second
        files |= {first_file, second_file}
    assert len(files) >= 5  # spread across the corpus, not all in one file
    assert len({text for row in rows for text in row[:2]}) == 2 * len(rows)  # no sentence used twice


def test_exact_duplicates_occur_more_than_once(sentences):
    rows = readme_table("Exact duplicates")
    assert len(rows) >= 2
    counts = Counter(text for _, text in sentences)
    for sentence, _ in rows:
        assert counts[sentence] >= 2, sentence


def test_query_table_names_real_sentences(sentences):
    rows = readme_table("Queries that should work")
    assert len(rows) >= 3
    present = set(sentences)
    for query, expected, path in rows:
        assert (path, expected) in present, expected
    cp949_rows = [row for row in rows if row[2] == "공공/공지사항.txt"]
    assert cp949_rows, "one query must find the CP949 file"


@pytest.mark.slow
def test_bundled_encoder_finds_the_queries_and_the_planted_pairs(sentences, sample_index):
    """Document vectors are the ones ``kosearch index`` stored for this corpus (the session's real index)."""
    import kosearch

    with kosearch.Index.open(sample_index) as idx:
        stored = {}
        for ids, batch in idx.store.iter_vectors():
            rows = idx.store.units_by_id(ids.tolist())
            stored.update({rows[int(i)].text: vector for i, vector in zip(ids, batch)})
        texts = [text for _, text in sentences]
        vectors = np.stack([stored[text] for text in texts])
        rows = readme_table("Queries that should work")
        queries = idx.encoder.encode_queries([row[0] for row in rows])
    for (query, expected, _), scores in zip(rows, queries @ vectors.T):
        top = [texts[i] for i in np.argsort(-scores)[:3]]
        assert expected in top, (query, top)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    index = {text: position for position, text in enumerate(texts)}
    nearest = 0
    for first, second, *_ in readme_table("Planted paraphrase pairs"):
        a, b = index[first], index[second]
        rank = int((similarity[a] > similarity[a, b]).sum())
        assert rank < 5, (first, second, rank)
        nearest += rank == 0
    assert nearest >= 12
