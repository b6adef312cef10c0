"""Find the files under a folder that kosearch can read, in an order that never changes.

The order matters because sentence ids are handed out in discovery order: two runs over the same
folder must produce the same index. Symbolic links are the other subtlety. A link that leaves the
folder would silently index files the user never pointed us at (and break relative paths), so it
is reported and not followed; a link inside the folder is followed only to something not reached
yet, which both prevents loops and keeps one file from being indexed twice under two names.

FIFOs, sockets and devices are reported as skipped and never opened (a FIFO blocks its reader).
File names need not be valid UTF-8: the walk keeps Python's own names (which ``os`` accepts), and
the relative paths that come out, the keys of the index, are escaped by
:func:`kosearch.textclean.escape_path`, the same way on every run.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kosearch.documents.decode import not_regular_reason
from kosearch.documents.types import SkippedFile
from kosearch.errors import KosearchError
from kosearch.textclean import escape_path

IGNORE_FILE = ".kosearchignore"
"""Optional file in the root: one glob pattern per line (``#`` comments) of paths to leave out, such as
a corpus's own README. A pattern with a '/' matches the whole relative path, one without matches a
file or folder name at any depth; a trailing '/' matches folders only. Like .gitignore, minus negation."""

FORMATS: dict[str, str] = {
    ".txt": "txt", ".md": "md", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".html": "html", ".htm": "html",
    ".pdf": "pdf", ".docx": "docx", ".hwp": "hwp", ".hwpx": "hwpx",
}
"""File extension (lower case) -> format name (a key of ``readers.READERS``); every other extension
is ignored without comment."""


@dataclass(frozen=True)
class FoundFile:
    """A readable-looking file: where it is, its key in the index, and which reader it needs."""

    path: Path
    """Absolute path as reached from the root (through links, not resolved), so messages match what
    the user sees in their folder."""
    relpath: str
    """Path relative to the root with '/' separators, escaped (see :attr:`Document.relpath`)."""
    format: str


def read_ignore_patterns(root: Path) -> list[str]:
    """The patterns of ``root``'s ignore file, or none if it has no such file."""
    try:
        lines = (root / IGNORE_FILE).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def is_ignored(relpath: str, is_dir: bool, patterns: Sequence[str]) -> bool:
    """Whether a path (relative, '/' separators) matches one of the ignore patterns."""
    for pattern in patterns:
        folder_only = pattern.endswith("/")
        pattern = pattern.strip("/") if folder_only else pattern.lstrip("/")
        if folder_only and not is_dir:
            continue
        if "/" in pattern:
            if fnmatch.fnmatchcase(relpath, pattern):
                return True
        elif fnmatch.fnmatchcase(relpath.rsplit("/", 1)[-1], pattern):
            return True
    return False


def format_of(path: Path) -> str | None:
    """The reader a file needs, from its extension (case-insensitive), or None if kosearch ignores it."""
    return FORMATS.get(path.suffix.lower())


def discover(root: str | os.PathLike[str]) -> Iterator[FoundFile | SkippedFile]:
    """Yield every readable file under ``root`` (and every link refused), sorted by relative path.

    Hidden files and folders (name starting with '.') are left out, as are files of other types.
    Paths matching the root's :data:`IGNORE_FILE` patterns are left out too. A ``root`` that is a
    file yields just that file; its relative path is its name.
    """
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise KosearchError(
            f"{escape_path(str(root_path))} does not exist: give the folder (or single file) of documents to index."
        )
    root_path = root_path.resolve()
    if root_path.is_file():
        yield from _single_file(root_path)
        return
    if not root_path.is_dir():
        raise KosearchError(
            f"{escape_path(str(root_path))} is neither a folder nor a regular file, so there is nothing to index."
        )
    found = _Walk(root_path).run()
    yield from sorted(found, key=lambda item: item.relpath if isinstance(item, FoundFile) else item.path)


def _single_file(path: Path) -> Iterator[FoundFile | SkippedFile]:
    fmt = format_of(path)
    if fmt is None:
        # Named explicitly, so silence would look like a bug: say why nothing was indexed.
        supported = " ".join(sorted(FORMATS))
        suffix = escape_path(path.suffix) or "(none)"
        yield SkippedFile(escape_path(path.name), f"unsupported file type {suffix}; kosearch reads {supported}")
    else:
        yield FoundFile(path, escape_path(path.name), fmt)


class _Walk:
    """One traversal: remembers the real folders and files reached so links cannot revisit them.

    Real (non-link) entries are walked first and links are followed afterwards, so a file reachable
    both directly and through a link is always indexed under its own path, whatever the names sort to.
    Relative paths are Python's names (what ``os`` and the ignore patterns see) until an item is
    made, where they are escaped into the index's key.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ignore = read_ignore_patterns(root)
        self.visited_dirs: set[Path] = {root}
        self.visited_files: set[Path] = set()
        self.links: list[tuple[Path, str]] = []
        self.found: list[FoundFile | SkippedFile] = []

    def run(self) -> list[FoundFile | SkippedFile]:
        self._walk_dir(self.root, "")
        # Following a link can reveal more links, hence a queue rather than a single pass.
        while self.links:
            self.links.sort(key=lambda link: link[1])
            path, relpath = self.links.pop(0)
            self._follow_link(path, relpath)
        return self.found

    def _walk_dir(self, directory: Path, prefix: str, through_link: bool = False) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as error:
            self._skip(prefix.rstrip("/") or ".", f"folder cannot be listed: {error.strerror}")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relpath = prefix + entry.name
            path = directory / entry.name
            if self.ignore and is_ignored(relpath, entry.is_dir(), self.ignore):
                continue
            if entry.is_symlink():
                self.links.append((path, relpath))
                continue
            # Below the resolved root and no link on the way, the path is already the real one.
            real = path.resolve() if through_link else path
            if entry.is_dir(follow_symlinks=False):
                if real not in self.visited_dirs:  # reached earlier through a link into this part of the tree
                    self.visited_dirs.add(real)
                    self._walk_dir(path, relpath + "/", through_link)
            elif entry.is_file(follow_symlinks=False):
                self._add_file(path, relpath, real)
            else:
                self._add_special(relpath, real, lambda: entry.stat(follow_symlinks=False).st_mode)

    def _add_file(self, path: Path, relpath: str, real: Path) -> None:
        fmt = format_of(path)
        if fmt is None or real in self.visited_files:
            return
        self.visited_files.add(real)
        self.found.append(FoundFile(path, escape_path(relpath), fmt))

    def _skip(self, relpath: str, reason: str) -> None:
        self.found.append(SkippedFile(escape_path(relpath), reason))

    def _add_special(self, relpath: str, real: Path, mode: Callable[[], int]) -> None:
        """Report a FIFO, socket or device, whatever its name: it is never opened, but the user should know."""
        if real in self.visited_files:
            return
        self.visited_files.add(real)
        try:
            reason = not_regular_reason(mode())
        except OSError:
            return  # vanished while the folder was listed
        if reason is not None:
            self._skip(relpath, reason)

    def _follow_link(self, path: Path, relpath: str) -> None:
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            # A dangling or self-referencing link: only worth a word if it looks like a document.
            if format_of(path) is not None:
                self._skip(relpath, "broken symbolic link (its target does not exist)")
            return
        if not target.is_relative_to(self.root):
            if target.is_dir() or format_of(path) is not None or format_of(target) is not None:
                outside = escape_path(str(target))
                self._skip(relpath, f"symbolic link to {outside}, outside the indexed folder; not followed")
            return
        if target.is_dir():
            if target in self.visited_dirs:
                return  # a loop, or a second name for a folder already indexed
            self.visited_dirs.add(target)
            self._walk_dir(path, relpath + "/", through_link=True)
        elif target.is_file():
            self._add_file(path, relpath, target)
        else:
            self._add_special(relpath, target, lambda: target.stat().st_mode)
