"""Fault injection against the command line: bad arguments, bad files, OS failures.

Every failure must be one line on stderr (no traceback), name the argument or the file, and exit
with the code documented in ``docs/errors.md`` (:data:`tdpcr_lib.cli.errors.EXIT_CODES`). Bad files
are made on the fly and are tiny. Most cases run the real CLI entry point in-process (fast); a
representative subset runs it as a subprocess with a timeout, as a user would.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from tdpcr_lib.cli import main as cli
from tdpcr_lib.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_CHECKPOINT,
    EXIT_CODES,
    EXIT_DIVERGED,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OS,
    EXIT_USAGE,
    classify,
    run_command,
)
from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.inference.inputs import PredictionInputError
from tdpcr_lib.inference.scene import predict_scene
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint import CheckpointError, read_meta, save_checkpoint
from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.training.config import TrainConfig, TrainConfigError

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# Fixtures: one tiny scene, one tiny checkpoint, bad variants made from them
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_synthetic_scene(tmp_path_factory.mktemp("scene"), 48, 64, seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny", with_seg_decoder=True))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best", model, phase="phase2", epoch=0, step=0)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, scene, checkpoint) -> dict[str, Path]:
    """Bad inputs, each made from the good ones."""
    root = tmp_path_factory.mktemp("bad")
    with rasterio.open(scene.s2_cloudy) as src:
        profile, data = src.profile, src.read()
    out: dict[str, Path] = {}

    def write(name: str, array: np.ndarray, **changes) -> None:
        out[name] = root / f"{name}.tif"
        with rasterio.open(out[name], "w", **{**profile, "dtype": str(array.dtype), **changes}) as dst:
            dst.write(array)

    write("s2_int8", (data // 100).astype(np.int8), nodata=None)
    write("s2_zero", np.zeros_like(data), nodata=0)
    write("s2_zero_undeclared", np.zeros_like(data), nodata=None)
    good_bytes = Path(scene.s2_cloudy).read_bytes()
    out["s2_truncated"] = root / "s2_truncated.tif"
    out["s2_truncated"].write_bytes(good_bytes[: len(good_bytes) // 2])
    for name, text in (("ckpt_list", b"[1, 2, 3]"), ("ckpt_latin1", b'{"phase": "caf\xe9"}')):
        folder = root / name
        shutil.copytree(checkpoint, folder)
        (folder / "config.json").write_bytes(text)
        out[name] = folder
    out["a_file"] = root / "a_file.txt"
    out["a_file"].write_text("not a folder")
    return out


def _predict_args(scene, checkpoint, out, *extra, s2=None) -> list[str]:
    return [
        "predict",
        "--s2",
        str(s2 or scene.s2_cloudy),
        "--s1",
        str(scene.s1),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def _assert_one_line(code: int, err: str, expected_code: int, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def _run_in_process(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(argv)
    return code, capsys.readouterr().err


def _subprocess(argv: list[str], timeout: float = 120, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TDPCR_DEBUG"}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "tdpcr_lib.cli.main", *argv], env=env, capture_output=True, text=True, timeout=timeout
    )


# --------------------------------------------------------------------------------------------
# tdpcr predict: arguments checked up front, bad files, bad checkpoints
# --------------------------------------------------------------------------------------------
PREDICT_ARGUMENT_CASES = [
    pytest.param(["--tile", "3", "--overlap", "1"], EXIT_USAGE, "--tile", id="tile-3"),
    pytest.param(["--tile", "0"], EXIT_USAGE, "--tile", id="tile-0"),
    pytest.param(["--tile", "64", "--overlap", "64"], EXIT_USAGE, "--overlap", id="overlap=tile"),
    pytest.param(["--overlap", "-1"], EXIT_USAGE, "--overlap", id="overlap-negative"),
    pytest.param(["--blocksize", "0"], EXIT_USAGE, "--blocksize", id="blocksize-0"),
    pytest.param(["--blocksize", "100"], EXIT_USAGE, "--blocksize", id="blocksize-100"),
    pytest.param(["--blocksize", "1048576"], EXIT_USAGE, "--blocksize", id="blocksize-huge"),
    pytest.param(["--batch-size", "0"], EXIT_USAGE, "--batch-size", id="batch-0"),
    pytest.param(["--tile", "abc"], EXIT_USAGE, "--tile", id="tile-not-int"),
    pytest.param(["--device", "banana"], EXIT_USAGE, "banana", id="device-banana"),
    pytest.param(["--device", "cuda:99"], EXIT_USAGE, "cuda:99", id="device-absent-gpu"),
]


@pytest.mark.parametrize(("extra", "expected", "needle"), PREDICT_ARGUMENT_CASES)
def test_predict_refuses_bad_arguments_before_any_work(scene, checkpoint, tmp_path, capsys, extra, expected, needle):
    out = tmp_path / "out"
    code, err = _run_in_process(_predict_args(scene, checkpoint, out, *extra), capsys)
    _assert_one_line(code, err, expected, needle)
    assert not out.exists()  # refused before the output folder was made


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_predict_device_cuda_without_gpu_lists_the_devices(scene, checkpoint, tmp_path, capsys):
    code, err = _run_in_process(_predict_args(scene, checkpoint, tmp_path / "o", "--device", "cuda"), capsys)
    _assert_one_line(code, err, EXIT_USAGE, "'cuda'", "available: cpu")


BAD_FILE_CASES = [
    pytest.param("s2_int8", EXIT_BAD_INPUT, "int8", id="s2-int8"),
    pytest.param("s2_zero", EXIT_BAD_INPUT, "no valid pixel", id="s2-all-nodata"),
    pytest.param("s2_zero_undeclared", EXIT_BAD_INPUT, "no valid pixel", id="s2-all-zero"),
    pytest.param("s2_truncated", EXIT_BAD_INPUT, "s2_truncated.tif", id="s2-truncated"),
]


@pytest.mark.parametrize(("name", "expected", "needle"), BAD_FILE_CASES)
def test_predict_refuses_unusable_sentinel2_content(scene, checkpoint, bad, tmp_path, capsys, name, expected, needle):
    code, err = _run_in_process(_predict_args(scene, checkpoint, tmp_path / "o", s2=bad[name]), capsys)
    _assert_one_line(code, err, expected, needle, str(bad[name]))
    assert not list((tmp_path / "o").glob("*.tif")) if (tmp_path / "o").exists() else True


@pytest.mark.parametrize("name", ["ckpt_list", "ckpt_latin1"])
def test_predict_names_a_corrupt_checkpoint_config(scene, bad, tmp_path, capsys, name):
    code, err = _run_in_process(_predict_args(scene, bad[name], tmp_path / "o"), capsys)
    _assert_one_line(code, err, EXIT_CHECKPOINT, str(bad[name] / "config.json"))


@pytest.mark.parametrize(("what", "expected"), [("s2", EXIT_NOT_FOUND), ("checkpoint", EXIT_NOT_FOUND)])
def test_predict_missing_inputs_are_not_found(scene, checkpoint, tmp_path, capsys, what, expected):
    missing = tmp_path / "missing"
    argv = (
        _predict_args(scene, checkpoint, tmp_path / "o", s2=missing)
        if what == "s2"
        else _predict_args(scene, missing, tmp_path / "o")
    )
    code, err = _run_in_process(argv, capsys)
    _assert_one_line(code, err, expected, str(missing))
    if what == "checkpoint":  # the hint names the training notebooks that exist
        assert "01_train_phase1" in err and "02_train_phase2" in err and "03_train" not in err


def test_predict_out_below_a_file_is_an_os_error(scene, checkpoint, bad, capsys):
    code, err = _run_in_process(_predict_args(scene, checkpoint, bad["a_file"] / "x"), capsys)
    _assert_one_line(code, err, EXIT_OS, str(bad["a_file"]))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_predict_unwritable_out_is_an_os_error(scene, checkpoint, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, err = _run_in_process(_predict_args(scene, checkpoint, locked / "o"), capsys)
    _assert_one_line(code, err, EXIT_OS, str(locked), "permission denied")


# --------------------------------------------------------------------------------------------
# tdpcr train / data / evaluate
# --------------------------------------------------------------------------------------------
TRAIN_CASES = [
    pytest.param(["--set", "lr=NaN"], EXIT_USAGE, "TrainConfig.lr", id="set-lr-nan"),
    pytest.param(["--lr", "nan"], EXIT_USAGE, "TrainConfig.lr", id="lr-nan"),
    pytest.param(["--lr", "-1"], EXIT_USAGE, "TrainConfig.lr", id="lr-negative"),
    pytest.param(["--set", 'batch_size="eight"'], EXIT_USAGE, "TrainConfig.batch_size", id="batch-size-eight"),
    pytest.param(["--set", "epochs=2.5"], EXIT_USAGE, "TrainConfig.epochs", id="epochs-float"),
    pytest.param(["--set", "nonsense=1"], EXIT_USAGE, "nonsense", id="unknown-field"),
    pytest.param(["--set", "lr"], EXIT_USAGE, "FIELD=VALUE", id="set-without-value"),
    pytest.param(["--model", "expansion=NaN", "--small-model"], EXIT_USAGE, "expansion", id="model-nan"),
    pytest.param(["--device", "banana"], EXIT_USAGE, "banana", id="device-banana"),
]


@pytest.mark.parametrize(("extra", "expected", "needle"), TRAIN_CASES)
def test_train_refuses_bad_arguments_before_any_work(fake_luojiaset_root, tmp_path, capsys, extra, expected, needle):
    out = tmp_path / "run"
    code, err = _run_in_process(
        ["train", "--data-root", str(fake_luojiaset_root), "--out", str(out), "--no-progress", *extra], capsys
    )
    _assert_one_line(code, err, expected, needle)
    assert not out.exists()


def test_train_out_below_a_file(fake_luojiaset_root, bad, capsys):
    code, err = _run_in_process(
        ["train", "--data-root", str(fake_luojiaset_root), "--out", str(bad["a_file"] / "run")], capsys
    )
    _assert_one_line(code, err, EXIT_OS, str(bad["a_file"]))


def test_data_manifest_out_below_a_file(fake_luojiaset_root, bad, capsys):
    code, err = _run_in_process(
        ["data", "manifest", str(fake_luojiaset_root), "--out", str(bad["a_file"] / "x"), "--no-checksums"], capsys
    )
    _assert_one_line(code, err, EXIT_OS, str(bad["a_file"]))


@pytest.mark.parametrize(
    ("argv", "expected", "needle"),
    [
        pytest.param(["data", "manifest", "{tmp}/missing"], EXIT_NOT_FOUND, "missing", id="manifest-missing-root"),
        pytest.param(["data", "synth", "{tmp}/twin", "--n-tiles", "0"], EXIT_USAGE, "--n-tiles", id="synth-no-tiles"),
        pytest.param(["data", "manifest", "{tmp}", "--workers", "0"], EXIT_USAGE, "--workers", id="manifest-workers-0"),
        pytest.param(
            ["evaluate", "{tmp}/nothing", "--data-root", "{tmp}"],
            EXIT_NOT_FOUND,
            "nothing",
            id="evaluate-missing-checkpoint",
        ),
        pytest.param(
            ["evaluate", "{tmp}", "--data-root", "{tmp}", "--device", "banana"],
            EXIT_USAGE,
            "banana",
            id="evaluate-device",
        ),
        pytest.param(
            ["evaluate", "{tmp}", "--data-root", "{tmp}", "--tile", "7"], EXIT_USAGE, "--tile", id="evaluate-tile"
        ),
        pytest.param(["nonsense"], EXIT_USAGE, "nonsense", id="unknown-command"),
    ],
)
def test_other_commands_fail_in_one_line(tmp_path, capsys, argv, expected, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, err = _run_in_process(argv, capsys)
    _assert_one_line(code, err, expected, needle)


# --------------------------------------------------------------------------------------------
# As a user runs it: subprocesses (exit status, stderr, --debug, python -m)
# --------------------------------------------------------------------------------------------
def test_subprocess_predict_blocksize_zero_is_one_line(scene, checkpoint, tmp_path):
    proc = _subprocess(_predict_args(scene, checkpoint, tmp_path / "o", "--blocksize", "0"))
    _assert_one_line(proc.returncode, proc.stderr, EXIT_USAGE, "--blocksize")
    assert not (tmp_path / "o").exists()


def test_subprocess_predict_int8_sentinel2(scene, checkpoint, bad, tmp_path):
    proc = _subprocess(_predict_args(scene, checkpoint, tmp_path / "o", s2=bad["s2_int8"]))
    _assert_one_line(proc.returncode, proc.stderr, EXIT_BAD_INPUT, str(bad["s2_int8"]))


def test_subprocess_module_entry_point_uses_the_same_handler(fake_luojiaset_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TDPCR_DEBUG"}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tdpcr_lib.cli.train",
            "--data-root",
            str(fake_luojiaset_root),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "batch_size=eight",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _assert_one_line(proc.returncode, proc.stderr, EXIT_USAGE, "batch_size", "tdpcr train")


def test_subprocess_diverging_training_stops_with_one_line(fake_luojiaset_root, tmp_path):
    proc = _subprocess(
        [
            "train",
            "--data-root",
            str(fake_luojiaset_root),
            "--out",
            str(tmp_path / "run"),
            "--small-model",
            "--no-progress",
            "--epochs",
            "1",
            "--max-steps",
            "3",
            "--batch-size",
            "2",
            "--lr",
            "1e6",
            "--set",
            "grad_clip=null",
        ],
        timeout=180,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == EXIT_DIVERGED, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and "diverged" in errors[0] and "learning rate" in errors[0]
    assert all(": warning: " in line for line in lines if line not in errors)  # one line each


@pytest.mark.parametrize("how", ["flag", "global-flag", "env"])
def test_debug_shows_the_traceback(scene, checkpoint, tmp_path, how):
    argv = _predict_args(scene, checkpoint, tmp_path / "o", "--tile", "3")
    if how == "flag":
        proc = _subprocess([*argv, "--debug"])
    elif how == "global-flag":
        proc = _subprocess(["--debug", *argv])
    else:
        proc = _subprocess(argv, TDPCR_DEBUG="1")
    assert proc.returncode == EXIT_USAGE
    assert "Traceback" in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith(
        "tdpcr predict: error: --tile"
    )


# --------------------------------------------------------------------------------------------
# The handler itself: OS errors, disk full, interrupts
# --------------------------------------------------------------------------------------------
class _CPLE_Fake(Exception):  # noqa: N801 - stands in for rasterio._err.CPLE_AppDefinedError
    pass


_CPLE_Fake.__module__ = "rasterio._err"


@pytest.mark.parametrize(
    ("error", "expected", "needle"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/x/out.tif"), EXIT_OS, "/x/out.tif"),
        (OSError(errno.ENOSPC, "No space left on device", "/x/o.tif"), EXIT_OS, "no space left"),
        (_CPLE_Fake("TIFFAppendToStrip:No space left on device"), EXIT_OS, "no space left"),
        (_CPLE_Fake("TIFFReadDirectory: bad"), EXIT_BAD_INPUT, "raster error"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/a.tif"), EXIT_NOT_FOUND, "/x/a.tif"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/x/d"), EXIT_OS, "/x/d"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/etc/passwd/x"), EXIT_OS, "/etc/passwd/x"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted"),
        (RuntimeError("boom\nsecond line"), EXIT_FAILURE, "boom second line"),
        (CheckpointError("/c/config.json: bad"), EXIT_CHECKPOINT, "/c/config.json"),
        (FloatingPointError("non-finite loss nan"), EXIT_DIVERGED, "diverged"),
    ],
)
def test_run_command_maps_errors_to_one_line_and_a_code(capsys, error, expected, needle):
    def body(_argv):
        raise error

    assert run_command("tdpcr x", body, []) == expected
    err = capsys.readouterr().err
    _assert_one_line(expected, err, expected, needle, "tdpcr x: error:")
    assert classify(error)[0] == expected


def test_every_exit_code_is_documented():
    errors_doc = (REPO / "docs" / "errors.md").read_text()
    running = (REPO / "docs" / "running.md").read_text()
    for code in EXIT_CODES:
        assert f"| {code} |" in errors_doc and f"| {code} |" in running, code
    assert "docs/errors.md" in (REPO / "README.md").read_text()


# --------------------------------------------------------------------------------------------
# The Python API gets the same validation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"lr": float("nan")},
        {"lr": float("inf")},
        {"lr": 0},
        {"batch_size": "eight"},
        {"batch_size": 0},
        {"grad_clip": -1.0},
        {"min_lr_ratio": 2.0},
        {"num_workers": -1},
        {"progress": "yes"},
        {"milestones": [0.5, 2.0]},
    ],
)
def test_train_config_validates_types_and_ranges(changes):
    with pytest.raises(TrainConfigError, match=f"TrainConfig.{next(iter(changes))}"):
        TrainConfig(**changes)


def test_train_config_still_accepts_good_values():
    config = TrainConfig(lr=1, epochs=2.0, grad_clip=None, crop_size=None)
    assert config.lr == 1.0 and isinstance(config.lr, float) and config.epochs == 2


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_nonfinite_inputs_normalise_to_the_documented_value(value):
    norm = load_normalisation()
    s1 = np.full((2, 2, 2), value, dtype=np.float32)
    s2 = np.full((13, 2, 2), value, dtype=np.float32)
    assert (norm.s1_to_unit(s1) == norm.nonfinite_value).all()
    assert (norm.s2_to_unit(s2) == norm.nonfinite_value).all()
    # finite values are untouched: clipping still maps out-of-range DN to the range ends
    assert norm.s2_to_unit(np.full((13, 1, 1), 20000, dtype=np.uint16)).max() == 1.0


def test_unknown_land_cover_codes_are_reported_once_per_file(tmp_path):
    legend = load_legend()
    labels = np.array([[0, 1, 9], [9, 255, 42]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = legend.sanitise(labels, source=tmp_path / "a.tif")
        legend.sanitise(labels, source=tmp_path / "a.tif")  # same file: no second report
        legend.sanitise(labels, source=tmp_path / "b.tif")
        legend.sanitise(labels)  # no source: silent (plots, metrics)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "a.tif: 3 pixel(s)" in messages[0] and "9, 42" in messages[0]
    assert first.tolist() == [[0, 1, 255], [255, 255, 255]]


def test_dataset_reports_ignored_pixels_naming_the_file(tiny_luojiaset_root, tmp_path):
    from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR

    root = Path(shutil.copytree(tiny_luojiaset_root, tmp_path / "twin"))
    dataset = LuojiaSETOSFCR(root, split="test")
    path = root / dataset.records[0].paths["land_cover_maps"]
    with rasterio.open(path, "r+") as dst:
        labels = dst.read()
        labels[0, :2, :] = 77
        dst.write(labels)
    with pytest.warns(UserWarning, match=rf"{path.name}: {2 * labels.shape[2]} pixel"):
        sample = dataset[0]
    assert (sample["mask"][:2] == 255).all()


@pytest.mark.parametrize(
    ("text", "needle"),
    [(b"[1, 2]", "JSON list"), (b'{"a": "\xff\xfe"}', "not UTF-8"), (b"{not json", "not valid JSON")],
)
def test_read_meta_names_the_file(checkpoint, tmp_path, text, needle):
    folder = Path(shutil.copytree(checkpoint, tmp_path / "ckpt"))
    (folder / "config.json").write_bytes(text)
    with pytest.raises(CheckpointError, match=needle) as info:
        read_meta(folder)
    assert str(folder / "config.json") in str(info.value)


# --------------------------------------------------------------------------------------------
# Good behaviours that must hold
# --------------------------------------------------------------------------------------------
def test_a_good_prediction_still_succeeds_quietly(scene, checkpoint, tmp_path, capsys):
    code, err = _run_in_process(
        _predict_args(scene, checkpoint, tmp_path / "o", "--tile", "32", "--overlap", "8", "--blocksize", "16"), capsys
    )
    assert code == 0 and err == ""
    summary = json.loads((tmp_path / "o" / "prediction.json").read_text())
    assert summary["tile"] == 32 and (tmp_path / "o" / "land_cover.tif").is_file()


def test_help_still_exits_zero(capsys):
    assert cli.main(["predict", "--help"]) == 0
    assert "--blocksize" in capsys.readouterr().out


def test_missing_manifest_hints_never_point_into_the_package(tiny_luojiaset_root, tmp_path):
    from tdpcr_lib.datasets.errors import DataIntegrityError
    from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
    from tdpcr_lib.datasets.luojiaset.manifest import LUOJIASET_MANIFEST_DIR
    from tdpcr_lib.datasets.manifests import verify_checksums

    root = Path(shutil.copytree(tiny_luojiaset_root, tmp_path / "twin", ignore=shutil.ignore_patterns("manifest")))
    with pytest.raises(Exception) as info:  # noqa: PT011 - message checked below
        LuojiaSETOSFCR(root, split="test")
    assert f"tdpcr data manifest {root}" in str(info.value)
    assert f"--out {LUOJIASET_MANIFEST_DIR}" not in str(info.value)  # names it, never advises it
    with pytest.raises(DataIntegrityError) as info:
        verify_checksums(root, LUOJIASET_MANIFEST_DIR, [])
    assert f"--out {LUOJIASET_MANIFEST_DIR}" not in str(info.value)
    assert f"tdpcr data manifest {root}" in str(info.value)


@pytest.mark.parametrize("blocksize", [0, 100, 8192])
def test_predict_scene_api_refuses_a_bad_blocksize_before_any_work(tmp_path, blocksize):
    """The Python API checks the COG block size up front, like the CLI (no model is loaded)."""
    with pytest.raises(PredictionInputError, match="blocksize must be a multiple of 16"):
        predict_scene(
            tmp_path / "missing_s2.tif",
            tmp_path / "missing_s1.tif",
            tmp_path / "no_checkpoint",
            tmp_path / "out",
            blocksize=blocksize,
        )
    assert not (tmp_path / "out").exists()
