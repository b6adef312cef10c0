"""Make any Python string safe to store, encode and print, the same way wherever it comes from.

A Python ``str`` can hold what no UTF-8 encoder accepts: lone surrogates (U+D800..U+DFFF). They
arrive from JSON (``"\\ud800"`` is a valid JSON string), from file names that are not valid UTF-8
(``os.fsdecode`` keeps each bad byte as a surrogate U+DC80..U+DCFF, so the path still opens), and
from any caller of the API. SQLite, the tokenizers and the console all refuse them, with an
exception raised far from the cause (at the final commit, or deep inside the encoder). So text is
cleaned where it enters kosearch's own records, never where it is used.

Two needs, two functions:

- :func:`clean_text` for prose (sentences, queries, messages): lossy, one character for one, so
  every stored offset stays valid.
- :func:`escape_path` for file names, which are keys in the index and must stay lossless and stable:
  a re-run must find the same key for the same file. :func:`unescape_path` inverts it.

This module imports nothing from kosearch, so every stage may use it.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"

_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
_PATH_SPECIAL = re.compile("[\\\\\x00-\x1f\x7f\ud800-\udfff]")
_PATH_ESCAPE = re.compile(r"\\(?:\\|x[0-9a-f]{2}|u[0-9a-f]{4})")


def clean_text(text: str) -> str:
    """``text`` with each lone surrogate and each NUL replaced by U+FFFD (the same object if none).

    NUL is valid Unicode, but C code (SQLite's string functions, full-text tokenizers) takes it for
    the end of the string. Replacing rather than removing keeps the length, so offsets computed on
    the original still point at the same characters.
    """
    return _UNSAFE_TEXT.sub(REPLACEMENT, text)


def escape_path(path: str) -> str:
    """A file path as printable, valid Unicode text, reversibly (see :func:`unescape_path`).

    Only what cannot be stored or printed is rewritten, so ordinary names stay as they are: a byte
    of the name that is not UTF-8 (a surrogate escape) or an ASCII control character (newline, ESC)
    becomes ``\\xHH``, a backslash becomes ``\\\\`` (so that a real ``\\x41`` in a name cannot be
    confused with an escape), and a lone surrogate that is not a byte escape (possible in Windows
    names) becomes ``\\uHHHH``.
    """
    return _PATH_SPECIAL.sub(_escape_char, path)


def unescape_path(text: str) -> str:
    """The path :func:`escape_path` was given: the name ``os`` functions accept for the same file."""
    return _PATH_ESCAPE.sub(_unescape_match, text)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape for the undecodable byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def _unescape_match(match: re.Match[str]) -> str:
    escape = match.group()
    if escape == "\\\\":
        return "\\"
    code = int(escape[2:], 16)
    if escape[1] == "x" and code >= 0x80:
        return chr(0xDC00 + code)
    return chr(code)
