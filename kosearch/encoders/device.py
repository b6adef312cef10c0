"""Pick the torch device an encoder runs on, refusing devices this machine does not have."""

from __future__ import annotations

import re

import torch

from kosearch.errors import KosearchError

AUTO = "auto"
_CUDA = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(device: str | None = None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; explicit names are checked.

    Accepts ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``"mps"``. Asking for a GPU that is not there raises
    instead of falling back to the CPU: a silent fallback would make a 100x slower run look like a hang.
    """
    requested = (device or AUTO).strip().lower()
    if requested == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise KosearchError("Device 'mps' requested but Apple MPS is not available here; use --device cpu.")
        return "mps"
    match = _CUDA.match(requested)
    if match:
        if not torch.cuda.is_available():
            raise KosearchError(
                f"Device {requested!r} requested but torch sees no CUDA GPU (torch.cuda.is_available() is False); "
                "use --device cpu, or install a CUDA build of torch."
            )
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise KosearchError(
                f"Device {requested!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist "
                f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})."
            )
        return requested
    raise KosearchError(f"Unknown device {device!r}; use one of auto, cpu, cuda, cuda:N, mps.")
