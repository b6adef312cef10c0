"""Checks on a document package (ZIP or OLE container) before a library parses it.

DOCX and HWPX are ZIP packages; an encrypted DOCX and an HWP 5 file are OLE compound files. Looking
at the container first turns the commonest failures into reasons a user can act on (a password, a
renamed old .doc, a truncated download) instead of a library's parse error, and refuses a package
whose parts would decompress to far more than the file's size (a ZIP bomb) before anything is
inflated.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from kosearch.documents.decode import UnreadableFile

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
"""A package whose parts add up to more than this (1 GiB) when decompressed is refused."""


def check_zip_package(path: Path, kind: str) -> None:
    """Raise :class:`UnreadableFile` unless ``path`` is a ZIP package of sane unpacked size."""
    with path.open("rb") as handle:
        magic = handle.read(len(OLE_MAGIC))
    if magic == OLE_MAGIC:
        raise UnreadableFile(_ole_reason(path, kind))
    try:
        with zipfile.ZipFile(path) as package:
            unpacked = sum(member.file_size for member in package.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UnreadableFile(f"not a readable {kind} file (corrupt or truncated?): {error}") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise UnreadableFile(
            f"its parts would decompress to {unpacked / 2**30:.1f} GiB (over {MAX_UNPACKED_BYTES / 2**30:g} GiB); "
            "not read, as this is the mark of a ZIP bomb"
        )


def _ole_reason(path: Path, kind: str) -> str:
    """Why an OLE compound file is not the ZIP package its name promises.

    Stream names sit in the compound file's directory as UTF-16LE, so finding one is enough to
    tell an encrypted Office package from a Word 97-2003 file, without an OLE parser.
    """
    data = path.read_bytes()
    if "EncryptedPackage".encode("utf-16-le") in data:
        return f"password-protected (encrypted) {kind} file: kosearch cannot decrypt it; save a copy without a password"
    if "WordDocument".encode("utf-16-le") in data:
        return f"a Word 97-2003 (.doc) file with a .{kind.lower()} name; save it in Word as .{kind.lower()}"
    return f"an OLE compound file, not the ZIP package a {kind} file is"
