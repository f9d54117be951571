"""Evaluation: sliding window, tables, majority baseline, results page and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tdpcr_lib.cli.evaluate import main
from tdpcr_lib.core.legend import class_scheme, load_legend
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.datasets.sources import legend_of_data
from tdpcr_lib.datasets.synthetic.landscape import SYNTHETIC_CLASSES
from tdpcr_lib.evaluation.evaluate import EvaluationResult, evaluate
from tdpcr_lib.evaluation.majority import MajorityBaseline, majority_class_baseline
from tdpcr_lib.evaluation.report import headline_metrics, results_markdown
from tdpcr_lib.evaluation.tables import (
    band_error_under_clouds,
    dataframe_to_markdown,
    normalised_confusion,
    per_class_iou_table,
)
from tdpcr_lib.inference.tiling import TileGrid, sliding_window_predict
from tdpcr_lib.metrics.results import REGIONS, has, label, make_frame, select, value
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models.checkpoint import save_checkpoint
from tdpcr_lib.samplers import IndexSubset


class PerPixel(nn.Module):
    """A per-pixel model (1×1 convs): tiling must not change its output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rec = nn.Conv2d(15, 13, 1)
        self.seg = nn.Conv2d(15, 7, 1)

    def forward(self, optical, sar):
        x = torch.cat([optical, sar], 1)
        return {"reconstruction": self.rec(x), "segmentation": self.seg(x)}


class Identity(nn.Module):
    """Returns the cloudy input as the reconstruction (scores exactly like the 'input_*' metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig.small(arch="dsen2cr")
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, optical, sar):
        return {"reconstruction": optical + 0 * self.dummy}


@pytest.fixture(scope="module")
def test_set(tiny_luojiaset_root):
    return LuojiaSETOSFCR(tiny_luojiaset_root, split="test")


@pytest.mark.parametrize(("size", "tile", "overlap"), [(40, 16, 4), (37, 16, None), (32, 32, 8)])
def test_sliding_window_equals_a_single_pass_for_a_per_pixel_model(size, tile, overlap):
    model = PerPixel().eval()
    generator = torch.Generator().manual_seed(1)
    optical = torch.rand(2, 13, size, size + 3, generator=generator)
    sar = torch.rand(2, 2, size, size + 3, generator=generator)
    tiled = sliding_window_predict(model, optical, sar, tile=tile, overlap=overlap)
    whole = sliding_window_predict(model, optical, sar, tile=None)
    torch.testing.assert_close(tiled["reconstruction"], whole["reconstruction"], atol=1e-5, rtol=1e-5)
    assert torch.equal(tiled["segmentation"].argmax(1), whole["segmentation"].argmax(1))


@pytest.mark.parametrize(("size", "tile", "overlap"), [(37, 16, 4), (61, 24, None)])
def test_pad_aligned_sliding_window_equals_a_single_pass_for_a_per_pixel_model(size, tile, overlap):
    """With ``pad_multiple`` the origins snap to the grid and the last tile is reflect-padded."""
    model = PerPixel().eval()
    model.pad_multiple = 8
    generator = torch.Generator().manual_seed(2)
    optical = torch.rand(1, 13, size, size + 5, generator=generator)
    sar = torch.rand(1, 2, size, size + 5, generator=generator)
    grid = TileGrid.plan(size, size + 5, tile, overlap, align=8)
    assert all(y % 8 == 0 for y in grid.ys) and grid.canvas_height > size  # sticks out
    tiled = sliding_window_predict(model, optical, sar, tile=tile, overlap=overlap)
    whole = sliding_window_predict(model, optical, sar, tile=None)
    assert tiled["reconstruction"].shape == whole["reconstruction"].shape
    torch.testing.assert_close(tiled["reconstruction"], whole["reconstruction"], atol=1e-5, rtol=1e-5)


def test_index_subset_shards_partition_the_dataset_and_keep_its_identity(test_set):
    shards = [IndexSubset.shard(test_set, rank, 2) for rank in range(2)]
    assert sorted(shards[0].indices + shards[1].indices) == list(range(len(test_set)))
    assert all(s.split == "test" and s.manifest_hash == test_set.manifest_hash for s in shards)
    assert shards[1][0]["id"] == test_set[1]["id"]


def test_sliding_window_blends_tile_dependent_outputs_convexly():
    class TileMean(nn.Module):  # each tile's output = its own mean: differs from tile to tile
        def forward(self, optical, sar):
            return {"reconstruction": optical.mean((-2, -1), keepdim=True).expand_as(optical)}

    optical = torch.linspace(0, 1, 48).repeat(1, 13, 48, 1)
    out = sliding_window_predict(TileMean(), optical, torch.zeros(1, 2, 48, 48), tile=16, overlap=8)["reconstruction"]
    assert out.shape == optical.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert float(out[..., 0].mean()) < float(out[..., -1].mean())  # follows the gradient
    with pytest.raises(ValueError, match="overlap must be"):
        sliding_window_predict(TileMean(), optical, torch.zeros(1, 2, 48, 48), tile=16, overlap=16)


def test_identity_model_scores_exactly_like_the_cloudy_input(test_set):
    result = evaluate(Identity(), test_set, device="cpu", tile=None, progress=False)
    assert result.n_images == len(test_set) == 5
    for region in REGIONS:
        for metric in ("psnr", "mae", "rmse"):
            ours = result.value(metric, region)
            reference = result.value("input_" + metric, region)
            assert ours == pytest.approx(reference, rel=1e-6) or (np.isnan(ours) and np.isnan(reference))
    tables = result.tables
    assert list(tables["cr"].index[:3]) == ["all", "cloudy", "clear"]
    assert {f"bucket {b}" for b in BUCKETS} <= set(tables["cr"].index)
    assert "seg" not in tables  # the model does not segment
    headline = headline_metrics(result)
    assert headline["psnr_gain_cloudy"] == pytest.approx(0.0, abs=1e-6)


def test_evaluate_checkpoint_uses_the_training_crop_as_sliding_window(test_set, tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig.small(with_seg_decoder=True))
    save_checkpoint(tmp_path / "ck", model, phase="phase2", epoch=1, step=1, train_config={"crop_size": 16})
    result = evaluate(tmp_path / "ck", test_set, device="cpu", progress=False)
    assert result.meta["tile"] == 16 and result.meta["overlap"] == 4
    seg = result.tables["seg"]
    assert set(seg.columns) == {"oa", "macc", "fwiou", "miou"}
    assert ((seg["oa"] >= 0) & (seg["oa"] <= 1)).all()
    summary = result.tables["summary"]
    assert {"psnr", "input_psnr", "psnr_gain", "miou", "oa"} <= set(summary.columns)
    markdown = result.to_markdown()
    assert "## Segmentation" in markdown and "| bucket 0-20% |" in markdown


def test_majority_baseline_matches_a_hand_count(tiny_luojiaset_root, test_set):
    train_set = LuojiaSETOSFCR(tiny_luojiaset_root, split="train")
    counts = np.zeros(7, dtype=np.int64)
    for i in range(len(train_set)):
        labels = train_set[i]["mask"].numpy().ravel()
        counts += np.bincount(labels[labels != 255], minlength=7)[:7]
    majority = majority_class_baseline(train_set, test_set)
    assert majority.class_index == int(np.argmax(counts))
    test_labels = np.concatenate([test_set[i]["mask"].numpy().ravel() for i in range(len(test_set))])
    valid = test_labels[test_labels != 255]
    assert value(majority.frame, "oa") == pytest.approx(float(np.mean(valid == majority.class_index)), abs=1e-9)
    assert majority.train_fraction == pytest.approx(counts.max() / counts.sum())
    assert set(majority.frame["model"]) == {"majority class"} and not has(majority.frame, "psnr")
    assert json.loads(json.dumps(majority.to_dict()))["class"] == majority.class_index


def test_results_page_keeps_the_paper_apart_from_our_numbers(test_set):
    result = evaluate(PerPixel(), test_set, device="cpu", tile=None, progress=False)
    seg_rows = select(result.frame, region=None, bucket=None)
    seg_rows = seg_rows[seg_rows["metric"].isin(["miou", "oa"])].assign(value=0.25)
    majority = MajorityBaseline(6, "x", 0.5, label(seg_rows, model="majority class"))
    page = results_markdown(result, majority)
    ours, reference = page.split("## The paper's claims (reference only)")
    assert "+0.18 dB" not in ours and "+0.18 dB" in reference
    assert "Paper (reference, not ours)" in reference
    assert "majority mIoU (%)" in ours and "input PSNR (dB)" in ours
    headline = headline_metrics(result, majority)
    assert headline["majority_miou"] == 0.25
    assert headline["miou_gain_over_majority"] == pytest.approx(headline["miou"] - 0.25)
    # one unit: OA and mIoU in percent, as in ablations.md; per-class IoU and confusion matrix
    assert "majority mIoU (%)" in ours and "| 25.0 |" in ours
    assert "### Per-class IoU" in ours and "### Normalised confusion matrix" in ours
    assert result.meta["confusion"] is not None


def test_per_class_and_confusion_tables_are_hand_checkable():
    confusion = np.array([[3, 1], [0, 4]])
    table = normalised_confusion(confusion, ["water", "forest"])
    np.testing.assert_allclose(table.to_numpy(), [[75.0, 25.0], [0.0, 100.0]])
    assert list(table.index) == ["0: water", "1: forest"]
    frame = make_frame([{"region": "all", "bucket": "all", "metric": "iou_class_1", "value": 0.5}])
    iou = per_class_iou_table(frame, ["water", "forest"])
    assert iou.loc["1: forest", "IoU %"] == 50.0 and "0: water" not in iou.index


def test_class_names_come_from_the_twin(tiny_luojiaset_root, tmp_path):
    """One legend lookup per dataset: the twin's own names, wherever its legend is asked for."""
    (tmp_path / "synthetic.json").write_text(json.dumps({"classes": {"1": "water"}}))
    twin = legend_of_data(tmp_path)
    assert twin.names[:2] == ("road", "water") and twin.name == "synthetic"
    assert legend_of_data(None).names[0] == "class 0"
    assert class_scheme(twin.name) == class_scheme(legend_of_data(None).name)
    assert list(load_legend(name="synthetic").names) == list(SYNTHETIC_CLASSES.values())


def test_band_error_under_clouds_reports_bias_per_band():
    target = torch.full((13, 4, 4), 0.1)
    cloud = torch.zeros(4, 4)
    cloud[:2] = 1
    rec = target.clone()
    rec[1] += 0.02  # B02 too bright everywhere: only cloudy pixels count, all of them +0.02
    table = band_error_under_clouds([({"target": target, "cloud_mask": cloud}, {"reconstruction": rec})])
    assert table.loc["B02", "bias"] == pytest.approx(0.02) and table.loc["B04", "mae"] == 0


def test_markdown_table_formats_nan_and_numbers():
    frame = pd.DataFrame({"psnr": [30.123456, float("nan")]}, index=["all", "cloudy"])
    frame.index.name = "subset"
    assert dataframe_to_markdown(frame, digits=2).splitlines() == [
        "| subset | psnr |",
        "|---|---|",
        "| all | 30.12 |",
        "| cloudy | – |",
    ]


def test_cli_writes_json_and_markdown(tiny_luojiaset_root, tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model(ModelConfig.small())
    save_checkpoint(tmp_path / "run" / "best", model, phase="phase1", epoch=1, step=1)
    code = main(
        [
            str(tmp_path / "run" / "best"),
            "--data-root",
            str(tiny_luojiaset_root),
            "--out",
            str(tmp_path / "eval" / "test"),
            "--no-progress",
            "--tile",
            "none",
        ]
    )
    assert code == 0
    saved = json.loads((tmp_path / "eval" / "test.json").read_text())
    assert saved["meta"]["split"] == "test" and saved["meta"]["n_images"] == 5
    assert EvaluationResult.read(tmp_path / "eval" / "test.json").n_images == 5
    assert "## Cloud removal (model)" in (tmp_path / "eval" / "test.md").read_text()


def test_cli_reports_a_missing_checkpoint(tiny_luojiaset_root, tmp_path, capsys):
    code = main([str(tmp_path / "nothing"), "--data-root", str(tiny_luojiaset_root)])
    assert code == 3  # not found (docs/errors.md)
    assert "does not exist" in capsys.readouterr().err


def test_evaluation_result_writes_atomically_readable_json(tmp_path):
    frame = make_frame([("all", "all", "n_images", 1.0), ("all", "all", "psnr", float("nan"))], model="m", split="test")
    result = EvaluationResult(frame=frame, meta={"split": "test"})
    result.write(tmp_path / "m.json", tmp_path / "m.md")
    rows = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert rows[1] == {
        "model": "m",
        "seed": None,
        "split": "test",
        "region": "all",
        "bucket": "all",
        "metric": "psnr",
        "value": None,
    }
    again = EvaluationResult.read(tmp_path / "m.json")
    pd.testing.assert_frame_equal(again.frame, frame)


def test_results_page_names_a_portable_checkpoint_and_flags_another_dataset(test_set):
    result = evaluate(PerPixel(), test_set, device="cpu", tile=None, progress=False)
    home_checkpoint = "/home/someone/private/runs/phase2/best"
    result.meta["checkpoint"] = home_checkpoint
    page = results_markdown(result)
    assert home_checkpoint not in page and "`phase2/best`" in page
    assert "Not comparable" not in page  # a LuojiaSET model: the claims are its reference
    result.meta["model_config"] = {**(result.meta.get("model_config") or {}), "legend": "igbp_simplified"}
    reference = results_markdown(result).split("## The paper's claims (reference only)")[1]
    assert "Not comparable" in reference and "`igbp_simplified`" in reference
