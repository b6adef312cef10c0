"""Where the encoders package keeps files between runs, and content hashes that survive restarts.

Converting the bundled model and hashing ~500 MB of weights are the two slow things an encoder does
before its first vector; both are done once per machine and remembered here:
``$KOSEARCH_HOME`` (default ``~/.cache/kosearch``) holds ``models/<converted folder>`` and
``models/file-hashes.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20
_HASH_CACHE_NAME = "file-hashes.json"


def kosearch_home() -> Path:
    """``$KOSEARCH_HOME``, else ``~/.cache/kosearch``; tests point it at a temporary folder."""
    configured = os.environ.get("KOSEARCH_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "kosearch"


def models_dir() -> Path:
    """Folder of converted models (created on demand)."""
    path = kosearch_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, streamed so a 500 MB weight file never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """:func:`sha256_file`, remembered across processes under (absolute path, size, mtime).

    A changed file changes its size or mtime, so a stale entry is never used; a file rewritten with
    the same size within the filesystem's mtime resolution is the one (accepted) blind spot.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = kosearch_home() / "models" / _HASH_CACHE_NAME
    entries = _load_entries(cache_file)
    if key in entries:
        return entries[key]
    digest = sha256_file(path)
    entries = _load_entries(cache_file)  # re-read: another process may have added entries meanwhile
    entries = {k: v for k, v in entries.items() if not k.startswith(f"{path}|")}
    entries[key] = digest
    _store_entries(cache_file, entries)
    return digest


def _load_entries(cache_file: Path) -> dict[str, str]:
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store_entries(cache_file: Path, entries: dict[str, str]) -> None:
    """Write atomically (temp file + rename) so concurrent readers never see half a JSON file."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=cache_file.name, suffix=".tmp", dir=cache_file.parent)
    except OSError:
        return  # a read-only home only costs re-hashing next time
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entries, handle, indent=0, sort_keys=True)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it holds only hashes
        os.replace(tmp, cache_file)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Serialise a slow one-time job (a conversion, an export) across processes, so the second one waits and
    reuses the first's result.

    Only an optimisation: correctness comes from the atomic rename, so without ``fcntl`` (Windows) or on
    a filesystem that ignores locks, both processes convert and one result is kept.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
