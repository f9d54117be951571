"""tdpcr as a real package: resources in the wheel, defaults outside a checkout, the wheel end to end.

The fast tests check ``pyproject.toml`` and the path rules; ``test_wheel_end_to_end`` (``slow``:
``pytest -m slow tests/test_packaging.py``) builds the wheel, installs it into a fresh venv and
runs the CLI (data synth/manifest, train, evaluate, predict, reproduce of notebook 00) from a
temporary folder.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from tdpcr_lib.core import paths
from tdpcr_lib.datasets.synthetic import clouds
from tdpcr_lib.datasets.synthetic.clouds import CLOUD_GENERATOR_INSTALL

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "tdpcr_lib" / "resources"
#: Source-tree entries that never go into a build (generated, large or machine-local).
NOT_BUILT = {
    ".git",
    ".venv",
    "build",
    "dist",
    "data",
    "runs",
    "reports",
    "benchmarks",
    "tests",
    "notebooks",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


# --------------------------------------------------------------------------------------------
# Fast checks
# --------------------------------------------------------------------------------------------
def test_package_data_covers_every_resource_file():
    package_data = _pyproject()["tool"]["setuptools"]["package-data"]["tdpcr_lib.resources"]
    files = [p.name for p in RESOURCES.iterdir() if p.is_file() and p.suffix != ".py"]
    assert files, "no resource files found"
    uncovered = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in package_data)]
    assert not uncovered, f"resources not shipped in the wheel (package-data): {uncovered}"


def test_every_subpackage_is_a_regular_package():
    """setuptools' find (not namespace) skips folders without ``__init__.py``: they'd be missing."""
    missing = [
        str(d.relative_to(REPO))
        for d in (REPO / "tdpcr_lib").rglob("*")
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")) and not (d / "__init__.py").is_file()
    ]
    assert not missing, missing


def test_cloud_generator_is_optional_and_pinned_alike():
    project = _pyproject()["project"]
    assert not any(d.startswith("satellite-cloud-generator") for d in project["dependencies"])
    assert project["optional-dependencies"]["synth"] == ["satellite-cloud-generator==0.4"]
    assert CLOUD_GENERATOR_INSTALL.endswith("satellite-cloud-generator==0.4")
    assert "--no-deps" in CLOUD_GENERATOR_INSTALL


def test_in_a_checkout_defaults_stay_in_the_repository():
    if os.environ.get("TDPCR_HOME") or os.environ.get("TDPCR_REPO_ROOT"):
        pytest.skip("home overridden by the environment")
    assert paths.IN_CHECKOUT and paths.REPO_ROOT == REPO and paths.HOME == REPO
    assert paths.RUNS_DIR == REPO / "runs" and paths.NOTEBOOKS_DIR == REPO / "notebooks"


def _paths_in_subprocess(cwd: Path, env: dict[str, str]) -> dict[str, str]:
    code = (
        "import json; from tdpcr_lib.core import paths as p; print(json.dumps({k: str(getattr"
        "(p, k)) for k in ('HOME', 'REPO_ROOT', 'DATA_DIR', 'RUNS_DIR', 'REPORTS_DIR', "
        "'IN_CHECKOUT')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return json.loads(out)


def test_tdpcr_home_overrides_every_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TDPCR_HOME", "TDPCR_REPO_ROOT")}
    env["PYTHONPATH"] = str(REPO)
    env["TDPCR_HOME"] = str(tmp_path / "home")
    got = _paths_in_subprocess(tmp_path, env)
    assert got["HOME"] == str(tmp_path / "home")
    assert got["RUNS_DIR"] == str(tmp_path / "home" / "runs")
    assert got["REPORTS_DIR"] == str(tmp_path / "home" / "reports")
    assert got["REPO_ROOT"] == str(REPO)  # still a checkout: notebooks and git SHA come from it


def test_synth_without_the_cloud_generator_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from tdpcr_lib.cli.data import main

    real_find_spec = clouds.importlib.util.find_spec
    monkeypatch.setattr(
        clouds.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "satellite_cloud_generator" else real_find_spec(name, *a),
    )
    assert main(["synth", str(tmp_path / "twin"), "--n-tiles", "5", "--size", "16"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and CLOUD_GENERATOR_INSTALL in err
    assert not (tmp_path / "twin").exists()  # nothing written


def test_manifest_defaults_beside_the_data(tiny_luojiaset_root, tmp_path, capsys):
    from tdpcr_lib.cli.data import main

    root = tmp_path / "copy"
    shutil.copytree(tiny_luojiaset_root, root, ignore=shutil.ignore_patterns("manifest"))
    assert main(["manifest", str(root), "--no-checksums"]) == 0
    assert (root / "manifest" / "test.csv").is_file()
    assert f"{root / 'manifest'}" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# The wheel, end to end (slow: builds, installs torch and the wheel into a fresh venv)
# --------------------------------------------------------------------------------------------
def _run(cmd: list[str], cwd: Path, timeout: int = 900, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def _copy_sources(target: Path) -> Path:
    """The files a build needs, without build/ leftovers or data that would slow it down."""
    shutil.copytree(
        REPO, target, ignore=lambda folder, names: [n for n in names if n in NOT_BUILT or n.endswith(".egg-info")]
    )
    return target


@pytest.mark.slow
def test_wheel_end_to_end(tmp_path):
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.perf_counter() - started - sum(timings.values()), 1)

    source = _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(dist)], cwd=tmp_path)
    wheel = next(dist.glob("tdpcr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for resource in RESOURCES.glob("*.json"):
        assert f"tdpcr_lib/resources/{resource.name}" in names
    lap("build")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    tdpcr = env_dir / "bin" / "tdpcr"
    pip = [str(python), "-m", "pip", "install", "-q"]
    _run([*pip, "torch==2.13.0"], cwd=tmp_path)  # first, so the wheel's torch>=2.3 is satisfied
    _run([*pip, str(wheel)], cwd=tmp_path)
    lap("install")

    work = tmp_path / "work"  # a folder with no checkout anywhere above it
    work.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TDPCR_HOME", "TDPCR_REPO_ROOT", "VIRTUAL_ENV")
    }
    env["OMP_NUM_THREADS"] = "1"

    # a plain install: `tdpcr data synth` fails in one line naming the install command
    proc = subprocess.run([str(tdpcr), "data", "synth"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and CLOUD_GENERATOR_INSTALL in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = subprocess.run([str(tdpcr), "reproduce"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "--notebooks DIR" in proc.stderr, proc.stderr
    _run([*pip, *CLOUD_GENERATOR_INSTALL.split()[2:]], cwd=tmp_path, env=env)
    frozen = _run([str(python), "-m", "pip", "list", "--format=freeze"], cwd=work, env=env)
    assert "torchvision" not in frozen.lower()
    lap("plain-install checks")

    _run([str(tdpcr), "data", "synth", "--n-tiles", "50", "--size", "32"], cwd=work, env=env)
    twin = work / "data" / "synthetic_luojiaset"
    assert (twin / "manifest" / "test.csv").is_file()
    _run([str(tdpcr), "data", "manifest", str(twin), "--out", "my_manifest", "--no-checksums"], cwd=work, env=env)
    assert (work / "my_manifest" / "train.csv").is_file()
    check = (
        "import sys; from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR; "
        "ds = LuojiaSETOSFCR(sys.argv[1], split='train'); s = ds[0]; "
        "assert s['optical'].shape == (13, 32, 32) and s['sar'].shape[0] == 2, s; "
        "print(len(ds))"
    )
    assert int(_run([str(python), "-c", check, str(twin)], cwd=work, env=env)) > 0
    lap("data")

    _run(
        [
            str(tdpcr),
            "train",
            "--phase",
            "joint",
            "--data-root",
            str(twin),
            "--out",
            "runs/smoke",
            "--preset",
            "smoke",
            "--small-model",
            "--epochs",
            "1",
            "--max-steps",
            "2",
            "--device",
            "cpu",
            "--no-progress",
        ],
        cwd=work,
        env=env,
    )
    assert (work / "runs" / "smoke" / "best" / "model.safetensors").is_file()
    lap("train")
    _run(
        [
            str(tdpcr),
            "evaluate",
            "runs/smoke/best",
            "--data-root",
            str(twin),
            "--max-batches",
            "1",
            "--tile",
            "none",
            "--device",
            "cpu",
            "--no-progress",
        ],
        cwd=work,
        env=env,
    )
    assert (work / "runs" / "smoke" / "eval_best_test.json").is_file()
    lap("evaluate")
    scene = (
        "from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene; "
        "make_synthetic_scene('scene', 96, 112, seed=0)"
    )
    _run([str(python), "-c", scene], cwd=work, env=env)
    _run(
        [
            str(tdpcr),
            "predict",
            "--s2",
            "scene/s2_cloudy.tif",
            "--s1",
            "scene/s1.tif",
            "--checkpoint",
            "runs/smoke/best",
            "--out",
            "pred",
            "--tile",
            "64",
            "--overlap",
            "16",
            "--device",
            "cpu",
            "--no-progress",
        ],
        cwd=work,
        env=env,
    )
    assert (work / "pred" / "cloud_free.tif").is_file() and (work / "pred" / "land_cover.tif").is_file()
    lap("predict")

    # notebooks from a folder outside any checkout; outputs land in the current directory
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(REPO / "notebooks" / "00_get_data.ipynb", notebooks)
    _run(
        [str(tdpcr), "reproduce", "--notebooks", str(notebooks), "--only", "00", "--smoke", "--no-progress"],
        cwd=work,
        env=env,
    )
    # a smoke run reports under reports/smoke/, never over a default run's reports
    record = json.loads((work / "reports" / "smoke" / "metrics" / "00_get_data.json").read_text())
    assert record["parameters"]["SMOKE"] is True and record["git_sha"] == "unknown"
    assert (work / "reports" / "smoke" / "executed" / "00_get_data.ipynb").is_file()
    assert not (work / "reports" / "metrics").exists()
    assert sorted(p.name for p in notebooks.iterdir()) == ["00_get_data.ipynb"]
    lap("reproduce 00")
    print(f"wheel end to end: {sum(timings.values()):.0f} s {timings}")


@pytest.fixture
def git_checkout() -> None:
    """Skip unless the tests run from a git checkout with git installed (not from a wheel)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")


@pytest.mark.parametrize(
    "generated",
    [
        "reports/html/index.html",  # tdpcr report html, run by make reproduce
        "reports/long/metrics/04_ablations.json",  # tdpcr reproduce --budget long
        "reports/long/figures/03_evaluate_transfer.png",
        "reports/smoke/verdicts.md",
        "reports/executed/03_evaluate.ipynb",
        "reports/metrics/reproduce.json",
        "reports/transfer_check.md",
        "runs/phase2/best/model.safetensors",
        "data/synthetic_luojiaset/synthetic.json",
    ],
)
def test_what_the_main_job_writes_stays_out_of_git(generated, git_checkout):
    """After `make reproduce` a `git add -A` must not pick up outputs (no outputs in git)."""
    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", generated], cwd=REPO)
    assert result.returncode == 0, f"{generated} is not git-ignored"


def test_the_reports_readme_stays_tracked(git_checkout):
    assert subprocess.run(["git", "check-ignore", "-q", "--no-index", "reports/README.md"], cwd=REPO).returncode == 1
