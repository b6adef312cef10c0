"""The number format an encoder computes in: ``fp32``, ``fp16`` or ``bf16``, and ``auto`` to let the device decide.

Half precision roughly doubles a GPU's encoding throughput (tensor cores, half the memory traffic) and
costs little accuracy: the vectors are widened to float32 and re-normalised before anything stores them,
so an index holds float32 vectors whatever the precision. ``auto`` is fp16 on CUDA (what kosearch has
always done there) and fp32 elsewhere: on CPUs without native half arithmetic fp16 is emulated and slow,
while bf16 is worth trying on CPUs that have AMX or AVX512-BF16 (``bench/bench_gpu_encode.py`` measures
both). ONNX encoder backends run float32 (or their own int8) graphs and take only ``auto``/``fp32``.

The same four words name the mixed precision of ``kosearch train`` (:mod:`kosearch.train.hardware` decides what
``auto`` means there): this module is the one place they are declared.
"""

from __future__ import annotations

from typing import Literal

from kosearch.errors import KosearchError

Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")


def resolve_precision(precision: str | None, device: str) -> str:
    """The concrete precision (``fp32``, ``fp16`` or ``bf16``) for ``precision`` on ``device``.

    Pure: decides from the device name alone, so the CUDA branch is tested on machines without one.
    """
    requested = (precision or "auto").strip().lower()
    if requested not in PRECISIONS:
        raise KosearchError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    if requested == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    return requested


def cpu_has_amx_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU has AMX-BF16 tiles (Intel Sapphire Rapids and later), where bf16 matrix products run
    natively and fast; elsewhere torch emulates them and bf16 can be slower than fp32.

    ``cpuinfo``: the text of ``/proc/cpuinfo`` (read when None; False where there is none, e.g. macOS).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    return any(line.startswith("flags") and "amx_bf16" in line.split() for line in cpuinfo.splitlines())


def torch_dtype(precision: str):
    """The torch dtype of a concrete precision."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
