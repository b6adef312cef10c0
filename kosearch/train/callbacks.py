"""Trainer callbacks every recipe gets: a wall-clock limit, progress lines that say how much time is left, and a
clock of steps and checkpoint saves (what a budget plan is checked against).

Both work on the trainer's own loop (``transformers.TrainerCallback``), so the limit stops training the way
``max_steps`` does: the step finishes, a checkpoint is written, and with a dev set the model is evaluated.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class TimeLimit(TrainerCallback):
    """Ends training after ``seconds`` of it, with a final checkpoint (and evaluation) at the stopping step."""

    def __init__(self, seconds: float, *, with_dev: bool) -> None:
        self.seconds = seconds
        self.with_dev = with_dev
        self.started = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.started >= self.seconds and not control.should_training_stop:
            logger.warning("Time limit of %.1f min reached at step %d; stopping.", self.seconds / 60, state.global_step)
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = self.with_dev
        return control


class Progress(TrainerCallback):
    """One line per logged loss: ``step 40/200  loss 1.234  2.1 min in, 7.9 min left``.

    "Left" is the sooner of two ends: the steps still planned at the rate measured so far in this process, and the
    time limit when there is one. The trainer's own bar shows the same steps; this line adds the loss and the
    budget, the two numbers a user watching a long CPU run wants.
    """

    def __init__(self, seconds: float | None = None, write: Any = None) -> None:
        self.seconds = seconds
        self.write = write
        self.started = time.perf_counter()
        self.first_step = 0
        self.lines: list[str] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()
        self.first_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        elapsed = time.perf_counter() - self.started
        done = state.global_step - self.first_step
        left = None
        if done > 0 and state.max_steps:
            left = elapsed / done * max(state.max_steps - state.global_step, 0)
        if self.seconds is not None:
            left = min(left, self.seconds - elapsed) if left is not None else self.seconds - elapsed
        line = f"step {state.global_step}/{state.max_steps}  loss {float(logs['loss']):.4f}  {elapsed / 60:.1f} min in"
        if left is not None:
            line += f", {max(left, 0.0) / 60:.1f} min left"
        self.lines.append(line)
        if self.write is not None:
            self.write(line)
        else:
            from tqdm.auto import tqdm

            tqdm.write(line)


class StepClock(TrainerCallback):
    """Wall time of every optimizer step and of every checkpoint save, so a run can report how its plan fared.

    The first step is kept apart: it allocates the optimizer state and warms caches, and on a CPU it can take
    several times a later step. A save is timed from the end of its step to ``on_save`` (the trainer logs and saves
    in between; without a dev set, the save is nearly all of it).
    """

    def __init__(self, clock: Any = time.perf_counter) -> None:
        self.clock = clock
        self.step_seconds: list[float] = []
        self.save_seconds: list[float] = []
        self._step_started = 0.0
        self._step_ended = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = self.clock()

    def on_step_end(self, args, state, control, **kwargs):
        self._step_ended = self.clock()
        self.step_seconds.append(self._step_ended - self._step_started)

    def on_save(self, args, state, control, **kwargs):
        self.save_seconds.append(self.clock() - self._step_ended)

    @property
    def first_step(self) -> float | None:
        return self.step_seconds[0] if self.step_seconds else None

    @property
    def median_step(self) -> float | None:
        """Median of the steps after the first (the first alone when there is no other)."""
        later = sorted(self.step_seconds[1:]) or self.step_seconds
        return later[len(later) // 2] if later else None
