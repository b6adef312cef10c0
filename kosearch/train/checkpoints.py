"""Where a run keeps its checkpoints, when an output folder may be written, and what ``--resume`` continues from.

Layout under ``OUTPUT/checkpoints`` (removed after success unless ``keep_checkpoints``)::

    <phase>/checkpoint-<step>/   the trainer's checkpoints (model, optimizer, scheduler, trainer state)
    <phase>/final/               a finished phase of a multi-phase recipe, so a resumed run skips it
    <file>.json                  anything a recipe needs to resume identically (e.g. adapt's budget plan)

A fresh run refuses an output that already holds a model or checkpoints (so a typo cannot overwrite a week of
training); ``--resume`` requires something to continue from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kosearch.errors import KosearchError
from kosearch.train.config import TrainingConfig

PHASE_DONE_FOLDER = "final"


def phase_folder(config: TrainingConfig, phase: str) -> Path:
    """Where the trainer writes ``phase``'s checkpoints."""
    return config.checkpoint_dir / phase


def finished_phase_folder(config: TrainingConfig, phase: str) -> Path:
    """Where a finished, non-last phase's model is saved for a resumed run to start from."""
    return phase_folder(config, phase) / PHASE_DONE_FOLDER


def last_checkpoint(config: TrainingConfig, phase: str) -> str | None:
    """The newest ``checkpoint-N`` of ``phase`` when resuming, else None (start from step 0)."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = phase_folder(config, phase)
    if not config.resume or not folder.is_dir():
        return None
    return get_last_checkpoint(str(folder))


def check_output(config: TrainingConfig, phase_names: Sequence[str]) -> None:
    """Refuse to start when the run would overwrite a model, or resume from nothing. A run without phases
    (``train adapt``'s default trains none) has nothing to resume, so its refusal does not offer ``--resume``.

    Raises:
        KosearchError: the output folder already holds a model or checkpoints and ``resume`` is off, or ``resume``
            is on and there is nothing to resume.
    """
    has_model = (config.output / "modules.json").is_file()
    has_checkpoints = config.checkpoint_dir.is_dir() and any(config.checkpoint_dir.iterdir())
    if config.resume:
        resumable = any(
            phase_folder(config, name).is_dir() and any(phase_folder(config, name).glob("checkpoint-*"))
            or (finished_phase_folder(config, name) / "modules.json").is_file()
            for name in phase_names
        )
        if not resumable:
            raise KosearchError(
                f"Nothing to resume in {config.checkpoint_dir}: no checkpoint was written there. "
                "Run again without --resume (or pass --keep-checkpoints next time to extend a finished run)."
            )
        return
    if has_model or has_checkpoints:
        resume = "Pass --resume to continue that run, or choose" if phase_names else "Choose"
        raise KosearchError(f"{config.output} already holds a model or training checkpoints. {resume} another --output.")
