"""``tdpcr reproduce``: order, declared parameters only, executed copies, failure reporting;
``RunRecord.from_parameters_cell``: the record lists what the parameters cell declares."""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tdpcr_lib.cli import reproduce as reproduce_cli
from tdpcr_lib.cli.reproduce import main
from tdpcr_lib.core import paths
from tdpcr_lib.notebook import record as record_module
from tdpcr_lib.notebook.record import RunRecord, parameters_cell_names, read_metrics, resolve_reports_dir
from tdpcr_lib.notebook.reproduce import numbered_notebooks, parameters_for, run_notebooks


def _write(path, parameters: str, body: str) -> None:
    cell = new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[cell, new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


RECORD = (
    "import json, pathlib\n"
    "pathlib.Path(OUT).write_text(json.dumps({k: v for k, v in globals().items() "
    "if k.isupper()}))"
)


@pytest.fixture()
def notebook_dir(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write(
        folder / "01_first.ipynb",
        f'OUT = "{tmp_path / "first.json"}"\nSMOKE = False\nDATA_ROOT = "default-root"\n',
        RECORD,
    )
    _write(folder / "00_zero.ipynb", f'OUT = "{tmp_path / "zero.json"}"\nSEED = 1\n', RECORD)
    (folder / "helper.ipynb").write_text("not a numbered notebook, never run")
    (folder / "_build").mkdir()
    return folder


def test_numbered_notebooks_are_sorted_and_filtered(notebook_dir):
    assert [p.name for p in numbered_notebooks(notebook_dir)] == ["00_zero.ipynb", "01_first.ipynb"]
    assert [p.name for p in numbered_notebooks(notebook_dir, only=["01"])] == ["01_first.ipynb"]
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        numbered_notebooks(notebook_dir, only=["07"])


def test_only_declared_parameters_are_passed(notebook_dir):
    candidates = {"SMOKE": True, "SEED": 4, "DATA_ROOT": "/x", "FULL": False}
    assert parameters_for(notebook_dir / "01_first.ipynb", candidates) == {"SMOKE": True, "DATA_ROOT": "/x"}
    assert parameters_for(notebook_dir / "00_zero.ipynb", candidates) == {"SEED": 4}


def test_reproduce_runs_in_order_and_writes_executed_copies(notebook_dir, tmp_path, capsys):
    executed = tmp_path / "executed"
    code = main(
        [
            "--smoke",
            "--data-root",
            "/data/real",
            "--seed",
            "5",
            "--notebooks",
            str(notebook_dir),
            "--output-dir",
            str(executed),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    first = json.loads((tmp_path / "first.json").read_text())
    zero = json.loads((tmp_path / "zero.json").read_text())
    assert first["SMOKE"] is True and first["DATA_ROOT"] == "/data/real" and "SEED" not in first
    assert zero["SEED"] == 5 and "SMOKE" not in zero
    assert sorted(p.name for p in executed.iterdir()) == ["00_zero.ipynb", "01_first.ipynb"]
    out = capsys.readouterr().out
    assert out.index("00_zero.ipynb") < out.index("01_first.ipynb")


def test_a_failing_notebook_stops_the_run_and_is_named(notebook_dir, tmp_path, capsys):
    _write(notebook_dir / "00_zero.ipynb", "SEED = 0\n", "raise RuntimeError('boom: no data')")
    code = main(["--notebooks-dir", str(notebook_dir), "--output-dir", str(tmp_path / "ex"), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "notebook 00_zero.ipynb failed" in err and "boom: no data" in err
    assert str(tmp_path / "ex" / "00_zero.ipynb") in err
    assert not (tmp_path / "first.json").exists()  # later notebooks did not run


def test_a_missing_notebooks_folder_is_one_line_naming_the_option(tmp_path, capsys):
    assert main(["--notebooks", str(tmp_path / "nowhere"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--notebooks DIR" in err and "nowhere" in err


RECORD_CELL = (
    "from tdpcr_lib.notebook.record import RunRecord\n"
    "import os\n"
    "CONFIG['later'] = 'mutated after the record was made'\n"
    "record = RunRecord.from_parameters_cell('00_rec', globals(), metrics_dir=METRICS,\n"
    "                                        resolved={'home': os.environ['TDPCR_HOME']})\n"
    "CONFIG['later'] = 'again'\n"
    "record.write({'ok': 1})"
)


def test_record_takes_the_parameters_cell_with_injected_values(tmp_path, monkeypatch):
    monkeypatch.delenv("TDPCR_HOME", raising=False)
    folder = tmp_path / "nbs"
    folder.mkdir()
    metrics = tmp_path / "metrics"
    _write(
        folder / "00_rec.ipynb",
        f'METRICS = "{metrics}"\nSEED = 3\nDEVICE = "cpu"\nA, B = 1, 2\nCONFIG = {{}}\nSMOKE = False',
        "UNDECLARED = 5\n" + RECORD_CELL,
    )
    assert parameters_cell_names(folder / "00_rec.ipynb") == ["METRICS", "SEED", "DEVICE", "A", "B", "CONFIG", "SMOKE"]
    run_notebooks(
        [folder / "00_rec.ipynb"],
        {"SMOKE": True, "SEED": 7},
        tmp_path / "executed",
        progress=False,
        log=lambda *a: None,
        home=tmp_path / "home",
    )
    record = read_metrics("00_rec", metrics)
    assert record["parameters"] == {
        "METRICS": str(metrics),
        "SEED": 7,
        "DEVICE": "cpu",
        "A": 1,
        "B": 2,
        "CONFIG": {"later": "mutated after the record was made"},
        "SMOKE": True,
    }
    assert record["seed"] == 7 and record["metrics"] == {"ok": 1}
    assert record["resolved"] == {"home": str(tmp_path / "home")}  # kernels get TDPCR_HOME
    assert {"git_sha", "device", "wall_time_s"} <= set(record)


def test_record_reads_a_jupytext_notebook_and_falls_back_with_a_warning(tmp_path, monkeypatch):
    (tmp_path / "00_text.py").write_text('# %% tags=["parameters"]\nSEED = 2\nOUT = None\n\n# %%\nx = 1\n')
    monkeypatch.chdir(tmp_path)
    namespace = {"SEED": 5, "OUT": None, "x": 1, "OTHER": 3}
    record = RunRecord.from_parameters_cell("00_text", namespace, metrics_dir=tmp_path)
    assert record.parameters == {"SEED": 5, "OUT": None} and record.seed == 5
    with pytest.warns(UserWarning, match="not found"):
        record = RunRecord.from_parameters_cell("99_missing", namespace, metrics_dir=tmp_path)
    assert record.parameters == {"SEED": 5, "OUT": None, "OTHER": 3}


@pytest.mark.parametrize("path", sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_every_notebook_records_its_parameters_cell(path):
    text = path.read_text()
    # the one set-up call records the parameters cell (tdpcr_lib.notebook.session.setup)
    assert len(re.findall(rf'^nb = setup\(\s*"{path.stem}",\s*globals\(\)', text, re.M)) == 1
    assert "RunRecord" not in text  # no hand-written parameter lists, no second record
    assert parameters_cell_names(path) == parameters_cell_names(path.with_suffix(".ipynb"))


def test_smoke_runs_report_to_their_own_folder(tmp_path, monkeypatch):
    """SMOKE without an explicit REPORTS_DIR → reports/smoke/ (with a README saying so)."""
    monkeypatch.setattr(record_module, "REPORTS_DIR", tmp_path / "reports")
    assert resolve_reports_dir(None, smoke=False) == tmp_path / "reports"
    smoke = resolve_reports_dir(None, smoke=True)
    assert smoke == tmp_path / "reports" / "smoke"
    assert (smoke / "README.md").read_text().startswith("# Smoke-run outputs: not results")
    assert resolve_reports_dir(tmp_path / "mine", smoke=True) == tmp_path / "mine"
    assert not (tmp_path / "reports" / "metrics").exists()


def test_reproduce_smoke_keeps_its_executed_copies_apart(notebook_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce_cli, "REPORTS_DIR", tmp_path / "reports")
    assert main(["--smoke", "--notebooks", str(notebook_dir), "--no-progress"]) == 0
    smoke = tmp_path / "reports" / "smoke" / "executed"
    assert sorted(p.name for p in smoke.iterdir()) == ["00_zero.ipynb", "01_first.ipynb"]
    assert not (tmp_path / "reports" / "executed").exists()
    assert main(["--notebooks", str(notebook_dir), "--no-progress", "--only", "00"]) == 0
    assert [p.name for p in (tmp_path / "reports" / "executed").iterdir()] == ["00_zero.ipynb"]


@pytest.mark.parametrize("path", sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_every_notebook_sends_smoke_reports_to_their_own_folder(path):
    """REPORTS_DIR defaults to None and every write goes through setup's reports folder."""
    text = path.read_text()
    assert re.search(r"^REPORTS_DIR = None\b", text, re.M)
    assert "resolve_reports_dir" not in text  # setup() resolves it, the same in every notebook
    assert "Path(REPORTS_DIR)" not in text and "paths.REPORTS_DIR" not in text
    assert '/ "figures"' not in text  # figures go to nb.figures_dir
