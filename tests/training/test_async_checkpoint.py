"""Checkpoints are written off the training thread, and a SIGKILL in the middle of such a write
leaves the previous checkpoint valid: the run resumes from it to the same weights as a run that
was never interrupted."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from safetensors.torch import load_file

from tdpcr_lib.models.checkpoint import load_trainer_state, read_meta
from tdpcr_lib.models.checkpoint_files import recover_checkpoint

# The run of tests/training/conftest.py, with the checkpoint writer killed (SIGKILL, the whole
# process) in the middle of the save of step KILL_STEP: either before the new folder is complete
# (its config.json, written last, is not there yet) or inside the swap (the old `last/` renamed
# away, the new one not yet in place). The marker file records on which thread the write was when
# the kill came.
KILLER = """
    import os, signal, threading
    from pathlib import Path
    import tdpcr_lib.models.checkpoint as ckpt

    where, kill_step, marker = script_args[0], int(script_args[1]), Path(script_args[2])

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
"""


@pytest.mark.parametrize("where", ["before_config", "in_swap"])
def test_sigkill_during_an_async_save_keeps_the_previous_checkpoint(
    where, uninterrupted_run, train_process, tiny_luojiaset_root, tmp_path
):
    out, marker = tmp_path / "killed", tmp_path / "thread"
    killed = train_process(tiny_luojiaset_root, out, KILLER, where, "8", str(marker))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert marker.read_text().startswith("tdpcr-ckpt")  # the write was off the training thread

    # before any repair a reader gets the previous checkpoint (last/ or, mid-swap, .last.old)
    assert read_meta(out / "last")["step"] == 4
    recover_checkpoint(out / "last")  # what the next run does first
    # an incomplete new folder is discarded; a complete one caught mid-swap is rolled forward
    step = 4 if where == "before_config" else 8
    assert read_meta(out / "last")["step"] == step
    assert load_trainer_state(out / "last")  # every file present, its sha256 verified

    resumed = train_process(tiny_luojiaset_root, out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"step {step}" in resumed.stdout  # it resumed, not restarted
    expected = load_file(str(uninterrupted_run / "last" / "model.safetensors"))
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
