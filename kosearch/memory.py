"""Giving memory a long-lived process freed back to the operating system.

Large blocks (FAISS's storage, most model weights) are mapped by glibc on their own and return to
the system when freed, but many small ones (a model's small tensors, Kiwi's dictionaries, SQLite's
page cache) live in glibc's heap, which keeps freed space for reuse and so keeps it resident. An
indexing run that frees its encoder before a merge (``kosearch.ingest``), or a store that frees its
page cache, asks glibc to hand back the free pages of its heap (``malloc_trim``); elsewhere (not
glibc, not Linux) this only runs the garbage collector. Imports nothing of kosearch: every layer may use it.

A long build (a merge's HNSW add: an hour at a million vectors) also needs the heap kept from growing
back. numpy advises transparent huge pages (``MADV_HUGEPAGE``) for every array of 4 MiB and more,
wherever it lies; glibc puts such arrays in its heap once its mmap threshold has risen (it rises to the
size of the largest mapped block freed, up to 32 MiB: one 8,192-row batch of vectors is 12.6 MB). The
heap then holds ranges marked for huge pages, and the kernel's khugepaged, which fills a 2 MiB huge page
around even one resident 4 KiB page (``max_ptes_none`` 511, the default), makes their free and trimmed
pages resident again, a little at each scan. ``large_blocks_mapped`` stops both for the length of a
build (docs/benchmarks.md, "h. What grows the heap during the HNSW add").
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

LARGE_BLOCK = 4 << 20
"""Inside ``large_blocks_mapped``, allocations of this size and more get a mapping of their own: numpy's
threshold for advising huge pages, so no array it advises lies in the heap."""
_MMAP_THRESHOLD_AFTER = 32 << 20
"""The threshold set on leaving, since glibc cannot go back to its rising threshold: that threshold's
ceiling on 64-bit, so blocks glibc would have put in its heap by itself still go there."""
_M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
_MADV_DONTNEED = 4  # madvise's advice (linux/mman.h)
_MADV_NOHUGEPAGE = 15
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def return_free_memory() -> None:
    """Collect unreachable Python objects, then give the free pages of glibc's heap back to the system."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (musl and others have none)."""
    return _c_function("malloc_trim", [ctypes.c_size_t])


@contextmanager
def large_blocks_mapped() -> Iterator[None]:
    """While inside, keep the heap from growing: no huge pages filled around its free pages, no large
    short-lived blocks fragmenting it (see the module docstring).

    On entering, the heap's mappings are advised ``MADV_NOHUGEPAGE`` (khugepaged no longer fills free
    pages around resident ones there; huge pages already formed stay) and glibc's mmap threshold is fixed
    at ``LARGE_BLOCK``, so arrays numpy would advise get mappings of their own, unmapped when freed. On
    leaving, the threshold is set to ``_MMAP_THRESHOLD_AFTER`` (glibc cannot be put back to its rising
    threshold). Process-wide, like any allocator setting: meant for the writer's merges. Elsewhere than
    glibc on Linux it does nothing.
    """
    mallopt = _mallopt()
    if mallopt is None:
        yield
        return
    _advise_heap(_MADV_NOHUGEPAGE)
    mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK)
    try:
        yield
    finally:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_AFTER)


def mappings_of(pathname: str) -> list[tuple[int, int, str]]:
    """``(start, stop, permissions)`` of every mapping ``/proc/self/maps`` names ``pathname``: a file's real
    path, or a kernel name such as ``[heap]``. Empty where there is no ``/proc/self/maps`` (not Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            rows = [line.split(None, 5) for line in maps]
    except OSError:
        return []
    found = []
    for fields in rows:
        if len(fields) == 6 and fields[5].rstrip("\n") == pathname:
            start, stop = (int(part, 16) for part in fields[0].split("-"))
            found.append((start, stop, fields[1]))
    return found


def drop_pages(start: int, stop: int) -> None:
    """Drop this process's mapping of the whole pages in ``[start, stop)`` (``MADV_DONTNEED``; Linux,
    elsewhere nothing). Meant for read-only file mappings, whose pages the page cache keeps and the next
    touch maps back; a private page written to would lose what was written. The partial last page stays
    (a reader going through a file batch by batch drops it with the next batch)."""
    madvise = _madvise()
    begin, end = start - start % _PAGE, stop - stop % _PAGE
    if madvise is not None and end > begin:
        madvise(ctypes.c_void_p(begin), ctypes.c_size_t(end - begin), _MADV_DONTNEED)


def drop_file_pages(path: str | os.PathLike[str]) -> None:
    """Drop this process's resident pages of every read-only mapping of the file ``path`` (``drop_pages``).

    A library that maps a file whole and reads through it (FAISS opening a segment with ``mmap``) leaves
    the pages it touched resident in this process, counted in its RSS until memory runs short; the page
    cache keeps them all the same. Writable mappings are never touched.
    """
    for start, stop, permissions in mappings_of(os.path.realpath(path)):
        if "w" not in permissions:
            drop_pages(start, stop)


def _advise_heap(advice: int) -> None:
    """``madvise`` every mapping named ``[heap]`` (glibc's main heap, grown by brk)."""
    madvise = _madvise()
    if madvise is None:
        return
    for start, stop, _ in mappings_of("[heap]"):
        madvise(ctypes.c_void_p(start), ctypes.c_size_t(stop - start), advice)


@functools.cache
def _c_library() -> ctypes.CDLL | None:
    """The C library on Linux (glibc or another), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)  # the symbols already loaded: whichever C library this is
    except OSError:
        return None


@functools.cache
def _madvise():
    """The C library's ``madvise`` on Linux (any C library has it), else None."""
    return _c_function("madvise", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int])


@functools.cache
def _mallopt():
    """glibc's ``mallopt`` on Linux, else None (musl has one, but it ignores the parameters set here)."""
    return _c_function("mallopt", [ctypes.c_int, ctypes.c_int], glibc_only=True)


def _c_function(name: str, argtypes: list, glibc_only: bool = False):
    """The C library's function ``name`` returning an int, typed, or None where this C library (or, with
    ``glibc_only``, anything but glibc) has none; None off Linux."""
    libc = _c_library()
    if libc is None:
        return None
    try:
        function = getattr(libc, name)
        if glibc_only:
            libc.gnu_get_libc_version  # noqa: B018
    except AttributeError:
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function
