"""A throwaway kosearch index over a BEIR corpus, so dense, lexical and hybrid are scored as the product searches.

Exact search with a model (:func:`kosearch.evaluate.retrieval.rank_with_model`) measures an encoder;
comparing search modes has to measure what ``kosearch query`` does instead: Kiwi splitting, the vector
store, the lexical index, fusion, filters and grouping. So the corpus is indexed the way a user's
folder is: every corpus record is written as its own text file (BEIR's "title text", the text exact
search encodes), and that folder goes through :meth:`kosearch.Index.add_folder` with the model asked
for. One file per record makes a BEIR document a kosearch document: hits map back to ids by file name,
and ``group_by="document"`` returns the k best documents, the unit the metrics count.

The folder and the index live in a temporary directory removed afterwards; nothing is cached, so a
run always measures the code and model it was given.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kosearch.data.beir import BeirDataset

if TYPE_CHECKING:
    from kosearch.encoders import Encoder
    from kosearch.index import Index
    from kosearch.results import Hit


@dataclass
class CorpusIndex:
    """An index over a BEIR corpus and the way back from its hits to corpus ids."""

    index: Index
    doc_of_path: dict[str, str]
    """Relative file path -> corpus id."""
    build_seconds: float

    def document_of(self, hit: Hit) -> str | None:
        return self.doc_of_path.get(hit.path)


def write_corpus_files(dataset: BeirDataset, folder: Path) -> dict[str, str]:
    """One UTF-8 text file per corpus record under ``folder``; returns file name -> corpus id.

    Names are positions (``0000001.txt``), never ids: BEIR ids may hold '/' or characters a file
    system refuses.
    """
    folder.mkdir(parents=True, exist_ok=True)
    width = max(7, len(str(len(dataset.corpus))))
    doc_of_path: dict[str, str] = {}
    for position, document in enumerate(dataset.corpus.values(), start=1):
        name = f"{position:0{width}d}.txt"
        (folder / name).write_text(document.full_text, encoding="utf-8")
        doc_of_path[name] = document.id
    return doc_of_path


@contextmanager
def temporary_index(
    model: str | Path | Encoder | None,
    dataset: BeirDataset,
    *,
    device: str | None = None,
) -> Iterator[CorpusIndex]:
    """Index ``dataset``'s corpus with ``model`` (None = the bundled encoder) in a temporary folder."""
    from kosearch.index import Index

    if model is not None and not isinstance(model, (str, Path)) and not hasattr(model, "encode_documents"):
        raise TypeError("a temporary index is built with a model name, a model folder or an Encoder.")
    with tempfile.TemporaryDirectory(prefix="kosearch-eval-") as scratch:
        started = time.perf_counter()
        documents = Path(scratch) / "corpus"
        doc_of_path = write_corpus_files(dataset, documents)
        named = str(model) if isinstance(model, Path) else model
        index = Index.create(Path(scratch) / "index", model=named, device=device)
        try:
            index.add_folder(documents)
            yield CorpusIndex(index, doc_of_path, time.perf_counter() - started)
        finally:
            index.close()
