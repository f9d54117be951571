"""torchrun with 2 CPU processes (gloo) matches 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tdpcr_lib.metrics.results import from_records, value
from tdpcr_lib.models.checkpoint import read_meta

# 40 training tiles, global batch 4 → 10 steps per epoch; 3 steps keep the comparison tight
# (Adam amplifies float-rounding differences over many steps).
TRAIN_ARGS = [
    "--phase",
    "phase1",
    "--small-model",
    "--epochs",
    "1",
    "--max-steps",
    "3",
    "--batch-size",
    "4",
    "--crop-size",
    "16",
    "--lr",
    "1e-3",
    "--seed",
    "3",
    "--device",
    "cpu",
    "--no-progress",
]


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_gloo_processes_match_one_process(tiny_luojiaset_root, tmp_path):
    single = tmp_path / "single"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tdpcr_lib.cli.train",
            "--data-root",
            str(tiny_luojiaset_root),
            "--out",
            str(single),
            *TRAIN_ARGS,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr

    ddp = tmp_path / "ddp"
    done = subprocess.run(
        [
            *_torchrun(),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "tdpcr_lib.cli.train",
            "--data-root",
            str(tiny_luojiaset_root),
            "--out",
            str(ddp),
            *TRAIN_ARGS,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, "only rank 0 reports"

    meta_single, meta_ddp = read_meta(single / "last"), read_meta(ddp / "last")
    assert meta_ddp["world_size"] == 2 and meta_single["world_size"] == 1
    assert meta_ddp["step"] == meta_single["step"] == 3
    expected = load_file(str(single / "last" / "model.safetensors"))
    got = load_file(str(ddp / "last" / "model.safetensors"))
    worst = max(float((expected[k] - got[k]).abs().max()) for k in expected)
    assert worst < 1e-5, f"DDP weights differ from the single-process run by {worst}"

    # validation metrics are merged over both ranks: every val image counted exactly once
    val_single, val_ddp = from_records(meta_single["metrics"]), from_records(meta_ddp["metrics"])
    assert value(val_ddp, "n_images") == value(val_single, "n_images") == 5
    assert value(val_ddp, "psnr") == pytest.approx(value(val_single, "psnr"), abs=1e-3)
    history = json.loads((ddp / "history.json").read_text())
    assert history["epochs"][0]["train_loss"] == pytest.approx(
        json.loads((single / "history.json").read_text())["epochs"][0]["train_loss"], rel=1e-4
    )
    # rank 0 alone wrote: no staging folders of a second writer are left behind
    # (the training lock, core.locking.LOCK_NAME, stays: an unlocked lock file is harmless and reused)
    assert sorted(p.name for p in ddp.iterdir() if p.name.startswith(".") and p.name != ".tdpcr.lock") == []
