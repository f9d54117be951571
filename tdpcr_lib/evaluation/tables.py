"""Metrics as pandas tables and markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CR_COLUMNS: tuple[str, ...] = ("psnr", "ssim", "sam", "mae", "rmse")


SEG_COLUMNS: tuple[str, ...] = ("oa", "macc", "fwiou", "miou")


REGIONS: tuple[str, ...] = ("all", "cloudy", "clear")


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


def _region_block(block: Any) -> dict[str, Any] | None:
    if not isinstance(block, dict):
        return None
    return block.get("all", block) if isinstance(block.get("all", block), dict) else None
