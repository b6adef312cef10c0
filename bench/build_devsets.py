"""Build the development sets for lexical and hybrid retrieval as BEIR folders.

kosearch is judged on Korean question sets it never sees, so its lexical and fusion defaults are
chosen on several different sets from the data at hand, none of them the target:

- ``sample_questions``: 120 questions written for kosearch over ``corpora/sample`` in two batches of
  60 (natural and keyword-style, paraphrased rather than copied), each judged against the sentences
  that answer it; the corpus is the sample's 439 sentences as kosearch splits them. The closest thing to the real
  task here; written to ``corpora/sample_questions/`` (committed) from its ``questions.jsonl``.
- ``korsts``: KorSTS test as paraphrase retrieval (``kosearch.data.beir.sts_to_retrieval``, the set
  ``kosearch evaluate retrieval --from-sts`` scores): 309 queries, 1,327 sentences.
- ``klue_nli``: KLUE-NLI dev (Korean-written): each entailed hypothesis (a short claim) asks for the
  premise that entails it, among the 1,000 distinct premises. Like a question, the query restates
  part of the passage in other words.
- ``kornli``: the same over KorNLI's XNLI test (translated from English): 1,670 queries and premises.
- ``chatbot``: songys' chatbot data: a sample of questions (default 1,500) asks for their answer
  among all 7,779 distinct answers. Answers repeat word for word (맛있게 드세요. answers 22
  questions), so the corpus holds each distinct text once and a question's relevant documents are
  the distinct texts of all its rows. Answers rarely repeat the question's words: the set where
  lexical matching should help least.

Usage: python bench/build_devsets.py [--out bench/devsets] [--chatbot-queries 1500] [--seed 13]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from kosearch.data.beir import BeirDataset, CorpusDocument, sts_to_retrieval, write_beir  # noqa: E402
from kosearch.data.sts import read_sts  # noqa: E402

SAMPLE = ROOT / "corpora" / "sample"
SAMPLE_QUESTIONS = ROOT / "corpora" / "sample_questions"


def sample_questions() -> BeirDataset:
    """The hand-written questions over corpora/sample, with sentence ids ``relpath#n`` (n-th sentence)."""
    from kosearch.documents import Document, iter_documents

    corpus: dict[str, CorpusDocument] = {}
    where: dict[tuple[str, str], list[str]] = {}
    for item in iter_documents(SAMPLE):
        if not isinstance(item, Document):
            raise SystemExit(f"sample file skipped: {item}")
        for number, sentence in enumerate(item.sentences, start=1):
            doc_id = f"{item.relpath}#{number}"
            corpus[doc_id] = CorpusDocument(id=doc_id, text=sentence.text, line=len(corpus) + 1)
            where.setdefault((item.relpath, sentence.text), []).append(doc_id)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    lines = (SAMPLE_QUESTIONS / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(filter(None, lines), start=1):
        record = json.loads(line)
        query_id = f"q{number}"
        queries[query_id] = record["question"]
        for relevant in record["relevant"]:
            found = where.get((relevant["file"], relevant["sentence"]))
            if not found:
                raise SystemExit(f"questions.jsonl line {number}: no sentence {relevant['sentence']!r} in {relevant['file']}")
            for doc_id in found:
                qrels.setdefault(query_id, {})[doc_id] = 1
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name="sample_questions")


def korsts() -> BeirDataset:
    return sts_to_retrieval(read_sts(DATA / "korsts" / "sts-test.tsv"), name="korsts")


def entailment_retrieval(pairs: list[tuple[str, str, str]], name: str) -> BeirDataset:
    """Entailed hypotheses as queries, distinct premises as the corpus, the entailing premise(s) relevant."""
    doc_ids: dict[str, str] = {}
    query_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for premise, hypothesis, label in pairs:
        doc_id = doc_ids.setdefault(premise, f"d{len(doc_ids) + 1}")
        if label != "entailment" or hypothesis == premise:
            continue
        query_id = query_ids.setdefault(hypothesis, f"q{len(query_ids) + 1}")
        qrels.setdefault(query_id, {})[doc_id] = 1
    corpus = {doc_id: CorpusDocument(id=doc_id, text=text, line=n) for n, (text, doc_id) in enumerate(doc_ids.items(), 1)}
    queries = {query_id: text for text, query_id in query_ids.items()}
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name=name)


def klue_nli() -> BeirDataset:
    records = json.loads((DATA / "klue" / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))
    return entailment_retrieval([(r["premise"], r["hypothesis"], r["gold_label"]) for r in records], "klue_nli")


def kornli() -> BeirDataset:
    with open(DATA / "kornli" / "xnli.test.ko.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return entailment_retrieval([(row[0], row[1], row[2]) for row in rows[1:] if len(row) >= 3], "kornli")


def chatbot(queries_wanted: int, seed: int) -> BeirDataset:
    with open(DATA / "chatbot" / "ChatbotData.csv", encoding="utf-8", newline="") as handle:
        rows = [(row["Q"], row["A"]) for row in csv.DictReader(handle)]
    return chatbot_retrieval(rows, queries_wanted, seed)


def chatbot_retrieval(rows: list[tuple[str, str]], queries_wanted: int, seed: int) -> BeirDataset:
    """Question -> answer retrieval over (question, answer) rows; also what ``adapt_runs.py`` adapts on.

    Each distinct answer is one document (in first-seen order); a question's relevant documents are the
    answers of all its rows; rows with an empty side are left out.
    """
    doc_ids: dict[str, str] = {}
    answers: dict[str, set[str]] = {}
    for question, answer in rows:
        question, answer = question.strip(), answer.strip()
        if not question or not answer:
            continue
        doc_ids.setdefault(answer, f"a{len(doc_ids) + 1}")
        answers.setdefault(question, set()).add(answer)
    questions = list(answers)
    chosen = set(random.Random(seed).sample(questions, min(queries_wanted, len(questions))))
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for question in questions:  # file order, so the set reads like the source
        if question in chosen:
            query_id = f"q{len(queries) + 1}"
            queries[query_id] = question
            qrels[query_id] = {doc_ids[answer]: 1 for answer in sorted(answers[question])}
    corpus = {doc_id: CorpusDocument(id=doc_id, text=text, line=n) for n, (text, doc_id) in enumerate(doc_ids.items(), 1)}
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name="chatbot")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "devsets")
    parser.add_argument("--chatbot-queries", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    write_beir(sample_questions(), SAMPLE_QUESTIONS)
    sets = {"korsts": korsts(), "klue_nli": klue_nli(), "kornli": kornli(), "chatbot": chatbot(args.chatbot_queries, args.seed)}
    print(f"sample_questions -> {SAMPLE_QUESTIONS}")
    for name, dataset in sets.items():
        folder = write_beir(dataset, args.out / name)
        judged = sum(len(judged) for judged in dataset.qrels.values())
        print(f"{name}: {len(dataset.evaluated_query_ids)} queries, {len(dataset.corpus)} documents, {judged} judgements -> {folder}")


if __name__ == "__main__":
    main()
