"""Scoring a model on a dataset split: predict every tile (sliding window) and accumulate metrics.

Used by training (validation) and by evaluation (the test split), so both score exactly alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tdpcr_lib.core.legend import legend_of
from tdpcr_lib.core.progress import tqdm
from tdpcr_lib.core.runtime import model_device, resolve_device
from tdpcr_lib.inference.tiling import sliding_window_predict
from tdpcr_lib.metrics.accumulator import EvaluationAccumulator
from tdpcr_lib.metrics.input_cache import InputMetricsCache
from tdpcr_lib.samplers import IndexSubset


def scored_classes(model: nn.Module, dataset: Dataset) -> tuple[int, int | None]:
    """``(num_classes, ignore_index)`` a model is scored with on ``dataset``: the classes the model
    was trained for; a model without a config (e.g. the majority baseline) scores against the
    dataset's legend."""
    legend = legend_of(model) if hasattr(model, "config") else getattr(dataset, "legend", None) or legend_of(model)
    return getattr(getattr(model, "config", None), "num_classes", legend.num_classes), legend.ignore_index


def accumulate_metrics(
    model: nn.Module,
    dataset: Dataset,
    *,
    device: torch.device | str | None = None,
    batch_size: int = 4,
    max_batches: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    tile: int | None = None,
    overlap: int | None = None,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    num_workers: int = 0,
    progress: bool = False,
    input_cache: InputMetricsCache | None = None,
    on_batch: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
) -> EvaluationAccumulator:
    """Run ``model`` over this rank's shard of ``dataset`` and fill an ``EvaluationAccumulator``.

    The shard is every ``world_size``-th sample from ``rank`` (no padding). With
    ``world_size > 1`` the accumulator's ``compute()`` sums the shards over the
    ``torch.distributed`` ranks (torchmetrics sync; every rank must call it); with one process it
    never touches ``torch.distributed``. ``max_batches`` caps the batches per rank (smoke runs).
    ``input_cache`` (validation) scores the unchanged cloudy input once, not every call.
    ``on_batch(outputs, batch)`` sees every predicted batch (e.g. to score it under further
    protocols without predicting again).
    """
    device = model_device(model) if device is None else resolve_device(device)
    num_classes, ignore_index = scored_classes(model, dataset)
    # the states live on the evaluation device: NCCL can only reduce CUDA tensors
    accumulator = EvaluationAccumulator(
        num_classes=num_classes, ignore_index=ignore_index, sync_on_compute=world_size > 1
    ).to(device)
    shard = IndexSubset.shard(dataset, rank, world_size)
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = model.training
    model.eval()
    total = len(loader) if max_batches is None else min(len(loader), max_batches)
    try:
        for index, batch in enumerate(
            tqdm(loader, total=total, desc="evaluate", disable=not progress, mininterval=1.0)
        ):
            if max_batches is not None and index >= max_batches:
                break
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            optical, sar = batch["optical"], batch["sar"]
            if channels_last:
                optical = optical.contiguous(memory_format=torch.channels_last)
                sar = sar.contiguous(memory_format=torch.channels_last)
            outputs = sliding_window_predict(model, optical, sar, tile, overlap, autocast_dtype)
            accumulator.update(outputs, batch, input_cache=input_cache)
            if on_batch is not None:
                on_batch(outputs, batch)
    finally:
        model.train(was_training)
    return accumulator
