"""What the run trains on: CUDA or not, which mixed precision that allows, and one line for the model card.

Training time means nothing without the machine it was measured on, so every card names it.
"""

from __future__ import annotations

import logging
import os
import platform

from kosearch.train.config import Precision

logger = logging.getLogger(__name__)


def cuda_available(device: str | None) -> bool:
    """True when training will run on a CUDA GPU: ``device`` is unset or names CUDA, and torch sees one."""
    import torch

    if device is not None and not device.startswith("cuda"):
        return False
    return torch.cuda.is_available()


def mixed_precision(precision: Precision, use_cuda: bool, notes: list[str]) -> tuple[bool, bool]:
    """``(fp16, bf16)`` for the trainer; a request the hardware cannot honour falls back with a note in ``notes``."""
    if precision == "fp32":
        return False, False
    if not use_cuda:
        note = f"{precision} was requested but there is no CUDA GPU; trained in fp32 (mixed precision is GPU-only)."
        logger.warning(note)
        notes.append(note)
        return False, False
    import torch

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        note = "bf16 was requested but this GPU does not support it; trained with fp16 instead."
        logger.warning(note)
        notes.append(note)
        return True, False
    return precision == "fp16", precision == "bf16"


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
