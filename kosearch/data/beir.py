"""Retrieval test sets in the BEIR layout, and a way to make one from an STS file.

The BEIR layout (Thakur et al., 2021, https://github.com/beir-cellar/beir) is what most retrieval
benchmarks ship in, so kosearch reads and writes exactly it::

    folder/corpus.jsonl      {"_id": "d1", "title": "", "text": "..."}   one document per line
    folder/queries.jsonl     {"_id": "q1", "text": "..."}
    folder/qrels/test.tsv    query-id <TAB> corpus-id <TAB> score        header row; score > 0 = relevant

Korean retrieval sets in that layout are rare, so :func:`sts_to_retrieval` builds a paraphrase
retrieval set from the STS data at hand: each distinct sentence1 asks for the sentence2s rated as
paraphrases (score >= 4), among all distinct sentence2s.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kosearch.data.sts import STSExample
from kosearch.errors import DataFormatError, KosearchError

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
QRELS_FOLDER = "qrels"
QRELS_HEADER = ("query-id", "corpus-id", "score")
PARAPHRASE_THRESHOLD = 4.0
"""KorSTS/STS-B annotators give 4 to "mostly equivalent" and 5 to "completely equivalent" pairs."""


@dataclass(frozen=True)
class CorpusDocument:
    """One corpus.jsonl record."""

    id: str
    text: str
    title: str = ""
    line: int = 0
    """1-based line in corpus.jsonl (0 for documents not read from a file): how index hits map back."""

    @property
    def full_text(self) -> str:
        """Title and text joined the way BEIR and sentence-transformers encode a document."""
        return f"{self.title} {self.text}".strip()


@dataclass
class BeirDataset:
    """A corpus, queries and graded relevance judgements (qrels) for one split."""

    corpus: dict[str, CorpusDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    """query id -> {corpus id: relevance grade > 0}. Only judged-relevant pairs are kept."""
    name: str = ""
    split: str = "test"
    folder: Path | None = None
    """Where the set was read from; None for a set built in memory."""
    notes: list[str] = field(default_factory=list)
    """Facts worth showing next to results (e.g. how a set was derived)."""

    @property
    def evaluated_query_ids(self) -> list[str]:
        """Queries with at least one relevant document, in queries.jsonl order.

        Queries without judgements cannot score anything but zero, so BEIR and sentence-transformers
        leave them out of the averages; so does kosearch.
        """
        return [query_id for query_id in self.queries if self.qrels.get(query_id)]

    @property
    def corpus_path(self) -> Path | None:
        return None if self.folder is None else self.folder / CORPUS_FILE


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    """Read a BEIR folder; ``split`` picks ``qrels/<split>.tsv``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KosearchError(f"BEIR folder {folder} does not exist.")
    for required in (CORPUS_FILE, QUERIES_FILE):
        if not (folder / required).is_file():
            raise DataFormatError(
                f"{folder}: no {required}; a BEIR folder holds {CORPUS_FILE}, {QUERIES_FILE} "
                f"and {QRELS_FOLDER}/<split>.tsv."
            )
    qrels_path = folder / QRELS_FOLDER / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(path.stem for path in (folder / QRELS_FOLDER).glob("*.tsv"))
        hint = f"available splits: {', '.join(available)}" if available else f"{folder / QRELS_FOLDER} has no .tsv"
        raise DataFormatError(f"{folder}: no {QRELS_FOLDER}/{split}.tsv for split '{split}' ({hint}).")

    corpus: dict[str, CorpusDocument] = {}
    for line, record in _jsonl_records(folder / CORPUS_FILE):
        doc_id = _record_id(folder / CORPUS_FILE, line, record)
        text = _record_text(folder / CORPUS_FILE, line, record, "text")
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise DataFormatError(f"{folder / CORPUS_FILE}: line {line}: 'title' must be a string.")
        if doc_id in corpus:
            raise DataFormatError(
                f"{folder / CORPUS_FILE}: line {line}: _id '{doc_id}' repeats line {corpus[doc_id].line}."
            )
        corpus[doc_id] = CorpusDocument(id=doc_id, text=text, title=title, line=line)

    queries: dict[str, str] = {}
    for line, record in _jsonl_records(folder / QUERIES_FILE):
        query_id = _record_id(folder / QUERIES_FILE, line, record)
        if query_id in queries:
            raise DataFormatError(f"{folder / QUERIES_FILE}: line {line}: _id '{query_id}' appears twice.")
        queries[query_id] = _record_text(folder / QUERIES_FILE, line, record, "text")

    qrels = _read_qrels(qrels_path, corpus, queries)
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name=folder.name, split=split, folder=folder)


def write_beir(dataset: BeirDataset, folder: str | Path, split: str | None = None) -> Path:
    """Write ``dataset`` as a BEIR folder (created if needed) and return the folder.

    Files already there are overwritten, so the folder always describes one data set.
    """
    folder = Path(folder)
    split = split or dataset.split
    (folder / QRELS_FOLDER).mkdir(parents=True, exist_ok=True)
    with open(folder / CORPUS_FILE, "w", encoding="utf-8") as out:
        for doc in dataset.corpus.values():
            out.write(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text}, ensure_ascii=False) + "\n")
    with open(folder / QUERIES_FILE, "w", encoding="utf-8") as out:
        for query_id, text in dataset.queries.items():
            out.write(json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n")
    with open(folder / QRELS_FOLDER / f"{split}.tsv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(QRELS_HEADER)
        for query_id, judged in dataset.qrels.items():
            for doc_id, grade in judged.items():
                writer.writerow((query_id, doc_id, grade))
    return folder


def sts_to_retrieval(
    examples: Iterable[STSExample],
    threshold: float = PARAPHRASE_THRESHOLD,
    name: str = "sts-paraphrase",
    identical_is_relevant: bool = True,
) -> BeirDataset:
    """Turn STS pairs into a paraphrase retrieval set.

    Each distinct sentence1 is a query; every distinct sentence2 is a corpus document; a document is
    relevant to a query when some pair joins them with a score >= ``threshold``. Ids are assigned in
    order of first appearance (q1, q2, ... and d1, d2, ...), so the same file always gives the same set.

    With ``identical_is_relevant``, a corpus sentence whose text equals an evaluated query's text is
    relevant to it as well. STS files repeat sentences across pairs (in KorSTS test, 15 of the 309
    evaluated queries have their own text among the sentence2s of other pairs), and without this rule a
    model would be charged a miss at rank 1 for finding the query's exact copy. Queries without any
    gold paraphrase stay unevaluated: an exact copy alone would make them trivial.
    Otherwise only gold pairs count: a corpus sentence that paraphrases a query without a pair saying
    so is scored as a miss, which is why scores on such a set are a lower bound.
    """
    query_ids: dict[str, str] = {}
    doc_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    count = 0
    for example in examples:
        count += 1
        query_id = query_ids.setdefault(example.sentence1, f"q{len(query_ids) + 1}")
        doc_id = doc_ids.setdefault(example.sentence2, f"d{len(doc_ids) + 1}")
        if example.score >= threshold:
            qrels.setdefault(query_id, {})[doc_id] = 1
    if count == 0:
        raise DataFormatError("no STS pairs to build a retrieval set from.")
    identical = 0
    if identical_is_relevant:
        for text, query_id in query_ids.items():
            if query_id in qrels and text in doc_ids and doc_ids[text] not in qrels[query_id]:
                qrels[query_id][doc_ids[text]] = 1
                identical += 1
    corpus = {
        doc_id: CorpusDocument(id=doc_id, text=text, line=number)
        for number, (text, doc_id) in enumerate(doc_ids.items(), start=1)
    }
    queries = {query_id: text for text, query_id in query_ids.items()}
    evaluated = sum(1 for judged in qrels.values() if judged)
    note = (
        f"paraphrase retrieval from {count} STS pairs: {evaluated} of {len(queries)} distinct sentence1 "
        f"have a sentence2 scored >= {threshold:g}, searched among {len(corpus)} distinct sentence2"
    )
    if identical:
        finds = "query also finds its" if identical == 1 else "queries also find their"
        note += f"; {identical} {finds} own text, counted relevant"
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name=name, notes=[note])


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    text = path.read_text(encoding="utf-8-sig")
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}: line {line}: invalid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}: line {line}: expected a JSON object, found {type(record).__name__}.")
        yield line, record


def _record_id(path: Path, line: int, record: dict[str, Any]) -> str:
    value = record.get("_id")
    # BEIR ids are strings, but some exports write numbers; both name the same document.
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise DataFormatError(f"{path}: line {line}: the record has no '_id'.")
    return str(value)


def _record_text(path: Path, line: int, record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise DataFormatError(f"{path}: line {line}: the record has no text field '{key}'.")
    return value


def _read_qrels(path: Path, corpus: dict[str, CorpusDocument], queries: dict[str, str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    text = path.read_text(encoding="utf-8-sig")
    rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in rows:
        line = rows.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if line == 1 and tuple(cell.strip() for cell in row) == QRELS_HEADER:
            continue
        if len(row) != 3:
            raise DataFormatError(
                f"{path}: line {line}: expected 3 tab-separated columns (query-id, corpus-id, score), found {len(row)}."
            )
        query_id, doc_id, raw_grade = (cell.strip() for cell in row)
        try:
            grade = int(float(raw_grade))
        except ValueError:
            raise DataFormatError(f"{path}: line {line}: score '{raw_grade}' is not a number.") from None
        if query_id not in queries:
            raise DataFormatError(f"{path}: line {line}: query-id '{query_id}' is not in {QUERIES_FILE}.")
        if doc_id not in corpus:
            raise DataFormatError(f"{path}: line {line}: corpus-id '{doc_id}' is not in {CORPUS_FILE}.")
        if grade > 0:
            qrels.setdefault(query_id, {})[doc_id] = grade
    return qrels
