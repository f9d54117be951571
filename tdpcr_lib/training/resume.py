"""Exact resume: what a trainer saves in ``last/`` beyond the weights, and how it comes back.

A checkpoint taken after ``k`` batches of an epoch holds the optimizer, scheduler, RNG states and
progress counters; :func:`resume_from_last` restores them so the resumed run reaches the same
weights as an uninterrupted one (``tests/training/test_resume.py`` kills runs with SIGKILL to check it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tdpcr_lib.core.portable import portable_fields
from tdpcr_lib.core.runtime import capture_rng_state, restore_rng_state
from tdpcr_lib.models.checkpoint import (
    CheckpointError,
    config_differences,
    load_trainer_state,
    load_weights_into,
    read_meta,
    resolve_checkpoint_dir,
)
from tdpcr_lib.training.config import RESUME_MUTABLE_FIELDS

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # annotations only: the trainer module imports this one
    from tdpcr_lib.training.trainer import Trainer


def capture_trainer_state(trainer: Trainer) -> dict[str, Any]:
    """The trainer's optimizer, scheduler, RNG and progress as a checkpointable dict."""
    return {
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "rng": capture_rng_state(),
        "progress": {
            "step": trainer.step,
            "epoch": trainer.epoch,
            "step_in_epoch": trainer.step_in_epoch,
            "epoch_loss_sums": trainer.epoch_loss_sums,
            "epoch_batches": trainer.epoch_batches,
            "best_value": trainer.best_value,
            "best_epoch": trainer.best_epoch,
            "wall_time_s": trainer.elapsed_wall_time(),
        },
        "history": trainer.history,
        "step_log": trainer.step_log,
        "last_metrics": trainer.last_metrics,
        "world_size": trainer.world_size,
    }


def resume_from_last(trainer: Trainer) -> None:
    """Load ``out_dir/last`` into ``trainer`` if it exists (a fresh start otherwise).

    Raises
    ------
    CheckpointError
        The stored training config differs in a field a resume may not change, or the run was
        saved with another number of processes (exact resume needs the same data order).
    """
    try:
        directory = resolve_checkpoint_dir(trainer.last_dir)
    except CheckpointError:
        return  # nothing to resume: fresh start
    meta = read_meta(directory)
    # paths compared in their stored, project-relative form (core.portable)
    stored = portable_fields(meta.get("train_config") or {})
    current = portable_fields(trainer.config.to_dict())
    differing = config_differences(stored, current, ignore=RESUME_MUTABLE_FIELDS)
    if differing:
        raise CheckpointError(
            f"{directory}: cannot resume, the training config changed ({'; '.join(differing)}); use a new output folder"
        )

    load_weights_into(trainer.model, directory)
    state = load_trainer_state(directory)
    if state.get("world_size", 1) != trainer.world_size:
        raise CheckpointError(
            f"{directory}: saved with {state.get('world_size')} processes,"
            f" resuming with {trainer.world_size}; exact resume needs the same"
        )
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    progress = state["progress"]
    trainer.step, trainer.epoch = progress["step"], progress["epoch"]
    trainer.step_in_epoch = progress["step_in_epoch"]
    trainer.epoch_loss_sums = dict(progress["epoch_loss_sums"])
    trainer.epoch_batches = progress["epoch_batches"]
    trainer.best_value, trainer.best_epoch = progress["best_value"], progress["best_epoch"]
    trainer.wall_time_before = progress.get("wall_time_s", 0.0)
    trainer.history = list(state["history"])
    trainer.step_log = list(state["step_log"])
    last = state.get("last_metrics")
    trainer.last_metrics = list(last) if isinstance(last, list) else []  # older: a nested dict
    if trainer.is_main:
        log.info(
            "resuming %s at epoch %d, step %d (%d batches into the epoch)",
            trainer.out_dir,
            trainer.epoch,
            trainer.step,
            trainer.step_in_epoch,
        )
