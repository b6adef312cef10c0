"""Making a written file's name durable: the last step of every atomic write in the store.

A file is written under a temporary name and fsynced by its writer; renaming it onto its real name
is atomic, but the rename itself only survives a power loss once the folder is fsynced too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_durably(temporary: Path, path: Path) -> None:
    """Rename an fsynced temporary file onto ``path`` and fsync the folder, so the rename survives a crash."""
    os.replace(temporary, path)
    sync_folder(Path(path).parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so the names created, renamed or linked in it survive a crash."""
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_file_atomically(folder: Path, name: str, write: Callable[[Path], object]) -> None:
    """Make ``folder/name`` appear complete or not at all: ``write(temporary)``, fsync, rename, fsync the folder."""
    path = folder / name
    temporary = path.with_name(path.name + ".tmp")
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)  # a disk that filled up gets its space back at once
        raise
    replace_durably(temporary, path)
