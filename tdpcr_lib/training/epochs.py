"""What happens between two epochs of a :class:`~tdpcr_lib.training.trainer.Trainer`: the
epoch's row of the history, checkpoint selection, and the run's logs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from tdpcr_lib.metrics.results import VAL_PREFIX, headline, to_records
from tdpcr_lib.training.config import best_metric_value
from tdpcr_lib.training.logs import write_run_logs

if TYPE_CHECKING:  # annotations only; the trainer imports this module
    from tdpcr_lib.training.trainer import Trainer

log = logging.getLogger(__name__)


def end_epoch(trainer: Trainer, throughput: float) -> None:
    """Close an epoch: mean losses over ranks, validation, the history row, ``best/`` when the
    selection metric improved, ``last/`` always, and the progress line."""
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
        shown = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
        log.info("epoch %d: %s", trainer.epoch, shown)


def write_trainer_logs(trainer: Trainer) -> None:
    """The run's summary, history and step log beside its checkpoints (rank 0)."""
    write_run_logs(
        trainer.out_dir,
        {
            "phase": trainer.config.phase,
            "objective": trainer.objective,
            "best_metric": trainer.best_metric,
            "best_value": trainer.best_value,
            "best_epoch": trainer.best_epoch,
            "parameters": trainer.parameters,
            "train_config": trainer.config.to_dict(),
        },
        trainer.history,
        trainer.step_log,
        trainer.log_callbacks,
    )
