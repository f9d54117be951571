"""``tdpcr reproduce --smoke --source sen12mscr`` runs every notebook on fake SEN12MS-CR data.

Slow (about 7 minutes on 2 CPU cores): run with ``pytest -m slow tests/notebook/test_sen12mscr_reproduce.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_reproduce_smoke_runs_every_notebook_on_sen12mscr(tmp_path, fake_sen12mscr_module):
    root = fake_sen12mscr_module.write_fake_sen12mscr(tmp_path / "SEN12MS-CR")  # the run writes its manifest
    reports = tmp_path / "reports"
    command = [
        sys.executable,
        "-m",
        "tdpcr_lib.cli.main",
        "reproduce",
        "--smoke",
        "--source",
        "sen12mscr",
        "--data-root",
        str(root),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--output-dir",
        str(tmp_path / "executed"),
        "-p",
        f'REPORTS_DIR="{reports}"',
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = sorted(p.name for p in (tmp_path / "executed").glob("*.ipynb"))
    assert executed == sorted(p.name for p in (REPO / "notebooks").glob("0*.ipynb"))
    data = json.loads((reports / "metrics" / "00_get_data.json").read_text())["metrics"]
    assert data["source"] == "sen12mscr" and data["n_samples"] == 40
    for phase in ("phase1", "phase2"):
        config = json.loads((tmp_path / "runs" / phase / "best" / "config.json").read_text())
        assert config["model_config"]["legend"] == "igbp_simplified"
        assert config["model_config"]["num_classes"] == 10
    evaluation = json.loads((reports / "metrics" / "03_evaluate.json").read_text())["metrics"]
    assert len(evaluation["class_names"]) == 10 and evaluation["class_names"][9] == "Water"
