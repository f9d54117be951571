"""The end of a training epoch, the validation pass and the run logs, for
:class:`~tdpcr_lib.training.trainer.Trainer` (kept apart so the trainer stays readable)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist

from tdpcr_lib.core.portable import portable_fields
from tdpcr_lib.inference.scoring import accumulate_metrics
from tdpcr_lib.metrics.results import VAL_PREFIX, headline, to_records
from tdpcr_lib.training.config import best_metric_value
from tdpcr_lib.training.logs import validation_line, write_run_logs

log = logging.getLogger(__name__)


def end_epoch(trainer: Any, throughput: float) -> None:
    """Close an epoch: history row, validation, best/last checkpoints, one log line."""
    sums = dict(trainer.epoch_loss_sums)
    batches = trainer.epoch_batches
    if trainer.distributed:  # mean of the per-rank losses
        keys = sorted(sums)
        packed = torch.tensor([sums[k] for k in keys] + [batches], dtype=torch.float64)
        dist.all_reduce(packed)
        sums = {k: float(v) / trainer.world_size for k, v in zip(keys, packed[:-1], strict=True)}
        batches = int(packed[-1]) // trainer.world_size
    row: dict[str, Any] = {
        "epoch": trainer.epoch + 1,
        "step": trainer.step,
        "lr": trainer.optimizer.param_groups[0]["lr"],
        "images_per_s": round(throughput, 2),
    }
    row.update({f"train_{k}": v / max(batches, 1) for k, v in sums.items()})
    if trainer.val_dataset is not None:
        frame = trainer.validate()
        trainer.last_metrics = to_records(frame)
        row.update(headline(frame, prefix=VAL_PREFIX))
        value = best_metric_value(frame, trainer.best_metric)
        better = trainer.best_value is None or (
            value > trainer.best_value if trainer.config.best_mode == "max" else value < trainer.best_value
        )
    else:
        value, better = None, True
    row["wall_time_s"] = round(trainer.elapsed_wall_time(), 2)
    trainer.history.append(row)
    trainer.epoch += 1
    trainer.step_in_epoch = 0
    trainer.epoch_loss_sums, trainer.epoch_batches = {}, 0
    if better:
        trainer.best_value, trainer.best_epoch = value, trainer.epoch
        if trainer.is_main:
            trainer._save(
                trainer.best_dir,
                extra={**trainer._checkpoint_extra(), "best_metric": trainer.best_metric, "best_value": value},
            )
    trainer.save_last()
    if trainer.is_main and trainer.config.progress:
        log.info(validation_line(trainer.config.phase, row, trainer.total_steps, better))


def validation_frame(trainer: Any) -> pd.DataFrame:
    """The validation result frame (:mod:`tdpcr_lib.metrics.results`), summed over ranks."""
    accumulator = accumulate_metrics(
        trainer.model,
        trainer.val_dataset,
        device=trainer.device,
        batch_size=trainer.config.eval_batch_size or trainer.local_batch,
        max_batches=trainer.config.val_max_batches,
        rank=trainer.rank,
        world_size=trainer.world_size,
        # tiles larger than the crop: windows of the training crop that tile the image without
        # overlap (the test's overlapping windows would cost 2.25x the pixels on the twin's 64² tiles
        # for a metric that only picks checkpoints and judges plateaus)
        tile=trainer.config.crop_size,
        overlap=0,
        autocast_dtype=trainer.autocast_dtype,
        channels_last=trainer.use_channels_last,
        input_cache=trainer.input_metrics,
    )
    # with several ranks compute() syncs the states (every rank gets here)
    return accumulator.to_frame(split="val")


def write_trainer_logs(trainer: Any) -> None:
    """``history.csv``, ``steps.csv`` and ``run.json`` of the run folder (rank 0)."""
    write_run_logs(
        trainer.out_dir,
        {
            "phase": trainer.config.phase,
            "objective": trainer.objective,
            "best_metric": trainer.best_metric,
            "best_value": trainer.best_value,
            "best_epoch": trainer.best_epoch,
            "parameters": trainer.parameters,
            "train_config": portable_fields(trainer.config.to_dict()),
        },
        trainer.history,
        trainer.step_log,
        trainer.log_callbacks,
    )
