"""``make bench``'s engine and checkpoint benchmarks run end to end in tiny mode.

No timing is asserted (figures depend on the machine); the runs must finish, report every figure
the issue's targets are judged by, and mark the tiny verdicts SKIP (tiny models say nothing about
the targets).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tdpcr_lib.core.paths import REPO_ROOT

pytest.importorskip("onnxruntime")


def _run(module: str, out, *extra: str) -> tuple[dict, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", module, "--tiny", "--threads", "1", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout


@pytest.mark.slow  # exports and runs a scene twice: ~1 min
def test_engine_scene_reports_the_ratio_and_the_bound(tmp_path):
    result, printed = _run("benchmarks.engine_scene", tmp_path / "scene.json", "--work-dir", str(tmp_path))
    assert result["engine"] == "onnxruntime"  # auto on a CPU with onnxruntime installed
    for key in ("before_mpx_s", "after_mpx_s", "bound_mpx_s", "ratio_after_before", "ratio_to_bound"):
        assert result[key] > 0, key
    assert result["ratio_after_before"] == pytest.approx(result["after_mpx_s"] / result["before_mpx_s"])
    assert {"forward_s", "cog_s"} <= set(result["timings"]["after"])
    assert "ratio after/before" in printed and "ratio to bound" in printed
    assert "SKIP (tiny)" in printed and "PASS" not in printed


def test_checkpoint_benchmark_reports_bare_sync_and_async(tmp_path):
    result, printed = _run("benchmarks.checkpoint_async", tmp_path / "ckpt.json")
    assert set(result["seconds_per_round"]) == {"bare", "sync", "async"}
    assert result["ratio_async"] > 0 and result["ratio_sync"] > 0
    assert "SKIP (tiny)" in printed


def test_checkpoint_benchmark_measures_the_model_size_it_is_given(tmp_path):
    # `make bench` judges the training target on the paper's size (--preset full); here a size
    # other than the tiny recipe's must reach the model that is timed
    result, printed = _run("benchmarks.checkpoint_async", tmp_path / "ckpt.json", "--preset", "default")
    assert result["preset"] == "default" and "default preset" in printed
