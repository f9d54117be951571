"""Notebook 06 runs headless (papermill) in SMOKE mode and says clearly when a checkpoint is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio
from _notebook_outputs import assert_figures_inline

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "06_predict_own_scene.ipynb"


def _run(tmp_path: Path, **parameters) -> Path:
    import papermill as pm

    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(REPO / "notebooks"),
        progress_bar=False,
    )
    return out


def test_notebook_runs_in_smoke_mode(tmp_path):
    out_dir, reports = tmp_path / "out", tmp_path / "reports"
    _run(
        tmp_path,
        SMOKE=True,
        OUT_DIR=str(out_dir),
        REPORTS_DIR=str(reports),
        CHECKPOINT=str(tmp_path / "no_checkpoint_here"),
        DEVICE="cpu",
    )
    for name in ("cloud_free.tif", "land_cover.tif", "degradation_prompt.tif", "prediction.json"):
        assert (out_dir / name).exists()
    with (
        rasterio.open(out_dir / "cloud_free.tif") as cf,
        rasterio.open(out_dir / "input_scene" / "s2_cloudy.tif") as s2,
    ):
        assert (cf.crs, cf.transform, cf.shape, cf.count) == (s2.crs, s2.transform, s2.shape, 13)
    record = json.loads((reports / "metrics" / "06_predict_own_scene.json").read_text())
    metrics = record["metrics"]
    assert metrics["scene"]["height"] == 150 and metrics["scene"]["s1_resampled"] is True
    assert "meaningless" in metrics["checkpoint"]
    assert set(metrics["scores_vs_truth"]) >= {"mae_prediction", "mae_cloudy_input", "land_cover_accuracy"}
    assert (reports / "figures" / "06_predict_own_scene.png").stat().st_size > 10_000
    # the scene figure is an image and the tile bar ends at 100 %, not frozen at 0 %
    assert_figures_inline(tmp_path / "executed.ipynb")


def test_notebook_explains_a_missing_checkpoint(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError, match="Run the training notebooks"):
        _run(
            tmp_path,
            SMOKE=False,
            SCENE_SIZE=[40, 50],
            OUT_DIR=str(tmp_path / "out"),
            REPORTS_DIR=str(tmp_path / "reports"),
            CHECKPOINT=str(tmp_path / "missing"),
        )
