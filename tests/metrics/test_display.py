"""Every table a person reads shows a metric the same way: unit in the heading, sensible rounding,
while the stored numbers stay raw."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tdpcr_lib.evaluation.intervals import intervals_table
from tdpcr_lib.evaluation.tables import dataframe_to_markdown, readable, readable_record
from tdpcr_lib.metrics.display import shown
from tdpcr_lib.plot.tile_metrics import metrics_frame


@pytest.mark.parametrize(
    ("column", "heading", "scale", "decimals"),
    [
        ("psnr", "PSNR (dB)", 1, 2),
        ("ssim", "SSIM", 1, 3),
        ("sam", "SAM (°)", 1, 2),
        ("miou", "mIoU (%)", 100, 1),
        ("oa", "OA (%)", 100, 1),
        ("input_psnr", "input PSNR (dB)", 1, 2),
        ("psnr_cloudy", "PSNR cloudy (dB)", 1, 2),
        ("majority_miou", "majority mIoU (%)", 100, 1),
        ("miou_gain_over_majority", "mIoU gain over majority (points)", 100, 1),
        ("psnr_ci95_low", "PSNR 95 % low (dB)", 1, 2),
        ("iou_class_2", "IoU class 2 (%)", 100, 1),
    ],
)
def test_each_metric_has_its_unit_and_rounding(column, heading, scale, decimals):
    spec = shown(column)
    assert (spec.heading, spec.scale, spec.decimals) == (heading, scale, decimals)


def test_a_table_is_rounded_for_display_and_its_source_stays_raw():
    raw = pd.DataFrame(
        {"psnr": [12.882869], "ssim": [0.2552813], "sam": [9.070669], "miou": [0.035861], "note": ["x"]},
        index=pd.Index(["all"], name="subset"),
    )
    table = readable(raw)
    assert list(table.columns) == ["PSNR (dB)", "SSIM", "SAM (°)", "mIoU (%)", "note"]
    assert table.iloc[0].tolist() == [12.88, 0.255, 9.07, 3.6, "x"]
    assert raw.loc["all", "psnr"] == 12.882869  # the source is untouched
    # markdown (results.md) shows each column with its own decimals, NaN as a dash
    raw.loc["cloudy"] = [9.0, 0.1, np.nan, 0.5, "y"]
    lines = dataframe_to_markdown(readable(raw)).splitlines()
    assert lines[2] == "| all | 12.88 | 0.255 | 9.07 | 3.6 | x |"
    assert lines[3] == "| cloudy | 9.00 | 0.100 | – | 50.0 | y |"


def test_records_intervals_and_the_viewer_agree():
    record = readable_record({"psnr": 12.882869, "miou": 0.035861, "majority_class": 6})
    assert record["value"].tolist() == ["12.88", "3.6", "6"]
    assert list(record.index) == ["PSNR (dB)", "mIoU (%)", "majority_class"]
    intervals = {"psnr_ci95_low": 7.9081, "psnr_ci95_high": 18.116, "miou_ci95_low": 0.0116, "ci95_n_tiles": 4}
    table = intervals_table({"psnr": 12.882869, "miou": 0.035861}, intervals)
    assert table.loc["PSNR (dB)"].tolist() == ["12.88", "7.91", "18.12"]
    assert table.loc["mIoU (%)"].tolist() == ["3.6", "1.2", "—"]
    viewer = metrics_frame({"TDP-CR": {"psnr": 12.882869, "miou": 0.035861, "ssim": math.nan}})
    assert viewer.loc["TDP-CR", "PSNR (dB)"] == "12.88" and viewer.loc["TDP-CR", "mIoU (%)"] == "3.6"
    assert viewer.loc["TDP-CR", "SSIM"] == "n/a"
