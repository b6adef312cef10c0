"""A short hash of everything in a model folder that decides the vectors it produces.

An index stores the fingerprint of the encoder that filled it; reopening with a different encoder
would mix incomparable vectors, so :class:`~kosearch.errors.EncoderMismatchError` is raised instead.
The hash must therefore change when weights, tokenizer, pooling or prompts change, and must not change
when only a README, a library version stamp or the folder's location does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from kosearch.encoders.cache import cached_sha256

FINGERPRINT_LENGTH = 16

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spiece.model")
SKIPPED_FOLDERS = frozenset({".git", ".cache", "checkpoints", "runs", "eval", "onnx", "openvino"})
"""Training leftovers and alternative runtimes: they do not shape the torch model's vectors."""
RECORD_FILES = frozenset({"conversion.json", "trainer_state.json", "training_args.json"})
"""Provenance records (how a folder was made), not inputs of the model: a converter version bump that only
rewords the model card must not orphan every index built with the previous folder."""
VOLATILE_KEYS = frozenset({"__version__", "transformers_version", "_name_or_path", "_commit_hash"})
_SMALL_FILE = 1 << 20


def model_fingerprint(folder: str | Path, prompts: Mapping[str, str] | None = None) -> str:
    """``FINGERPRINT_LENGTH`` hex characters of sha256 over the folder's vector-shaping files and ``prompts``.

    JSON files are hashed after parsing, with :data:`VOLATILE_KEYS` dropped and keys sorted; other files by
    their bytes (large ones through the (path, size, mtime) cache, so reopening a 500 MB model is instant).
    """
    folder = Path(folder).resolve()
    digest = hashlib.sha256()
    for path in fingerprinted_files(folder):
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{_content_hash(path)}\n".encode())
    digest.update(json.dumps(dict(prompts or {}), sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def fingerprinted_files(folder: Path) -> list[Path]:
    """The files :func:`model_fingerprint` hashes, in a fixed (sorted) order."""
    selected = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part in SKIPPED_FOLDERS or part.startswith(".") for part in relative.parts):
            continue
        name = path.name
        if name in RECORD_FILES:
            continue
        if name.endswith((".json", *WEIGHT_SUFFIXES)) or name in TOKENIZER_FILES or name.endswith(".model"):
            selected.append(path)
    return selected


def _content_hash(path: Path) -> str:
    size = path.stat().st_size
    if size > _SMALL_FILE:
        return cached_sha256(path)
    raw = path.read_bytes()
    if path.suffix == ".json":
        try:
            canonical = json.dumps(_without_volatile(json.loads(raw)), sort_keys=True, ensure_ascii=False)
        except ValueError:
            pass
        else:
            return hashlib.sha256(canonical.encode()).hexdigest()
    return hashlib.sha256(raw).hexdigest()


def _without_volatile(data: object) -> object:
    if isinstance(data, dict):
        return {key: _without_volatile(value) for key, value in data.items() if key not in VOLATILE_KEYS}
    if isinstance(data, list):
        return [_without_volatile(value) for value in data]
    return data
