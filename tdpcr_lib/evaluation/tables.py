"""Metrics as pandas tables and markdown."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tdpcr_lib.core.arrays import to_numpy
from tdpcr_lib.core.bands import S2_BANDS
from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.metrics.display import Shown, shown
from tdpcr_lib.metrics.results import ALL, CR_METRICS, INPUT_PREFIX, REGIONS, SEG_METRICS, iou_class, select, wide

#: Metrics reported in percent everywhere (tables, results.md, ablations.md, figures).
PERCENT_METRICS: frozenset[str] = frozenset({"miou", "oa", "macc", "fwiou", "majority_miou", "majority_oa"})


#: Display of :func:`band_error_under_clouds`' columns (reflectance errors, a ratio).
BAND_ERROR_SHOWN: dict[str, Shown] = {
    "bias": Shown("bias (refl.)", 1.0, 4),
    "mae": Shown("MAE (refl.)", 1.0, 4),
    "target_range": Shown("target 2–98 % range (refl.)", 1.0, 4),
    "mae / range": Shown("MAE / range", 1.0, 2),
}


def readable(table: pd.DataFrame, columns: Mapping[str, Shown] | None = None) -> pd.DataFrame:
    """A copy of a metrics table for people: units in the headings, scaled and rounded.

    Each metric column is shown as :func:`tdpcr_lib.metrics.display.shown` says (PSNR in dB to
    2 decimals, SSIM to 3, SAM in degrees to 2, OA/mIoU as percent to 1, ...); ``columns``
    overrides or adds entries (a table whose ``mae`` is not in reflectance, say). Columns
    already in percent (heading ending in ``%``) are rounded to 1 decimal; any other column is
    left as it is. The numbers themselves stay raw wherever they are stored (metrics JSON,
    result frames): call this only on what is displayed. ``attrs["decimals"]`` records each
    column's decimals for :func:`dataframe_to_markdown`.
    """
    out = table.copy()
    renames, decimals = {}, dict(out.attrs.get("decimals", {}))
    for column in out.columns:
        spec = (columns or {}).get(str(column)) or shown(str(column))
        if spec is None:
            if str(column).rstrip().endswith("%") and pd.api.types.is_numeric_dtype(out[column]):
                out[column] = out[column].astype(float).round(1)
                decimals[str(column)] = 1
            continue
        values = out[column].astype(float) * spec.scale
        out[column] = values.round(spec.decimals) if spec.decimals else values.round(0).astype("Int64")
        renames[column] = spec.heading
        decimals[spec.heading] = spec.decimals
    out = out.rename(columns=renames)
    out.attrs["decimals"] = decimals
    return out


def readable_record(record: Mapping[str, Any]) -> pd.DataFrame:
    """A flat dict of numbers (a metrics record such as the headline numbers) as a one-column
    table for people: one row per key, the metric's heading with its unit as the row label and
    the value as text with the metric's decimals (:func:`tdpcr_lib.metrics.display.shown`);
    keys that are not metrics keep their name and value. The dict itself stays raw."""
    rows = {}
    for key, raw in record.items():
        spec = shown(str(key))
        if spec is not None and isinstance(raw, int | float | np.integer | np.floating) and not isinstance(raw, bool):
            rows[spec.heading] = spec.text(raw, missing="–")
        elif raw is None:
            rows[spec.heading if spec is not None else str(key)] = "–"
        else:
            rows[str(key)] = str(raw)
    table = pd.DataFrame({"value": pd.Series(rows, dtype=object)})
    table.index.name = "metric"
    return table


def per_class_iou_table(frame: pd.DataFrame, names: Sequence[str] | None = None, region: str = ALL) -> pd.DataFrame:
    """IoU of each class in percent (rows: ``code: name``), over all buckets of ``region``."""
    names = list(names) if names is not None else list(load_legend().names)
    rows = {}
    for k, name in enumerate(names):
        part = select(frame, metric=iou_class(k), region=region, bucket=ALL)
        if len(part):
            rows[f"{k}: {name}"] = 100.0 * float(part["value"].iloc[0])
    table = pd.DataFrame({"IoU %": pd.Series(rows, dtype=float)})
    table.index.name = "class"
    return table


def normalised_confusion(confusion: Any, names: Sequence[str] | None = None) -> pd.DataFrame:
    """A (K, K) confusion matrix (rows: true class, columns: predicted) as row percentages:
    each row sums to 100 (the share of that true class's pixels given each label).

    Rows are the true class, as in :func:`tdpcr_lib.metrics.functional.confusion_matrix` and
    the accumulator's ``confusion_matrix()``.
    """
    matrix = np.asarray(to_numpy(confusion), dtype=float)
    names = list(names) if names is not None else list(load_legend().names)
    labels = [f"{k}: {n}" for k, n in enumerate(names[: matrix.shape[0]])]
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(100.0 * matrix, totals, out=np.full_like(matrix, np.nan), where=totals > 0)
    table = pd.DataFrame(share, index=pd.Index(labels, name="true class"), columns=labels)
    table.columns.name = "predicted class (% of true-class pixels)"
    return table


def band_error_under_clouds(pairs: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> pd.DataFrame:
    """Per-band reconstruction error inside the cloud mask, over (sample, output) pairs.

    Columns: ``bias`` (mean of reconstruction − target: > 0 means too bright, e.g. haze left in
    the short-wavelength bands), ``mae`` (mean absolute error) and ``target_range`` (2–98 %
    spread of the target in that band — an error is visible in a figure in proportion to it),
    all in reflectance units; rows in :data:`tdpcr_lib.core.bands.S2_BANDS` order.
    """
    sums, abs_sums, count, ranges = np.zeros(len(S2_BANDS)), np.zeros(len(S2_BANDS)), 0, []
    for sample, output in pairs:
        target = to_numpy(sample["target"]).astype(np.float64)
        rec = np.clip(to_numpy(output["reconstruction"]).astype(np.float64), 0.0, 1.0)
        cloud = to_numpy(sample["cloud_mask"]).astype(bool)
        if not cloud.any():
            continue
        diff = (rec - target)[:, cloud]
        sums += diff.sum(axis=1)
        abs_sums += np.abs(diff).sum(axis=1)
        count += int(cloud.sum())
        lo, hi = np.percentile(target.reshape(len(S2_BANDS), -1), (2, 98), axis=1)
        ranges.append(hi - lo)
    if count == 0:
        raise ValueError("no cloudy pixel in the given samples")
    table = pd.DataFrame(
        {"bias": sums / count, "mae": abs_sums / count, "target_range": np.mean(ranges, axis=0)},
        index=pd.Index(S2_BANDS, name="band"),
    )
    table["mae / range"] = table["mae"] / table["target_range"]
    return table


#: Columns of the ``summary`` table (``psnr_gain`` = ``psnr`` − ``input_psnr``).
SUMMARY_COLUMNS: tuple[str, ...] = ("psnr", "input_psnr", "psnr_gain", "ssim", "sam", "mae", "miou", "oa")


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def subset_table(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per subset: ``all``, ``cloudy``, ``clear`` pixels, then ``bucket <name>`` rows
    (all pixels of the bucket); one column per metric present in ``frame``."""
    present = [m for m in metrics if m in set(frame["metric"])]
    overall = wide(select(frame, region=None, bucket=ALL), index="region", metrics=present)
    overall = overall.reindex([r for r in REGIONS if r in overall.index])
    in_buckets = select(frame, region=ALL, bucket=None)
    in_buckets = wide(in_buckets[in_buckets["bucket"] != ALL], index="bucket", metrics=present)
    in_buckets.index = [f"bucket {b}" for b in in_buckets.index]
    table = pd.concat([overall, in_buckets]).reindex(columns=present).astype(float)
    table.index.name = "subset"
    return table


def metrics_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One evaluation's result frame as display tables.

    Returns
    -------
    dict[str, pandas.DataFrame]
        ``"cr"`` (model reconstruction), ``"cr_input"`` (the cloudy input scored against the
        clear target, ``input_*`` columns) and ``"seg"`` (if the model segments), each a
        :func:`subset_table`; plus ``"summary"`` (:data:`SUMMARY_COLUMNS` per subset).
    """
    tables: dict[str, pd.DataFrame] = {}
    for kind, metrics in (
        ("cr", CR_METRICS),
        ("cr_input", [INPUT_PREFIX + m for m in CR_METRICS]),
        ("seg", SEG_METRICS),
    ):
        table = subset_table(frame, metrics)
        if len(table.columns):
            tables[kind] = table
    if "cr" in tables:
        summary = subset_table(frame, [c for c in SUMMARY_COLUMNS if c != "psnr_gain"])
        if "input_psnr" in summary:
            summary.insert(
                summary.columns.get_loc("input_psnr") + 1, "psnr_gain", summary["psnr"] - summary["input_psnr"]
            )
        tables["summary"] = summary
    return tables


def dataframe_to_markdown(frame, digits: int = 4, index: bool = True) -> str:
    """A GitHub-flavoured markdown table (no ``tabulate`` dependency); NaN → ``–``.

    Floats get ``digits`` decimals, or those :func:`readable` recorded for their column.
    """
    per_column = frame.attrs.get("decimals", {})

    def fmt(value: Any, column: Any) -> str:
        if isinstance(value, float | np.floating):
            places = per_column.get(str(column), digits)
            return "–" if not math.isfinite(float(value)) else f"{float(value):.{places}f}"
        if value is None or value is pd.NA:
            return "–"
        return str(value)

    header = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for label, row in frame.iterrows():
        cells = ([str(label)] if index else []) + [fmt(v, c) for v, c in zip(row.tolist(), frame.columns, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
