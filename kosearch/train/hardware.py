"""What the run trains on: CUDA or not, which mixed precision that allows, and one line for the model card.

Training time means nothing without the machine it was measured on, so every card names it.
"""

from __future__ import annotations

import logging
import os
import platform

from kosearch.encoders.precision import Precision, cpu_has_amx_bf16

logger = logging.getLogger(__name__)


def cuda_available(device: str | None) -> bool:
    """True when training will run on a CUDA GPU: ``device`` is unset or names CUDA, and torch sees one."""
    import torch

    if device is not None and not device.startswith("cuda"):
        return False
    return torch.cuda.is_available()


def training_precision(precision: Precision, use_cuda: bool, *, amx: bool | None = None) -> tuple[str, str | None]:
    """The concrete mixed precision (``fp32``, ``fp16`` or ``bf16``) a run uses, and a note when it is not what was
    asked or when ``auto`` chose it. Decides from its arguments (``amx``: None probes this CPU), so every branch is
    tested on any machine; only the CUDA bf16 check asks torch.

    ``auto``: bf16 on a CPU with AMX-BF16 (measured: about half the step time of fp32, same loss), else fp32.
    """
    if precision == "auto":
        if use_cuda:
            return "fp32", None
        if cpu_has_amx_bf16() if amx is None else amx:
            return "bf16", "Trained in bf16 mixed precision on CPU (auto: this CPU has AMX-BF16)."
        return "fp32", None
    if precision == "fp32":
        return "fp32", None
    if not use_cuda:
        if precision == "bf16":
            has_amx = cpu_has_amx_bf16() if amx is None else amx
            return "bf16", None if has_amx else (
                "bf16 was requested on a CPU without AMX-BF16: torch emulates it there, which may be slower than fp32."
            )
        return "fp32", "fp16 was requested but there is no CUDA GPU; trained in fp32 (fp16 is GPU-only)."
    import torch

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        return "fp16", "bf16 was requested but this GPU does not support it; trained with fp16 instead."
    return precision, None


def mixed_precision(precision: Precision, use_cuda: bool, notes: list[str]) -> tuple[bool, bool]:
    """``(fp16, bf16)`` for the trainer (see :func:`training_precision`); its note, if any, goes to ``notes``."""
    concrete, note = training_precision(precision, use_cuda)
    if note:
        logger.warning(note) if "requested" in note else logger.info(note)
        notes.append(note)
    return concrete == "fp16", concrete == "bf16"


def describe_hardware(use_cuda: bool) -> str:
    """One line naming what the model was trained on, because training time means nothing without it."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = _cpu_model_name() or platform.machine()
    text = f"{cpu}, {cores} CPU cores, torch {torch.__version__}"
    if use_cuda:
        text = f"{torch.cuda.get_device_name(0)} GPU; " + text
    return text


def _cpu_model_name() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return platform.processor() or None
    return None
