"""The trainer: phase 1, phase 2, single-phase joint training and the baselines.

One :class:`Trainer` drives every run; what differs between runs is a :class:`TrainConfig`
(``phase``, ``objective``, ``trainable``) and the model. :func:`train` builds the model and the
datasets from a data folder and is what ``tdpcr train`` and the notebooks call.

Design choices (the paper gives none of them; see ``docs/design.md`` § Training):

* **Optimiser** AdamW (β = 0.9/0.999), weight decay only on weight matrices/kernels (not on
  biases, norms or the prompt embeddings' 1-D parameters), gradient-norm clipping 0.5.
* **Schedule** per optimizer step: ``"cosine"`` (default: linear warm-up then cosine decay to
  ``min_lr_ratio·lr``), ``"multistep"`` (the author's ECRformer recipe: ×``gamma`` at
  ``milestones`` given as fractions of the run), or ``"constant"``.
* **Determinism and exact resume.** Data order comes from ``DistributedSampler`` seeded with
  ``seed`` and reshuffled with ``set_epoch`` (also with one process), and every sample's random
  augmentation is drawn from an RNG seeded by ``(seed, epoch, index)``. A checkpoint taken after
  ``k`` batches of an epoch therefore resumes by skipping those ``k`` batches, and the resumed run
  reaches the same weights as an uninterrupted one. Model RNG (and NumPy / Python RNG) state is
  saved too.
* **Distributed**: under ``torchrun`` the model is wrapped in ``DistributedDataParallel``; the
  configured ``batch_size`` is the *global* batch, split evenly over ranks; validation metrics
  are merged with ``EvaluationAccumulator.all_reduce``; only rank 0 writes files.
* **Precision**: bf16 autocast on CUDA (``precision="auto"``), fp32 on CPU; losses are computed
  in fp32. ``channels_last`` memory format (CPU and CUDA).
* **Phase 2 trainable sets**: ``"prompt_pgf_seg"`` (default: segmentation decoder + prompt
  generator + PGF blocks; everything else frozen and kept in eval mode), ``"seg_decoder_only"``,
  ``"all"``.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .checkpoint import (
    CheckpointError,
    load_model,
    load_trainer_state,
    read_meta,
    resolve_checkpoint_dir,
    save_checkpoint,
    unwrap_model,
)
from .io_utils import atomic_path, atomic_write_json, atomic_write_text
from .losses import OBJECTIVES, compute_loss
from .runtime import resolve_device, seed_everything

PHASES: tuple[str, ...] = ("phase1", "phase2", "joint", "baseline")
#: Phase-2 trainable sets → the ``module_groups()`` that stay trainable (``None`` = all).
TRAINABLE_SETS: dict[str, tuple[str, ...] | None] = {
    "prompt_pgf_seg": ("prompt_generator", "pgf", "seg_decoder"),
    "seg_decoder_only": ("seg_decoder",),
    "all": None,
}
SCHEDULES: tuple[str, ...] = ("cosine", "multistep", "constant")
#: Train-config fields that may differ between a checkpoint and the run resuming it.
RESUME_MUTABLE_FIELDS = frozenset({"progress", "num_workers", "log_every", "checkpoint_every"})


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
        docs/design.md).
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
        Validation metric path (e.g. ``"cr.all.psnr"``, ``"seg.all.miou"``; ``"auto"`` picks
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
        self.milestones = tuple(float(m) for m in self.milestones)
        if self.phase not in PHASES:
            raise ValueError(f"TrainConfig.phase must be one of {PHASES}, got {self.phase!r}")
        if self.objective != "auto" and self.objective not in OBJECTIVES:
            raise ValueError(f"TrainConfig.objective must be 'auto' or one of {OBJECTIVES}, "
                             f"got {self.objective!r}")
        if self.trainable not in TRAINABLE_SETS:
            raise ValueError(f"TrainConfig.trainable must be one of {tuple(TRAINABLE_SETS)}, "
                             f"got {self.trainable!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule must be one of {SCHEDULES}, "
                             f"got {self.schedule!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"TrainConfig.precision must be auto|bf16|fp32, got {self.precision!r}")
        if self.best_mode not in ("max", "min"):
            raise ValueError(f"TrainConfig.best_mode must be max|min, got {self.best_mode!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("TrainConfig.epochs and batch_size must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("TrainConfig.max_steps must be >= 1 or None")
        if self.phase == "phase2" and not self.init_from:
            raise ValueError("phase2 needs init_from= a phase-1 checkpoint folder "
                             "(e.g. runs/phase1/best)")

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
            raise ValueError(f"unknown TrainConfig fields {unknown}; known: {sorted(known)}")
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
    """The validation metric path used to pick ``best/``."""
    if config.best_metric != "auto":
        return config.best_metric
    return "seg.all.miou" if resolve_objective(config, model) != "rec" else "cr.all.psnr"


def metric_at(metrics: dict[str, Any], path: str) -> float:
    """Look up ``"cr.all.psnr"``-style paths in a nested metrics dict."""
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"metric {path!r} not in the validation metrics "
                           f"(top-level keys: {sorted(metrics)})")
        value = value[part]
    return float(value)


# --------------------------------------------------------------------------------------------
# Parameter groups and freezing
# --------------------------------------------------------------------------------------------
def apply_trainable_set(model: nn.Module, config: TrainConfig) -> list[str]:
    """Set ``requires_grad`` for the run; returns the names of the frozen module groups.

    Only phase 2 freezes anything; the groups come from ``model.module_groups()``.
    """
    model = unwrap_model(model)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    groups = TRAINABLE_SETS[config.trainable]
    if config.phase != "phase2" or groups is None:
        return []
    if not hasattr(model, "module_groups"):
        raise TypeError(f"trainable={config.trainable!r} needs a model with module_groups() "
                        f"(TDP-CR); got {type(model).__name__}")
    module_groups = model.module_groups()
    missing = [g for g in groups if g not in module_groups]
    if missing:
        raise KeyError(f"model has no module groups {missing} (has {sorted(module_groups)})")
    frozen = [name for name in module_groups if name not in groups]
    for name in frozen:
        for parameter in module_groups[name].parameters():
            parameter.requires_grad_(False)
    for name in groups:  # a shared submodule listed in a trainable group stays trainable
        for parameter in module_groups[name].parameters():
            parameter.requires_grad_(True)
    return frozen


def parameter_report(model: nn.Module) -> dict[str, Any]:
    """Total and trainable parameter counts, overall and per module group.

    Returns
    -------
    dict
        ``{"total": int, "trainable": int, "trainable_fraction": float,
        "groups": {name: {"total": int, "trainable": int}}}`` (groups only for TDP-CR).
    """
    model = unwrap_model(model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    report: dict[str, Any] = {"total": total, "trainable": trainable,
                              "trainable_fraction": trainable / total if total else 0.0,
                              "groups": {}}
    if hasattr(model, "module_groups"):
        for name, module in model.module_groups().items():
            report["groups"][name] = {
                "total": sum(p.numel() for p in module.parameters()),
                "trainable": sum(p.numel() for p in module.parameters() if p.requires_grad)}
    return report


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; no weight decay on 0/1-D tensors (biases, norms)."""
    decay, no_decay = [], []
    for parameter in unwrap_model(model).parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    if not decay and not no_decay:
        raise ValueError("no trainable parameters (check TrainConfig.trainable)")
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr,
                             betas=(0.9, 0.999))


def lr_factor(step: int, total_steps: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based) of ``total_steps``."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "multistep":
        progress = step / max(total_steps, 1)
        return config.gamma ** sum(progress >= m for m in config.milestones)
    decay_steps = max(total_steps - config.warmup_steps, 1)
    progress = min(max(step - config.warmup_steps, 0) / decay_steps, 1.0)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------------------------
# Deterministic, resumable data order
# --------------------------------------------------------------------------------------------
class SeededAugmentDataset(Dataset):
    """Applies a random transform with an RNG seeded by ``(seed, epoch, index)``.

    The global torch / NumPy / Python RNG states are restored afterwards, so augmentation does
    not depend on how many samples were drawn before (the key to resuming mid-epoch).
    """

    def __init__(self, base: Dataset, transform: Callable[[dict], dict] | None, seed: int) -> None:
        self.base = base
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        sample = self.base[index]
        if self.transform is None:
            return sample
        sample_seed = int(np.random.SeedSequence([self.seed, self.epoch, int(index)])
                          .generate_state(1)[0])
        torch_state, numpy_state, python_state = (torch.get_rng_state(), np.random.get_state(),  # noqa: NPY002 (the legacy global RNG is what we save/restore)
                                                  random.getstate())
        try:
            torch.manual_seed(sample_seed)
            np.random.seed(sample_seed)  # noqa: NPY002 (the legacy global RNG is what we save/restore)
            random.seed(sample_seed)
            return self.transform(sample)
        finally:
            torch.set_rng_state(torch_state)
            np.random.set_state(numpy_state)  # noqa: NPY002 (the legacy global RNG is what we save/restore)
            random.setstate(python_state)

    def __getattr__(self, name: str) -> Any:  # expose manifest_hash, plot, ... of the base
        if name in ("base", "transform", "seed", "epoch"):
            raise AttributeError(name)
        return getattr(self.base, name)


class ResumableSampler(Sampler[int]):
    """``DistributedSampler`` order for (rank, world), minus the first ``skip`` samples.

    With ``world_size=1`` it is a seeded shuffle; with several ranks rank ``r`` gets positions
    ``r, r+W, ...`` of the same permutation, so a global batch of ``B`` (``B/W`` per rank) holds
    the same samples as a one-process batch ``B``.
    """

    def __init__(self, dataset: Dataset, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                        shuffle=shuffle, seed=seed, drop_last=True)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.skip = int(skip)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip:])

    def __len__(self) -> int:
        return max(len(self.inner) - self.skip, 0)


class ShardSampler(Sampler[int]):
    """Every ``world_size``-th index starting at ``rank`` (no padding, so no sample is counted
    twice when per-rank metrics are merged)."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


# --------------------------------------------------------------------------------------------
# RNG state (for the model's own randomness, e.g. dropout)
# --------------------------------------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), NumPy and Python RNG states in a pickle-free form."""
    numpy_state = np.random.get_state()  # noqa: NPY002 (the legacy global RNG is what we save/restore)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": numpy_state[0], "keys": numpy_state[1].astype(np.int64),
                  "pos": int(numpy_state[2]), "has_gauss": int(numpy_state[3]),
                  "cached_gaussian": float(numpy_state[4])},
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].astype(np.uint32),  # noqa: NPY002 (the legacy global RNG is what we save/restore)
                         numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    internal, version, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    out_dir: Path
    best_dir: Path | None
    last_dir: Path
    best_metric: str
    best_value: float | None
    best_epoch: int | None
    history: list[dict[str, Any]]
    parameters: dict[str, Any]
    steps: int
    wall_time_s: float
    final_metrics: dict[str, Any] = field(default_factory=dict)

    def history_frame(self):
        """The per-epoch log as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.history)

    def summary(self) -> dict[str, Any]:
        """JSON-able summary for metrics records."""
        return {"best_metric": self.best_metric, "best_value": self.best_value,
                "best_epoch": self.best_epoch, "steps": self.steps,
                "epochs_run": len(self.history), "wall_time_s": round(self.wall_time_s, 2),
                "parameters": self.parameters, "best_dir": str(self.best_dir) if self.best_dir
                else None, "last_dir": str(self.last_dir)}


StepCallback = Callable[["Trainer", int], None]


class Trainer:
    """Train one model under one :class:`TrainConfig` (any phase, any architecture).

    Parameters
    ----------
    model
        A tdpcr model (``forward(optical, sar) -> dict``, ``.config``).
    config
        The run's settings.
    train_dataset
        Yields sample dicts; random augmentation, if any, is passed as ``train_transform``.
    val_dataset
        Validation samples (whole tiles), or ``None`` to skip validation.
    out_dir
        Run folder: ``last/``, ``best/``, ``history.{csv,json}``, ``steps.csv``,
        ``loss_curve.png``.
    device
        ``"auto"`` / ``"cpu"`` / ``"cuda"``; under ``torchrun`` the local rank's GPU.
    train_transform
        Random augmentation applied per sample with a ``(seed, epoch, index)`` RNG.
    callbacks
        Called as ``callback(trainer, step)`` after every optimizer step (and after the
        checkpoint of that step, if one is due).
    resume
        Continue from ``out_dir/last`` if it holds trainer state (refuses a config mismatch).
    run_info
        Extra JSON fields stored in every checkpoint's ``config.json`` (e.g. the starting
        checkpoint's fingerprint, the data source).
    """

    def __init__(self, model: nn.Module, config: TrainConfig, train_dataset: Dataset,
                 val_dataset: Dataset | None, out_dir: str | Path, device: str | torch.device =
                 "auto", train_transform: Callable[[dict], dict] | None = None,
                 callbacks: Sequence[StepCallback] = (), resume: bool = False,
                 run_info: dict[str, Any] | None = None) -> None:
        self.config = config
        self.run_info = dict(run_info or {})
        self.out_dir = Path(out_dir)
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        self.is_main = self.rank == 0
        self.device = resolve_device(device)
        if config.batch_size % self.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                             f"{self.world_size} processes")
        self.local_batch = config.batch_size // self.world_size
        self.callbacks = list(callbacks)
        seed_everything(config.seed, config.deterministic)

        self.model = model.to(self.device)
        self.use_channels_last = config.channels_last  # 1.2x faster on CPU too (docs/design.md)
        if self.use_channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.frozen_groups = apply_trainable_set(self.model, config)
        self.objective = resolve_objective(config, self.model)
        self.best_metric = resolve_best_metric(config, self.model)
        self.parameters = parameter_report(self.model)
        self.autocast_dtype = (torch.bfloat16 if config.precision == "bf16" or
                               (config.precision == "auto" and self.device.type == "cuda")
                               else None)

        self.train_data = SeededAugmentDataset(train_dataset, train_transform, config.seed)
        self.sampler = ResumableSampler(self.train_data, config.seed, self.rank, self.world_size)
        per_rank = len(self.sampler.inner)
        if per_rank < 1:
            raise ValueError(f"the training set has {len(train_dataset)} samples, fewer than "
                             f"the {self.world_size} processes")
        self.drop_last = per_rank >= self.local_batch
        self.steps_per_epoch = (per_rank // self.local_batch if self.drop_last else 1)
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.val_dataset = val_dataset
        self.manifest_hash = getattr(train_dataset, "manifest_hash", None)

        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, self.total_steps, config))
        if self.distributed:
            ddp_kwargs = {"device_ids": [self.device.index]} if self.device.type == "cuda" else {}
            self.ddp_model: nn.Module = nn.parallel.DistributedDataParallel(self.model,
                                                                            **ddp_kwargs)
        else:
            self.ddp_model = self.model

        # progress state (all of it is checkpointed)
        self.step = 0
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0
        self.epoch_loss_sums: dict[str, float] = {}
        self.epoch_batches = 0
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, Any]] = []
        self.step_log: list[dict[str, Any]] = []
        self.last_metrics: dict[str, Any] = {}
        self.wall_time_before = 0.0
        if resume:
            self._maybe_resume()

    # ------------------------------------------------------------------ checkpoint state
    @property
    def last_dir(self) -> Path:
        return self.out_dir / "last"

    @property
    def best_dir(self) -> Path:
        return self.out_dir / "best"

    def trainer_state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng_state(),
            "progress": {"step": self.step, "epoch": self.epoch,
                         "step_in_epoch": self.step_in_epoch,
                         "epoch_loss_sums": self.epoch_loss_sums,
                         "epoch_batches": self.epoch_batches, "best_value": self.best_value,
                         "best_epoch": self.best_epoch, "wall_time_s": self._wall_time()},
            "history": self.history,
            "step_log": self.step_log,
            "last_metrics": self.last_metrics,
            "world_size": self.world_size,
        }

    def _maybe_resume(self) -> None:
        try:
            directory = resolve_checkpoint_dir(self.last_dir)
        except CheckpointError:
            return  # nothing to resume: fresh start
        meta = read_meta(directory)
        stored = dict(meta.get("train_config") or {})
        current = self.config.to_dict()
        differing = [f"{k}: checkpoint={stored.get(k)!r} vs now={current.get(k)!r}"
                     for k in sorted(set(stored) | set(current))
                     if k not in RESUME_MUTABLE_FIELDS and stored.get(k) != current.get(k)]
        if differing:
            raise CheckpointError(f"{directory}: cannot resume, the training config changed "
                                  f"({'; '.join(differing)}); use a new output folder")
        from .checkpoint import load_weights_into

        load_weights_into(self.model, directory)
        state = load_trainer_state(directory)
        if state.get("world_size", 1) != self.world_size:
            raise CheckpointError(f"{directory}: saved with {state.get('world_size')} processes,"
                                  f" resuming with {self.world_size}; exact resume needs the same")
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
        self.last_metrics = state.get("last_metrics", {})
        if self.is_main:
            print(f"resuming {self.out_dir} at epoch {self.epoch}, step {self.step} "
                  f"({self.step_in_epoch} batches into the epoch)", flush=True)

    def _wall_time(self) -> float:
        return self.wall_time_before + (time.time() - self._started if hasattr(self, "_started")
                                        else 0.0)

    def save_last(self) -> None:
        """Write ``last/`` with the full trainer state (rank 0 only)."""
        if self.is_main:
            save_checkpoint(self.last_dir, self.model, phase=self.config.phase, epoch=self.epoch,
                            step=self.step, train_config=self.config.to_dict(),
                            metrics=self.last_metrics, manifest_hash=self.manifest_hash,
                            trainer_state=self.trainer_state(),
                            extra=self._checkpoint_extra())
            self._write_logs()
        self._barrier()

    def _checkpoint_extra(self) -> dict[str, Any]:
        return {**self.run_info, "parameters": self.parameters, "objective": self.objective,
                "frozen_groups": self.frozen_groups, "world_size": self.world_size}

    def _barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    # ------------------------------------------------------------------ training
    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device, non_blocking=True)
                if self.use_channels_last and value.ndim == 4:
                    value = value.contiguous(memory_format=torch.channels_last)
            out[key] = value
        return out

    def _set_train_mode(self) -> None:
        self.model.train()
        if self.frozen_groups:
            groups = self.model.module_groups()
            for name in self.frozen_groups:
                groups[name].eval()  # frozen BatchNorm statistics stay fixed

    def _train_loader(self) -> DataLoader:
        self.train_data.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, skip=self.step_in_epoch * self.local_batch)
        return DataLoader(self.train_data, batch_size=self.local_batch, sampler=self.sampler,
                          num_workers=self.config.num_workers, drop_last=self.drop_last,
                          pin_memory=self.device.type == "cuda")

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One forward/backward/optimizer step; returns the loss parts."""
        batch = self._to_device(batch)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            outputs = self.ddp_model(batch["optical"], batch["sar"])
        loss, parts = compute_loss(outputs, batch, self.objective, rec_weight=self.config.rec_weight)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {float(loss)} at step {self.step}; "
                                     "lower the learning rate or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            parts["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], self.config.grad_clip))
        self.optimizer.step()
        self.scheduler.step()
        return parts

    def fit(self) -> TrainResult:
        """Run (or finish) the training; returns a :class:`TrainResult`."""
        from tqdm import tqdm

        self._started = time.time()
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        config = self.config
        # An epoch already begun is always finished (validated, logged) even when its last
        # step was the run's last: a run killed between that step's checkpoint and the epoch
        # end must resume into the same final state.
        while self.epoch < config.epochs and (self.step < self.total_steps
                                              or self.step_in_epoch > 0):
            if self.step >= self.total_steps:
                self._end_epoch(throughput=0.0)
                continue
            loader = self._train_loader()
            self._set_train_mode()
            epoch_steps = min(self.steps_per_epoch,
                              self.step_in_epoch + self.total_steps - self.step)
            bar = tqdm(total=epoch_steps, initial=self.step_in_epoch,
                       desc=f"{config.phase} epoch {self.epoch + 1}/{config.epochs}",
                       disable=not (config.progress and self.is_main), mininterval=1.0,
                       dynamic_ncols=True, leave=True)
            tick, images = time.time(), 0
            for batch in loader:
                parts = self.train_step(batch)
                self.step += 1
                self.step_in_epoch += 1
                self.epoch_batches += 1
                for key, value in parts.items():
                    self.epoch_loss_sums[key] = self.epoch_loss_sums.get(key, 0.0) + value
                images += batch["optical"].shape[0] * self.world_size
                throughput = images / max(time.time() - tick, 1e-9)
                lr = self.optimizer.param_groups[0]["lr"]
                if self.step % max(config.log_every, 1) == 0 or self.step == 1:
                    self.step_log.append({"step": self.step, "epoch": self.epoch + 1,
                                          "lr": lr, **parts})
                bar.set_postfix(loss=f"{parts['loss']:.4f}", lr=f"{lr:.2e}",
                                img_s=f"{throughput:.1f}", refresh=False)
                bar.update(1)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_last()
                for callback in self.callbacks:
                    callback(self, self.step)
                if self.step >= self.total_steps:
                    break
            bar.close()
            self._end_epoch(throughput=images / max(time.time() - tick, 1e-9))
        if self.is_main and self.history:
            self._write_logs()
        self._barrier()
        return TrainResult(out_dir=self.out_dir,
                           best_dir=self.best_dir if (self.best_dir / "config.json").exists()
                           else None,
                           last_dir=self.last_dir, best_metric=self.best_metric,
                           best_value=self.best_value, best_epoch=self.best_epoch,
                           history=self.history, parameters=self.parameters, steps=self.step,
                           wall_time_s=self._wall_time(), final_metrics=self.last_metrics)

    def _end_epoch(self, throughput: float) -> None:
        sums = dict(self.epoch_loss_sums)
        batches = self.epoch_batches
        if self.distributed:  # mean of the per-rank losses
            keys = sorted(sums)
            packed = torch.tensor([sums[k] for k in keys] + [batches], dtype=torch.float64)
            dist.all_reduce(packed)
            sums = {k: float(v) / self.world_size for k, v in zip(keys, packed[:-1], strict=True)}
            batches = int(packed[-1]) // self.world_size
        row: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step,
                               "lr": self.optimizer.param_groups[0]["lr"],
                               "images_per_s": round(throughput, 2)}
        row.update({f"train_{k}": v / max(batches, 1) for k, v in sums.items()})
        if self.val_dataset is not None:
            metrics = self.validate()
            self.last_metrics = metrics
            row.update(_headline_metrics(metrics))
            value = metric_at(metrics, self.best_metric)
            better = self.best_value is None or (
                value > self.best_value if self.config.best_mode == "max" else
                value < self.best_value)
        else:
            value, better = None, True
        row["wall_time_s"] = round(self._wall_time(), 2)
        self.history.append(row)
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_loss_sums, self.epoch_batches = {}, 0
        if better:
            self.best_value, self.best_epoch = value, self.epoch
            if self.is_main:
                save_checkpoint(self.best_dir, self.model, phase=self.config.phase,
                                epoch=self.epoch, step=self.step,
                                train_config=self.config.to_dict(), metrics=self.last_metrics,
                                manifest_hash=self.manifest_hash,
                                extra={**self._checkpoint_extra(),
                                       "best_metric": self.best_metric, "best_value": value})
        self.save_last()
        if self.is_main and self.config.progress:
            shown = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
            print(f"epoch {self.epoch}: {shown}", flush=True)

    def validate(self) -> dict[str, Any]:
        """Metrics on the validation set, merged over ranks."""
        from .evaluation import accumulate_metrics

        accumulator = accumulate_metrics(
            self.model, self.val_dataset, device=self.device,
            batch_size=self.config.eval_batch_size or self.local_batch,
            max_batches=self.config.val_max_batches, rank=self.rank, world_size=self.world_size,
            tile=self.config.crop_size,  # tiles larger than the crop: sliding window
            autocast_dtype=self.autocast_dtype, channels_last=self.use_channels_last)
        if self.distributed:
            accumulator.all_reduce()
        return accumulator.compute()

    # ------------------------------------------------------------------ logs
    def _write_logs(self) -> None:
        import pandas as pd

        atomic_write_json(self.out_dir / "history.json", {
            "phase": self.config.phase, "objective": self.objective,
            "best_metric": self.best_metric, "best_value": self.best_value,
            "best_epoch": self.best_epoch, "parameters": self.parameters,
            "train_config": self.config.to_dict(), "epochs": self.history,
            "steps": self.step_log})
        for name, rows in (("history.csv", self.history), ("steps.csv", self.step_log)):
            if rows:
                atomic_write_text(self.out_dir / name, pd.DataFrame(rows).to_csv(index=False))
        if self.history:
            figure = plot_training_curves(self.out_dir)
            with atomic_path(self.out_dir / "loss_curve.png", suffix=".png") as tmp:
                figure.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def _headline_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """A flat selection of validation metrics for the per-epoch log."""
    wanted = ["cr.all.psnr", "cr.all.ssim", "cr.all.sam", "cr.all.mae", "cr.cloudy.psnr",
              "cr_input.cloudy.psnr", "seg.all.miou", "seg.all.oa", "seg.cloudy.miou"]
    out = {}
    for path in wanted:
        try:
            out["val_" + path.replace(".", "_")] = metric_at(metrics, path)
        except (KeyError, TypeError, ValueError):
            continue
    return out


def plot_training_curves(run_dir_or_history: str | Path | dict[str, Any]):
    """Loss per logged step and the headline validation metrics per epoch.

    Parameters
    ----------
    run_dir_or_history
        A run folder (reads ``history.json``) or the loaded ``history.json`` dict.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if isinstance(run_dir_or_history, dict):
        history = run_dir_or_history
    else:
        path = Path(run_dir_or_history) / "history.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no training history (has the run started?)")
        history = json.loads(path.read_text())
    figure = Figure(figsize=(11, 3.6), layout="constrained")
    ax_loss, ax_val = figure.subplots(1, 2)
    steps = history.get("steps", [])
    for key in ("loss", "ce", "rec", "charbonnier"):
        points = [(row["step"], row[key]) for row in steps if row.get(key) is not None]
        if points:
            ax_loss.plot(*zip(*points, strict=True), label=key, lw=1)
    epochs = history.get("epochs", [])
    if epochs and "train_loss" in epochs[0]:
        ax_loss.plot([r["step"] for r in epochs], [r["train_loss"] for r in epochs], "o-",
                     label="epoch mean", lw=1.5)
    ax_loss.set(xlabel="optimizer step", ylabel="training loss", yscale="log",
                title=f"{history.get('phase', '')} training loss ({history.get('objective', '')})")
    ax_loss.legend(fontsize=8)
    plotted = False
    for key, label in (("val_cr_all_psnr", "PSNR all (dB)"),
                       ("val_cr_cloudy_psnr", "PSNR cloudy (dB)"),
                       ("val_cr_input_cloudy_psnr", "cloudy input PSNR (dB)")):
        values = [(r["epoch"], r[key]) for r in epochs if r.get(key) is not None]
        if values:
            ax_val.plot(*zip(*values, strict=True), "o-", label=label)
            plotted = True
    ax_val.set(xlabel="epoch", ylabel="dB", title="validation")
    if any(r.get("val_seg_all_miou") is not None for r in epochs):
        ax_seg = ax_val.twinx()
        ax_seg.plot([r["epoch"] for r in epochs], [r.get("val_seg_all_miou") for r in epochs],
                    "s--", color="tab:red", label="mIoU")
        ax_seg.set_ylabel("mIoU", color="tab:red")
        plotted = True
    if plotted:
        ax_val.legend(fontsize=8, loc="lower right")
    return figure


# --------------------------------------------------------------------------------------------
# High-level entry point: build model + data, train
# --------------------------------------------------------------------------------------------
def ensure_dataset(data_root: str | Path, source: str | None = "synthetic") -> Path:
    """The dataset folder to train on, made ready for :class:`tdpcr_lib.data.LuojiaSETOSFCR`.

    ``source="synthetic"``: generate the default synthetic twin at ``data_root`` if it is not
    there yet (what notebook 00 does). ``"luojiaset"`` (or anything else): the real data;
    an archive is extracted and the folder holding the bucket folders is located
    (:func:`tdpcr_lib.data.prepare_luojiaset`). A missing split manifest raises with the command
    that writes one.
    """
    data_root = Path(data_root).expanduser()
    if source in (None, "synthetic"):
        from .data import BUCKETS

        if not any((data_root / bucket).is_dir() for bucket in BUCKETS):
            from .synthetic import make_synthetic_luojiaset

            print(f"no dataset at {data_root}: generating the synthetic twin there", flush=True)
            make_synthetic_luojiaset(data_root)
        return data_root
    from .data import prepare_luojiaset

    return prepare_luojiaset(data_root)


def build_datasets(data_root: str | Path, config: TrainConfig
                   ) -> tuple[Dataset, Dataset | None]:
    """Training and validation splits (whole tiles; augmentation is applied by the trainer)."""
    from .data import LuojiaSETOSFCR

    train_set = LuojiaSETOSFCR(data_root, split=config.train_split)
    val_set: Dataset | None = LuojiaSETOSFCR(data_root, split=config.val_split)
    if len(train_set) == 0:
        raise ValueError(f"{data_root}: the {config.train_split!r} split is empty")
    if val_set is not None and len(val_set) == 0:
        val_set = None
    return train_set, val_set


def fit_crop_to_data(config: TrainConfig, dataset: Dataset) -> TrainConfig:
    """Clip ``crop_size`` to the tile size of ``dataset`` (a 128 crop on 64 px tiles → 64)."""
    if config.crop_size is None or len(dataset) == 0:
        return config
    height, width = dataset[0]["optical"].shape[-2:]
    if config.crop_size <= min(height, width):
        return config
    return config.replace(crop_size=int(min(height, width)))


def build_model_for(config: TrainConfig, model_config: Any | None = None,
                    device: str | torch.device = "cpu") -> nn.Module:
    """The model a run starts from (phase 2: the phase-1 checkpoint + a seg decoder)."""
    from .models import ModelConfig, build_model

    if config.phase == "phase2":
        model, meta = load_model(config.init_from, device=device)
        if meta["model_config"].get("arch") != "tdpcr":
            raise CheckpointError(f"{config.init_from}: phase 2 needs a TDP-CR checkpoint, got "
                                  f"arch={meta['model_config'].get('arch')!r}")
        model.attach_segmentation_decoder()
        return model
    if model_config is None:
        model_config = ModelConfig()
    elif isinstance(model_config, dict):
        model_config = ModelConfig.from_dict({**ModelConfig().to_dict(), **model_config})
    if config.phase == "phase1":
        if model_config.arch != "tdpcr":
            raise ValueError("phase1 trains TDP-CR; use phase='baseline' for other architectures")
        model_config = model_config.replace(with_seg_decoder=False)
    elif config.phase == "joint":
        if model_config.arch != "tdpcr":
            raise ValueError("joint training is the TDP-CR ablation; use phase='baseline' for "
                             "other architectures")
        model_config = model_config.replace(with_seg_decoder=True)
    if config.init_from:
        model, _ = load_model(config.init_from, device=device,
                              expected_config=model_config.to_dict())
        return model
    return build_model(model_config)


def init_fingerprint(config: TrainConfig) -> str | None:
    """sha256 of the starting checkpoint's weights (a resumed phase 2 must start from it)."""
    if not config.init_from:
        return None
    import hashlib

    path = resolve_checkpoint_dir(config.init_from) / "model.safetensors"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resume_problems(out_dir: str | Path, config: TrainConfig, model: nn.Module,
                    manifest_hash: str | None, fingerprint: str | None) -> list[str] | None:
    """Why ``out_dir/last`` cannot be resumed by this run (``[]`` = it can; ``None`` = no state).
    """
    last = Path(out_dir) / "last"
    if not _has_resumable_state(last):
        return None
    meta = read_meta(last)
    problems = []
    stored = dict(meta.get("train_config") or {})
    current = config.to_dict()
    problems += [f"train config {k}: checkpoint={stored.get(k)!r} vs now={current.get(k)!r}"
                 for k in sorted(set(stored) | set(current))
                 if k not in RESUME_MUTABLE_FIELDS and stored.get(k) != current.get(k)]
    model_config = unwrap_model(model).config.to_dict()
    if meta["model_config"] != model_config:
        from .checkpoint import config_differences

        problems += [f"model config {d}" for d in config_differences(meta["model_config"],
                                                                     model_config)]
    if meta.get("manifest_hash") != manifest_hash:
        problems.append("the data split manifest changed")
    if meta.get("init_fingerprint") != fingerprint:
        problems.append(f"the starting checkpoint {config.init_from} changed")
    return problems


def _has_resumable_state(last_dir: Path) -> bool:
    try:
        directory = resolve_checkpoint_dir(last_dir)
    except CheckpointError:
        return False
    return (directory / "trainer_state.json").is_file()


RUN_FILES = ("last", "best", ".last.old", ".best.old", "history.json", "history.csv",
             "steps.csv", "loss_curve.png")


def clear_run(out_dir: str | Path) -> None:
    """Remove a previous run's checkpoints and logs from ``out_dir`` (only tdpcr's own files)."""
    import shutil

    out_dir = Path(out_dir)
    for name in RUN_FILES:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def train(config: TrainConfig, data_root: str | Path, out_dir: str | Path, *,
          model_config: Any | None = None, device: str | torch.device = "auto",
          resume: bool | str = "auto", callbacks: Sequence[StepCallback] = (),
          source: str | None = None, datasets: tuple[Dataset, Dataset | None] | None = None
          ) -> TrainResult:
    """Train one run end to end (what ``tdpcr train`` and notebooks 01/02 call).

    Parameters
    ----------
    config
        The run settings. ``crop_size`` larger than the tiles is clipped to the tile size.
    data_root
        LuojiaSET-OSFCR folder (the synthetic twin or the real data).
    out_dir
        Run folder (e.g. ``runs/phase1``).
    model_config
        ``ModelConfig`` or a dict of overrides (ignored for phase 2, which takes the phase-1
        checkpoint's architecture).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    resume
        ``True``: continue ``out_dir/last`` (an incompatible one is an error); ``"auto"``:
        continue it when it is compatible (same configs, data manifest and starting checkpoint),
        otherwise start afresh, replacing the old run; ``False``: always start afresh. A finished
        compatible run is not retrained.
    callbacks
        Per-step callbacks (see :class:`Trainer`).
    source
        Data source label, recorded in the checkpoint.
    datasets
        Pre-built ``(train, val)`` datasets instead of reading ``data_root``.

    Returns
    -------
    TrainResult
    """
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
    from .data import TrainAugment

    train_set, val_set = datasets if datasets is not None else build_datasets(data_root, config)
    config = fit_crop_to_data(config, train_set)
    seed_everything(config.seed, config.deterministic)  # model initialisation is seeded too
    model = build_model_for(config, model_config, device="cpu")
    fingerprint = init_fingerprint(config)
    manifest_hash = getattr(train_set, "manifest_hash", None)
    problems = resume_problems(out_dir, config, model, manifest_hash, fingerprint)
    is_main = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
    do_resume = False
    if resume and problems is not None:
        if not problems:
            do_resume = True
        elif resume is True:
            raise CheckpointError(f"{Path(out_dir) / 'last'}: cannot resume: "
                                  + "; ".join(problems) + " (use a new output folder or "
                                  "resume=False / --no-resume to start afresh)")
        elif is_main:
            print(f"{out_dir}: previous run is not compatible ({'; '.join(problems[:3])}); "
                  "starting afresh", flush=True)
    if not do_resume and is_main:
        clear_run(out_dir)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    trainer = Trainer(model, config, train_set, val_set, out_dir, device=device,
                      train_transform=TrainAugment(config.crop_size), callbacks=callbacks,
                      resume=do_resume,
                      run_info={"init_fingerprint": fingerprint, "source": source,
                                "data_root": str(data_root)})
    return trainer.fit()


# --------------------------------------------------------------------------------------------
# Presets used by the notebooks
# --------------------------------------------------------------------------------------------
#: Model sizes per notebook mode; "default" is sized for a 2-core CPU (see docs/design.md).
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"widths": [8, 16, 32, 64], "encoder_depths": [1, 1, 1, 1],
              "decoder_depths": [1, 1, 1, 1], "prompt_channels": 8, "prompt_components": 2,
              "pgf_hidden": 8, "seg_width": 16},
    "default": {"widths": [16, 32, 64, 96], "encoder_depths": [1, 1, 1, 1],
                "decoder_depths": [1, 1, 1, 1], "prompt_channels": 8, "prompt_components": 4,
                "pgf_hidden": 8, "seg_width": 32},
    "full": {},  # ModelConfig() defaults
}


def preset_config(phase: str, *, smoke: bool = False, full: bool = False,
                  epochs: int | None = None, max_steps: int | None = None, seed: int = 0,
                  init_from: str | Path | None = None,
                  overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a notebook run.

    * ``smoke``: a few steps on small crops, to check the pipeline end to end.
    * default: sized for the synthetic twin on a 2-core CPU (a few minutes per phase).
    * ``full``: the recipe's full budget for a GPU (paper notes §3.2: phase 1 100 epochs of
      AdamW 2e-3, wd 1e-3, clip 0.5, crop 128, batch 16, the author's multistep schedule;
      phase 2 40 epochs at 3e-4, cosine).

    ``epochs``/``max_steps`` and ``overrides`` (any :class:`TrainConfig` field) win over the preset.
    """
    if smoke and full:
        raise ValueError("choose either SMOKE or FULL, not both")
    base: dict[str, Any] = {"phase": phase, "seed": seed,
                            "init_from": str(init_from) if init_from else None}
    second = phase == "phase2"
    if smoke:
        base.update(epochs=1, max_steps=3, batch_size=2, crop_size=32, val_max_batches=2,
                    eval_batch_size=4, lr=1e-3, log_every=1)
    elif full:
        base.update(epochs=40 if second else 100, batch_size=16, crop_size=128,
                    lr=3e-4 if second else 2e-3, schedule="cosine" if second else "multistep",
                    warmup_steps=0 if second else 500, checkpoint_every=1000, num_workers=4,
                    eval_batch_size=16)
    else:
        base.update(epochs=16 if second else 24, batch_size=8, crop_size=128, lr=2e-3, warmup_steps=10, log_every=5,
                    eval_batch_size=25, checkpoint_every=50)
    if epochs is not None:
        base["epochs"] = int(epochs)
    if max_steps is not None:
        base["max_steps"] = int(max_steps)
    base.update(overrides or {})
    return TrainConfig.from_dict(base)


def notebook_configs(phase: str, *, smoke: bool = False, full: bool = False,
                     epochs: int | None = None, max_steps: int | None = None, seed: int = 0,
                     init_from: str | Path | None = None, config: dict[str, Any] | None = None
                     ) -> tuple[TrainConfig, dict[str, Any]]:
    """``(TrainConfig, model-config dict)`` from a notebook's parameters.

    ``config`` is the notebook's ``CONFIG`` dict: :class:`TrainConfig` fields, plus an optional
    ``"model"`` dict of ``ModelConfig`` fields (ignored in phase 2, which inherits phase 1's).
    """
    from .models import ModelConfig

    overrides = dict(config or {})
    model_overrides = dict(overrides.pop("model", {}) or {})
    train_config = preset_config(phase, smoke=smoke, full=full, epochs=epochs,
                                 max_steps=max_steps, seed=seed, init_from=init_from,
                                 overrides=overrides)
    mode = "smoke" if smoke else "full" if full else "default"
    model_config = ModelConfig.from_dict({**ModelConfig().to_dict(), **MODEL_PRESETS[mode],
                                          **model_overrides}).to_dict()
    return train_config, model_config


def trainable_parameter_table(config: TrainConfig, model_config: Any | None = None):
    """Total and trainable parameters per module group for a run's config (a pandas table).

    Builds the run's starting model (phase 2: the phase-1 checkpoint + seg decoder) and applies
    the trainable set; the last row, ``total``, sums every group.
    """
    import pandas as pd

    model = build_model_for(config, model_config)
    apply_trainable_set(model, config)
    report = parameter_report(model)
    rows = dict(report["groups"]) or {}
    rows["total"] = {"total": report["total"], "trainable": report["trainable"]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame["trainable_%"] = (100 * frame["trainable"] / frame["total"].clip(lower=1)).round(2)
    frame.index.name = "module group"
    return frame


def run_summary(result: TrainResult) -> dict[str, Any]:
    """What notebooks 01/02 record: run facts plus the best checkpoint's headline val metrics."""
    summary = result.summary()
    best_metrics: dict[str, Any] = {}
    if result.best_dir is not None:
        best_metrics = read_meta(result.best_dir).get("metrics") or {}
    summary["validation"] = _headline_metrics(best_metrics) if best_metrics else {}
    summary["history"] = result.history
    return summary
