"""Evaluate a checkpoint (or an in-memory model) on a split of any source (LuojiaSET-OSFCR, the
synthetic twin, SEN12MS-CR).

:func:`evaluate` returns an :class:`EvaluationResult` holding the result frame of
:class:`tdpcr_lib.metrics.accumulator.EvaluationAccumulator` (:mod:`tdpcr_lib.metrics.results`) and
display tables: reconstruction (CR) metrics of
the model and of the cloudy input itself, and segmentation metrics, for all / cloudy / clear pixels
and per cloud-cover bucket. ``tdpcr evaluate`` writes them as JSON + markdown.

Design choices (see ``docs/decisions.md`` § Training):

* **Sliding window.** Inputs larger than the training crop are predicted tile by tile
  (``tile = crop``, overlap ``tile // 4`` by default) on the same pad-aligned grid and with the
  same ``sin²`` cross-fade as scene prediction (:mod:`tdpcr_lib.inference.tiling`):
  reconstructions are averaged, segmentation is averaged as softmax probabilities.
  ``tile=None`` feeds whole images.
* **Majority-class baseline.** :func:`majority_class_baseline` predicts, everywhere, the most
  frequent valid class of the *training* labels and scores it with the same accumulator; a
  segmentation model that does not beat it has learned nothing spatial.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from tdpcr_lib.core.io import atomic_write_json, atomic_write_text
from tdpcr_lib.core.runtime import device_description, resolve_device
from tdpcr_lib.evaluation.tables import dataframe_to_markdown, metrics_tables
from tdpcr_lib.inference.scoring import accumulate_metrics
from tdpcr_lib.metrics.results import ALL, COUNT_METRIC, from_records, to_records, value
from tdpcr_lib.models.checkpoint import load_model


# --------------------------------------------------------------------------------------------
# Evaluating a model or checkpoint
# --------------------------------------------------------------------------------------------
@dataclass
class EvaluationResult:
    """The result frame (:mod:`tdpcr_lib.metrics.results`) and provenance of one evaluation."""

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Display tables (:func:`tdpcr_lib.evaluation.tables.metrics_tables`)."""
        return metrics_tables(self.frame)

    @property
    def n_images(self) -> int:
        """Images scored."""
        return int(value(self.frame, COUNT_METRIC))

    def value(self, metric: str, region: str = ALL, bucket: str = ALL) -> float:
        """One number (:func:`tdpcr_lib.metrics.results.value`)."""
        return value(self.frame, metric, region, bucket)

    @classmethod
    def read(cls, json_path: str | Path) -> EvaluationResult:
        """Read a result written by :meth:`write`."""
        saved = json.loads(Path(json_path).read_text())
        return cls(frame=from_records(saved["metrics"]), meta=saved.get("meta") or {})

    def to_markdown(self, title: str = "Evaluation") -> str:
        """All tables as one markdown document."""
        parts = [f"# {title}", ""]
        for key in ("checkpoint", "split", "n_images", "tile", "overlap", "device"):
            if key in self.meta:
                parts.append(f"- **{key}**: {self.meta[key]}")
        captions = {
            "summary": "Summary (PSNR in dB; `input_psnr` = the cloudy input itself)",
            "cr": "Cloud removal (model)",
            "cr_input": "Cloudy input vs clear target",
            "seg": "Segmentation",
        }
        for key, frame in self.tables.items():
            parts += ["", f"## {captions.get(key, key)}", "", dataframe_to_markdown(frame)]
        return "\n".join(parts) + "\n"

    def write(self, json_path: str | Path, markdown_path: str | Path | None = None, title: str = "Evaluation") -> None:
        """Write the meta and the result frame's rows as JSON and, optionally, the tables as
        markdown."""
        atomic_write_json(json_path, {"meta": self.meta, "metrics": to_records(self.frame)})
        if markdown_path is not None:
            atomic_write_text(markdown_path, self.to_markdown(title))


def _train_crop(meta: dict[str, Any]) -> int | None:
    train_config = meta.get("train_config") or {}
    return train_config.get("crop_size")


def evaluate(
    checkpoint_or_model: str | Path | nn.Module,
    dataset: Dataset,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 4,
    tile: int | str | None = "auto",
    overlap: int | None = None,
    max_batches: int | None = None,
    num_workers: int = 0,
    progress: bool = True,
    model_name: str | None = None,
    seed: int | None = None,
) -> EvaluationResult:
    """Score a model on a dataset: CR + segmentation metrics, all/cloudy/clear and per bucket.

    Parameters
    ----------
    checkpoint_or_model
        A checkpoint folder (e.g. ``runs/phase2/best``) or a model.
    dataset
        A :class:`tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR` split (whole tiles, no augmentation).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size
        Images per forward pass.
    tile, overlap
        Sliding-window size: ``"auto"`` = the checkpoint's training crop (whole images for a
        model without one), an int, or ``None`` for whole images.
    max_batches
        Stop early (smoke runs).
    progress
        Show a tqdm bar.
    model_name, seed
        The ``model`` and ``seed`` labels of the result frame (``model`` defaults to the
        checkpoint path or the model's class name).

    Returns
    -------
    EvaluationResult
        ``.frame`` (the tidy result), ``.tables`` (pandas, for display), ``.meta`` (what was run).
    """
    device = resolve_device(device)
    if isinstance(checkpoint_or_model, nn.Module):
        model, meta = checkpoint_or_model.to(device), {}
        source = f"in-memory {type(checkpoint_or_model).__name__}"
    else:
        model, meta = load_model(checkpoint_or_model, device=device)
        source = str(checkpoint_or_model)
    if tile == "auto":
        tile = _train_crop(meta)
    elif isinstance(tile, str):
        raise ValueError(f"tile must be 'auto', an int or None, got {tile!r}")
    autocast_dtype = torch.bfloat16 if device.type == "cuda" else None
    started = time.time()
    accumulator = accumulate_metrics(
        model,
        dataset,
        device=device,
        batch_size=batch_size,
        max_batches=max_batches,
        tile=tile,
        overlap=overlap,
        autocast_dtype=autocast_dtype,
        num_workers=num_workers,
        progress=progress,
    )
    split = getattr(dataset, "split", None)
    frame = accumulator.to_frame(model=model_name or source, seed=seed, split=split)
    meta_out = {
        "checkpoint": source,
        "split": split,
        "n_images": int(value(frame, COUNT_METRIC)),
        "tile": tile,
        "overlap": (tile // 4 if overlap is None else overlap) if tile else None,
        "device": device_description(device),
        "seconds": round(time.time() - started, 2),
        "model_config": meta.get("model_config") or _config_dict(model),
        "checkpoint_phase": meta.get("phase"),
        "checkpoint_epoch": meta.get("epoch"),
        "checkpoint_step": meta.get("step"),
        "manifest_hash": getattr(dataset, "manifest_hash", None),
        # (K, K) pixel counts, rows = true class, all pixels and buckets: per-class
        # errors and the normalised confusion matrix of the report
        "confusion": accumulator.confusion_matrix().tolist() if accumulator.has_segmentation else None,
    }
    return EvaluationResult(frame=frame, meta=meta_out)


def _config_dict(model: nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else None
