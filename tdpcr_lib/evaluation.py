"""Evaluate a checkpoint (or an in-memory model) on a LuojiaSET-OSFCR split.

:func:`evaluate` returns an :class:`EvaluationResult` with the nested metrics of
:class:`tdpcr_lib.metrics.EvaluationAccumulator` and pandas tables: reconstruction (CR) metrics of
the model and of the cloudy input itself, and segmentation metrics, for all / cloudy / clear pixels
and per cloud-cover bucket. ``tdpcr evaluate`` writes them as JSON + markdown.

Design choices (see ``docs/design.md`` § Training):

* **Sliding window.** Inputs larger than the training crop are predicted tile by tile
  (``tile = crop``, overlap ``tile // 4`` by default) and blended with the same ``sin²``
  cross-fade as scene prediction (:func:`tdpcr_lib.predict.blend_window`): reconstructions are
  averaged, segmentation is averaged as softmax probabilities. ``tile=None`` feeds whole images.
* **Majority-class baseline.** :func:`majority_class_baseline` predicts, everywhere, the most
  frequent valid class of the *training* labels and scores it with the same accumulator; a
  segmentation model that does not beat it has learned nothing spatial.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .io_utils import atomic_write_json, atomic_write_text
from .runtime import resolve_device

CR_COLUMNS: tuple[str, ...] = ("psnr", "ssim", "sam", "mae", "rmse")
SEG_COLUMNS: tuple[str, ...] = ("oa", "macc", "fwiou", "miou")
REGIONS: tuple[str, ...] = ("all", "cloudy", "clear")


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------
def _model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def _forward(model: nn.Module, optical: torch.Tensor, sar: torch.Tensor,
             autocast_dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    with torch.autocast(optical.device.type, dtype=autocast_dtype or torch.float32,
                        enabled=autocast_dtype is not None):
        return model(optical, sar)


@torch.inference_mode()
def sliding_window_predict(model: nn.Module, optical: torch.Tensor, sar: torch.Tensor,
                           tile: int | None, overlap: int | None = None,
                           autocast_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Predict whole images, tile by tile with overlap and blending when they exceed ``tile``.

    Parameters
    ----------
    model
        Returns a dict with ``reconstruction`` and optionally ``segmentation`` logits.
    optical, sar
        ``(B, 13, H, W)`` and ``(B, 2, H, W)`` on the model's device.
    tile
        Tile size in px; ``None`` (or images no larger than it) → a single forward pass.
    overlap
        Overlap between neighbouring tiles (default ``tile // 4``).
    autocast_dtype
        e.g. ``torch.bfloat16`` on a GPU.

    Returns
    -------
    dict
        ``reconstruction`` ``(B, 13, H, W)`` float32 and, for segmenting models,
        ``segmentation`` ``(B, K, H, W)`` log-probabilities (argmax = predicted class).
    """
    from .predict import blend_window, tile_origins

    height, width = optical.shape[-2:]
    if tile is None or (height <= tile and width <= tile):
        out = _forward(model, optical, sar, autocast_dtype)
        result = {"reconstruction": out["reconstruction"].float()}
        if out.get("segmentation") is not None:
            result["segmentation"] = out["segmentation"].float()
        return result
    overlap = tile // 4 if overlap is None else int(overlap)
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    ys, xs = tile_origins(height, tile, overlap), tile_origins(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    device = optical.device
    rec_sum = torch.zeros(optical.shape[0], 0, height, width, device=device)
    seg_sum: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, height, width, device=device)
    for i, y0 in enumerate(ys):
        wy = torch.from_numpy(blend_window(th, overlap, i > 0, i < len(ys) - 1)).to(device)
        for j, x0 in enumerate(xs):
            wx = torch.from_numpy(blend_window(tw, overlap, j > 0, j < len(xs) - 1)).to(device)
            weight = (wy[:, None] * wx[None, :])[None, None]
            window = (..., slice(y0, y0 + th), slice(x0, x0 + tw))
            out = _forward(model, optical[window], sar[window], autocast_dtype)
            rec = out["reconstruction"].float()
            if rec_sum.shape[1] == 0:
                rec_sum = torch.zeros(optical.shape[0], rec.shape[1], height, width,
                                      device=device)
            rec_sum[window] += rec * weight
            if out.get("segmentation") is not None:
                probs = torch.softmax(out["segmentation"].float(), dim=1)
                if seg_sum is None:
                    seg_sum = torch.zeros(optical.shape[0], probs.shape[1], height, width,
                                          device=device)
                seg_sum[window] += probs * weight
            weight_sum[window] += weight
    result = {"reconstruction": rec_sum / weight_sum}
    if seg_sum is not None:
        result["segmentation"] = torch.log((seg_sum / weight_sum).clamp_min(1e-12))
    return result


# --------------------------------------------------------------------------------------------
# Metric accumulation
# --------------------------------------------------------------------------------------------
class _IndexSubset(Dataset):
    def __init__(self, base: Dataset, indices: Sequence[int]) -> None:
        self.base, self.indices = base, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.base[self.indices[i]]


def accumulate_metrics(model: nn.Module, dataset: Dataset, *, device: torch.device | str | None
                       = None, batch_size: int = 4, max_batches: int | None = None,
                       rank: int = 0, world_size: int = 1, tile: int | None = None,
                       overlap: int | None = None, autocast_dtype: torch.dtype | None = None,
                       channels_last: bool = False, num_workers: int = 0,
                       progress: bool = False):
    """Run ``model`` over this rank's shard of ``dataset`` and fill an ``EvaluationAccumulator``.

    The shard is every ``world_size``-th sample from ``rank`` (no padding); merge shards with
    ``accumulator.all_reduce()``. ``max_batches`` caps the batches per rank (smoke runs).
    """
    from tqdm import tqdm

    from .legend import load_legend
    from .metrics import EvaluationAccumulator

    device = _model_device(model) if device is None else resolve_device(device)
    legend = load_legend()
    num_classes = getattr(getattr(model, "config", None), "num_classes", legend.num_classes)
    accumulator = EvaluationAccumulator(num_classes=num_classes,
                                        ignore_index=legend.ignore_index)
    shard = _IndexSubset(dataset, range(rank, len(dataset), world_size))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = model.training
    model.eval()
    total = len(loader) if max_batches is None else min(len(loader), max_batches)
    try:
        for index, batch in enumerate(tqdm(loader, total=total, desc="evaluate",
                                           disable=not progress, mininterval=1.0)):
            if max_batches is not None and index >= max_batches:
                break
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                     for k, v in batch.items()}
            optical, sar = batch["optical"], batch["sar"]
            if channels_last:
                optical = optical.contiguous(memory_format=torch.channels_last)
                sar = sar.contiguous(memory_format=torch.channels_last)
            outputs = sliding_window_predict(model, optical, sar, tile, overlap, autocast_dtype)
            accumulator.update(outputs, batch)
    finally:
        model.train(was_training)
    return accumulator


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def _region_rows(block: dict[str, Any] | None, columns: Sequence[str]) -> dict[str, dict]:
    """``{"all": {...}, "cloudy": ..., "clear": ...}`` → rows keyed by region (missing skipped)."""
    rows = {}
    for region in REGIONS:
        values = (block or {}).get(region)
        if isinstance(values, dict):
            rows[region] = {c: values.get(c) for c in columns}
    return rows


def metrics_tables(metrics: dict[str, Any]):
    """Turn the nested metrics dict into pandas tables.

    Returns
    -------
    dict[str, pandas.DataFrame]
        ``"cr"`` (model reconstruction), ``"cr_input"`` (the cloudy input scored against the
        clear target) and ``"seg"`` (if the model segments): one row per subset
        (``all``, ``cloudy``, ``clear``, then ``bucket <name>`` rows; a bucket row uses the
        bucket's ``all`` pixels), metric columns; plus ``"summary"`` (PSNR of model vs input,
        SSIM, SAM, MAE, mIoU, OA per subset).
    """
    import pandas as pd

    tables: dict[str, Any] = {}
    per_bucket = metrics.get("per_bucket", {}) or {}
    for kind, columns in (("cr", CR_COLUMNS), ("cr_input", CR_COLUMNS), ("seg", SEG_COLUMNS)):
        rows = _region_rows(metrics.get(kind), columns)
        for bucket, values in per_bucket.items():
            block = values.get(kind) if isinstance(values, dict) else None
            if not isinstance(block, dict):
                continue
            flat = _region_block(block)  # per-bucket blocks may or may not split regions
            if flat is not None:
                rows[f"bucket {bucket}"] = {c: flat.get(c) for c in columns}
        if rows:
            frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(columns))
            frame.index.name = "subset"
            tables[kind] = frame.astype(float)
    if "cr" in tables:
        summary = pd.DataFrame(index=tables["cr"].index)
        summary["psnr"] = tables["cr"]["psnr"]
        if "cr_input" in tables:
            summary["input_psnr"] = tables["cr_input"]["psnr"].reindex(summary.index)
            summary["psnr_gain"] = summary["psnr"] - summary["input_psnr"]
        for column in ("ssim", "sam", "mae"):
            summary[column] = tables["cr"][column]
        if "seg" in tables:
            summary["miou"] = tables["seg"]["miou"].reindex(summary.index)
            summary["oa"] = tables["seg"]["oa"].reindex(summary.index)
        tables["summary"] = summary
    return tables


def dataframe_to_markdown(frame, digits: int = 4, index: bool = True) -> str:
    """A GitHub-flavoured markdown table (no ``tabulate`` dependency); NaN → ``–``."""

    def fmt(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "–" if not math.isfinite(float(value)) else f"{float(value):.{digits}f}"
        return str(value)

    header = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for label, row in frame.iterrows():
        cells = ([str(label)] if index else []) + [fmt(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class EvaluationResult:
    """Metrics and tables of one evaluation."""

    metrics: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tables(self) -> dict[str, Any]:
        return metrics_tables(self.metrics)

    def to_markdown(self, title: str = "Evaluation") -> str:
        """All tables as one markdown document."""
        parts = [f"# {title}", ""]
        for key in ("checkpoint", "split", "n_images", "tile", "overlap", "device"):
            if key in self.meta:
                parts.append(f"- **{key}**: {self.meta[key]}")
        captions = {"summary": "Summary (PSNR in dB; `input_psnr` = the cloudy input itself)",
                    "cr": "Cloud removal (model)", "cr_input": "Cloudy input vs clear target",
                    "seg": "Segmentation"}
        for key, frame in self.tables.items():
            parts += ["", f"## {captions.get(key, key)}", "", dataframe_to_markdown(frame)]
        return "\n".join(parts) + "\n"

    def write(self, json_path: str | Path, markdown_path: str | Path | None = None,
              title: str = "Evaluation") -> None:
        """Write the metrics (+ meta) as JSON and, optionally, the tables as markdown."""
        atomic_write_json(json_path, {"meta": self.meta, "metrics": self.metrics})
        if markdown_path is not None:
            atomic_write_text(markdown_path, self.to_markdown(title))


def _train_crop(meta: dict[str, Any]) -> int | None:
    train_config = meta.get("train_config") or {}
    return train_config.get("crop_size")


def evaluate(checkpoint_or_model: str | Path | nn.Module, dataset: Dataset, *,
             device: str | torch.device = "auto", batch_size: int = 4,
             tile: int | str | None = "auto", overlap: int | None = None,
             max_batches: int | None = None, num_workers: int = 0,
             progress: bool = True) -> EvaluationResult:
    """Score a model on a dataset: CR + segmentation metrics, all/cloudy/clear and per bucket.

    Parameters
    ----------
    checkpoint_or_model
        A checkpoint folder (e.g. ``runs/phase2/best``) or a model.
    dataset
        A :class:`tdpcr_lib.data.LuojiaSETOSFCR` split (whole tiles, no augmentation).
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

    Returns
    -------
    EvaluationResult
        ``.metrics`` (nested dict), ``.tables`` (pandas), ``.meta`` (what was run).
    """
    from .checkpoint import load_model

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
    accumulator = accumulate_metrics(model, dataset, device=device, batch_size=batch_size,
                                     max_batches=max_batches, tile=tile, overlap=overlap,
                                     autocast_dtype=autocast_dtype, num_workers=num_workers,
                                     progress=progress)
    metrics = accumulator.compute()
    from .runtime import device_description

    meta_out = {"checkpoint": source, "split": getattr(dataset, "split", None),
                "n_images": metrics.get("n_images"), "tile": tile,
                "overlap": (tile // 4 if overlap is None else overlap) if tile else None,
                "device": device_description(device),
                "seconds": round(time.time() - started, 2),
                "model_config": meta.get("model_config") or _config_dict(model),
                "checkpoint_phase": meta.get("phase"), "checkpoint_epoch": meta.get("epoch"),
                "checkpoint_step": meta.get("step"),
                "manifest_hash": getattr(dataset, "manifest_hash", None)}
    return EvaluationResult(metrics=metrics, meta=meta_out)


def _config_dict(model: nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else None


# --------------------------------------------------------------------------------------------
# Reference baseline and the results page
# --------------------------------------------------------------------------------------------
def label_histogram(dataset: Dataset, num_classes: int, ignore_index: int = 255,
                    max_samples: int | None = None) -> np.ndarray:
    """Pixel counts per class over the label maps of ``dataset`` (ignored pixels skipped).

    For :class:`tdpcr_lib.data.LuojiaSETOSFCR` only the land-cover files are read (not the
    other four modalities), which matters on the real data's 16 000 training tiles.
    """
    from .data import read_modality
    from .legend import load_legend

    counts = np.zeros(num_classes, dtype=np.int64)
    records = getattr(dataset, "records", None)
    root = getattr(dataset, "root", None)
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    legend = load_legend()
    for index in range(n):
        if records is not None and root is not None:
            raw = read_modality(Path(root) / records[index].paths["land_cover_maps"],
                                "land_cover_maps")
            labels = legend.sanitise(raw[0]).ravel()
        else:
            labels = np.asarray(dataset[index]["mask"]).ravel()
        labels = labels[(labels != ignore_index) & (labels >= 0) & (labels < num_classes)]
        counts += np.bincount(labels, minlength=num_classes)[:num_classes]
    return counts


class _ConstantClassModel(nn.Module):
    """Predicts one class everywhere and returns the cloudy input as its reconstruction."""

    def __init__(self, class_index: int, num_classes: int) -> None:
        super().__init__()
        self.class_index, self.num_classes = class_index, num_classes

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = torch.full((optical.shape[0], self.num_classes, *optical.shape[-2:]), -10.0,
                            device=optical.device)
        logits[:, self.class_index] = 10.0
        return {"reconstruction": optical.float(), "segmentation": logits}


def majority_class_baseline(train_dataset: Dataset, eval_dataset: Dataset,
                            num_classes: int | None = None, batch_size: int = 8,
                            max_batches: int | None = None) -> dict[str, Any]:
    """Score "the most frequent training class everywhere" on ``eval_dataset``.

    Parameters
    ----------
    train_dataset
        Where the class frequencies come from.
    eval_dataset
        Where the constant prediction is scored (same accumulator as the models).
    max_batches
        Limit both the label count (``max_batches·batch_size`` training tiles) and the scoring
        (smoke runs).

    Returns
    -------
    dict
        ``{"class": int, "class_name": str, "train_fraction": float, "seg": {...},
        "per_bucket": {bucket: seg block}}``.
    """
    from .legend import load_legend

    legend = load_legend()
    num_classes = num_classes or legend.num_classes
    counts = label_histogram(train_dataset, num_classes, legend.ignore_index,
                             max_samples=None if max_batches is None else max_batches * batch_size)
    if counts.sum() == 0:
        raise ValueError("the training split has no valid labels; cannot pick a majority class")
    majority = int(np.argmax(counts))
    accumulator = accumulate_metrics(_ConstantClassModel(majority, num_classes), eval_dataset,
                                     device="cpu", batch_size=batch_size, max_batches=max_batches)
    metrics = accumulator.compute()
    return {"class": majority, "class_name": legend.names[majority],
            "train_fraction": float(counts[majority] / counts.sum()), "seg": metrics["seg"],
            "per_bucket": {b: v.get("seg") for b, v in metrics.get("per_bucket", {}).items()}}


def _region_block(block: Any) -> dict[str, Any] | None:
    if not isinstance(block, dict):
        return None
    return block.get("all", block) if isinstance(block.get("all", block), dict) else None


def majority_table(majority: dict[str, Any]):
    """The majority-class baseline as a table (rows: all/cloudy/clear and buckets)."""
    import pandas as pd

    rows = {region: {c: (majority["seg"].get(region) or {}).get(c) for c in SEG_COLUMNS}
            for region in REGIONS if isinstance(majority["seg"].get(region), dict)}
    for bucket, block in (majority.get("per_bucket") or {}).items():
        flat = _region_block(block)
        if flat is not None:
            rows[f"bucket {bucket}"] = {c: flat.get(c) for c in SEG_COLUMNS}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(SEG_COLUMNS)).astype(float)
    frame.index.name = f"majority class {majority['class']} ({majority['class_name']})"
    return frame


def bucket_curves(result: EvaluationResult, majority: dict[str, Any] | None = None
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """``{series: {bucket: {"psnr"|"miou": value}}}`` for :func:`tdpcr_lib.viz.plot_bucket_metrics`.

    Series: ``"TDP-CR"`` (our model), ``"cloudy input"`` (PSNR of doing nothing) and
    ``"majority class"`` (mIoU of the constant prediction).
    """
    curves: dict[str, dict[str, dict[str, float]]] = {"TDP-CR": {}, "cloudy input": {}}
    for bucket, block in (result.metrics.get("per_bucket") or {}).items():
        cr, cr_input, seg = (_region_block(block.get(k)) for k in ("cr", "cr_input", "seg"))
        ours: dict[str, float] = {}
        if cr is not None:
            ours["psnr"] = cr.get("psnr")
        if seg is not None:
            ours["miou"] = seg.get("miou")
        curves["TDP-CR"][bucket] = ours
        if cr_input is not None:
            curves["cloudy input"][bucket] = {"psnr": cr_input.get("psnr")}
    if majority is not None:
        curves["majority class"] = {}
        for bucket, block in (majority.get("per_bucket") or {}).items():
            flat = _region_block(block)
            if flat is not None:
                curves["majority class"][bucket] = {"miou": flat.get("miou")}
    return {k: v for k, v in curves.items() if v}


def cloudiest_index(dataset: Dataset, limit: int = 8) -> int:
    """Index of the sample with the largest cloud fraction among the first ``limit``."""
    fractions = [float(dataset[i]["cloud_mask"].float().mean()) for i in range(min(limit,
                                                                                  len(dataset)))]
    if not fractions:
        raise ValueError("the dataset is empty")
    return int(np.argmax(fractions))


def _get(metrics: dict[str, Any], *path: str) -> float | None:
    value: Any = metrics
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def headline_metrics(result: EvaluationResult, majority: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """The few numbers a reader checks first (flat dict, JSON-able).

    ``psnr_gain_cloudy`` = our PSNR − the cloudy input's PSNR inside clouds;
    ``miou_gain_over_majority`` = our mIoU − the majority-class mIoU (all pixels).
    """
    m = result.metrics
    out: dict[str, Any] = {"n_images": m.get("n_images")}
    for region in REGIONS:
        for metric in CR_COLUMNS:
            out[f"{metric}_{region}"] = _get(m, "cr", region, metric)
        out[f"input_psnr_{region}"] = _get(m, "cr_input", region, "psnr")
        for metric in ("miou", "oa"):
            out[f"{metric}_{region}"] = _get(m, "seg", region, metric)
    if out["psnr_cloudy"] is not None and out["input_psnr_cloudy"] is not None:
        out["psnr_gain_cloudy"] = out["psnr_cloudy"] - out["input_psnr_cloudy"]
    if majority is not None:
        out["majority_class"] = majority["class"]
        out["majority_miou_all"] = _get(majority, "seg", "all", "miou")
        out["majority_oa_all"] = _get(majority, "seg", "all", "oa")
        if out["miou_all"] is not None and out["majority_miou_all"] is not None:
            out["miou_gain_over_majority"] = out["miou_all"] - out["majority_miou_all"]
            out["oa_gain_over_majority"] = out["oa_all"] - out["majority_oa_all"]
    return out


#: The paper's claims (abstract of arXiv 2601.12052); relative numbers only were published.
PAPER_CLAIMS: tuple[tuple[str, str, str], ...] = (
    ("PSNR vs heavy SOTA cloud-removal baselines", "+0.18 dB",
     "baseline not named in the retrievable text"),
    ("Parameters vs those baselines", "15 %", "same baselines"),
    ("mIoU vs multi-task competitors", "+1.4 (points)", "'consistently'"),
    ("Absolute PSNR / SSIM / SAM / mIoU / OA, per bucket", "not retrievable",
     "no table of the paper could be read"),
)


def write_results(result: EvaluationResult, majority: dict[str, Any] | None,
                  path: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Write ``reports/results.md`` (see :func:`results_markdown`) atomically."""
    parameters = None
    if checkpoint is not None and not isinstance(checkpoint, nn.Module):
        from .checkpoint import read_meta

        parameters = read_meta(checkpoint).get("parameters")
    return atomic_write_text(path, results_markdown(result, majority, parameters=parameters))


def results_markdown(result: EvaluationResult, majority: dict[str, Any] | None = None,
                     parameters: dict[str, Any] | None = None, title: str = "TDP-CR results",
                     notes: Sequence[str] = ()) -> str:
    """The ``reports/results.md`` page: our numbers, then the paper's claims, kept apart.

    Our tables (overall, cloudy/clear, per bucket; the cloudy input and the majority-class
    baseline as references we computed) never contain a paper number; the paper's claims are in
    their own table with a "Paper (reference, not ours)" column.
    """
    import pandas as pd

    tables = result.tables
    lines = [f"# {title}", "",
             "All numbers in the first sections are **ours**, measured by `03_evaluate` on the "
             f"`{result.meta.get('split')}` split ({result.meta.get('n_images')} images) from "
             f"checkpoint `{result.meta.get('checkpoint')}`. The paper's claims are listed "
             "separately at the end for reference and are not our results.", ""]
    lines += [f"- {note}" for note in notes]
    if notes:
        lines.append("")
    summary = tables.get("summary")
    if summary is not None:
        lines += ["## Cloud removal (ours)", "",
                  "PSNR/SSIM/SAM/MAE of our reconstruction over all 13 bands (reflectance in "
                  "[0, 1]); `input_psnr` is the cloudy input scored the same way and `psnr_gain` "
                  "our improvement over it.", "",
                  dataframe_to_markdown(summary[[c for c in ("psnr", "input_psnr", "psnr_gain",
                                                             "ssim", "sam", "mae")
                                                 if c in summary]]), ""]
    seg = tables.get("seg")
    if seg is not None:
        frame = seg.copy()
        if majority is not None:
            base_rows = {}
            for region in REGIONS:
                block = (majority.get("seg") or {}).get(region)
                if isinstance(block, dict):
                    base_rows[region] = block
            for bucket, block in (majority.get("per_bucket") or {}).items():
                flat = _region_block(block)
                if flat is not None:
                    base_rows[f"bucket {bucket}"] = flat
            frame["majority_miou"] = pd.Series({k: v.get("miou") for k, v in base_rows.items()})
            frame["majority_oa"] = pd.Series({k: v.get("oa") for k, v in base_rows.items()})
        lines += ["## Land-cover segmentation (ours)", ""]
        if majority is not None:
            lines += [f"`majority_*`: predicting the most frequent training class "
                      f"({majority['class']} = {majority['class_name']}, "
                      f"{100 * majority['train_fraction']:.1f} % of training pixels) everywhere.",
                      ""]
        lines += [dataframe_to_markdown(frame), ""]
    if parameters:
        lines += ["## Model size (ours)", "",
                  f"- total parameters: {parameters.get('total'):,}",
                  f"- trainable in phase 2: {parameters.get('trainable'):,} "
                  f"({100 * parameters.get('trainable_fraction', 0):.1f} %)", ""]
    claims = pd.DataFrame(PAPER_CLAIMS, columns=["claim", "Paper (reference, not ours)",
                                                 "note"]).set_index("claim")
    lines += ["## The paper's claims (reference only)", "",
              "From the abstract of Zhang et al., *Task-Driven Prompt Learning* (arXiv "
              "2601.12052, IGARSS 2026). These are **not** our measurements; the comparisons "
              "they refer to are reproduced by the ablation/baseline notebooks.", "",
              dataframe_to_markdown(claims), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdpcr evaluate",
        description="Evaluate a checkpoint on a LuojiaSET-OSFCR split; writes JSON + markdown.")
    parser.add_argument("checkpoint", help="checkpoint folder (e.g. runs/phase2/best)")
    parser.add_argument("--data-root", required=True, help="dataset folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", default=None,
                        help="output prefix → PREFIX.json and PREFIX.md (default: "
                             "<run>/eval_<checkpoint>_<split> beside the checkpoint folder)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--tile", default="auto",
                        help="sliding-window tile: 'auto' (training crop), 'none', or px")
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--max-batches", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``tdpcr evaluate CHECKPOINT --data-root DIR [--split test] [--out PREFIX]``."""
    args = _parser().parse_args(argv)
    from .checkpoint import CheckpointError
    from .data import LuojiaSETOSFCR

    tile: int | str | None
    if args.tile == "auto":
        tile = "auto"
    elif args.tile.lower() == "none":
        tile = None
    else:
        try:
            tile = int(args.tile)
        except ValueError:
            print(f"tdpcr evaluate: --tile must be 'auto', 'none' or an int, got {args.tile!r}",
                  file=sys.stderr)
            return 2
    try:
        dataset = LuojiaSETOSFCR(args.data_root, split=args.split)
        result = evaluate(args.checkpoint, dataset, device=args.device,
                          batch_size=args.batch_size, tile=tile, overlap=args.overlap,
                          max_batches=args.max_batches, num_workers=args.num_workers,
                          progress=not args.no_progress)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"tdpcr evaluate: {err}", file=sys.stderr)
        return 1
    checkpoint = Path(args.checkpoint)
    # beside the checkpoint, not inside it (checkpoint folders are replaced as a whole)
    prefix = Path(args.out) if args.out else checkpoint.parent / f"eval_{checkpoint.name}_{args.split}"
    json_path = prefix.with_name(prefix.name + ".json")
    md_path = prefix.with_name(prefix.name + ".md")
    result.write(json_path, md_path, title=f"Evaluation of {args.checkpoint} ({args.split})")
    print(json.dumps({"json": str(json_path), "markdown": str(md_path),
                      "summary": {k: v for k, v in result.metrics.items()
                                  if k in ("n_images",)}}, indent=2))
    print(result.to_markdown(title="Evaluation"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
