"""Readers and writers for the labelled data sets kosearch trains and evaluates on.

:mod:`~kosearch.data.sts` reads STS pairs (KorSTS TSV, KLUE-STS JSON); :mod:`~kosearch.data.beir` reads
and writes retrieval sets in the BEIR layout. Training data readers live beside them (``nli``,
``sentences``) and are imported from their own modules.
"""

from kosearch.data.beir import BeirDataset, CorpusDocument, load_beir, sts_to_retrieval, write_beir
from kosearch.data.sts import STSExample, read_sts

__all__ = [
    "BeirDataset",
    "CorpusDocument",
    "STSExample",
    "load_beir",
    "read_sts",
    "sts_to_retrieval",
    "write_beir",
]
