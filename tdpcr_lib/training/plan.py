"""The run plan: what a training run does with its folder, decided once before it trains.

:func:`plan_run` reads the starting checkpoint (``init_from``, :class:`StartingPoint`) and the
folder's ``last/`` (:func:`tdpcr_lib.training.resume.read_stored_run`) once, and decides one
:class:`RunPlan` action:

* ``"fresh"``: train from the start (from ``init_from`` when given, else a seeded random
  initialisation); a previous run in the folder is cleared first (``resume=False``, or
  ``resume="auto"`` with an incompatible ``last/``).
* ``"resume"``: continue ``last/`` exactly (same configs, data manifest, starting checkpoint
  and number of processes).
* ``"finished"``: ``last/`` is a compatible run at the end of its step budget: it is loaded,
  not retrained.
* ``"refuse"``: ``last/`` cannot be continued and must not be replaced (``resume=True`` with an
  incompatible run, or another number of processes); :meth:`RunPlan.enforce` raises.

:func:`tdpcr_lib.training.run.train` logs :meth:`RunPlan.describe` (one line) and follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tdpcr_lib.core.io import sha256_file
from tdpcr_lib.models.checkpoint import MODEL_FILE, CheckpointError, read_meta, resolve_checkpoint_dir
from tdpcr_lib.training.config import TrainConfig
from tdpcr_lib.training.resume import StoredRun, read_stored_run, resume_problems

Action = Literal["fresh", "resume", "finished", "refuse"]
#: How a run treats an existing ``last/``: ``True`` continue it or refuse, ``"auto"`` continue
#: it or replace it, ``False`` replace it.
ResumeMode = bool | Literal["auto"]


@dataclass(frozen=True)
class StartingPoint:
    """The checkpoint a run starts from (``TrainConfig.init_from``), read once.

    Attributes
    ----------
    directory
        The checkpoint folder read.
    meta
        Its ``config.json`` (architecture, legend, ...).
    fingerprint
        sha256 of its weights: a resumed run must have started from the same ones.
    """

    directory: Path
    meta: dict[str, Any]
    fingerprint: str

    @classmethod
    def read(cls, init_from: str | Path | None) -> StartingPoint | None:
        """The starting checkpoint of ``init_from`` (``None`` when there is none)."""
        if not init_from:
            return None
        directory = resolve_checkpoint_dir(init_from)
        meta = read_meta(directory)
        if not (directory / MODEL_FILE).is_file():
            raise CheckpointError(f"{directory / MODEL_FILE}: weights file missing")
        return cls(directory, meta, sha256_file(directory / MODEL_FILE))


@dataclass(frozen=True)
class StepBudget:
    """How many optimizer steps a run takes, from its config, data size and processes."""

    local_batch: int  #: samples per process per step
    drop_last: bool  #: whole batches only (a set smaller than one batch is one short step)
    steps_per_epoch: int
    total_steps: int  #: ``epochs × steps_per_epoch``, capped by ``max_steps``

    @classmethod
    def of(cls, config: TrainConfig, n_samples: int, world_size: int = 1) -> StepBudget:
        """The budget of ``config`` on ``n_samples`` training samples split over ``world_size`` processes.

        Raises
        ------
        ValueError
            The batch does not split evenly over the processes, or there are fewer samples than processes.
        """
        if config.batch_size % world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the {world_size} processes")
        local_batch = config.batch_size // world_size
        per_rank = n_samples // world_size  # what a DistributedSampler(drop_last=True) gives each rank
        if per_rank < 1:
            raise ValueError(f"the training set has {n_samples} samples, fewer than the {world_size} processes")
        drop_last = per_rank >= local_batch
        steps_per_epoch = per_rank // local_batch if drop_last else 1
        total_steps = steps_per_epoch * config.epochs
        if config.max_steps is not None:
            total_steps = min(total_steps, config.max_steps)
        return cls(local_batch, drop_last, steps_per_epoch, total_steps)


@dataclass(frozen=True)
class RunPlan:
    """What a run does with its folder (see the module docstring)."""

    out_dir: Path
    action: Action
    total_steps: int
    start: StartingPoint | None = None
    stored: StoredRun | None = None  #: the ``last/`` found (``None``: none, or not read with ``resume=False``)
    problems: tuple[str, ...] = ()  #: why ``stored`` may not be continued

    @property
    def last_dir(self) -> Path:
        return self.out_dir / "last"

    @property
    def continues(self) -> bool:
        """Whether the trainer loads ``last/`` (to resume it, or to report a finished run)."""
        return self.action in ("resume", "finished")

    @property
    def replaces(self) -> bool:
        """Whether a previous run in the folder is cleared before training."""
        return self.action == "fresh" and self.stored is not None

    def describe(self) -> str:
        """The plan in one line (what ``train`` logs)."""
        origin = f"from {self.start.directory}" if self.start else "from a random initialisation"
        if self.action == "refuse":
            return self._refusal()
        if self.action == "finished":
            assert self.stored is not None
            return f"{self.out_dir}: already finished at step {self.stored.step} of {self.total_steps}; not retrained"
        if self.action == "resume":
            assert self.stored is not None
            progress = self.stored.progress
            return (
                f"resuming {self.out_dir} at epoch {progress['epoch']}, step {self.stored.step}"
                f" ({progress['step_in_epoch']} batches into the epoch) of {self.total_steps}"
            )
        line = f"{self.out_dir}: fresh start {origin}, {self.total_steps} steps"
        if self.replaces:
            why = "; ".join(self.problems[:3]) if self.problems else "resume=False"
            line += f", replacing the previous run in last/ ({why})"
        return line

    def enforce(self) -> None:
        """Raise :class:`CheckpointError` when the plan refuses the folder."""
        if self.action == "refuse":
            raise CheckpointError(self._refusal())

    def _refusal(self) -> str:
        return (
            f"{self.last_dir}: cannot resume: " + "; ".join(self.problems) + " (use a new output folder or "
            "resume=False / --no-resume to start afresh)"
        )


def plan_run(
    out_dir: str | Path,
    config: TrainConfig,
    *,
    resume: ResumeMode,
    model_config: dict[str, Any],
    manifest_hash: str | None,
    n_samples: int,
    start: StartingPoint | None = None,
    world_size: int = 1,
) -> RunPlan:
    """Decide what the run in ``out_dir`` does (reads ``last/`` once; never writes).

    Parameters
    ----------
    out_dir
        The run folder.
    config
        The run's settings (``crop_size`` already fitted to the data).
    resume
        ``True``: continue ``last/`` or refuse; ``"auto"``: continue it when compatible, else
        replace it; ``False``: replace it (``last/`` is not read).
    model_config
        The config of the model this run trains (``model.config.to_dict()``).
    manifest_hash
        The training data's split manifest hash.
    n_samples
        Training samples (for the step budget: a compatible run at its end is ``"finished"``).
    start
        The starting checkpoint, :meth:`StartingPoint.read` of ``config.init_from``.
    world_size
        Processes training this run.
    """
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
    out_dir = Path(out_dir)
    total_steps = StepBudget.of(config, n_samples, world_size).total_steps
    stored = read_stored_run(out_dir / "last") if resume else None
    plan = RunPlan(out_dir, "fresh", total_steps, start, stored)
    if stored is None:
        return plan
    fingerprint = start.fingerprint if start else None
    problems = resume_problems(stored, config, model_config, manifest_hash, fingerprint)
    if problems:
        return RunPlan(out_dir, "refuse" if resume is True else "fresh", total_steps, start, stored, tuple(problems))
    if stored.world_size != world_size:  # the data order depends on it: never replaced silently
        problem = f"saved with {stored.world_size} processes, resuming with {world_size}; exact resume needs the same"
        return RunPlan(out_dir, "refuse", total_steps, start, stored, (problem,))
    action: Action = "finished" if stored.finished(config, total_steps) else "resume"
    return RunPlan(out_dir, action, total_steps, start, stored)
