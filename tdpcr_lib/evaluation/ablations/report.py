"""Aggregating ablation runs into tables, claims and the report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tdpcr_lib.core.io import atomic_write_text
from tdpcr_lib.evaluation.ablations.spec import PAPER_ABLATION_CLAIMS, AblationBudget
from tdpcr_lib.evaluation.tables import dataframe_to_markdown
from tdpcr_lib.metrics.results import ALL, buckets, column_name, has, value

# --------------------------------------------------------------------------------------------
# Metrics: flatten and aggregate over seeds (paired statistics: ablations.stats)
# --------------------------------------------------------------------------------------------
#: The ablation metrics, ``(metric, region)``; aggregated under their column names.
HEADLINE_PAIRS: tuple[tuple[str, str], ...] = (
    ("psnr", "all"),
    ("ssim", "all"),
    ("sam", "all"),
    ("mae", "all"),
    ("psnr", "cloudy"),
    ("ssim", "cloudy"),
    ("sam", "cloudy"),
    ("mae", "cloudy"),
    ("oa", "all"),
    ("oa", "cloudy"),
    ("oa", "clear"),
    ("miou", "all"),
    ("miou", "cloudy"),
    ("miou", "clear"),
)

#: Flat keys of :func:`headline_metrics` (``psnr``, ``psnr_cloudy``, ``miou_clear``, …).
HEADLINE_KEYS: tuple[str, ...] = tuple(column_name(m, r) for m, r in HEADLINE_PAIRS)

#: Metrics kept per cloud-cover bucket (all pixels of the bucket).
BUCKET_METRICS: tuple[str, ...] = ("psnr", "miou")


def headline_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """One run's result frame → :data:`HEADLINE_KEYS` plus ``per_bucket`` (JSON-able).

    Segmentation keys are NaN for models without a segmentation head (``null`` once written to
    JSON, so readers must accept both).
    """
    flat: dict[str, Any] = {
        column_name(m, r): value(frame, m, r) if has(frame, m, r) else float("nan") for m, r in HEADLINE_PAIRS
    }
    flat["per_bucket"] = {
        bucket: {
            m: value(frame, m, ALL, bucket) if has(frame, m, ALL, bucket) else float("nan") for m in BUCKET_METRICS
        }
        for bucket in buckets(frame)
    }
    return flat


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` over the finite values (std: ddof=1, NaN when n < 2)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(finite)
    mean = float(np.mean(finite)) if n else float("nan")
    std = float(np.std(finite, ddof=1)) if n >= 2 else float("nan")
    return {"mean": mean, "std": std, "n": n, "values": finite}


def aggregate(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Results of many runs → per variant: metric → mean/std/n over seeds, complexity, buckets."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for result in results:
        grouped.setdefault(result["name"], []).append(result)
    out: dict[str, dict[str, Any]] = {}
    for name, runs in grouped.items():
        entry: dict[str, Any] = {
            "label": runs[0]["label"],
            "seeds": [r["seed"] for r in runs],
            "metrics": {},
            "per_bucket": {},
        }
        for key in HEADLINE_KEYS:
            entry["metrics"][key] = mean_std([r["headline"].get(key) for r in runs])
        buckets = sorted({b for r in runs for b in r["headline"].get("per_bucket", {})})
        for bucket in buckets:
            entry["per_bucket"][bucket] = {
                m: mean_std([r["headline"]["per_bucket"].get(bucket, {}).get(m) for r in runs]) for m in BUCKET_METRICS
            }
        entry["complexity"] = dict(runs[0]["complexity"])
        entry["train_seconds"] = mean_std([r.get("train_seconds") for r in runs])
        entry["steps"] = mean_std([r.get("steps") for r in runs])
        entry["plateau"] = [r.get("plateau") for r in runs]
        out[name] = entry
    return out


# --------------------------------------------------------------------------------------------
# Tables and report
# --------------------------------------------------------------------------------------------
#: Table column → (source, key, scale, digits). source "c": complexity, "m": metrics.
TABLE_COLUMNS: dict[str, tuple[str, str, float, int]] = {
    "params (M)": ("c", "params", 1e-6, 3),
    "phase-2 trainable (M)": ("c", "trainable_last_phase", 1e-6, 3),
    "GFLOPs / 256² tile": ("c", "flops_256", 1e-9, 1),
    "PSNR all (dB)": ("m", "psnr", 1, 2),
    "PSNR cloudy (dB)": ("m", "psnr_cloudy", 1, 2),
    "SSIM all": ("m", "ssim", 1, 3),
    "SSIM cloudy": ("m", "ssim_cloudy", 1, 3),
    "SAM all (°)": ("m", "sam", 1, 2),
    "SAM cloudy (°)": ("m", "sam_cloudy", 1, 2),
    "MAE all": ("m", "mae", 1, 4),
    "MAE cloudy": ("m", "mae_cloudy", 1, 4),
    "OA all (%)": ("m", "oa", 100, 1),
    "OA cloudy (%)": ("m", "oa_cloudy", 100, 1),
    "OA clear (%)": ("m", "oa_clear", 100, 1),
    "mIoU all (%)": ("m", "miou", 100, 1),
    "mIoU cloudy (%)": ("m", "miou_cloudy", 100, 1),
    "mIoU clear (%)": ("m", "miou_clear", 100, 1),
}


def format_mean_std(stat: Mapping[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """``"m ± s"`` (``"m"`` with one seed, ``"—"`` without a value)."""
    mean = stat.get("mean", float("nan"))
    if mean is None or not math.isfinite(mean):
        return "—"
    std = stat.get("std", float("nan"))
    text = f"{mean * scale:.{digits}f}"
    if std is not None and math.isfinite(std):
        text += f" ± {std * scale:.{digits}f}"
    return text


def ablation_table(aggregated: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per variant (grid order), one column per :data:`TABLE_COLUMNS`; strings."""
    rows = {}
    for entry in aggregated.values():
        row = {}
        for column, (source, key, scale, digits) in TABLE_COLUMNS.items():
            if source == "c":
                number = entry["complexity"].get(key)
                row[column] = "—" if number is None else f"{number * scale:.{digits}f}"
            else:
                row[column] = format_mean_std(entry["metrics"][key], scale, digits)
        row["seeds"] = str(len(entry["seeds"]))
        row["steps (mean)"] = format_mean_std({"mean": entry.get("steps", {}).get("mean")}, 1, 0)
        row["plateau"] = plateau_cell(entry.get("plateau", []))
        rows[entry["label"]] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame


def plateau_cell(flags: Sequence[bool | None]) -> str:
    """``"3/3"`` (runs at their plateau / runs), or ``"n/a (not validated)"``."""
    known = [f for f in flags if f is not None]
    if not known:
        return "n/a (not validated)"
    return f"{sum(bool(f) for f in known)}/{len(known)}"


def per_bucket_for_plot(aggregated: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """``{label: {bucket: {"psnr": {mean, std}, "miou": {mean, std}}}}`` for the bucket plot."""
    out = {}
    for entry in aggregated.values():
        out[entry["label"]] = {
            bucket: {
                m: {
                    "mean": s["mean"] * (100 if m == "miou" else 1),
                    "std": (s["std"] if math.isfinite(s["std"]) else 0.0) * (100 if m == "miou" else 1),
                }
                for m, s in stats.items()
            }
            for bucket, stats in entry["per_bucket"].items()
        }
    return out


def run_records(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``runs`` of ``04_ablations.json``: one record per model × seed.

    ``model``, ``seed``, ``steps``, ``plateau`` and ``metrics`` (flat test metrics, mIoU etc. as
    fractions, ``None`` where the model has no such output), plus per-phase plateau details and
    validation curves against training FLOPs, the FLOPs and the wall time.
    """
    records = []
    for r in results:
        headline = dict(r["headline"])
        per_bucket = headline.pop("per_bucket", {})
        metrics = {k: _json_number(v) for k, v in headline.items()}
        per_bucket = {b: {m: _json_number(v) for m, v in values.items()} for b, values in per_bucket.items()}
        records.append(
            {
                "model": r["name"],
                "label": r["label"],
                "seed": int(r["seed"]),
                "steps": int(r.get("steps", 0)),
                "plateau": r.get("plateau"),
                "metrics": metrics,
                "per_bucket": per_bucket,
                "train_flops": r.get("train_flops"),
                "phases": r.get("phases", []),
                "complexity": r["complexity"],
                "train_seconds": r.get("train_seconds"),
                "eval_seconds": r.get("eval_seconds"),
                "n_eval_images": r.get("n_eval_images"),
            }
        )
    return records


def _json_number(value: Any) -> float | None:
    """A float, or ``None`` for a missing / NaN value (strict JSON has no NaN)."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


def claims_table(claims: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The paired-difference table: Δ mean with its 95 % CI, seeds and the verdict."""
    rows = {}
    for claim in claims:
        finite = all(v is not None and math.isfinite(v) for v in (claim["ci95_low"], claim["ci95_high"]))
        rows[claim["label"]] = {
            "Δ mean": _signed(claim["delta_mean"]) + f" {claim['unit']}",
            "95 % CI": (
                f"[{_signed(claim['ci95_low'])}, {_signed(claim['ci95_high'])}]" if finite else "n/a (< 2 seeds)"
            ),
            "seeds": claim["n_seeds"],
            "verdict": claim["verdict"],
            "compared at": "equal training FLOPs" if claim["equal_compute"] else "equal samples",
            "paper (reference only, not ours)": claim["paper"],
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "comparison"
    return frame


def _signed(number: float | None) -> str:
    return "—" if number is None or not math.isfinite(number) else f"{number:+.2f}"


def write_report(
    aggregated: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    *,
    budget: AblationBudget,
    seeds: Sequence[int],
    claims: Sequence[Mapping[str, Any]],
    figures: Sequence[str] = (),
    notes: str = "",
    label: str = "",
) -> Path:
    """Write ``reports/ablations.md``: budget, per-model table, paired-difference table."""
    title = "# Ablations and baseline comparison" + (f" ({label})" if label else "")
    lines = [
        title,
        "",
        f"Seeds: {list(seeds)} · budget ({budget.mode}): at most {budget.phase1_steps} + "
        f"{budget.phase2_steps} steps (single-phase runs: {budget.total_steps}; DSen2-CR: "
        f"the same training FLOPs), batch {budget.batch_size}, crop {budget.crop_size}², "
        f"model size '{budget.model_size}', evaluation on "
        f"{'all' if budget.max_eval_tiles is None else f'≤ {budget.max_eval_tiles}'} test tiles"
        f"{'' if budget.eval_crop is None else f' centre-cropped to {budget.eval_crop}²'}.",
        "Values are mean ± std over seeds. *plateau*: runs whose validation metric moved less "
        "than the tolerance (0.1 dB PSNR, 1 mIoU point) over their last 20 % of steps. "
        "Parameters and FLOPs are of the evaluated model at a 256² tile; 'phase-2 trainable' "
        "is the number of parameters trained in the run's last phase.",
        "",
    ]
    if notes:
        lines += [notes, ""]
    lines += [
        "## Results per model",
        "",
        dataframe_to_markdown(ablation_table(aggregated)),
        "",
        "## Paired differences (TDP-CR − other), 95 % CI over seeds",
        "",
        "Δ = mean over seeds of the paired difference (same seed = same data order, "
        "augmentation and test tiles); the interval is Student-t over seeds. Verdict: the "
        "whole interval above zero supports the paper's direction on the twin, below zero "
        "contradicts it, containing zero is within noise. The last column is the paper's "
        "claim, for reference only.",
        "",
        dataframe_to_markdown(claims_table(claims)) if claims else "(no comparisons)",
    ]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{Path(f).stem}]({f})" for f in figures]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def results_json(
    aggregated: Mapping[str, Mapping[str, Any]], claims: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """What ``reports/metrics/04_ablations.json`` records under ``metrics``."""
    return {"models": aggregated, "claims": list(claims), "paper_reference": PAPER_ABLATION_CLAIMS}
