"""Tracebacks and raw messages (issue 26, items 16-18 and the training lock): fast help, Ctrl-C
at any moment, DataLoader worker errors in one line, archives as --data-root, one training per
folder."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from tdpcr_lib.cli import errors as cli_errors
from tdpcr_lib.cli.main import main as tdpcr_main
from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.sources import open_dataset

REPO = Path(__file__).resolve().parents[2]


#: What help and usage errors must not load: each costs seconds on a small machine (torch and
#: rasterio 3-6 s, nbformat's jsonschema 3 s), during which Ctrl-C would print a traceback.
HEAVY_MODULES = ("torch", "rasterio", "pandas", "nbformat")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["data", "--help"], 0),
        (["data", "manifest"], 2),
        (["evaluate", "--help"], 0),
        (["report", "--help"], 0),
        (["train", "--help"], 0),
        (["predict", "--help"], 0),
        (["reproduce", "--help"], 0),
        (["train", "--phase", "phase9", "--data-root", "d", "--out", "o"], 2),
        (["predict", "--s2", "a.tif"], 2),
        (["reproduce", "--smoke", "--full"], 2),
        (["data", "synth", "--n-tiles", "x"], 2),
    ],
)
def test_help_and_usage_errors_do_not_import_torch_or_rasterio(argv, code):
    script = (
        f"import sys; from tdpcr_lib.cli.main import main; rc = main({argv!r}); "
        f"print(rc, [m for m in {HEAVY_MODULES!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )
    assert done.stdout.strip().splitlines()[-1] == f"{code} []", done.stderr
    assert "Traceback" not in done.stderr


def test_the_error_handler_itself_does_not_import_torch():
    code = "import sys, tdpcr_lib.cli.main, tdpcr_lib.cli.errors; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("command", ["data", "train", "evaluate", "predict", "report"])
def test_ctrl_c_while_a_command_loads_is_one_line(command, monkeypatch, capsys):
    def interrupted(name, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib, "import_module", interrupted)
    assert tdpcr_main([command, "--help"]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted" in err and "Traceback" not in err


class _Corrupt(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int):
        raise DataIntegrityError("/data/ROIs_01_s2_p1.tif: truncated GeoTIFF")


def test_dataloader_worker_errors_are_the_package_line():
    loader = DataLoader(_Corrupt(), batch_size=1, num_workers=1)
    with pytest.raises(DataIntegrityError) as info:
        next(iter(loader))
    assert "Original Traceback" in str(info.value)  # what PyTorch gives
    code, line = cli_errors.classify(info.value)
    assert code == cli_errors.EXIT_BAD_INPUT
    assert line == "/data/ROIs_01_s2_p1.tif: truncated GeoTIFF"


def test_data_root_may_be_an_archive(fake_luojiaset_root, tmp_path):
    archive = Path(
        shutil.make_archive(
            str(tmp_path / "LuojiaSET-OSFCR"), "zip", fake_luojiaset_root.parent, fake_luojiaset_root.name
        )
    )
    ds = open_dataset(archive, "test")
    assert len(ds) > 0 and ds[0]["optical"].shape[0] == 13
    assert len(open_dataset(archive, "val")) > 0  # extracted once, reused


def test_two_trainings_into_one_folder_are_refused(tmp_path, capsys):
    from tdpcr_lib.core.locking import exclusive

    out = tmp_path / "run"
    with exclusive(out):
        code = tdpcr_main(["train", "--phase", "phase1", "--data-root", str(tmp_path / "none"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "another training" in err and len(err.splitlines()) == 1


def test_the_cli_repeats_the_synthetic_defaults_correctly():
    from tdpcr_lib.cli import data
    from tdpcr_lib.datasets import manifests as manifest
    from tdpcr_lib.datasets.synthetic import tiles

    assert (data.DEFAULT_N_TILES, data.DEFAULT_TILE_SIZE, data.LOCAL_MANIFEST) == (
        tiles.DEFAULT_N_TILES,
        tiles.DEFAULT_TILE_SIZE,
        manifest.LOCAL_MANIFEST,
    )
    assert torch is not None


def test_reproduced_notebooks_run_without_the_kernel_tcp_warning(tmp_path, capfd):
    import nbformat

    from tdpcr_lib.notebook.reproduce import run_notebooks

    notebook = tmp_path / "00_tiny.ipynb"
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("X = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(X + 1)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebook)
    run_notebooks(
        [notebook], {"X": 41}, tmp_path / "executed", progress=False, log=lambda *a: None, home=tmp_path / "home"
    )
    out = nbformat.read(tmp_path / "executed" / notebook.name, 4)
    assert out.cells[-1].outputs[0]["text"] == "42\n"
    captured = capfd.readouterr()
    assert "without encryption" not in captured.err + captured.out
