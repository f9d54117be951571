"""95 % intervals over test tiles: per-tile scores agree with the headline, intervals are the
stated ones and are written to results.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from tdpcr_lib.datasets.sources import open_dataset
from tdpcr_lib.evaluation import intervals
from tdpcr_lib.evaluation.evaluate import evaluate
from tdpcr_lib.evaluation.report import headline_metrics, results_markdown
from tdpcr_lib.inference.scoring import accumulate_metrics, scored_classes
from tdpcr_lib.metrics.functional import segmentation_scores
from tdpcr_lib.models import ModelConfig, build_model


def test_t_interval_is_scipys_and_needs_two_values():
    values = [30.0, 31.5, 29.0, 30.5, float("nan")]
    low, high = intervals.t_interval(values)
    expected = scipy_stats.ttest_1samp(values[:4], 0).confidence_interval(0.95)
    assert (low, high) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert all(math.isnan(v) for v in intervals.t_interval([1.0]))


def test_bootstrap_miou_is_reproducible_and_brackets_the_pooled_value():
    rng = np.random.default_rng(0)
    confusions = [np.diag(rng.integers(50, 100, 3)) + rng.integers(0, 20, (3, 3)) for _ in range(30)]
    first, again = intervals.bootstrap_miou(confusions), intervals.bootstrap_miou(confusions)
    pooled = segmentation_scores(np.sum(confusions, axis=0))["miou"]
    assert first == again and first[0] < pooled < first[1]


def test_per_tile_scores_reproduce_the_headline_and_give_its_intervals(tiny_luojiaset_root):
    torch.manual_seed(0)
    model = build_model(ModelConfig.small(with_seg_decoder=True)).eval()
    test_set = open_dataset(tiny_luojiaset_root, split="test")
    # batches of 3 images: the hook must score each image of a batch alone
    result = evaluate(model, test_set, device="cpu", tile=None, progress=False, batch_size=3, tile_intervals=True)
    per_tile = intervals.TileScores(*scored_classes(model, test_set))
    accumulate_metrics(model, test_set, device="cpu", batch_size=3, on_batch=per_tile)
    scores = per_tile.scores
    assert len(scores) == len(test_set)
    headline = headline_metrics(result)
    # the headline PSNR is the mean of the per-tile PSNRs; the mIoU pools their confusions
    assert np.mean([s["psnr"] for s in scores]) == pytest.approx(headline["psnr"], rel=1e-6)
    pooled = np.sum([s["confusion"] for s in scores], axis=0)
    assert segmentation_scores(pooled)["miou"] == pytest.approx(headline["miou"], rel=1e-6)
    out = result.meta["intervals"]
    assert out == intervals.headline_intervals(scores)
    for metric in ("psnr", "miou"):
        assert out[f"{metric}_ci95_low"] < headline[metric] < out[f"{metric}_ci95_high"]
    assert out["ci95_n_tiles"] == len(test_set)
    page = results_markdown(result, intervals=out)
    assert "## 95 % intervals over test tiles" in page
    assert f"[{out['psnr_ci95_low']:.2f}, {out['psnr_ci95_high']:.2f}] dB" in page


def test_evaluation_without_tile_intervals_has_none(tiny_luojiaset_root):
    model = build_model(ModelConfig.small(with_seg_decoder=True)).eval()
    result = evaluate(model, open_dataset(tiny_luojiaset_root, split="test"), device="cpu", tile=None, progress=False)
    assert "intervals" not in result.meta
