"""What every reader hands back, and how a reader asks for the library it is built on."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from kosearch.documents.decode import UnreadableFile
from kosearch.documents.records import Record


@dataclass
class ReadResult:
    """A file's records, the problems worth telling the user, and the text the records point into."""

    records: list[Record]
    warnings: list[str] = field(default_factory=list)
    source: str | None = None
    """For a binary format, the text its reader extracted (records are offsets into it); None for a
    text format, whose records point into the decoded file text."""


def needs_library(module: str, package: str, format: str) -> ModuleType:
    """Import a reader's library, or skip the file with the command that installs it.

    The libraries are ordinary dependencies of kosearch, but an environment installed without
    them (``pip install --no-deps``, a trimmed image) should lose only the files that need them.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UnreadableFile(f"reading .{format} files needs the {package} package: pip install {package}") from None
