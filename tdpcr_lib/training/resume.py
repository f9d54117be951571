"""Exact resume on disk: what ``last/`` holds, whether this run may continue it, and reading it back.

``last/`` stores the trainer's resumable state (:meth:`tdpcr_lib.training.trainer.Trainer.state_dict`)
as safetensors + JSON, never a pickle: the weights in ``model.safetensors`` and the rest
(optimizer, scheduler, RNG states, progress counters, best-metric tracking, the logs) in
``trainer_state.{json,safetensors}``. :func:`read_stored_run` reads the light part (``config.json``
and the progress counters) for the run plan (:mod:`tdpcr_lib.training.plan`);
:func:`resume_problems` says why this run may not continue it; :func:`read_resume_state` reads
everything for :meth:`~tdpcr_lib.training.trainer.Trainer.load_state_dict`. A run resumed after
``k`` batches reaches the same weights as an uninterrupted one
(``tests/training/test_resume.py`` kills runs with SIGKILL to check it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tdpcr_lib.core.portable import portable_fields
from tdpcr_lib.models.checkpoint import (
    CheckpointError,
    config_differences,
    load_state_dict_file,
    load_trainer_state,
    read_meta,
    resolve_checkpoint_dir,
)
from tdpcr_lib.models.checkpoint_files import STATE_JSON_FILE, STATE_TENSORS_FILE, verify_file
from tdpcr_lib.training.config import RESUME_MUTABLE_FIELDS, TrainConfig


@dataclass(frozen=True)
class StoredRun:
    """A resumable ``last/``: its ``config.json`` and its progress counters (no tensors read).

    Attributes
    ----------
    directory
        The folder read (``last/``, or ``.last.old`` after a crash in the swap window).
    meta
        Its ``config.json``.
    progress
        ``step``, ``epoch`` (completed), ``step_in_epoch``, ... as the trainer saved them.
    world_size
        The number of processes that trained it.
    """

    directory: Path
    meta: dict[str, Any]
    progress: dict[str, Any]
    world_size: int

    @property
    def step(self) -> int:
        return int(self.progress["step"])

    def finished(self, config: TrainConfig, total_steps: int) -> bool:
        """Whether the trainer's loop would not run another step or validation (see ``Trainer.fit``)."""
        epoch, in_epoch = int(self.progress["epoch"]), int(self.progress["step_in_epoch"])
        return not (epoch < config.epochs and (self.step < total_steps or in_epoch > 0))


def read_stored_run(last_dir: str | Path) -> StoredRun | None:
    """The resumable run in ``last_dir`` (``None``: no checkpoint there, or one without trainer state).

    Raises
    ------
    CheckpointError
        ``config.json`` or ``trainer_state.json`` is unreadable or fails its recorded sha256.
    """
    try:
        directory = resolve_checkpoint_dir(last_dir)
    except CheckpointError:
        return None
    if not (directory / STATE_JSON_FILE).is_file() or not (directory / STATE_TENSORS_FILE).is_file():
        return None
    meta = read_meta(directory)
    problem = verify_file(directory, STATE_JSON_FILE, meta)
    if problem:
        raise CheckpointError(problem)
    try:
        state = json.loads((directory / STATE_JSON_FILE).read_text(encoding="utf-8"))
        progress = dict(state["progress"])
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{directory / STATE_JSON_FILE}: cannot read the progress ({err})") from err
    return StoredRun(directory, meta, progress, int(state.get("world_size", 1)))


def resume_problems(
    stored: StoredRun,
    config: TrainConfig,
    model_config: dict[str, Any],
    manifest_hash: str | None,
    init_fingerprint: str | None,
) -> list[str]:
    """Why this run may not continue ``stored`` (``[]``: it may).

    The train config may differ only in :data:`~tdpcr_lib.training.config.RESUME_MUTABLE_FIELDS`
    (paths compared in their stored, project-relative form, :mod:`tdpcr_lib.core.portable`); the
    model config, the data split manifest and the starting checkpoint's weights must be the same.
    """
    meta = stored.meta
    problems = [
        f"train config {d}"
        for d in config_differences(
            portable_fields(meta.get("train_config") or {}),
            portable_fields(config.to_dict()),
            ignore=RESUME_MUTABLE_FIELDS,
        )
    ]
    problems += [f"model config {d}" for d in config_differences(meta["model_config"], model_config)]
    if meta.get("manifest_hash") != manifest_hash:
        problems.append("the data split manifest changed")
    if meta.get("init_fingerprint") != init_fingerprint:
        problems.append(f"the starting checkpoint {config.init_from} changed")
    return problems


def read_resume_state(directory: str | Path) -> dict[str, Any]:
    """Everything :meth:`Trainer.load_state_dict` restores: the verified weights under ``"model"``
    plus the trainer state (optimizer, scheduler, RNG, progress, history)."""
    return {"model": load_state_dict_file(directory), **load_trainer_state(directory)}
