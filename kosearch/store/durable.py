"""Making a written file's name durable: the last step of every atomic write in the store.

A file is written under a temporary name and fsynced by its writer; renaming it onto its real name
is atomic, but the rename itself only survives a power loss once the folder is fsynced too.
"""

from __future__ import annotations

import os
from pathlib import Path


def replace_durably(temporary: Path, path: Path) -> None:
    """Rename an fsynced temporary file onto ``path`` and fsync the folder, so the rename survives a crash."""
    os.replace(temporary, path)
    directory = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
