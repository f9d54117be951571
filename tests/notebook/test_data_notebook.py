"""Notebook 00 is generated, committed without outputs, and runs headless (papermill, SMOKE)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from _notebook_outputs import assert_figures_inline

from tdpcr_lib.datasets.manifests import manifest_hash
from tdpcr_lib.datasets.samples import BUCKETS

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "00_get_data.ipynb"
METRIC_KEYS = {
    "source",
    "data_root",
    "manifest_dir",
    "manifest_hash",
    "n_samples",
    "tile_size",
    "counts",
    "class_histogram",
    "class_fraction",
    "mean_cloud_fraction",
    "header_check",
    "read_ms_per_sample",
    "generation_seconds",
}


def _run(tmp_path: Path, **parameters) -> dict:
    import papermill as pm

    reports = tmp_path / "reports"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "executed.ipynb"),
        parameters={"SMOKE": True, "REPORTS_DIR": str(reports), **parameters},
        kernel_name="python3",
        cwd=str(REPO / "notebooks"),
        progress_bar=False,
    )
    return json.loads((reports / "metrics" / "00_get_data.json").read_text())


def test_notebook_makes_the_twin_in_smoke_mode_and_leaves_the_default_reports_alone(tmp_path, monkeypatch):
    """One smoke run (~1 min) checks both: the twin and its record, and that without REPORTS_DIR
    a smoke run writes under <TDPCR_HOME>/reports/smoke/, not reports/."""
    import papermill as pm

    monkeypatch.setenv("TDPCR_HOME", str(tmp_path))  # inherited by the kernel
    root = tmp_path / "twin"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "executed.ipynb"),
        parameters={"SMOKE": True, "DATA_ROOT": str(root)},
        kernel_name="python3",
        cwd=str(REPO / "notebooks"),
        progress_bar=False,
    )
    smoke = tmp_path / "reports" / "smoke"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["smoke"]
    assert "mean nothing" in (smoke / "README.md").read_text()
    record = json.loads((smoke / "metrics" / "00_get_data.json").read_text())
    metrics = record["metrics"]
    assert METRIC_KEYS <= set(metrics)
    assert record["parameters"]["SMOKE"] is True and record["seed"] == 0
    assert metrics["source"] == "synthetic" and metrics["n_samples"] == 50
    assert metrics["tile_size"] == 32
    assert metrics["counts"]["val"] == dict.fromkeys(BUCKETS, 1)
    assert metrics["header_check"] == {"checked": 250, "n_problems": 0}
    assert sum(metrics["class_histogram"].values()) == 50 * 32 * 32
    assert metrics["manifest_hash"] == manifest_hash(root / "manifest")
    fractions = [metrics["mean_cloud_fraction"][b] for b in BUCKETS]
    assert fractions == sorted(fractions)
    figures = smoke / "figures"
    assert (figures / "00_get_data_class_histogram.png").stat().st_size > 5_000
    assert len(list(figures.glob("00_get_data_sample_*.png"))) == 5
    assert_figures_inline(tmp_path / "executed.ipynb")  # histogram and samples are images


@pytest.fixture
def zipped_fake_luojiaset(fake_luojiaset_root, tmp_path) -> Path:
    """The fake data as a user receives it: a zip with a top folder, without our manifest."""
    archive = tmp_path / "LuojiaSET-OSFCR.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in fake_luojiaset_root.rglob("*.tif"):
            zf.write(path, "LuojiaSET-OSFCR/" + path.relative_to(fake_luojiaset_root).as_posix())
    return archive


def test_notebook_prepares_a_real_data_archive(tmp_path, zipped_fake_luojiaset):
    manifest = tmp_path / "manifest"
    record = _run(tmp_path, SOURCE="luojiaset", DATA_ROOT=str(zipped_fake_luojiaset), MANIFEST_DIR=str(manifest))
    metrics = record["metrics"]
    assert metrics["source"] == "luojiaset" and metrics["generation_seconds"] is None
    assert metrics["n_samples"] == 50 and metrics["header_check"]["n_problems"] == 0
    assert Path(metrics["data_root"]) == tmp_path / "LuojiaSET-OSFCR" / "LuojiaSET-OSFCR"
    assert metrics["manifest_hash"] == manifest_hash(manifest)
    config = json.loads((manifest / "split_config.json").read_text())
    assert config["author_split_check"].startswith("not comparable")
    assert metrics["class_histogram"]["ignored"] == 10  # codes 7 and 255 in the fake data


def test_notebook_prepares_the_sen12mscr_archives(tmp_path, fake_sen12mscr_module):
    """SEN12MS-CR from its per-season archives (extracted safely), land cover from a folder."""
    import shutil

    fake = fake_sen12mscr_module
    tree = fake.write_fake_sen12mscr(tmp_path / "tree", patches_per_scene=2)
    downloads = tmp_path / "downloads"
    fake.write_fake_archives(tree, downloads)
    land_cover = tmp_path / "SEN12MS"
    for archive in downloads.glob("*_lc.tar.gz"):  # fake land cover: not the published MD5s
        shutil.move(
            tree / archive.name.removesuffix("_lc.tar.gz"), land_cover / archive.name.removesuffix("_lc.tar.gz")
        )
        archive.unlink()
    record = _run(tmp_path, SOURCE="sen12mscr", DATA_ROOT=str(downloads), LAND_COVER_ROOT=str(land_cover))
    metrics = record["metrics"]
    assert metrics["source"] == "sen12mscr" and Path(metrics["data_root"]) == downloads / "SEN12MS-CR"
    assert metrics["n_samples"] == 16 and metrics["header_check"]["n_problems"] == 0
    assert metrics["header_check"]["checked"] == 16 * 4 - 1  # one patch has no land cover
    assert set(metrics["class_histogram"]) == {str(c) for c in range(10)} | {"ignored"}
    config = json.loads((downloads / "SEN12MS-CR" / "manifest" / "split_config.json").read_text())
    assert config["patches_without_land_cover"] == 1
    assert config["land_cover_root"] == str(land_cover)
