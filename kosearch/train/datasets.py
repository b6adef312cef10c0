"""kosearch's data records turned into the ``datasets.Dataset`` columns sentence-transformers' losses expect.

Sentence-transformers matches dataset columns to loss inputs by position (label column aside), so each builder
fixes the column order its loss needs and says which loss that is. Each also returns the
:class:`~kosearch.train.types.DataFile` lines for the model card, so the card counts what was really trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kosearch.data.nli import nli_triples, read_nli
from kosearch.data.sentences import read_sentences
from kosearch.errors import DataFormatError
from kosearch.train.types import DataFile

if TYPE_CHECKING:
    from datasets import Dataset

STS_MAX_SCORE = 5.0


def load_sentences(
    paths: Sequence[str | Path],
    *,
    column: str | None = None,
    limit: int | None = None,
    role: str = "unlabelled sentences",
) -> tuple[list[str], list[DataFile]]:
    """Read unlabelled sentences from every file in turn until ``limit`` sentences in total, dropping repeats."""
    if not paths:
        raise DataFormatError("No sentences file given: pass at least one --sentences FILE.")
    sentences: list[str] = []
    seen: set[str] = set()
    files: list[DataFile] = []
    for path in paths:
        remaining = None if limit is None else limit - len(sentences)
        if remaining is not None and remaining <= 0:
            break
        fresh = [text for text in read_sentences(path, column=column, limit=remaining) if text not in seen]
        seen.update(fresh)
        sentences += fresh
        files.append(DataFile(str(path), role, len(fresh)))
    return sentences, files


def sentence_pairs_dataset(sentences: Sequence[str]) -> Dataset:
    """(anchor, positive) = the same sentence twice: unsupervised SimCSE, where dropout makes the two views differ."""
    from datasets import Dataset

    return Dataset.from_dict({"anchor": list(sentences), "positive": list(sentences)})


def nli_triples_dataset(paths: Sequence[str | Path]) -> tuple[Dataset, list[DataFile]]:
    """(anchor, positive, negative) from NLI files, for MultipleNegativesRankingLoss with hard negatives."""
    from datasets import Dataset

    if not paths:
        raise DataFormatError("No NLI file given: pass at least one --nli FILE (KorNLI .tsv or KLUE-NLI .json).")
    columns: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
    files = []
    for path in paths:
        triples = nli_triples(read_nli(path))
        if not triples:
            raise DataFormatError(
                f"{path}: no premise has both an entailed and a contradicted hypothesis, so it gives no triples."
            )
        for triple in triples:
            columns["anchor"].append(triple.anchor)
            columns["positive"].append(triple.positive)
            columns["negative"].append(triple.negative)
        files.append(DataFile(str(path), "NLI triples (premise, entailment, contradiction)", len(triples)))
    return Dataset.from_dict(columns), files


def sts_pairs_dataset(paths: Sequence[str | Path]) -> tuple[Dataset, list[DataFile]]:
    """(sentence1, sentence2, score) with the 0-5 gold score scaled to 0-1, the range cosine regression targets."""
    from datasets import Dataset

    from kosearch.data.sts import read_sts

    if not paths:
        raise DataFormatError("No STS file given: pass at least one --sts FILE (KorSTS .tsv).")
    columns: dict[str, list] = {"sentence1": [], "sentence2": [], "score": []}
    files = []
    for path in paths:
        examples = read_sts(path)
        for example in examples:
            columns["sentence1"].append(example.sentence1)
            columns["sentence2"].append(example.sentence2)
            columns["score"].append(example.score / STS_MAX_SCORE)
        files.append(DataFile(str(path), "STS pairs (score / 5)", len(examples)))
    return Dataset.from_dict(columns), files
