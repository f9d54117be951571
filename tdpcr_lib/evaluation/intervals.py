"""95 % intervals over test tiles for the headline numbers of ``results.md``/``03_evaluate.json``.

How wide is a headline number's uncertainty from *which tiles happen to be in the test split*?

* PSNR (all pixels, and inside clouds) is the mean over tiles of each tile's PSNR (the
  accumulator's definition), so its interval is the Student-t interval of that mean over the tiles
  (tiles without cloud pixels have no cloudy PSNR and are left out of that one);
* mIoU is computed from the confusion matrix pooled over tiles, so its interval is a percentile
  bootstrap over tiles (resampling tiles with replacement, pooling their confusion matrices;
  2000 resamples with a fixed seed, so the interval is reproducible).

Each tile is scored alone, from the predictions the evaluation already makes (a
:class:`TileScores` ``on_batch`` hook of :func:`tdpcr_lib.evaluation.evaluate.evaluate`), so the
intervals cost no second pass of the model over the test split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from tdpcr_lib.metrics.accumulator import EvaluationAccumulator
from tdpcr_lib.metrics.display import shown
from tdpcr_lib.metrics.functional import segmentation_scores
from tdpcr_lib.metrics.results import ALL, has, value

#: The ``03_evaluate.json`` keys this module adds (``<metric>_ci95_low`` / ``_high``).
INTERVAL_METRICS: tuple[str, ...] = ("psnr", "psnr_cloudy", "miou")


class TileScores:
    """Scores every predicted tile alone as the evaluation passes (an ``on_batch`` hook).

    Each image of a batch gets its own :class:`EvaluationAccumulator`, so its ``psnr``,
    ``psnr_cloudy`` (NaN without cloud pixels) and ``confusion`` (``None`` for a model that does
    not segment) follow the headline's definitions exactly; ``scores`` lists them in test order.
    """

    def __init__(self, num_classes: int, ignore_index: int | None) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.scores: list[dict[str, Any]] = []

    def __call__(self, outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> None:
        n = batch["target"].shape[0]
        for i in range(n):
            accumulator = EvaluationAccumulator(num_classes=self.num_classes, ignore_index=self.ignore_index)
            accumulator = accumulator.to(batch["target"].device)
            accumulator.update(_one(outputs, i, n), _one(batch, i, n))
            frame = accumulator.to_frame()
            self.scores.append(
                {
                    "psnr": value(frame, "psnr"),
                    "psnr_cloudy": value(frame, "psnr", "cloudy") if has(frame, "psnr", "cloudy") else float("nan"),
                    "confusion": (
                        accumulator.confusion_matrix(ALL, ALL).cpu().numpy() if accumulator.has_segmentation else None
                    ),
                }
            )


def _one(batch: Mapping[str, Any], i: int, n: int) -> dict[str, Any]:
    """Image ``i`` of a batch as a batch of one (tensors and per-image lists sliced, the rest kept)."""
    out: dict[str, Any] = {}
    for key, item in batch.items():
        if isinstance(item, torch.Tensor) and item.ndim > 0 and item.shape[0] == n:
            out[key] = item[i : i + 1]
        elif isinstance(item, (list, tuple)) and len(item) == n:
            out[key] = [item[i]]
        else:
            out[key] = item
    return out


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of the finite ``values`` (NaN, NaN with fewer than 2)."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size < 2:
        return float("nan"), float("nan")
    half = (
        float(stats.t.ppf(0.5 + confidence / 2, df=finite.size - 1))
        * float(finite.std(ddof=1))
        / math.sqrt(finite.size)
    )
    return float(finite.mean()) - half, float(finite.mean()) + half


def miou_of(confusion: np.ndarray) -> float:
    """The headline's mIoU of a pooled confusion matrix (``segmentation_scores``)."""
    return float(segmentation_scores(confusion)["miou"])


def bootstrap_miou(
    confusions: Sequence[np.ndarray], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the pooled mIoU, resampling tiles."""
    stack = np.stack(confusions).astype(float)
    if len(stack) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = [miou_of(stack[rng.integers(0, len(stack), len(stack))].sum(0)) for _ in range(n_resamples)]
    alpha = (1 - confidence) / 2
    return float(np.nanquantile(draws, alpha)), float(np.nanquantile(draws, 1 - alpha))


def headline_intervals(scores: Sequence[Mapping[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """``{psnr,psnr_cloudy,miou}_ci95_{low,high}`` (``None`` where undefined, strict JSON)."""
    out: dict[str, Any] = {}
    for metric in ("psnr", "psnr_cloudy"):
        low, high = t_interval([s[metric] for s in scores], confidence)
        out[f"{metric}_ci95_low"], out[f"{metric}_ci95_high"] = low, high
    confusions = [s["confusion"] for s in scores if s.get("confusion") is not None]
    low, high = bootstrap_miou(confusions, confidence) if confusions else (math.nan, math.nan)
    out["miou_ci95_low"], out["miou_ci95_high"] = low, high
    out = {k: (v if math.isfinite(v) else None) for k, v in out.items()}
    out["ci95_n_tiles"] = len(scores)
    out["ci95_method"] = (
        "t interval over tiles (PSNR: mean of per-tile values); percentile "
        "bootstrap over tiles, 2000 resamples, seed 0 (mIoU: pooled confusion)"
    )
    return out


def intervals_table(headline: Mapping[str, Any], intervals: Mapping[str, Any]) -> pd.DataFrame:
    """Each headline number with its 95 % interval, as people read it: one row per metric
    (heading with unit), columns ``value``, ``95 % low``, ``95 % high``, scaled and rounded as
    :func:`tdpcr_lib.metrics.display.shown` says (mIoU in %, PSNR in dB); text, "—" where
    undefined. The raw numbers stay in ``intervals`` (the metrics JSON)."""
    rows = {}
    for metric in INTERVAL_METRICS:
        spec = shown(metric)
        rows[spec.heading] = {
            "value": spec.text(headline.get(metric), missing="—"),
            "95 % low": spec.text(intervals.get(f"{metric}_ci95_low"), missing="—"),
            "95 % high": spec.text(intervals.get(f"{metric}_ci95_high"), missing="—"),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = f"metric (95 % interval over {intervals.get('ci95_n_tiles')} tiles)"
    return table


def intervals_markdown(headline: Mapping[str, Any], intervals: Mapping[str, Any]) -> list[str]:
    """The ``results.md`` section: each headline number with its 95 % interval over tiles."""
    lines = [
        "## 95 % intervals over test tiles (ours)",
        "",
        f"How much the headline numbers depend on which {intervals.get('ci95_n_tiles')} "
        f"tiles are in the test split: {intervals.get('ci95_method')}.",
        "",
        "| metric | value | 95 % interval |",
        "|---|---|---|",
    ]
    for metric in INTERVAL_METRICS:
        spec = shown(metric)
        label, _, unit = spec.heading.partition(" (")
        unit = unit.rstrip(")")
        number = spec.text(headline.get(metric), missing="")
        low, high = (spec.text(intervals.get(f"{metric}_ci95_{side}"), missing="") for side in ("low", "high"))
        value_text = f"{number} {unit}" if number else "—"
        span = f"[{low}, {high}] {unit}" if low and high else "—"
        lines.append(f"| {label} | {value_text} | {span} |")
    return lines + [""]
