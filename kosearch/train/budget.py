"""Fitting a training run into ``--max-minutes``: a sequence length and a number of steps from a measured step.

A CPU's speed, the other processes sharing it and the model's size all change how long a step takes, so the plan
is measured, not guessed: a few real optimizer steps (forward, backward, AdamW update) on real batches at the
candidate sequence length, after which the model's weights are put back. The plan then asks for the steps that
fit the time left with a margin, so the learning-rate schedule (warm-up, linear decay) runs to its end inside
the budget; the trainer's time limit (:class:`~kosearch.train.callbacks.TimeLimit`) still stops a run that a
slower stretch of the machine would push past it.

The sequence length starts at what covers most passages (the 90th percentile of their token counts, at most
:data:`MAX_AUTO_LENGTH`) and is halved while the budget would allow fewer than :data:`MIN_STEPS` steps: on a
small budget more updates on shorter inputs teach more than a handful on long ones.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

logger = logging.getLogger(__name__)

MAX_AUTO_LENGTH = 256
MIN_AUTO_LENGTH = 64
MIN_STEPS = 100
MEASURED_STEPS = 1
"""Timed steps, after one untimed warm-up step of :data:`WARMUP_ROWS` rows (the first allocates the optimizer
state and warms the caches)."""
WARMUP_ROWS = 4
MEASURED_ROWS = 16
"""Rows of the timed batch; its forward and backward time is scaled up to the real batch size, the optimizer
update (timed apart) is not. A CPU does far more work per second on larger matrices: a 4-row step scaled to 32
rows predicted 32.3 s where the trainer's steps took 20.9 s (bundled e5, bf16, 2 shared cores, 2026-12-06), so a
3-minute plan trained a third less than it could. 16 rows halves the extrapolation and still errs long, the safe
side; a full batch of 32 on that machine costs about 20 s of the budget per measured length."""
SAFETY = 0.85
"""Share of the time left that the planned steps may take; the rest absorbs slower stretches and the last save."""
PLAN_FILE = "budget_plan.json"
CHECKPOINT_SAVE_FACTOR = 3.5
"""A trainer checkpoint costs about this many model saves: the model itself, the AdamW state of the trained
weights, RNG and trainer state, and the model card sentence-transformers writes with it. Measured 11.1 s against
a 3.4 s model save (bundled e5, frozen embeddings, 2 shared cores, 2026-12-06)."""
FINISH_SECONDS = 5.0
"""After the last save: the model card, removing the checkpoints, the summary."""


@dataclass(frozen=True)
class BudgetPlan:
    """What the planner chose, saved with each checkpoint so a resumed run keeps the same schedule."""

    max_seq_length: int
    steps: int
    seconds_per_step: float
    train_seconds: float
    """Seconds the plan had for training (the budget less what reading, mining and measuring took)."""
    save_seconds: float = 0.0
    """Measured time of one model save: the final save, and each checkpoint costs about twice it."""
    precision: str = "fp32"
    """The mixed precision the step was measured in (and training runs in)."""

    def save(self, folder: Path) -> None:
        (folder / PLAN_FILE).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BudgetPlan | None:
        path = folder / PLAN_FILE
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def auto_length(model: SentenceTransformer, texts: Sequence[str], *, limit: int = MAX_AUTO_LENGTH) -> int:
    """The 90th percentile of the texts' token counts, rounded up to a multiple of 16, within [64, ``limit``]."""
    sample = list(texts[:2000])
    if not sample:
        return MIN_AUTO_LENGTH
    tokenizer = model.tokenizer
    lengths = sorted(len(ids) for ids in tokenizer(sample, add_special_tokens=True)["input_ids"])
    p90 = lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))]
    return max(MIN_AUTO_LENGTH, min(limit, int(math.ceil(p90 / 16) * 16)))


def measure_step_seconds(
    model: SentenceTransformer,
    loss_factory: Callable[[SentenceTransformer], nn.Module],
    batches: Sequence[dict[str, list[str]]],
    *,
    max_seq_length: int,
    learning_rate: float,
    batch_size: int,
    prompts: dict[str, str] | None = None,
    freeze_embeddings: bool = False,
    bf16: bool = False,
) -> float:
    """Seconds one optimizer step of ``batch_size`` rows takes at ``max_seq_length``, measured on
    :data:`MEASURED_ROWS` rows of ``batches`` (column -> texts) and scaled; the model's weights are restored.

    ``bf16``: the forward pass under bf16 autocast, as the trainer runs it with ``bf16=True`` (about half the
    time of fp32 on a CPU with AMX), so the plan is made for the precision that will train."""
    import torch

    previous_length = model.max_seq_length
    model.max_seq_length = max_seq_length
    saved = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    loss = loss_factory(model)
    embeddings = model.transformers_model.get_input_embeddings().weight
    trained_embeddings = embeddings.requires_grad
    if freeze_embeddings:
        embeddings.requires_grad_(False)
    parameters = [parameter for parameter in loss.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate)
    model.train()
    timings: list[float] = []
    try:
        for step in range(MEASURED_STEPS + 1):
            wanted = MEASURED_ROWS if step else WARMUP_ROWS
            batch = {column: texts[:wanted] for column, texts in batches[step % len(batches)].items()}
            rows = len(next(iter(batch.values())))
            started = time.perf_counter()
            features = [_tokenize(model, texts, (prompts or {}).get(column)) for column, texts in batch.items()]
            with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=bf16):
                value = loss(features, None)
            value.backward()
            computed = time.perf_counter()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step:
                # Forward and backward grow with the batch; the optimizer update does not.
                timings.append((computed - started) * max(batch_size, rows) / rows + time.perf_counter() - computed)
    finally:
        embeddings.requires_grad_(trained_embeddings)
        model.load_state_dict(saved)
        model.max_seq_length = previous_length
        del optimizer
    return sum(timings) / len(timings)


def _tokenize(model: SentenceTransformer, texts: list[str], prompt: str | None) -> dict[str, Any]:
    if prompt:
        texts = [prompt + text for text in texts]
    features = model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)
    return {key: value.to(model.device) if hasattr(value, "to") else value for key, value in features.items()}


def process_seconds() -> float:
    """Seconds since this process started (Linux ``/proc``; 0 elsewhere): a command's budget includes the time
    Python spent importing torch and kosearch before any kosearch code ran (20-60 s on a loaded 2-core machine)."""
    import os

    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        # Field 22 of stat (the 20th after the command name) is the start time in clock ticks since boot.
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def finish_seconds(save_seconds: float) -> float:
    """Seconds to keep back after training: the final model save into the output folder, the card, cleanup."""
    return save_seconds + FINISH_SECONDS


def steps_that_fit(
    seconds: float, seconds_per_step: float, *, save_seconds: float = 0.0, save_every: int | None = None,
    safety: float | None = None,
) -> int:
    """Steps whose training and checkpoints fit in ``safety * seconds`` (at least one).

    The trainer writes a checkpoint every ``save_every`` steps and one more at the end (each about
    :data:`CHECKPOINT_SAVE_FACTOR` model saves of ``save_seconds``); on a budget of a few minutes the final one
    alone is a large share, which the first planner ignored.
    """
    safety = SAFETY if safety is None else safety
    checkpoint = CHECKPOINT_SAVE_FACTOR * save_seconds
    available = seconds * safety

    def cost(steps: int) -> float:
        return steps * seconds_per_step + ((steps // save_every if save_every else 0) + 1) * checkpoint

    # Spreading each checkpoint over the steps before it never undercounts, so this many fit; then add the steps
    # the last, partial interval still has room for.
    spread = checkpoint / save_every if save_every else 0.0
    steps = max(1, int((available - checkpoint) / (seconds_per_step + spread)))
    while cost(steps + 1) <= available:
        steps += 1
    return steps


def measure_save_seconds(model: SentenceTransformer) -> float:
    """Seconds one ``model.save`` takes here (into a temporary folder, removed after)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kosearch-save-") as folder:
        started = time.perf_counter()
        model.save(folder, create_model_card=False)
        return time.perf_counter() - started


def plan_budget(
    measure: Callable[[int], float],
    *,
    train_seconds: float,
    start_length: int,
    fixed_length: bool = False,
    min_steps: int = MIN_STEPS,
) -> BudgetPlan:
    """Pick the sequence length and steps for ``train_seconds``; ``measure(length)`` times one step at a length.

    With ``fixed_length`` (the user chose ``--max-seq-length``) only the steps are planned.
    """
    length = start_length
    while True:
        seconds = measure(length)
        steps = int(train_seconds * SAFETY / seconds)
        logger.info("%.2f s per step at %d tokens: %d steps fit in %.1f min", seconds, length, steps, train_seconds / 60)
        if fixed_length or steps >= min_steps or length // 2 < MIN_AUTO_LENGTH:
            return BudgetPlan(length, max(steps, 1), seconds, train_seconds)
        length //= 2
