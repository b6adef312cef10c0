"""Turn a file's bytes into text, or say plainly why it cannot be indexed.

Korean files come in two encodings in practice: UTF-8 (sometimes with the BOM that Windows
Notepad writes) and CP949, the Windows code page that extends EUC-KR. Strict UTF-8 is tried first
because it is fast and almost never decodes bytes that were meant as something else; only then is
charset-normalizer asked. Whenever CP949 is a candidate and the result reads as Hangul, it wins:
charset-normalizer is tuned for every language and guesses Big5 for short Korean strings.
A file that is UTF-8 but for a damaged byte or two is refused with that byte's offset instead of
guessed at: some single-byte code page always decodes it, as mojibake (found by fuzzing). So is a file with
more damage whose Hangul still reads as UTF-8 (and not as CP949).

All offsets kosearch stores (``Sentence.start``/``end``) refer to the text returned here: decoded,
BOM removed, every ``\\r\\n`` and lone ``\\r`` turned into ``\\n``.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Larger files are skipped: they are almost always exports or logs, and would hold the whole
file (and its sentence list) in memory at once."""

_REPLACEMENT_RUNS = re.compile("\ufffd+")
_KOREAN_CODECS = {"cp949", "euc_kr", "euc-kr", "uhc", "ks_c_5601_1987"}
_MIB = 1024 * 1024


class UnreadableFile(Exception):
    """Raised for a file that will be skipped; ``reason`` is the sentence shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DecodedText:
    """A file's text together with the facts about its bytes that the index keeps."""

    text: str
    """Decoded and newline-normalised: the text every stored offset refers to."""
    encoding: str
    """Python codec name: 'utf-8', 'utf-8-sig' (BOM stripped), 'utf-16', 'cp949' (also for EUC-KR
    files, since CP949 is the superset and what Windows really writes), or another that
    charset-normalizer found."""
    sha256: str
    size: int


def read_text(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> DecodedText:
    """Read and decode one file; raise :class:`UnreadableFile` with the reason if it cannot be indexed.

    Only a regular file is read. It is opened non-blocking and checked again once open, so a file
    replaced by a FIFO after discovery is refused instead of waiting forever for a writer.
    """
    path = Path(path)
    try:
        special = not_regular_reason(os.stat(path).st_mode)
        if special is not None:
            raise UnreadableFile(special)
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(descriptor, "rb") as file:
            status = os.fstat(file.fileno())
            special = not_regular_reason(status.st_mode)
            if special is not None:
                raise UnreadableFile(special)
            if status.st_size > max_bytes:
                raise UnreadableFile(
                    f"file too large: {status.st_size / _MIB:.1f} MiB is over the {max_bytes / _MIB:g} MiB limit "
                    "(raise max_bytes to index it)"
                )
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise UnreadableFile(f"cannot be read: {error.strerror or error}") from error
    if len(data) > max_bytes:  # grew between stat and read
        raise UnreadableFile(f"file too large: over the {max_bytes / _MIB:g} MiB limit (raise max_bytes to index it)")
    return decode_bytes(data)


def not_regular_reason(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read (FIFO, socket, device, folder), or None for a regular file.

    Opening a FIFO blocks until something writes to it and a device may never end, so these are
    reported and never opened.
    """
    if stat.S_ISREG(mode):
        return None
    kinds = [
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISDIR, "folder"),
    ]
    kind = next((name for test, name in kinds if test(mode)), "special file")
    return f"not a regular file ({kind}); not read"


def decode_bytes(data: bytes) -> DecodedText:
    """Decode raw file bytes, detecting the encoding; raise :class:`UnreadableFile` if they are not text."""
    if not data:
        raise UnreadableFile("empty file")
    text, encoding = _decode(data)
    if not text.strip():
        raise UnreadableFile("empty file (only whitespace)")
    return DecodedText(normalize_newlines(text), encoding, hashlib.sha256(data).hexdigest(), len(data))


def normalize_newlines(text: str) -> str:
    """Make every line end in a single ``\\n`` so offsets do not depend on the platform that wrote the file."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as error:
            raise _invalid_utf8(error, offset=len(codecs.BOM_UTF8)) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Notepad's "Unicode" option; checked before the NUL test because UTF-16 is full of NULs.
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise UnreadableFile("undecodable bytes: starts like UTF-16 but is not valid UTF-16") from None
    if b"\x00" in data:
        raise UnreadableFile("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        return _decode_legacy(data, utf8_error)


def _decode_legacy(data: bytes, utf8_error: UnicodeDecodeError) -> tuple[str, str]:
    # A UTF-8 file with a damaged byte or two is still UTF-8: another code page "fits" its bytes
    # (Korean UTF-8 minus one byte reads as Cyrillic in cp1251) and would index mojibake. A CP949
    # file is nowhere near valid UTF-8, so this never catches one.
    if _mostly_utf8(data):
        raise _invalid_utf8(utf8_error)
    matches = charset_normalizer.from_bytes(data)
    korean = _korean_reading(data, [match.encoding for match in matches])
    if korean is not None:
        return korean, "cp949"
    syllables, share = _hangul_in_utf8(data)
    if syllables >= 2 and share >= 0.5:
        # Damaged in more places than _mostly_utf8 lets pass (a short file, a few bad bytes), yet its Hangul is
        # UTF-8: another code page would read it as mojibake (a helper's 20-byte file came out as Greek cp737).
        raise UnreadableFile(
            f"undecodable bytes: not valid UTF-8 (bad byte at offset {utf8_error.start}, and others), though its "
            "Hangul is; repair or re-save the file as UTF-8"
        )
    best = matches.best()
    if best is None:
        raise UnreadableFile("binary file (no text encoding fits its bytes)")
    encoding = codecs.lookup(best.encoding).name
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as error:
        if encoding == "utf-8":
            raise _invalid_utf8(error) from None
        raise UnreadableFile(
            f"undecodable bytes: looks like {encoding} but byte {error.start} is not valid in it; "
            "re-save the file as UTF-8"
        ) from None


def _korean_reading(data: bytes, candidates: list[str]) -> str | None:
    """The CP949 reading of ``data`` if a detector proposed a Korean code page and it yields Hangul."""
    if not any(codecs.lookup(name).name.replace("-", "_") in _KOREAN_CODECS for name in candidates):
        return None
    try:
        text = data.decode("cp949")
    except UnicodeDecodeError:
        return None
    non_ascii = [char for char in text if ord(char) > 127]
    hangul = sum(1 for char in non_ascii if "\uac00" <= char <= "\ud7a3")
    return text if non_ascii and hangul >= 0.5 * len(non_ascii) else None


def _hangul_in_utf8(data: bytes) -> tuple[int, float]:
    """The Hangul syllables of ``data`` read as UTF-8 (bad bytes skipped), and the share of its non-ASCII bytes
    they take.

    A syllable takes three bytes that must fit UTF-8's pattern (a lead byte EA-ED, two continuation bytes).
    Damaged Korean UTF-8 keeps most of its non-ASCII bytes in such syllables. Other text fits the pattern only by
    accident: random bytes about once per thousand; CP949 Korean gives no Hangul this way; a single-byte code
    page now and then (cp1252's "í…" is the bytes of one syllable), hence at least two syllables are asked."""
    non_ascii = sum(1 for byte in data if byte > 127)
    syllables = sum(1 for char in data.decode("utf-8", errors="ignore") if "\uac00" <= char <= "\ud7a3")
    return syllables, (3 * syllables / non_ascii if non_ascii else 0.0)


def _mostly_utf8(data: bytes) -> bool:
    """True for a UTF-8 file with a few damaged spots: it is UTF-8, to be repaired, not another code page.

    A damaged spot is a run of replacement characters (one lost lead byte leaves two stray
    continuation bytes), at most one per 100 characters; and the characters that did decode outside
    ASCII must far outnumber the replacements. A CP949 file fails that: its bytes decode as UTF-8
    only by accident, here and there, between long runs of replacements.
    """
    decoded = data.decode("utf-8", errors="replace")
    replaced = decoded.count("\ufffd")
    spots = len(_REPLACEMENT_RUNS.findall(decoded))
    decoded_non_ascii = sum(1 for char in decoded if ord(char) > 127) - replaced
    return spots <= max(1, len(decoded) // 100) and decoded_non_ascii >= 2 * replaced


def _invalid_utf8(error: UnicodeDecodeError, offset: int = 0) -> UnreadableFile:
    return UnreadableFile(
        f"undecodable bytes: not valid UTF-8 (bad byte at offset {error.start + offset}), though the rest is; "
        "repair or re-save the file as UTF-8"
    )
