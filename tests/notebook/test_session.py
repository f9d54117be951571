"""``setup(name, globals())``: the one set-up call resolves the same folders in every notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdpcr_lib.core import paths
from tdpcr_lib.datasets.sources import data_source
from tdpcr_lib.notebook import record as record_module
from tdpcr_lib.notebook import session as session_module
from tdpcr_lib.notebook import setup
from tdpcr_lib.notebook.record import parameters_cell_names


@pytest.fixture
def prepared(monkeypatch, tmp_path):
    """``ensure_dataset`` replaced by a recorder (what the notebook asked for, not the data work)."""
    calls = []

    def ensure(root, source):
        calls.append((root, source))
        return tmp_path / "ready"

    monkeypatch.setattr(session_module, "ensure_dataset", ensure)
    monkeypatch.setattr(record_module, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.chdir(tmp_path)  # the notebook file is found in notebooks/, as from JupyterLab
    return calls


def evaluate_parameters(**changes):
    namespace = {
        "DATA_ROOT": "/data/twin",
        "SOURCE": "synthetic",
        "RUNS_DIR": "/somewhere/runs",
        "REPORTS_DIR": None,
        "SEED": 3,
        "DEVICE": "cpu",
        "SMOKE": True,
        "FULL": False,
        "CHECKPOINT": None,
        "BATCH_SIZE": 8,
        "PROTOCOLS": ["tdpcr"],
        "unrelated": object(),
    }
    return {**namespace, **changes}


def test_a_smoke_run_reports_to_its_own_folder_and_records_the_parameters_cell(prepared, tmp_path):
    nb = setup("03_evaluate", evaluate_parameters())
    smoke = tmp_path / "reports" / "smoke"
    assert nb.reports_dir == smoke and nb.figures_dir == smoke / "figures"
    assert nb.record.path == smoke / "metrics" / "03_evaluate.json"
    assert (smoke / "README.md").is_file()
    assert nb.device == "cpu" and nb.runs_dir == Path("/somewhere/runs")
    assert nb.data_root == tmp_path / "ready" and prepared == [("/data/twin", "synthetic")]
    assert list(nb.record.parameters) == parameters_cell_names(paths.NOTEBOOKS_DIR / "03_evaluate.py")
    written = json.loads(nb.record.write({"x": 1}).read_text())
    assert written["parameters"]["SEED"] == 3 and written["seed"] == 3
    assert written["resolved"] == {"data_root": str(tmp_path / "ready"), "runs_dir": "/somewhere/runs"}


def test_a_record_on_the_twin_names_the_twin_version(prepared, tmp_path):
    """Numbers on the twin depend on its calibration, so the record says which twin made them."""
    (tmp_path / "ready").mkdir()
    (tmp_path / "ready" / "synthetic.json").write_text(json.dumps({"twin_version": "9.9"}))
    nb = setup("03_evaluate", evaluate_parameters())
    assert json.loads(nb.record.write({}).read_text())["resolved"]["twin_version"] == "9.9"


def test_defaults_follow_the_source_and_the_project_folders(prepared, tmp_path):
    nb = setup("03_evaluate", evaluate_parameters(DATA_ROOT=None, RUNS_DIR=None, SOURCE="sen12mscr", SMOKE=False))
    assert prepared == [(data_source("sen12mscr").default_root, "sen12mscr")]
    assert nb.runs_dir == paths.RUNS_DIR and nb.reports_dir == tmp_path / "reports"
    chosen = setup("03_evaluate", evaluate_parameters(REPORTS_DIR=str(tmp_path / "mine")))
    assert chosen.reports_dir == tmp_path / "mine"  # a folder the user chose wins, SMOKE or not


def test_a_notebook_that_prepares_its_data_itself_or_has_no_data_gets_none(prepared):
    nb = setup("00_get_data", {"DATA_ROOT": None, "SOURCE": "luojiaset", "SMOKE": True}, prepare_data=False)
    assert nb.data_root is None and nb.runs_dir is None and prepared == []
    assert nb.device == "cpu"  # no DEVICE parameter: recorded on the CPU
    scene = setup("06_predict_own_scene", {"RUNS_DIR": None, "DEVICE": "cpu", "SMOKE": True})
    assert scene.data_root is None and scene.runs_dir == paths.RUNS_DIR


def test_an_unknown_source_is_refused_before_anything_is_prepared(prepared):
    with pytest.raises(ValueError, match="SOURCE must be one of"):
        setup("03_evaluate", evaluate_parameters(SOURCE="landsat", DATA_ROOT=None))
    assert prepared == []
