"""The trainer's resumable state: progress counters, :meth:`~ResumableState.state_dict` and
:meth:`~ResumableState.load_state_dict`, in one place.

:class:`ResumableState` is the part of :class:`tdpcr_lib.training.trainer.Trainer` that an exact
resume saves and restores (the trainer inherits it; it is kept apart so the loop stays readable).
Checkpoints store it without pickles: :meth:`Trainer.save_last` writes the weights to
``last/model.safetensors`` and the rest to ``trainer_state.{json,safetensors}``
(:func:`tdpcr_lib.models.checkpoint.save_checkpoint`); a resume reads it back with
:func:`tdpcr_lib.training.resume.read_resume_state` and hands it to :meth:`load_state_dict`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tdpcr_lib.core.runtime import capture_rng_state, restore_rng_state
from tdpcr_lib.models.checkpoint import CheckpointError, unwrap_model


class ResumableState:
    """Progress counters and the resumable state of a trainer.

    The trainer provides ``model``, ``optimizer``, ``scheduler`` and ``world_size`` and calls
    :meth:`start_progress` once they exist.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    world_size: int

    def start_progress(self) -> None:
        """The counters of a run that has not trained yet."""
        self.step = 0  # optimizer steps
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0
        self.epoch_loss_sums: dict[str, float] = {}
        self.epoch_batches = 0
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, Any]] = []  # one row per epoch
        self.step_log: list[dict[str, Any]] = []
        # the last validation's result frame as JSON rows (stored in checkpoints)
        self.last_metrics: list[dict[str, Any]] = []
        self.wall_time_before = 0.0

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs, in one tree of tensors, numbers and lists.

        ``model`` (the weights), ``optimizer``, ``scheduler``, ``rng`` (torch, CUDA, NumPy and
        Python states), ``progress`` (step, completed epochs, batches into the epoch, the epoch's
        loss sums, best-metric tracking, wall time), ``history``, ``step_log``, ``last_metrics``
        and ``world_size``. There is no gradient scaler: bf16 autocast needs none. Tensors are
        the live ones, not copies (the checkpointer snapshots them); ``last/`` stores the weights
        in ``model.safetensors`` and the rest in ``trainer_state.{json,safetensors}``.
        """
        return {
            "model": unwrap_model(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng_state(),
            "progress": {
                "step": self.step,
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "epoch_loss_sums": self.epoch_loss_sums,
                "epoch_batches": self.epoch_batches,
                "best_value": self.best_value,
                "best_epoch": self.best_epoch,
                "wall_time_s": self.elapsed_wall_time(),
            },
            "history": self.history,
            "step_log": self.step_log,
            "last_metrics": self.last_metrics,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (e.g. :func:`tdpcr_lib.training.resume.read_resume_state`).

        The trainer must be built with the same config, data and number of processes; the run
        plan (:mod:`tdpcr_lib.training.plan`) checks that before a run resumes.

        Raises
        ------
        CheckpointError
            Another number of processes, or weights that do not fit the model.
        """
        if state.get("world_size", 1) != self.world_size:
            raise CheckpointError(
                f"state saved with {state.get('world_size')} processes, resuming with {self.world_size};"
                " exact resume needs the same"
            )
        try:
            unwrap_model(self.model).load_state_dict(state["model"], strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"the stored weights do not fit the model ({str(err).splitlines()[0]})") from err
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        restore_rng_state(state["rng"])
        progress = state["progress"]
        self.step, self.epoch = progress["step"], progress["epoch"]
        self.step_in_epoch = progress["step_in_epoch"]
        self.epoch_loss_sums = dict(progress["epoch_loss_sums"])
        self.epoch_batches = progress["epoch_batches"]
        self.best_value, self.best_epoch = progress["best_value"], progress["best_epoch"]
        self.wall_time_before = progress.get("wall_time_s", 0.0)
        self.history = list(state["history"])
        self.step_log = list(state["step_log"])
        last = state.get("last_metrics")
        self.last_metrics = list(last) if isinstance(last, list) else []  # older: a nested dict

    def elapsed_wall_time(self) -> float:
        """Seconds trained, over every resume (the current session counts from ``fit``'s start)."""
        started = getattr(self, "_started", None)
        return self.wall_time_before + (time.time() - started if started is not None else 0.0)
