"""Notebooks 04 (ablations) and 05 (visual comparison) run headless with papermill (smoke mode)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from _notebook_outputs import assert_figures_inline

from tdpcr_lib.core.paths import NOTEBOOKS_DIR
from tdpcr_lib.evaluation.ablations import report as ablations_report
from tdpcr_lib.evaluation.ablations import spec as ablations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(name: str, out_dir: Path, **parameters) -> nbformat.NotebookNode:
    import papermill

    output = out_dir / name
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / name),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOKS_DIR),
        execution_timeout=600,
    )  # a hung cell fails instead of blocking
    return nbformat.read(output, as_version=4)


@pytest.fixture(scope="module")
def executed(tiny_luojiaset_root, tmp_path_factory):
    """04 then 05 in smoke mode, sharing one runs folder; then 04 again (must reuse)."""
    work = tmp_path_factory.mktemp("nb_ablations")
    common = {
        "DATA_ROOT": str(tiny_luojiaset_root),
        "RUNS_DIR": str(work / "runs"),
        "REPORTS_DIR": str(work / "reports"),
        "SMOKE": True,
        "DEVICE": "cpu",
    }
    # narrow baselines keep the test fast; the faithful sizes are covered by the model tests
    narrow = {
        "dsen2cr": {"dsen2cr_features": 16, "dsen2cr_blocks": 2},
        "multitask_unet": {"unet_widths": [8, 16, 16, 32, 32]},
    }
    first = _run("04_ablations.ipynb", work, **common, MODEL_OVERRIDES=narrow)
    first_record = json.loads((work / "reports" / "metrics" / "04_ablations.json").read_text())
    compare = _run("05_compare_visually.ipynb", work, **common, SAMPLE_CROP=32, ZOOM=2)
    second = _run("04_ablations.ipynb", work, **common, MODEL_OVERRIDES=narrow)
    return {"work": work, "first": first, "first_record": first_record, "compare": compare, "second": second}


@pytest.mark.parametrize("name", ["04_ablations.ipynb", "05_compare_visually.ipynb"])
def test_notebooks_are_committed_clean_with_one_parameters_cell(name):
    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for key in ("DATA_ROOT", "SOURCE", "RUNS_DIR", "SEED", "DEVICE", "SMOKE", "FULL"):
        assert f"{key} = " in tagged[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert nb.cells[0].source.startswith("# ")
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    assert "## Prerequisites" in headings and any(h.startswith("## Summary") for h in headings)
    assert not any("def " in c.source or "class " in c.source for c in nb.cells if c.cell_type == "code")


def test_04_writes_table_report_and_figure(executed):
    record = executed["first_record"]
    models = record["metrics"]["models"]
    assert list(models) == list(ablations.ABLATIONS)
    assert record["metrics"]["n_runs"] == len(ablations.ABLATIONS)
    assert record["resolved"]["budget"]["model_overrides"]["dsen2cr"]["dsen2cr_blocks"] == 2
    report = (executed["work"] / "reports" / "ablations.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| model"))
    for column in ablations_report.TABLE_COLUMNS:
        assert column in header
    for spec in ablations.ABLATIONS.values():
        assert f"| {spec.label} |" in report
    assert "| TDP-CR vs DSen2-CR: ΔPSNR |" in report and "equal training FLOPs" in report
    assert "paper (reference only, not ours)" in report and "(indicative: smoke budget)" in report
    for figure in (
        "04_ablations_per_bucket.png",
        "04_ablations_curves_vs_compute.png",
        "04_ablations_claims_vs_budget.png",
    ):
        png = executed["work"] / "reports" / "figures" / figure
        assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 10_000
    # the JSON schema of the issue: runs (model × seed) and claims (one per comparison)
    assert [(r["model"], r["seed"]) for r in record["runs"]] == [(name, 0) for name in ablations.ABLATIONS]
    assert all({"steps", "plateau", "metrics"} <= set(r) for r in record["runs"])
    assert {c["name"] for c in record["claims"]} >= {"delta_psnr_vs_dsen2cr", "delta_miou_vs_multitask"}
    # smoke runs are never validated: no claim is comparable, none has a direction or curve
    assert all(
        c["n_seeds"] == 1 and c["status"] == "not comparable" and c["direction"] is None and c["by_budget"] == []
        for c in record["claims"]
    )
    assert all("supports" not in c["verdict"] for c in record["claims"])
    verdicts_page = (executed["work"] / "reports" / "verdicts.md").read_text()
    assert "synthetic twin" in verdicts_page and "Indicative only" in verdicts_page
    for name in ablations.ABLATIONS:
        assert (executed["work"] / "runs" / "ablations" / f"{name}_seed0" / "results.json").is_file()


def test_04_and_05_show_every_figure_inline(executed):
    """The per-bucket figure (04), the comparisons and the prompt maps (05) are images."""
    work = executed["work"]
    assert_figures_inline(work / "04_ablations.ipynb", work / "05_compare_visually.ipynb")


def test_04_rerun_reuses_every_run(executed):
    record = json.loads((executed["work"] / "reports" / "metrics" / "04_ablations.json").read_text())
    assert record["metrics"]["n_reused"] == len(ablations.ABLATIONS)
    first = executed["first_record"]["metrics"]["models"]["tdpcr_full"]["metrics"]["psnr"]
    assert record["metrics"]["models"]["tdpcr_full"]["metrics"]["psnr"] == first


def test_05_writes_static_pngs_and_renders_the_viewer(executed):
    record = json.loads((executed["work"] / "reports" / "metrics" / "05_compare_visually.json").read_text())
    figures = [Path(p) for p in record["metrics"]["figures"]]
    assert len(figures) == 4  # 2 tiles in smoke mode, each whole + zoom
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.stat().st_size > 10_000 for p in figures)
    assert len(record["metrics"]["models"]) == len(ablations.ABLATIONS)
    assert record["metrics"]["viewer_renders"] == 1
    tile_metrics = next(iter(record["metrics"]["tiles"].values()))
    assert set(tile_metrics) == {f"{name} (seed 0)" for name in ablations.ABLATIONS}
    assert (executed["work"] / "reports" / "figures" / "05_prompt_maps.png").is_file()
