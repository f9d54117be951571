"""Every numbered notebook: committed clean, papermill-ready, Pythia-shaped, thin, and paired."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NUMBERED = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_the_pipeline_has_all_seven_notebooks_in_order():
    assert [p.stem[:2] for p in NUMBERED] == ["00", "01", "02", "03", "04", "05", "06"]


@pytest.fixture(params=NUMBERED, ids=[p.stem for p in NUMBERED])
def notebook(request) -> nbformat.NotebookNode:
    nb = nbformat.read(request.param, as_version=4)
    nbformat.validate(nb)
    return nb


def test_committed_without_outputs(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


#: Parameters each notebook must declare (what the issues and the README promise users).
DECLARED = {
    "00_get_data": {"DATA_ROOT", "SOURCE", "N_TILES", "TILE_SIZE", "SEED", "SMOKE"},
    "01_train_phase1": {
        "DATA_ROOT",
        "SOURCE",
        "RUNS_DIR",
        "SEED",
        "DEVICE",
        "SMOKE",
        "FULL",
        "EPOCHS",
        "MAX_STEPS",
        "CONFIG",
    },
    "02_train_phase2": {
        "DATA_ROOT",
        "SOURCE",
        "RUNS_DIR",
        "SEED",
        "DEVICE",
        "SMOKE",
        "FULL",
        "EPOCHS",
        "MAX_STEPS",
        "CONFIG",
    },
    "03_evaluate": {"DATA_ROOT", "SOURCE", "RUNS_DIR", "SEED", "DEVICE", "SMOKE", "FULL", "PROTOCOLS"},
    "04_ablations": {"DATA_ROOT", "SOURCE", "RUNS_DIR", "SEED", "DEVICE", "SMOKE", "FULL"},
    "05_compare_visually": {"DATA_ROOT", "SOURCE", "RUNS_DIR", "SEED", "DEVICE", "SMOKE", "FULL"},
    "06_predict_own_scene": {
        "S2_PATH",
        "S1_PATH",
        "CHECKPOINT",
        "OUT_DIR",
        "TILE",
        "OVERLAP",
        "DEVICE",
        "SMOKE",
        "SEED",
    },
}


def test_kernel_name_matches_the_installed_kernel(notebook):
    # JupyterLab replaces a kernelspec whose display name differs from the running kernel's
    # ("Python 3" against ipykernel's "Python 3 (ipykernel)") and marks a freshly opened notebook,
    # executed copies included, as modified
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.metadata.kernelspec.display_name == spec.display_name


@pytest.mark.parametrize("path", NUMBERED, ids=[p.stem for p in NUMBERED])
def test_declares_the_documented_parameters(path):
    import papermill as pm

    declared = set(pm.inspect_notebook(str(path)))
    assert DECLARED[path.stem] <= declared, DECLARED[path.stem] - declared


def test_exactly_one_parameters_cell(notebook):
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assert "SEED" in tagged[0].source or "SEED" in "".join(c.source for c in notebook.cells)


def test_pythia_structure(notebook):
    markdown = [c.source for c in notebook.cells if c.cell_type == "markdown"]
    assert markdown and markdown[0].startswith("# ")  # one H1 title first
    assert sum(s.startswith("# ") for s in markdown) == 1
    text = "\n".join(markdown)
    for section in ("Overview", "Prerequisites", "Summary"):
        assert f"## {section}" in text, f"missing section {section!r}"


def test_thin_cells_define_no_classes_or_functions(notebook):
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        defined = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef)]
        assert not defined, f"notebook code must call tdpcr_lib, not define: {cell.source[:80]}"


def test_imports_live_in_one_imports_cell(notebook):
    with_imports = [
        c
        for c in notebook.cells
        if c.cell_type == "code"
        and any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(ast.parse(c.source)))
    ]
    assert len(with_imports) == 1


PAIRS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def test_every_notebook_has_its_jupytext_pair():
    assert [p.stem for p in PAIRS] == [p.stem for p in NUMBERED]


def test_pairing_is_configured_for_jupyterlab():
    """jupytext.toml pairs every notebook, so saving either side in JupyterLab updates the other."""
    config = (NOTEBOOKS.parent / "jupytext.toml").read_text()
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("path", NUMBERED, ids=[p.stem for p in NUMBERED])
def test_pair_is_in_sync(path):
    """The .py (percent format) and the .ipynb hold the same cells (edit either, then sync)."""
    import jupytext

    from_py = jupytext.read(path.with_suffix(".py"))
    committed = nbformat.read(path, as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in from_py.cells], (
        f"{path.name} and {path.with_suffix('.py').name} differ: run 'jupytext --sync {path.with_suffix('.py')}'"
    )
    params = [c for c in from_py.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1


REPO = NOTEBOOKS.parent


def test_the_set_up_installs_jupyterlab_and_make_lab_opens_the_notebooks():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    dev = " ".join(project["optional-dependencies"]["dev"])
    assert "jupyterlab" in dev and "jupytext" in " ".join(project["dependencies"])
    makefile = (REPO / "Makefile").read_text()
    stamp = makefile.split("$(STAMP):", 1)[1].split("\nsetup:", 1)[0]
    assert "ipykernel install --sys-prefix --name python3" in stamp
    assert "git-filter" in stamp and "'.[dev]'" in stamp
    lab = makefile.split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert "jupyter lab" in lab and "/lab/tree/notebooks" in lab


@pytest.mark.skipif(not (shutil.which("git") and shutil.which("make")), reason="needs git and make")
def test_git_filter_strips_outputs_and_is_idempotent(tmp_path):
    """`make git-filter` (run by the set-up) makes git store notebooks without outputs."""

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    for name in ("Makefile", ".gitattributes"):
        shutil.copy(REPO / name, tmp_path / name)
    run("git", "init", "-q")
    venv = Path(sys.executable).parent.parent  # the Makefile's VENV: this interpreter's prefix
    for _ in range(2):  # idempotent
        run("make", "--no-print-directory", "git-filter", f"VENV={venv}")
    assert "nbstripout --keep-id" in run("git", "config", "filter.nbstripout.clean")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nb.cells[0].execution_count = 1
    nbformat.write(nb, tmp_path / "nb.ipynb")
    run("git", "add", "nb.ipynb")
    stored = nbformat.reads(run("git", "show", ":nb.ipynb"), as_version=4)
    assert stored.cells[0].outputs == [] and stored.cells[0].execution_count is None
    assert stored.cells[0].id == nb.cells[0].id  # cell ids kept (jupytext writes them)
