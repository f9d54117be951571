"""Per-tile metrics of a prediction for the comparison figures and the viewer (PSNR, SSIM, SAM,
OA, mIoU against the clear target), as text and as a small table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from tdpcr_lib.core.arrays import to_numpy
from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.metrics.accumulator import EvaluationAccumulator
from tdpcr_lib.metrics.display import shown
from tdpcr_lib.metrics.results import headline

# ----------------------------------------------------------------------------- metrics
#: What :func:`tile_metrics` reports, ``(metric, region)`` (segmentation only when predicted).
TILE_METRICS: tuple[tuple[str, str], ...] = (
    ("psnr", "all"),
    ("ssim", "all"),
    ("sam", "all"),
    ("mae", "all"),
    ("psnr", "cloudy"),
    ("oa", "all"),
    ("miou", "all"),
)


#: Columns of :func:`metrics_frame`, in order; headings, units and decimals come from
#: :func:`tdpcr_lib.metrics.display.shown`, as in every other table of the project.
METRIC_KEYS: tuple[str, ...] = ("psnr", "psnr_cloudy", "ssim", "sam", "mae", "oa", "miou")


def tile_metrics(
    sample: Mapping[str, Any], output: Mapping[str, Any], num_classes: int | None = None
) -> dict[str, float]:
    """Metrics of one model on one tile, with the evaluation's own definitions.

    Returns a flat dict keyed by :func:`tdpcr_lib.metrics.results.column_name`: ``psnr``,
    ``ssim``, ``sam``, ``mae`` (whole tile), ``psnr_cloudy`` (inside the cloud mask; NaN when
    the tile has no cloud) and, when the model segments, ``oa`` and ``miou``.
    """

    def batched(x: Any) -> torch.Tensor:
        return torch.as_tensor(to_numpy(x)).unsqueeze(0)

    # no bucket: one tile's numbers are its "all" rows whatever its bucket is called
    batch = {key: batched(sample[key]) for key in ("optical", "target", "cloud_mask", "mask")}
    out = {"reconstruction": batched(output["reconstruction"]).float()}
    if output.get("segmentation") is not None:
        out["segmentation"] = batched(output["segmentation"]).float()
    legend = load_legend()
    if num_classes is None and output.get("segmentation") is not None:
        num_classes = int(out["segmentation"].shape[1])  # the model's own classes (logits)
    acc = EvaluationAccumulator(
        num_classes=num_classes or legend.num_classes,
        ignore_index=legend.ignore_index,
        keep_per_image=False,
        sync_on_compute=False,
    )
    acc.update(out, batch)
    return headline(acc.compute(), TILE_METRICS)


def format_metrics(metrics: Mapping[str, float]) -> str:
    """Metrics dict → a few short lines for a figure panel (NaN shown as ``n/a``)."""

    def fmt(key: str) -> str:
        return shown(key).text(metrics.get(key))

    lines = [
        f"PSNR {fmt('psnr')} dB",
        f"  in cloud {fmt('psnr_cloudy')} dB",
        f"SSIM {fmt('ssim')}",
        f"SAM {fmt('sam')}°",
        f"MAE {fmt('mae')}",
    ]
    if "miou" in metrics:
        lines += [f"OA {fmt('oa')} %", f"mIoU {fmt('miou')} %"]
    return "\n".join(lines)


def metrics_frame(
    metrics: Mapping[str, Mapping[str, float]], row_titles: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Per-tile metrics of several models as a table (rows: models; columns with units).

    OA and mIoU are in percent (the project's unit for them everywhere); a metric a model does
    not produce (segmentation of a reconstruction-only baseline) is shown as ``n/a``.
    """
    rows = {}
    for name, values in metrics.items():
        rows[(row_titles or {}).get(name, name)] = {
            shown(key).heading: shown(key).text(values.get(key)) for key in METRIC_KEYS
        }
    return pd.DataFrame.from_dict(rows, orient="index")
