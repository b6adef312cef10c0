"""Pick the torch device an encoder runs on, refusing devices this machine does not have.

Opening an index resolves its device first, and ``import torch`` alone takes seconds; so when torch is not
imported yet and its installed files hold no GPU runtime (a CPU-only build), ``auto`` is answered ``"cpu"``
without importing it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from kosearch.errors import KosearchError

AUTO = "auto"
_CUDA = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(device: str | None = None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; explicit names are checked.

    Accepts ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``"mps"``. Asking for a GPU that is not there raises
    instead of falling back to the CPU: a silent fallback would make a 100x slower run look like a hang.
    """
    requested = (device or AUTO).strip().lower()
    if requested == "cpu" or (requested == AUTO and not torch_may_see_a_gpu()):
        return "cpu"
    import torch

    if requested == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
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


_GPU_RUNTIME_FILES = ("*torch_cuda*", "*torch_hip*", "*c10_cuda*", "*c10_hip*")
"""CUDA and ROCm builds of torch ship these libraries in ``torch/lib``; CPU builds do not."""


def torch_may_see_a_gpu() -> bool:
    """False only when torch is not imported yet and its installed files hold no CUDA or ROCm runtime.

    Once torch is imported, ``torch.cuda.is_available()`` is cheap and is the one authority.
    """
    if "torch" in sys.modules:
        return True
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return True  # let the import report what is wrong
    return gpu_runtime_installed(Path(next(iter(spec.submodule_search_locations))) / "lib")


def gpu_runtime_installed(library: Path) -> bool:
    """Whether torch's library folder holds a CUDA or ROCm runtime."""
    return any(any(library.glob(pattern)) for pattern in _GPU_RUNTIME_FILES)
