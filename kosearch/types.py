"""Record types shared by layers that must not import each other (documents/ and store/).

``SkippedFile`` is made by the documents stage and kept by the store's skipped-files table; living
here, it lets ``kosearch/store`` stay free of imports from ``kosearch/documents`` (STYLE.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from kosearch.textclean import clean_text


@dataclass(frozen=True)
class SkippedFile:
    """A file that could not be indexed, and why; reported, never fatal.

    Both fields go to SQLite and the console, so they are made valid Unicode here, whoever builds
    one (see :mod:`kosearch.textclean`); ``path`` should already be escaped like
    :attr:`Document.relpath`, which leaves nothing to clean.
    """

    path: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", clean_text(self.path))
        object.__setattr__(self, "reason", clean_text(self.reason))
