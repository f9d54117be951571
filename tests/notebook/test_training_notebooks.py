"""Notebooks 01-03 run headless (papermill, SMOKE) on tiny data and record sane metrics."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _notebook_outputs import assert_figures_inline

from tdpcr_lib.core.paths import NOTEBOOKS_DIR
from tdpcr_lib.metrics.results import from_records, value
from tdpcr_lib.notebook.reproduce import run_notebooks

NAMES = ("01_train_phase1", "02_train_phase2", "03_evaluate")


@pytest.fixture(scope="module")
def executed(tiny_luojiaset_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("notebooks")
    parameters = {
        "DATA_ROOT": str(tiny_luojiaset_root),
        "SOURCE": "synthetic",
        "RUNS_DIR": str(base / "runs"),
        "REPORTS_DIR": str(base / "reports"),
        "SMOKE": True,
        "SEED": 0,
        "DEVICE": "cpu",
    }
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")  # the kernels share 2 cores with other work
    try:
        run_notebooks(
            [NOTEBOOKS_DIR / f"{name}.ipynb" for name in NAMES],
            parameters,
            base / "executed",
            progress=False,
            log=lambda *_: None,
        )
    finally:
        mp.undo()
    return base


def _metrics(base: Path, name: str) -> dict:
    return json.loads((base / "reports" / "metrics" / f"{name}.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_notebook_structure_is_pythia_style_and_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    headings = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert any("## Overview" in h for h in headings)
    assert any("## Summary" in h for h in headings) and any("## What's next" in h for h in headings)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert not any("def " in c.source or "class " in c.source for c in code)
    imports = [c for c in code if c.source.lstrip().startswith(("import", "from"))]
    assert len(imports) == 1


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_declare_the_shared_parameters(name, recwarn):
    from tdpcr_lib.notebook.reproduce import declared_parameters

    declared = set(declared_parameters(NOTEBOOKS_DIR / f"{name}.ipynb"))
    shared = {"DATA_ROOT", "SOURCE", "RUNS_DIR", "REPORTS_DIR", "SEED", "DEVICE", "SMOKE", "FULL"}
    training = {"EPOCHS", "MAX_STEPS", "CONFIG"} if name != "03_evaluate" else set()
    assert shared | training <= declared


def test_phase1_notebook_records_training_metrics(executed):
    record = _metrics(executed, "01_train_phase1")
    assert record["parameters"]["SMOKE"] is True and record["seed"] == 0
    assert record["git_sha"] and record["wall_time_s"] > 0 and record["device"].startswith("cpu")
    metrics = record["metrics"]
    assert metrics["best_metric"] == "psnr" and metrics["steps"] == 3
    # the plateau judgement of the shared rule: 3 steps = 1 validation, never judged
    assert metrics["plateau"]["reached"] is False and metrics["plateau"]["gain"] is None
    assert 0 < metrics["validation"]["val_psnr"] < 60
    assert 0 <= metrics["validation"]["val_ssim"] <= 1
    assert metrics["parameters"]["trainable"] == metrics["parameters"]["total"] > 0
    assert (executed / "runs" / "phase1" / "best" / "model.safetensors").is_file()
    assert (executed / "reports" / "figures" / "01_train_phase1_curves.png").stat().st_size > 0


def test_phase2_notebook_trains_a_fraction_of_the_parameters(executed):
    metrics = _metrics(executed, "02_train_phase2")["metrics"]
    assert metrics["best_metric"] == "miou"
    assert 0 < metrics["parameters"]["trainable"] < metrics["parameters"]["total"]
    assert metrics["parameters"]["groups"]["optical_encoder"]["trainable"] == 0
    assert 0 <= metrics["validation"]["val_miou"] <= 1
    assert 0 <= metrics["validation"]["val_oa"] <= 1


def test_evaluation_notebook_writes_metrics_figures_and_results_page(executed):
    record = _metrics(executed, "03_evaluate")
    metrics = record["metrics"]
    for key in (
        "psnr",
        "psnr_cloudy",
        "input_psnr_cloudy",
        "psnr_gain_cloudy",
        "ssim",
        "sam",
        "miou",
        "oa",
        "majority_miou",
        "majority_oa",
        "miou_gain_over_majority",
    ):
        assert key in metrics and metrics[key] is not None and math.isfinite(metrics[key]), key
    assert 0 < metrics["psnr"] < 60 and 0 <= metrics["ssim"] <= 1
    assert 0 <= metrics["miou"] <= 1 and 0 <= metrics["majority_oa"] <= 1
    # 95 % intervals over test tiles for the headline numbers (issue 21)
    for key in ("psnr", "psnr_cloudy", "miou"):
        assert {f"{key}_ci95_low", f"{key}_ci95_high"} <= set(metrics), key
    assert metrics["psnr_ci95_low"] < metrics["psnr_ci95_high"]
    assert "## 95 % intervals over test tiles" in (executed / "reports" / "results.md").read_text()
    evaluation = from_records(metrics["evaluation"])
    assert value(evaluation, "psnr") == pytest.approx(metrics["psnr"])
    assert set(evaluation["bucket"]) - {"all"} <= {"0-20%", "20%-40%", "40%-60%", "60%-80%", "80%-100%"}
    majority = from_records(metrics["majority"]["metrics"])
    assert value(majority, "miou") == pytest.approx(metrics["majority_miou"])
    figures = executed / "reports" / "figures"
    assert (figures / "03_evaluate_buckets.png").is_file()
    assert (figures / "03_evaluate_example.png").is_file()
    # the transfer check on the shipped real samples: measured, one row each, with its page
    transfer = {row["sample"]: row for row in metrics["transfer_check"]}
    assert set(transfer) == {"ROIs1970_fall_139_p839", "ROIs2017_winter_112_p797"}
    assert all(math.isfinite(r["psnr_prediction_as_is"]) for r in transfer.values())
    assert (figures / "03_evaluate_transfer.png").is_file()
    assert "ROIs1970_fall_139_p839" in (executed / "reports" / "transfer_check.md").read_text()
    page = (executed / "reports" / "results.md").read_text()
    ours, reference = page.split("## The paper's claims (reference only)")
    assert "majority mIoU (%)" in ours and "+0.18 dB" in reference and "+0.18" not in ours


def test_executed_notebooks_show_every_figure_inline(executed):
    """Curves (01, 02), per-bucket and example figures (03) are images, not ``<Figure ...>``."""
    files = sorted((executed / "executed").glob("0*.ipynb"))
    assert len(files) == 3
    assert_figures_inline(*files)


@pytest.mark.slow  # re-executes notebooks 01-03 that the fixture already ran with papermill
def test_executed_notebooks_pass_nbval_lax(executed):
    files = sorted(str(p) for p in (executed / "executed").glob("0*.ipynb"))
    assert len(files) == 3
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(executed),
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=executed,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
