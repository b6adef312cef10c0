"""Giving memory a long-lived process freed back to the operating system.

Large blocks (FAISS's storage, most model weights) are mapped by glibc on their own and return to
the system when freed, but many small ones (a model's small tensors, Kiwi's dictionaries, SQLite's
page cache) live in glibc's heap, which keeps freed space for reuse and so keeps it resident. An
indexing run that frees its encoder before a merge (``kosearch.ingest``), or a store that frees its
page cache, asks glibc to hand back the free pages of its heap (``malloc_trim``); elsewhere (not
glibc, not Linux) this only runs the garbage collector. Imports nothing of kosearch: every layer may use it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys


def return_free_memory() -> None:
    """Collect unreachable Python objects, then give the free pages of glibc's heap back to the system."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim
