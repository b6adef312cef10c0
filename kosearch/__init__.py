"""kosearch: Korean semantic search over document folders, with FAISS vectors and SQLite metadata.

>>> import kosearch
>>> idx = kosearch.Index.open("indexes/sample")
>>> idx.search("치타가 먹이를 쫓는다", k=5)
"""

from kosearch._version import __version__
from kosearch.distributed.options import RayOptions
from kosearch.documents.types import SkippedFile
from kosearch.errors import (
    DataFormatError,
    EncoderMismatchError,
    EncoderNotFoundError,
    IndexCorruptError,
    IndexExistsError,
    IndexNotFoundError,
    KosearchError,
    RecordError,
    RecordExistsError,
)
from kosearch.index import Index
from kosearch.results import Hit, IndexedSentence, IndexInfo, IngestReport, Pair, RemovalReport

__all__ = [
    "DataFormatError",
    "EncoderMismatchError",
    "EncoderNotFoundError",
    "Hit",
    "Index",
    "IndexCorruptError",
    "IndexExistsError",
    "IndexInfo",
    "IndexNotFoundError",
    "IndexedSentence",
    "IngestReport",
    "KosearchError",
    "Pair",
    "RayOptions",
    "RecordError",
    "RecordExistsError",
    "RemovalReport",
    "SkippedFile",
    "__version__",
]
