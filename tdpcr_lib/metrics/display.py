"""How a metric is shown to a person: heading with its unit, scale and decimals.

One table for every place a number is read (the notebooks' DataFrames, ``results.md``, the
viewer's metrics table), so the same metric looks the same everywhere. Stored numbers (the
metrics JSON, :attr:`EvaluationResult.frame`) stay raw and unrounded: only what is displayed
goes through :func:`shown`.

Rounding is chosen so the last digit still means something for a test split of tens to
hundreds of tiles: PSNR and SAM to 0.01 (dB, degrees), SSIM to 0.001, OA/mIoU and other
fractions as percent to 0.1, MAE/RMSE (reflectance) to 0.0001.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from tdpcr_lib.metrics.results import INPUT_PREFIX, REGIONS


@dataclass(frozen=True)
class Shown:
    """How one column is displayed: ``heading`` (name and unit), ``scale`` applied to the raw
    value (100 for fractions shown in percent) and ``decimals`` after rounding."""

    heading: str
    scale: float
    decimals: int

    def value(self, raw: Any) -> float:
        """The raw number scaled and rounded (NaN stays NaN)."""
        number = float(raw)
        return round(number * self.scale, self.decimals) if math.isfinite(number) else number

    def text(self, raw: Any, missing: str = "n/a") -> str:
        """The number as text with exactly ``decimals`` digits; ``missing`` for None/NaN."""
        if raw is None or not math.isfinite(float(raw)):
            return missing
        return f"{float(raw) * self.scale:.{self.decimals}f}"


#: Base metrics: (label, unit shown in the heading, scale, decimals).
BASE: dict[str, tuple[str, str, float, int]] = {
    "psnr": ("PSNR", "dB", 1.0, 2),
    "ssim": ("SSIM", "", 1.0, 3),
    "sam": ("SAM", "°", 1.0, 2),
    "sam_rad": ("SAM", "rad", 1.0, 4),
    "mae": ("MAE", "refl.", 1.0, 4),
    "rmse": ("RMSE", "refl.", 1.0, 4),
    "oa": ("OA", "%", 100.0, 1),
    "macc": ("mAcc", "%", 100.0, 1),
    "fwiou": ("FWIoU", "%", 100.0, 1),
    "miou": ("mIoU", "%", 100.0, 1),
    "n_images": ("images", "", 1.0, 0),
    "cloud_fraction": ("cloud cover", "%", 100.0, 1),
}
_IOU_CLASS = re.compile(r"^iou_class_(\d+)$")
_CI = re.compile(r"^(?P<metric>.+)_ci95_(?P<side>low|high)$")


def _heading(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def shown(column: str) -> Shown | None:
    """How the metric column ``column`` is displayed, or ``None`` when it is not a metric.

    Understands the project's column names (:func:`tdpcr_lib.metrics.results.column_name`):
    ``psnr``, ``input_psnr`` ("input PSNR (dB)"), ``majority_miou``, ``psnr_cloudy``
    ("PSNR cloudy (dB)"), ``psnr_gain`` / ``psnr_gain_cloudy`` / ``miou_gain_over_majority``
    (a difference: "mIoU gain (points)" for percentages), ``iou_class_3``,
    ``miou_ci95_low`` and ``n_images``.
    """
    name = str(column)
    if name in BASE:
        label, unit, scale, decimals = BASE[name]
        return Shown(_heading(label, unit), scale, decimals)
    match = _IOU_CLASS.match(name)
    if match:
        return Shown(f"IoU class {match.group(1)} (%)", 100.0, 1)
    match = _CI.match(name)
    if match:
        inner = shown(match.group("metric"))
        if inner is None:
            return None
        label, _, unit = inner.heading.partition(" (")
        return Shown(f"{label} 95 % {match.group('side')}" + (f" ({unit}" if unit else ""), inner.scale, inner.decimals)
    for prefix, word in ((INPUT_PREFIX, "input"), ("majority_", "majority")):
        if name.startswith(prefix):
            inner = shown(name[len(prefix) :])
            return None if inner is None else Shown(f"{word} {inner.heading}", inner.scale, inner.decimals)
    if "_gain" in name:
        metric, _, rest = name.partition("_gain")
        inner = shown(metric)
        if inner is None:
            return None
        label, _, unit = inner.heading.partition(" (")
        unit = "points)" if unit == "%)" else unit  # a difference of percentages
        qualifier = rest.lstrip("_").replace("_", " ")
        label = f"{label} gain" + (f" {qualifier}" if qualifier else "")
        return Shown(label + (f" ({unit}" if unit else ""), inner.scale, inner.decimals)
    for region in REGIONS[1:]:
        if name.endswith("_" + region):
            inner = shown(name[: -len(region) - 1])
            if inner is None:
                return None
            label, _, unit = inner.heading.partition(" (")
            return Shown(f"{label} {region}" + (f" ({unit}" if unit else ""), inner.scale, inner.decimals)
    return None
