"""Silently wrong predictions and evaluations (issue 26, items 9 and 10)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.evaluation.evaluate import evaluate
from tdpcr_lib.inference import inputs as P_inputs
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint import CheckpointError, save_checkpoint
from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.notebook.reproduce import parameters_for

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("how", ["nan", "nodata"])
def test_s1_without_finite_values_warns_and_reports_zero_coverage(tmp_path, how):
    sc = make_synthetic_scene(tmp_path, 40, 40, seed=2)
    with rasterio.open(sc.s1, "r+") as dst:
        if how == "nan":
            dst.write(np.full((dst.count, dst.height, dst.width), np.nan, dtype=np.float32))
        else:
            dst.nodata = -9999.0
            dst.write(np.full((dst.count, dst.height, dst.width), -9999.0, dtype=np.float32))
    with pytest.warns(UserWarning, match="no finite value"):
        inputs = P_inputs.open_scene_inputs(sc.s2_cloudy, sc.s1)
    try:
        assert inputs.s1_coverage == 0.0
    finally:
        inputs.close()


def test_a_good_s1_gives_no_new_warning(tmp_path):
    sc = make_synthetic_scene(tmp_path, 40, 40, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inputs = P_inputs.open_scene_inputs(sc.s2_cloudy, sc.s1)
    assert inputs.s1_coverage == pytest.approx(1.0)
    inputs.close()


@pytest.mark.parametrize("legend", ["igbp_simplified"])
def test_evaluating_a_checkpoint_of_another_legend_is_refused(fake_luojiaset_root, tmp_path, legend):
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny", with_seg_decoder=True, legend=legend, num_classes=10))
    ckpt = save_checkpoint(tmp_path / "best", model, phase="phase2", epoch=0, step=0)
    with pytest.raises(CheckpointError, match="legend"):
        evaluate(ckpt, LuojiaSETOSFCR(fake_luojiaset_root, "test"), device="cpu", progress=False, max_batches=1)


def test_notebook_06_takes_the_runs_dir_of_reproduce():
    notebook = REPO / "notebooks" / "06_predict_own_scene.ipynb"
    assert parameters_for(notebook, {"RUNS_DIR": "/r"}) == {"RUNS_DIR": "/r"}
    source = (REPO / "notebooks" / "06_predict_own_scene.py").read_text()
    assert 'CHECKPOINT = str(Path(RUNS_DIR) / "phase2" / "best")' in source
