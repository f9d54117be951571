"""The training configuration and what it resolves to (objective, best metric)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd
from torch import nn

from tdpcr_lib.losses import OBJECTIVES
from tdpcr_lib.metrics.results import parse_column_name, value
from tdpcr_lib.models.checkpoint import unwrap_model
from tdpcr_lib.training.phases import PHASES, TRAINABLE_SETS

#: Learning-rate schedules of a training phase (not to be confused with the ablations'
#: training schedules, :data:`tdpcr_lib.evaluation.ablations.spec.TRAINING_SCHEDULES`).
LR_SCHEDULES: tuple[str, ...] = ("cosine", "multistep", "constant")


#: Train-config fields that may differ between a checkpoint and the run resuming it.
RESUME_MUTABLE_FIELDS = frozenset({"progress", "num_workers", "log_every", "checkpoint_every"})


class TrainConfigError(ValueError):
    """A training configuration has an unknown field, a value of the wrong type or out of range."""


#: Numeric fields → (type, allows None, lower bound, lower bound inclusive, upper bound).
#: Checked before any work so that ``lr=nan`` or ``batch_size="eight"`` fail with one line that
#: names the field, not deep inside the optimiser or the DataLoader.
_NUMERIC_FIELDS: dict[str, tuple[type, bool, float, bool, float | None]] = {
    "epochs": (int, False, 1, True, None),
    "max_steps": (int, True, 1, True, None),
    "batch_size": (int, False, 1, True, None),
    "crop_size": (int, True, 1, True, None),
    "lr": (float, False, 0.0, False, None),
    "weight_decay": (float, False, 0.0, True, None),
    "warmup_steps": (int, False, 0, True, None),
    "min_lr_ratio": (float, False, 0.0, True, 1.0),
    "gamma": (float, False, 0.0, False, None),
    "grad_clip": (float, True, 0.0, True, None),
    "rec_weight": (float, False, 0.0, True, None),
    "seed": (int, False, -(2**63), True, None),
    "num_workers": (int, False, 0, True, None),
    "checkpoint_every": (int, False, 0, True, None),
    "val_max_batches": (int, True, 1, True, None),
    "eval_batch_size": (int, True, 1, True, None),
    "log_every": (int, False, 1, True, None),
}


#: Fields that must be true/false.
_BOOL_FIELDS = ("deterministic", "channels_last", "progress")


def _check_number(name: str, value: Any) -> Any:
    kind, optional, low, inclusive, high = _NUMERIC_FIELDS[name]
    if value is None and optional:
        return None
    what = "an int" if kind is int else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (kind is int and isinstance(value, float) and not value.is_integer())
    ):
        raise TrainConfigError(f"TrainConfig.{name} must be {what}{' or null' if optional else ''}, got {value!r}")
    if not math.isfinite(value):
        raise TrainConfigError(f"TrainConfig.{name} must be finite, got {value!r}")
    value = int(value) if kind is int else float(value)
    if value < low or (value == low and not inclusive) or (high is not None and value > high):
        bound = f"{'>=' if inclusive else '>'} {low:g}" + (f" and <= {high:g}" if high else "")
        raise TrainConfigError(f"TrainConfig.{name} must be {bound}, got {value!r}")
    return value


@dataclass
class TrainConfig:
    """Everything about a training run except the model architecture (see ``ModelConfig``).

    Attributes
    ----------
    phase
        ``"phase1"`` (reconstruction only), ``"phase2"`` (seg decoder attached to a phase-1
        model, needs ``init_from``), ``"joint"`` (single-phase ablation: all parameters, CE +
        L_rec from scratch) or ``"baseline"`` (a baseline architecture with its own loss).
    objective
        ``"auto"`` or one of ``tdpcr_lib.losses.OBJECTIVES``; ``"auto"`` → ``"rec"`` for phase 1
        and DSen2-CR, ``"seg_rec"`` for phase 2 / joint, ``"multitask"`` for the multi-task
        competitor.
    trainable
        Phase-2 trainable set (a key of :data:`TRAINABLE_SETS`); other phases train everything.
    epochs, max_steps
        Run length; ``max_steps`` (optimizer steps) stops earlier, e.g. for smoke runs.
    batch_size
        Global batch (split over DDP ranks).
    crop_size
        Random training crop (``None`` = whole tiles). Validation predicts tiles larger than
        the crop with an overlapping sliding window of the crop size (as the evaluation does).
    lr, weight_decay, schedule, warmup_steps, min_lr_ratio, milestones, gamma
        AdamW and schedule settings (see the module docstring).
    grad_clip
        Max gradient L2 norm (``None`` = off).
    rec_weight
        λ in ``CE + λ·L_rec`` (default 10: CE is ~1 and L_rec ~0.03, and with λ = 1 the
        segmentation gradient reshaped the shared prompt/PGF and cost 4 dB PSNR; see
        docs/decisions.md).
    seed, deterministic
        Seeding and deterministic kernels.
    precision
        ``"auto"`` (bf16 autocast on CUDA, fp32 on CPU), ``"bf16"`` or ``"fp32"``.
    channels_last
        Use the ``channels_last`` memory format (faster convolutions on CPU and CUDA).
    num_workers
        DataLoader workers.
    checkpoint_every
        Also write ``last/`` every N optimizer steps (0 = only at epoch ends).
    best_metric, best_mode
        Validation metric, a result column name (e.g. ``"psnr"``, ``"miou"``,
        ``"psnr_cloudy"``; ``"auto"`` picks
        mIoU when the model segments, else PSNR) and ``"max"``/``"min"``.
    val_max_batches, eval_batch_size
        Cap validation batches (smoke runs) and the validation batch size.
    init_from
        Checkpoint folder to start from (phase 2: the phase-1 ``best``).
    train_split, val_split
        Split names of the dataset.
    log_every, progress
        Step-log interval and tqdm progress bar.
    """

    phase: str = "phase1"
    objective: str = "auto"
    trainable: str = "prompt_pgf_seg"
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 8
    crop_size: int | None = 64
    lr: float = 2e-3
    weight_decay: float = 1e-3
    schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05
    milestones: tuple[float, ...] = (0.6, 0.75, 0.85, 0.9, 0.95)
    gamma: float = 0.5
    grad_clip: float | None = 0.5
    rec_weight: float = 10.0
    seed: int = 0
    deterministic: bool = True
    precision: str = "auto"
    channels_last: bool = True
    num_workers: int = 0
    checkpoint_every: int = 0
    best_metric: str = "auto"
    best_mode: str = "max"
    val_max_batches: int | None = None
    eval_batch_size: int | None = None
    init_from: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    log_every: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        for name in _NUMERIC_FIELDS:
            setattr(self, name, _check_number(name, getattr(self, name)))
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise TrainConfigError(f"TrainConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.milestones, str | bytes) or not all(
            isinstance(m, int | float) and not isinstance(m, bool) and 0 <= m <= 1 for m in self.milestones
        ):
            raise TrainConfigError(
                f"TrainConfig.milestones must be fractions of the run in [0, 1], got {self.milestones!r}"
            )
        self.milestones = tuple(float(m) for m in self.milestones)
        if self.phase not in PHASES:
            raise TrainConfigError(f"TrainConfig.phase must be one of {PHASES}, got {self.phase!r}")
        if self.objective != "auto" and self.objective not in OBJECTIVES:
            raise TrainConfigError(
                f"TrainConfig.objective must be 'auto' or one of {OBJECTIVES}, got {self.objective!r}"
            )
        if self.trainable not in TRAINABLE_SETS:
            raise TrainConfigError(
                f"TrainConfig.trainable must be one of {tuple(TRAINABLE_SETS)}, got {self.trainable!r}"
            )
        if self.schedule not in LR_SCHEDULES:
            raise TrainConfigError(f"TrainConfig.schedule must be one of {LR_SCHEDULES}, got {self.schedule!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise TrainConfigError(f"TrainConfig.precision must be auto|bf16|fp32, got {self.precision!r}")
        if self.best_mode not in ("max", "min"):
            raise TrainConfigError(f"TrainConfig.best_mode must be max|min, got {self.best_mode!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainConfigError("TrainConfig.epochs and batch_size must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise TrainConfigError("TrainConfig.max_steps must be >= 1 or None")
        if self.phase == "phase2" and not self.init_from:
            raise TrainConfigError("phase2 needs init_from= a phase-1 checkpoint folder (e.g. runs/phase1/best)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        out = asdict(self)
        out["milestones"] = list(self.milestones)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(f"unknown TrainConfig fields {unknown}; known: {sorted(known)}")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


def resolve_objective(config: TrainConfig, model: nn.Module) -> str:
    """The loss a run uses (``config.objective`` or its ``"auto"`` choice for this model)."""
    if config.objective != "auto":
        return config.objective
    arch = getattr(unwrap_model(model).config, "arch", "tdpcr")
    if arch == "multitask_unet":
        return "multitask"
    if config.phase in ("phase2", "joint"):
        return "seg_rec"
    return "seg_rec" if _has_segmentation(model) and arch != "dsen2cr" else "rec"


def _has_segmentation(model: nn.Module) -> bool:
    model = unwrap_model(model)
    config = getattr(model, "config", None)
    if getattr(config, "arch", None) == "multitask_unet":
        return True
    return bool(getattr(config, "with_seg_decoder", False))


def resolve_best_metric(config: TrainConfig, model: nn.Module) -> str:
    """The validation metric that picks ``best/``: a
    :func:`tdpcr_lib.metrics.results.column_name` such as ``"psnr"``, ``"miou"`` or
    ``"psnr_cloudy"`` (checked against the metric vocabulary)."""
    if config.best_metric != "auto":
        parse_column_name(config.best_metric)  # unknown names fail now, not after an epoch
        return config.best_metric
    return "miou" if resolve_objective(config, model) != "rec" else "psnr"


def best_metric_value(frame: pd.DataFrame, name: str) -> float:
    """The value of a :func:`resolve_best_metric` name in a validation result frame."""
    return value(frame, *parse_column_name(name))
