"""`tdpcr reproduce --budget long`: 4× the default steps, in its own runs/ and reports/ folders,
reported beside the default budget."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tdpcr_lib.cli import reproduce as reproduce_cli
from tdpcr_lib.evaluation.ablations import verdicts
from tdpcr_lib.evaluation.ablations.spec import preset_budget
from tdpcr_lib.training.presets import STEP_BUDGETS, budget_mode, preset_config


def test_long_budget_is_four_times_the_default():
    default, long = preset_budget(), preset_budget(long=True)
    assert (long.phase1_steps, long.phase2_steps) == (4 * default.phase1_steps, 4 * default.phase2_steps)
    assert long.mode == "long" and long.validate and long.plateau_stop
    assert long.model_size == default.model_size and long.batch_size == default.batch_size
    config = preset_config("phase1", long=True)
    assert config.max_steps == STEP_BUDGETS["long"][0] == 1200 and config.epochs == 48
    with pytest.raises(ValueError, match="at most one"):
        budget_mode(quick=True, long=True)


def _notebook(path, out):
    cell = new_code_cell(f'OUT = "{out}"\nLONG = False\nRUNS_DIR = None\nREPORTS_DIR = None\n')
    cell.metadata["tags"] = ["parameters"]
    body = (
        "import json, pathlib\npathlib.Path(OUT).write_text(json.dumps("
        "{k: v for k, v in globals().items() if k in ('LONG', 'RUNS_DIR', 'REPORTS_DIR')}))"
    )
    nb = new_notebook(cells=[cell, new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_reproduce_budget_long_uses_its_own_folders(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_train.ipynb", tmp_path / "seen.json")
    monkeypatch.setattr(reproduce_cli, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(reproduce_cli, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(reproduce_cli, "METRICS_DIR", tmp_path / "reports" / "metrics")
    assert reproduce_cli.main(["--budget", "long", "--notebooks", str(folder), "--no-progress"]) == 0
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen == {
        "LONG": True,
        "RUNS_DIR": str(tmp_path / "runs" / "long"),
        "REPORTS_DIR": str(tmp_path / "reports" / "long"),
    }
    assert (tmp_path / "reports" / "long" / "executed" / "01_train.ipynb").is_file()
    assert (tmp_path / "reports" / "long" / "metrics" / "reproduce.json").is_file()
    # the default budget's reports are untouched
    assert not (tmp_path / "reports" / "executed").exists()
    assert not (tmp_path / "reports" / "metrics").exists()


def test_each_budget_finds_the_other_ones_record(tmp_path):
    run = {"model": "tdpcr", "seed": 0, "steps": 8, "plateau": False, "metrics": {"psnr": 20.0}}
    record = {"runs": [run], "claims": [], "resolved": {"budget": {"mode": "long"}}}
    (tmp_path / "long" / "metrics").mkdir(parents=True)
    (tmp_path / "long" / "metrics" / "04_ablations.json").write_text(json.dumps(record))
    label, found, multiple = verdicts.other_budget_record(tmp_path, "default")
    assert label == "long budget (4×)" and multiple == 4.0 and found["runs"] == [run]
    assert verdicts.other_budget_record(tmp_path / "long", "long") is None  # no default yet
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "04_ablations.json").write_text(json.dumps(record))
    assert verdicts.other_budget_record(tmp_path / "long", "long")[2] == 0.25
    assert verdicts.other_budget_record(tmp_path, "smoke") is None
