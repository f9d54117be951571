"""``tdpcr reproduce``: order, declared parameters only, executed copies, failure reporting."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tdpcr_lib.cli.reproduce import main
from tdpcr_lib.notebook.reproduce import numbered_notebooks, parameters_for


def _write(path, parameters: str, body: str) -> None:
    cell = new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[cell, new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


RECORD = ("import json, pathlib\n"
          "pathlib.Path(OUT).write_text(json.dumps({k: v for k, v in globals().items() "
          "if k.isupper()}))")


@pytest.fixture()
def notebook_dir(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write(folder / "01_first.ipynb", f'OUT = "{tmp_path / "first.json"}"\nSMOKE = False\n'
           'DATA_ROOT = "default-root"\n', RECORD)
    _write(folder / "00_zero.ipynb", f'OUT = "{tmp_path / "zero.json"}"\nSEED = 1\n', RECORD)
    (folder / "helper.ipynb").write_text("not a numbered notebook, never run")
    (folder / "_build").mkdir()
    return folder


def test_numbered_notebooks_are_sorted_and_filtered(notebook_dir):
    assert [p.name for p in numbered_notebooks(notebook_dir)] == ["00_zero.ipynb",
                                                                  "01_first.ipynb"]
    assert [p.name for p in numbered_notebooks(notebook_dir, only=["01"])] == ["01_first.ipynb"]
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        numbered_notebooks(notebook_dir, only=["07"])


def test_only_declared_parameters_are_passed(notebook_dir):
    candidates = {"SMOKE": True, "SEED": 4, "DATA_ROOT": "/x", "FULL": False}
    assert parameters_for(notebook_dir / "01_first.ipynb", candidates) == {"SMOKE": True,
                                                                          "DATA_ROOT": "/x"}
    assert parameters_for(notebook_dir / "00_zero.ipynb", candidates) == {"SEED": 4}


def test_reproduce_runs_in_order_and_writes_executed_copies(notebook_dir, tmp_path, capsys):
    executed = tmp_path / "executed"
    code = main(["--smoke", "--data-root", "/data/real", "--seed", "5", "--notebooks-dir",
                 str(notebook_dir), "--output-dir", str(executed), "--no-progress"])
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
    code = main(["--notebooks-dir", str(notebook_dir), "--output-dir", str(tmp_path / "ex"),
                 "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "notebook 00_zero.ipynb failed" in err and "boom: no data" in err
    assert str(tmp_path / "ex" / "00_zero.ipynb") in err
    assert not (tmp_path / "first.json").exists()  # later notebooks did not run
