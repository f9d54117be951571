"""Metrics as pandas tables and markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tdpcr_lib.metrics.results import (
    ALL,
    CR_METRICS,
    INPUT_PREFIX,
    REGIONS,
    SEG_METRICS,
    select,
    wide,
)

#: Columns of the ``summary`` table (``psnr_gain`` = ``psnr`` − ``input_psnr``).
SUMMARY_COLUMNS: tuple[str, ...] = ("psnr", "input_psnr", "psnr_gain", "ssim", "sam", "mae",
                                    "miou", "oa")


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
    for kind, metrics in (("cr", CR_METRICS), ("cr_input", [INPUT_PREFIX + m for m in CR_METRICS]),
                          ("seg", SEG_METRICS)):
        table = subset_table(frame, metrics)
        if len(table.columns):
            tables[kind] = table
    if "cr" in tables:
        summary = subset_table(frame, [c for c in SUMMARY_COLUMNS if c != "psnr_gain"])
        if "input_psnr" in summary:
            summary.insert(summary.columns.get_loc("input_psnr") + 1, "psnr_gain",
                           summary["psnr"] - summary["input_psnr"])
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
