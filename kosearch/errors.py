"""The few exceptions kosearch raises on purpose.

Every message is written for the person at the terminal: it says what went wrong and what to
do next, so the CLI can print ``str(error)`` and nothing else.
"""

from __future__ import annotations


class KosearchError(Exception):
    """Base class: catching this catches every error kosearch raises deliberately."""


class IndexNotFoundError(KosearchError):
    """The folder given as an index holds no kosearch index."""


class IndexCorruptError(KosearchError):
    """A file of an index is damaged or names something it must not; the message names the file."""


class IndexWriteError(KosearchError):
    """Writing the index failed (disk full, a file size limit, an I/O error); the index keeps its last commit."""


class IndexChangedError(KosearchError):
    """A read pinned to one generation cannot be answered any more: a compaction deleted points that
    generation still shows (a database vector store deletes in place; see ``kosearch.store.qdrant_backend``)."""


class IndexExistsError(KosearchError):
    """Creating an index where one already exists would silently mix two corpora."""


class EncoderMismatchError(KosearchError):
    """The encoder offered does not produce the vectors the index was built with."""


class EncoderNotFoundError(KosearchError):
    """A model name is neither a local folder nor a Hugging Face id the machine can reach."""


class DataFormatError(KosearchError):
    """A data file (STS, NLI, BEIR, ...) is malformed; the message names the file, line and reason."""


class RecordError(KosearchError):
    """Texts, ids or metadata handed to the records API that it cannot store; the message says which."""


class RecordExistsError(RecordError):
    """``add_texts`` was given an id the index already holds (``upsert_texts`` replaces it instead)."""
