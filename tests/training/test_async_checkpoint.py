"""Checkpoints are written off the training thread, and a SIGKILL in the middle of such a write
leaves the previous checkpoint valid: the run resumes from it to the same weights as a run that
was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from tdpcr_lib.models.checkpoint import load_trainer_state, read_meta
from tdpcr_lib.models.checkpoint_files import recover_checkpoint

# 40 tiles / batch 4 = 10 steps per epoch, 2 epochs; `last/` every 4 steps (as tests/test_resume).
TRAIN_ARGS = [
    "--phase",
    "phase1",
    "--small-model",
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--crop-size",
    "16",
    "--lr",
    "2e-3",
    "--checkpoint-every",
    "4",
    "--seed",
    "7",
    "--set",
    "val_max_batches=1",
    "--set",
    "warmup_steps=2",
    "--device",
    "cpu",
    "--no-progress",
]

# The CLI's training, with the checkpoint writer killed (SIGKILL, the whole process) in the middle
# of the save of step KILL_STEP: either before the new folder is complete (its config.json, written
# last, is not there yet) or inside the swap (the old `last/` renamed away, the new one not yet
# in place). The marker file records on which thread the write was when the kill came.
KILLER = textwrap.dedent("""
    import os, signal, sys, threading
    from pathlib import Path
    import tdpcr_lib.models.checkpoint as ckpt
    from tdpcr_lib.cli import train as cli
    from tdpcr_lib.training.run import train_on_folder

    where, kill_step, marker, argv = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
    args = cli._parser().parse_args(argv)
    config, model_config = cli.build_configs(args)

    def die():
        marker.write_text(threading.current_thread().name)
        os.kill(os.getpid(), signal.SIGKILL)

    real_write_json, real_swap = ckpt.atomic_write_json, ckpt.swap_in

    def write_json(path, obj, *a, **k):
        if (where == "before_config" and Path(path).name == "config.json"
                and obj.get("step") == kill_step and "trainer_state.json" in obj["sha256"]):
            die()
        return real_write_json(path, obj, *a, **k)

    def swap(staging, directory):
        if where == "in_swap" and directory.name == "last" and \\
                '"step": %d,' % kill_step in (staging / "config.json").read_text():
            directory.rename(directory.parent / f".{directory.name}.old")
            die()
        return real_swap(staging, directory)

    ckpt.atomic_write_json, ckpt.swap_in = write_json, swap
    train_on_folder(config, model_config, args.data_root, args.out, device="cpu")
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _run_cli(root, out) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tdpcr_lib.cli.train", "--data-root", str(root), "--out", str(out), *TRAIN_ARGS],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )


@pytest.fixture(scope="module")
def uninterrupted(tiny_luojiaset_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("async") / "straight"
    done = _run_cli(tiny_luojiaset_root, out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("where", ["before_config", "in_swap"])
def test_sigkill_during_an_async_save_keeps_the_previous_checkpoint(
    where, uninterrupted, tiny_luojiaset_root, tmp_path
):
    out, marker = tmp_path / "killed", tmp_path / "thread"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLER,
            where,
            "8",
            str(marker),
            "--data-root",
            str(tiny_luojiaset_root),
            "--out",
            str(out),
            *TRAIN_ARGS,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert marker.read_text().startswith("tdpcr-ckpt")  # the write was off the training thread

    # before any repair a reader gets the previous checkpoint (last/ or, mid-swap, .last.old)
    assert read_meta(out / "last")["step"] == 4
    recover_checkpoint(out / "last")  # what the next run does first
    # an incomplete new folder is discarded; a complete one caught mid-swap is rolled forward
    step = 4 if where == "before_config" else 8
    assert read_meta(out / "last")["step"] == step
    assert load_trainer_state(out / "last")  # every file present, its sha256 verified

    resumed = _run_cli(tiny_luojiaset_root, out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"step {step}" in resumed.stdout  # it resumed, not restarted
    expected = load_file(str(uninterrupted / "last" / "model.safetensors"))
    got = load_file(str(out / "last" / "model.safetensors"))
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_async_and_sync_saves_write_identical_checkpoints(tmp_path):
    from tdpcr_lib.models.build import build_model
    from tdpcr_lib.models.config import ModelConfig
    from tdpcr_lib.training.async_checkpoint import AsyncCheckpointer

    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny"))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.rand(1, 13, 16, 16), torch.rand(1, 2, 16, 16))["reconstruction"].sum().backward()
    optimizer.step()
    fields = dict(
        phase="phase1", epoch=0, step=1, code_version="test", trainer_state={"optimizer": optimizer.state_dict()}
    )
    AsyncCheckpointer(enabled=False).save(tmp_path / "sync", model, **fields)
    saver = AsyncCheckpointer()
    saver.save(tmp_path / "async", model, **fields)
    with torch.no_grad():  # the training thread goes on updating in place: the snapshot holds
        for p in model.parameters():
            p.add_(1.0)
        optimizer.state_dict()["state"][0]["exp_avg"].add_(1.0)
    saver.close()
    # tensors compared, not file bytes: safetensors' header order differs between two saves
    for name in ("model.safetensors", "trainer_state.safetensors"):
        a, b = (load_file(str(tmp_path / run / name)) for run in ("sync", "async"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    a, b = (json.loads((tmp_path / run / "trainer_state.json").read_text()) for run in ("sync", "async"))
    assert a == b
