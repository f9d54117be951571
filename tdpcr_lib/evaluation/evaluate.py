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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from tdpcr_lib.core.io import atomic_write_json, atomic_write_text
from tdpcr_lib.core.legend import class_scheme, legend_of
from tdpcr_lib.core.runtime import device_description, resolve_device
from tdpcr_lib.evaluation.intervals import TileScores, headline_intervals
from tdpcr_lib.evaluation.protocols import ProtocolScoring, protocol_markdown, split_label, split_warning
from tdpcr_lib.evaluation.tables import dataframe_to_markdown, metrics_tables
from tdpcr_lib.inference.engines import engine_model
from tdpcr_lib.inference.scoring import accumulate_metrics, scored_classes
from tdpcr_lib.metrics.protocol_specs import DEFAULT_PROTOCOL
from tdpcr_lib.metrics.results import ALL, COUNT_METRIC, from_records, to_records, value
from tdpcr_lib.models.checkpoint import CheckpointError


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
        warning = split_warning(self.meta.get("split_protocol"))
        if warning:
            parts += [warning, ""]
        for key in ("checkpoint", "split", "split_protocol", "n_images", "tile", "overlap", "device", "protocol"):
            if self.meta.get(key) is not None:
                parts.append(f"- **{key}**: {self.meta[key]}")
        protocol = self.meta.get("protocol", DEFAULT_PROTOCOL)
        captions = {
            "summary": f"Summary (protocol `{protocol}`; PSNR in dB; `input_psnr` = the cloudy input itself)",
            "cr": "Cloud removal (model)",
            "cr_input": "Cloudy input vs clear target",
            "seg": "Segmentation",
        }
        for key, frame in self.tables.items():
            parts += ["", f"## {captions.get(key, key)}", "", dataframe_to_markdown(frame)]
        protocols = protocol_markdown(self.meta.get("protocols"))
        if protocols:
            parts += ["", *protocols]
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
    protocols: Sequence[str] = (DEFAULT_PROTOCOL,),
    engine: str = "torch",
    tile_intervals: bool = False,
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
    protocols
        Named protocols (:mod:`tdpcr_lib.metrics.protocols`) to score the same predictions
        under, as they are made (the model runs once); in ``meta["protocols"]``. The result
        frame and its tables are always the ``tdpcr`` protocol (``meta["protocol"]``).
    engine
        ``"torch"`` or an exported engine (:data:`tdpcr_lib.inference.engines.ENGINES`;
        ``"auto"``: the fastest on a CPU, torch on CUDA).
    tile_intervals
        Also score every tile alone, from the same predictions, and put the headline numbers'
        95 % intervals over tiles in ``meta["intervals"]``
        (:func:`tdpcr_lib.evaluation.intervals.headline_intervals`).

    Returns
    -------
    EvaluationResult
        ``.frame`` (the tidy result), ``.tables`` (pandas, for display), ``.meta`` (what was run).
    """
    device = resolve_device(device)
    model, meta, engine = engine_model(checkpoint_or_model, engine, device)
    source = (
        f"in-memory {type(checkpoint_or_model).__name__}"
        if isinstance(checkpoint_or_model, nn.Module)
        else str(checkpoint_or_model)
    )
    check_legend(model, dataset, source)
    if tile == "auto":
        tile = _train_crop(meta)
    elif isinstance(tile, str):
        raise ValueError(f"tile must be 'auto', an int or None, got {tile!r}")
    autocast_dtype = torch.bfloat16 if device.type == "cuda" else None
    started = time.time()
    scoring = ProtocolScoring(protocols, dataset)
    per_tile = TileScores(*scored_classes(model, dataset)) if tile_intervals else None

    def on_batch(outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        scoring(outputs, batch)
        if per_tile is not None:
            per_tile(outputs, batch)

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
        on_batch=on_batch,
    )
    split = getattr(dataset, "split", None)
    frame = accumulator.to_frame(model=model_name or source, seed=seed, split=split)
    meta_out = {
        "checkpoint": source,
        "split": split,
        "split_protocol": split_label(dataset),
        "protocol": DEFAULT_PROTOCOL,
        "protocols": scoring.results(frame),
        "n_images": int(value(frame, COUNT_METRIC)),
        "tile": tile,
        "overlap": (tile // 4 if overlap is None else overlap) if tile else None,
        "device": device_description(device),
        "engine": engine,
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
    if per_tile is not None:
        meta_out["intervals"] = headline_intervals(per_tile.scores)
    return EvaluationResult(frame=frame, meta=meta_out)


def check_legend(model: nn.Module, dataset: Dataset, source: str) -> None:
    """Refuse to score a segmentation model on data of another legend (meaningless mIoU)."""
    data_legend = getattr(dataset, "legend", None)
    config = getattr(model, "config", None)
    if data_legend is None or config is None or getattr(config, "with_seg_decoder", True) is False:
        return
    model_legend = legend_of(model)
    if class_scheme(model_legend.name) != class_scheme(data_legend.name):  # twin = LuojiaSET codes
        raise CheckpointError(
            f"{source}: the checkpoint segments the '{model_legend.name}' legend "
            f"({model_legend.num_classes} classes) but the data use '{data_legend.name}' "
            f"({data_legend.num_classes} classes); evaluate it on data of its own legend, or "
            "train a model for this dataset"
        )


def _config_dict(model: nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else None
