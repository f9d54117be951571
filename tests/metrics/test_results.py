"""The result frame: vocabulary, accessors, display pivot and JSON round trip."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from tdpcr_lib.metrics.results import (
    COLUMNS,
    METRICS,
    REGIONS,
    buckets,
    column_name,
    from_records,
    has,
    headline,
    iou_class,
    make_frame,
    metric_spec,
    parse_column_name,
    to_records,
    value,
    wide,
)
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.training.config import TrainConfig, resolve_best_metric


def two_runs() -> pd.DataFrame:
    rows = [
        ("all", "all", "psnr", 30.0),
        ("cloudy", "all", "psnr", 25.0),
        ("clear", "all", "psnr", 35.0),
        ("all", "0-20%", "psnr", 31.0),
        ("all", "all", "input_psnr", 20.0),
        ("cloudy", "all", "input_psnr", 12.0),
        ("all", "all", "miou", 0.5),
        ("cloudy", "all", "sam", float("nan")),
    ]
    first = make_frame(rows, model="tdpcr", seed=0, split="test")
    second = make_frame([(r, b, m, v + 1) for r, b, m, v in rows], model="tdpcr", seed=1, split="test")
    return pd.concat([first, second], ignore_index=True)


def test_vocabulary_is_defined_once_and_complete():
    assert REGIONS == ("all", "cloudy", "clear")
    for metric in (
        "psnr",
        "ssim",
        "sam",
        "mae",
        "rmse",
        "oa",
        "macc",
        "fwiou",
        "miou",
        "n_images",
        "input_psnr",
        "input_sam",
    ):
        assert metric in METRICS
    assert METRICS["psnr"].unit == "dB" and METRICS["sam"].higher_is_better is False
    assert metric_spec(iou_class(3)).task == "seg"
    with pytest.raises(KeyError, match="unknown metric"):
        metric_spec("psnr_db")


def test_value_selects_exactly_one_row():
    frame = two_runs()
    assert list(frame.columns) == list(COLUMNS)
    assert value(frame, "psnr", "cloudy", seed=1) == 26.0
    assert value(frame, "psnr", bucket="0-20%", seed=0) == 31.0
    assert math.isnan(value(frame, "sam", "cloudy", seed=0))
    with pytest.raises(ValueError, match="seed="):
        value(frame, "psnr")  # two seeds: ambiguous
    with pytest.raises(KeyError, match="ssim"):
        value(frame, "ssim", seed=0)
    assert has(frame, "miou") and not has(frame, "miou", "cloudy")
    assert buckets(frame) == ["0-20%"]


def test_column_names_round_trip_and_headline():
    for metric, region, bucket in (
        ("psnr", "all", "all"),
        ("input_psnr", "cloudy", "all"),
        ("miou", "clear", "20%-40%"),
        (iou_class(2), "all", "all"),
    ):
        assert parse_column_name(column_name(metric, region, bucket)) == (metric, region, bucket)
    assert column_name("psnr") == "psnr" and column_name("miou", "cloudy") == "miou_cloudy"
    one = two_runs().query("seed == 0")
    assert headline(one, prefix="val_") == {
        "val_psnr": 30.0,
        "val_psnr_cloudy": 25.0,
        "val_input_psnr_cloudy": 12.0,
        "val_miou": 0.5,
    }


def test_wide_pivots_in_order_and_averages_seeds():
    table = wide(two_runs().query("bucket == 'all'"), index="region", metrics=("psnr", "input_psnr"))
    assert list(table.index) == ["all", "cloudy", "clear"]
    assert list(table.columns) == ["psnr", "input_psnr"]
    assert table.loc["cloudy", "psnr"] == 25.5  # mean over the two seeds
    by_seed = wide(two_runs(), index=("model", "seed"), metrics=("psnr",))
    assert by_seed.shape == (2, 1)


def test_records_round_trip_through_json():
    frame = two_runs()
    records = json.loads(json.dumps(to_records(frame)))
    assert records[-1]["value"] is None and records[0]["seed"] == 0
    pd.testing.assert_frame_equal(from_records(records), frame)


def test_best_metric_names_come_from_the_vocabulary():
    model = build_model(ModelConfig.small())
    assert resolve_best_metric(TrainConfig(phase="phase1"), model) == "psnr"
    assert resolve_best_metric(TrainConfig(phase="phase1", best_metric="psnr_cloudy"), model) == "psnr_cloudy"
    with pytest.raises(KeyError, match="unknown metric"):
        resolve_best_metric(TrainConfig(phase="phase1", best_metric="cr.all.psnr"), model)
