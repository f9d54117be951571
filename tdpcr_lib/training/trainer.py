"""The trainer: phase 1, phase 2, single-phase joint training and the baselines.

One :class:`Trainer` drives every run; what differs between runs is a :class:`TrainConfig`
(``phase``, ``objective``, ``trainable``) and the model. It owns the loop (:meth:`Trainer.fit`)
and its resumable state (:meth:`Trainer.state_dict` / :meth:`Trainer.load_state_dict`, stored
in ``last/``). What a run does with its folder (start, resume, refuse) is decided before the
trainer exists, by :mod:`tdpcr_lib.training.plan`; :func:`tdpcr_lib.training.run.train` builds
the model, plans the run and calls the trainer, and is what ``tdpcr train`` and the notebooks call.

Design choices (the paper gives none; the full list is in ``docs/decisions.md`` § Training):
AdamW with decay on kernels only and gradient clipping; cosine/multistep/constant schedules per
step; exact resume (data order from a seeded ``DistributedSampler``, augmentation drawn from a
``(seed, epoch, index)`` RNG, so a run resumed after ``k`` batches skips them and reaches the
same weights); DDP under ``torchrun`` with rank 0 writing files; bf16 autocast on CUDA only;
phase-2 trainable sets ``"prompt_pgf_seg"`` (default), ``"seg_decoder_only"``, ``"all"``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tdpcr_lib.core.logs import console_logging
from tdpcr_lib.core.portable import portable_fields
from tdpcr_lib.core.progress import tqdm
from tdpcr_lib.core.revision import git_sha
from tdpcr_lib.core.runtime import resolve_device, seed_everything
from tdpcr_lib.datasets.memory import DEFAULT_MEMORY_BYTES, hold_in_memory
from tdpcr_lib.losses import compute_loss
from tdpcr_lib.metrics.input_cache import InputMetricsCache
from tdpcr_lib.metrics.results import from_records
from tdpcr_lib.models.checkpoint_files import DigestMemo
from tdpcr_lib.samplers import ResumableSampler
from tdpcr_lib.training.async_checkpoint import AsyncCheckpointer
from tdpcr_lib.training.batches import batch_to_device
from tdpcr_lib.training.config import TrainConfig, resolve_best_metric, resolve_objective
from tdpcr_lib.training.epoch_end import end_epoch, validation_frame, write_trainer_logs
from tdpcr_lib.training.freezing import apply_trainable_set, build_optimizer, lr_factor, parameter_report
from tdpcr_lib.training.model_card import model_card
from tdpcr_lib.training.plan import StepBudget
from tdpcr_lib.training.result import LogCallback, StepCallback, StopRule, TrainResult
from tdpcr_lib.training.state import ResumableState
from tdpcr_lib.transforms import SeededAugmentDataset

log = logging.getLogger(__name__)


class Trainer(ResumableState):
    """Train one model under one :class:`TrainConfig` (any phase, any architecture).

    Its resumable state (:meth:`state_dict`, :meth:`load_state_dict`) is defined with the
    progress counters in :class:`tdpcr_lib.training.state.ResumableState`.

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
        Run folder: ``last/``, ``best/``, ``history.{csv,json}``, ``steps.csv`` (and whatever
        ``log_callbacks`` write, e.g. ``loss_curve.png``).
    device
        ``"auto"`` / ``"cpu"`` / ``"cuda"``; under ``torchrun`` the local rank's GPU.
    train_transform
        Random augmentation applied per sample with a ``(seed, epoch, index)`` RNG.
    callbacks
        Called as ``callback(trainer, step)`` after every optimizer step (and after the
        checkpoint of that step, if one is due).
    log_callbacks
        Called as ``callback(out_dir)`` on the main process after the logs are rewritten
        (the training layer draws nothing itself: the CLI passes
        :func:`tdpcr_lib.plot.curves.write_loss_curve`).
    run_info
        Extra JSON fields stored in every checkpoint's ``config.json`` (e.g. the starting
        checkpoint's fingerprint, the data source).
    memory_bytes
        Budget for decoded samples held in memory per split
        (:class:`tdpcr_lib.datasets.memory.InMemoryDataset`; 0 = decode every read).
    stop_rule
        ``stop_rule(trainer)`` after each epoch and on resume; ``True`` ends the run
        (``training.plateau.PlateauStop``).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        train_dataset: Dataset,
        val_dataset: Dataset | None,
        out_dir: str | Path,
        device: str | torch.device = "auto",
        train_transform: Callable[[dict], dict] | None = None,
        callbacks: Sequence[StepCallback] = (),
        log_callbacks: Sequence[LogCallback] = (),
        run_info: dict[str, Any] | None = None,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        stop_rule: StopRule | None = None,
    ) -> None:
        self.config = config
        self.stop_rule = stop_rule
        self.run_info = dict(run_info or {})
        self.out_dir = Path(out_dir)
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        self.is_main = self.rank == 0
        self.device = resolve_device(device)
        budget = StepBudget.of(config, len(train_dataset), self.world_size)  # the run plan's budget too
        self.local_batch, self.drop_last = budget.local_batch, budget.drop_last
        self.steps_per_epoch, self.total_steps = budget.steps_per_epoch, budget.total_steps
        self.callbacks = list(callbacks)
        self.log_callbacks = list(log_callbacks)
        seed_everything(config.seed, config.deterministic)

        self.model = model.to(self.device)
        self.use_channels_last = config.channels_last  # 1.2x faster on CPU too (docs/decisions.md)
        if self.use_channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.frozen_groups = apply_trainable_set(self.model, config)
        self.objective = resolve_objective(config, self.model)
        self.best_metric = resolve_best_metric(config, self.model)
        self.parameters = parameter_report(self.model)
        self.autocast_dtype = (
            torch.bfloat16
            if config.precision == "bf16" or (config.precision == "auto" and self.device.type == "cuda")
            else None
        )

        # decoded samples are held in memory (not re-read from GeoTIFFs every epoch); worker
        # processes would each hold a copy, so only when loading in the main process
        self.train_data = SeededAugmentDataset(
            hold_in_memory(train_dataset, memory_bytes if config.num_workers == 0 else 0), train_transform, config.seed
        )
        self.sampler = ResumableSampler(self.train_data, config.seed, self.rank, self.world_size)
        self.val_dataset = hold_in_memory(val_dataset, memory_bytes)  # scored in this process
        self.manifest_hash = getattr(train_dataset, "manifest_hash", None)

        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, self.total_steps, config)
        )
        if self.distributed:
            ddp_kwargs = {"device_ids": [self.device.index]} if self.device.type == "cuda" else {}
            self.ddp_model: nn.Module = nn.parallel.DistributedDataParallel(self.model, **ddp_kwargs)
        else:
            self.ddp_model = self.model

        self.start_progress()  # step, epoch, best, history, ...: all of it is checkpointed
        # per run: the cloudy input's validation metrics, digests of unchanged checkpoint bytes
        self.input_metrics = InputMetricsCache()
        self._digests, self._code_version = DigestMemo(), git_sha()
        self._checkpointer: AsyncCheckpointer | None = None

    async_checkpoints = True  #: checkpoints written on a thread (training.async_checkpoint)

    # ------------------------------------------------------------------ checkpoint state
    @property
    def last_dir(self) -> Path:
        return self.out_dir / "last"

    @property
    def best_dir(self) -> Path:
        return self.out_dir / "best"

    def save_last(self) -> None:
        """Write ``last/`` with the full trainer state (rank 0 only)."""
        if self.is_main:
            state = self.state_dict()
            del state["model"]  # written as model.safetensors from the model itself
            self._save(self.last_dir, trainer_state=state, extra=self._checkpoint_extra())
            self._write_logs()
        self._barrier()

    def _save(self, directory: Path, **fields: Any) -> None:
        if self._checkpointer is None or self._checkpointer.enabled != self.async_checkpoints:
            self.wait_for_checkpoints()
            self._checkpointer = AsyncCheckpointer(enabled=self.async_checkpoints)
        self._checkpointer.save(
            directory,
            self.model,
            phase=self.config.phase,
            epoch=self.epoch,
            step=self.step,
            train_config=portable_fields(self.config.to_dict()),
            metrics=self.last_metrics,
            manifest_hash=self.manifest_hash,
            digests=self._digests,
            code_version=self._code_version,
            model_card=model_card,
            **fields,
        )

    def wait_for_checkpoints(self) -> None:
        """Block until the checkpoints asked for are on disk (raises a failed write's error)."""
        if self._checkpointer is not None:
            self._checkpointer.wait()

    def _checkpoint_extra(self) -> dict[str, Any]:
        return {
            **portable_fields(self.run_info),
            "parameters": self.parameters,
            "objective": self.objective,
            "frozen_groups": self.frozen_groups,
            "world_size": self.world_size,
        }

    def _barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    # ------------------------------------------------------------------ training
    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return batch_to_device(batch, self.device, self.use_channels_last)

    def _set_train_mode(self) -> None:
        self.model.train()
        if self.frozen_groups:
            groups = self.model.module_groups()
            for name in self.frozen_groups:
                groups[name].eval()  # frozen BatchNorm statistics stay fixed

    def _train_loader(self) -> DataLoader:
        self.train_data.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, skip=self.step_in_epoch * self.local_batch)
        return DataLoader(
            self.train_data,
            batch_size=self.local_batch,
            sampler=self.sampler,
            num_workers=self.config.num_workers,
            drop_last=self.drop_last,
            pin_memory=self.device.type == "cuda",
        )

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One forward/backward/optimizer step; returns the loss parts."""
        batch = self._to_device(batch)
        with torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        ):
            outputs = self.ddp_model(batch["optical"], batch["sar"])
        loss, parts = compute_loss(outputs, batch, self.objective, rec_weight=self.config.rec_weight)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss {float(loss)} at step {self.step}; lower the learning rate or check the data"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            parts["grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(
                    [p for p in self.model.parameters() if p.requires_grad], self.config.grad_clip
                )
            )
        self.optimizer.step()
        self.scheduler.step()
        return parts

    def fit(self) -> TrainResult:
        """Run (or finish) the training; returns a :class:`TrainResult`."""
        self._started = time.time()
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        config = self.config
        self._apply_stop_rule()  # a resumed run that already stopped is not trained further
        if config.progress and self.is_main:
            console_logging()
        # one bar for the whole phase (not one per epoch); validations log one line each
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=f"{config.phase} ({self.total_steps} steps)",
            disable=not (config.progress and self.is_main) or self.step >= self.total_steps,
            mininterval=1.0,
            dynamic_ncols=True,
            leave=True,
        )
        # An epoch already begun is always finished (validated, logged) even when its last step
        # was the run's last: a killed run must resume into the same final state.
        while self.epoch < config.epochs and (self.step < self.total_steps or self.step_in_epoch > 0):
            if self.step >= self.total_steps:
                self._end_epoch(throughput=0.0)
                continue
            loader = self._train_loader()
            self._set_train_mode()
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
                    self.step_log.append({"step": self.step, "epoch": self.epoch + 1, "lr": lr, **parts})
                bar.set_postfix(loss=f"{parts['loss']:.4f}", lr=f"{lr:.2e}", img_s=f"{throughput:.1f}", refresh=False)
                bar.update(1)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_last()
                for callback in self.callbacks:
                    callback(self, self.step)
                if self.step >= self.total_steps:
                    break
            self._end_epoch(throughput=images / max(time.time() - tick, 1e-9))
            self._apply_stop_rule()
        bar.close()
        if self.is_main and self.history:
            self._write_logs()
        self.wait_for_checkpoints()  # best/ and last/ are complete when fit returns
        self._barrier()
        return TrainResult(
            out_dir=self.out_dir,
            best_dir=self.best_dir if (self.best_dir / "config.json").exists() else None,
            last_dir=self.last_dir,
            best_metric=self.best_metric,
            best_value=self.best_value,
            best_epoch=self.best_epoch,
            history=self.history,
            parameters=self.parameters,
            steps=self.step,
            wall_time_s=self.elapsed_wall_time(),
            final_metrics=from_records(self.last_metrics) if self.last_metrics else None,
        )

    def _apply_stop_rule(self) -> None:
        if self.stop_rule is not None and self.history and self.stop_rule(self):
            if self.is_main and self.config.progress and self.step < self.total_steps:
                log.info(
                    "%s stopped at step %d/%d: %s",
                    self.config.phase,
                    self.step,
                    self.total_steps,
                    getattr(self.stop_rule, "reason", "") or "stop rule",
                )
            self.total_steps = self.step  # the loop ends; the schedule is not consulted again

    def _end_epoch(self, throughput: float) -> None:
        end_epoch(self, throughput)

    def validate(self) -> pd.DataFrame:
        """The validation result frame (:mod:`tdpcr_lib.metrics.results`), summed over ranks."""
        return validation_frame(self)

    # ------------------------------------------------------------------ logs
    def _write_logs(self) -> None:
        write_trainer_logs(self)
