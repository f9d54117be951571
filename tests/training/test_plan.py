"""The run plan's decisions (fresh, resume, finished, refuse, from init_from) and the trainer's
``state_dict`` / ``load_state_dict`` round trip (in memory and through ``last/`` on disk)."""

from __future__ import annotations

import dataclasses
import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import Subset

from tdpcr_lib.core.io import sha256_file
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models.checkpoint import CheckpointError, read_meta
from tdpcr_lib.training.async_checkpoint import snapshot
from tdpcr_lib.training.config import TrainConfig
from tdpcr_lib.training.plan import StartingPoint, StepBudget, plan_run
from tdpcr_lib.training.resume import read_resume_state
from tdpcr_lib.training.run import train
from tdpcr_lib.training.trainer import Trainer
from tdpcr_lib.transforms import TrainAugment

SMALL = ModelConfig.small()
# 8 training tiles / batch 4 = 2 steps per epoch; last/ after every step
CONFIG = TrainConfig(
    phase="phase1",
    epochs=2,
    batch_size=4,
    crop_size=16,
    lr=1e-3,
    progress=False,
    val_max_batches=1,
    checkpoint_every=1,
    seed=3,
)


class Interrupted(Exception):
    """Raised by a step callback: the run stops as if killed after that step's checkpoint."""


def _stop_at(step_to_stop: int):
    def callback(trainer, step):
        if step == step_to_stop:
            trainer.wait_for_checkpoints()
            raise Interrupted

    return callback


@pytest.fixture(scope="module")
def data(tiny_luojiaset_root):
    train_set = Subset(LuojiaSETOSFCR(tiny_luojiaset_root, split="train"), range(8))
    val_set = Subset(LuojiaSETOSFCR(tiny_luojiaset_root, split="val"), range(2))
    return train_set, val_set


def _plan(out_dir, config=CONFIG, resume="auto", start=None, world_size=1, model_config=None):
    return plan_run(
        out_dir,
        config,
        resume=resume,
        model_config=read_meta(out_dir / "last")["model_config"] if model_config is None else model_config,
        manifest_hash=None,  # an index subset of the data hides it, as in the runs below
        n_samples=8,
        start=start,
        world_size=world_size,
    )


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "phase1"
    result = train(CONFIG, SMALL, *data, out, device="cpu")
    assert result.steps == 4
    return out, result


def test_an_empty_folder_starts_fresh_and_says_so_in_one_line(finished_run, tmp_path):
    model_config = read_meta(finished_run[0] / "last")["model_config"]
    plan = _plan(tmp_path / "new", model_config=model_config)
    assert plan.action == "fresh" and not plan.continues and not plan.replaces
    assert plan.total_steps == 4 == StepBudget.of(CONFIG, 8).total_steps
    line = plan.describe()
    assert "fresh start from a random initialisation, 4 steps" in line and "\n" not in line


def test_an_interrupted_run_is_resumed_to_the_same_end(finished_run, data, tmp_path):
    out = tmp_path / "killed"
    with pytest.raises(Interrupted):
        train(CONFIG, SMALL, *data, out, device="cpu", callbacks=[_stop_at(3)])
    plan = _plan(out)
    assert plan.action == "resume" and plan.stored.step == 3
    assert "at epoch 1, step 3 (1 batches into the epoch) of 4" in plan.describe()
    resumed = train(CONFIG, SMALL, *data, out, device="cpu")
    assert resumed.steps == 4
    straight, _ = finished_run
    resumed_weights = load_file(out / "last" / "model.safetensors")
    straight_weights = load_file(straight / "last" / "model.safetensors")
    assert resumed_weights.keys() == straight_weights.keys()
    assert all(torch.equal(resumed_weights[k], straight_weights[k]) for k in straight_weights)
    # and the files themselves, byte for byte (their metadata map has one key: no random order)
    assert (out / "last" / "model.safetensors").read_bytes() == (straight / "last" / "model.safetensors").read_bytes()


def test_a_finished_run_is_planned_as_finished_and_not_retrained(finished_run, data, caplog):
    out, result = finished_run
    plan = _plan(out)
    assert plan.action == "finished" and plan.continues
    assert "already finished at step 4 of 4" in plan.describe()
    before = (out / "last" / "model.safetensors").read_bytes()
    with caplog.at_level(logging.INFO, logger="tdpcr_lib"):
        again = train(CONFIG, SMALL, *data, out, device="cpu")
    assert again.steps == 4 and again.history == result.history
    assert (out / "last" / "model.safetensors").read_bytes() == before
    planned = [r for r in caplog.records if r.name == "tdpcr_lib.training.run" and str(out) in r.getMessage()]
    assert [r.getMessage() for r in planned] == [plan.describe()]  # logged once, in one line


@pytest.mark.parametrize(("resume", "action"), [(True, "refuse"), ("auto", "fresh"), (False, "fresh")])
def test_an_incompatible_run_is_refused_or_replaced(finished_run, resume, action):
    out, _ = finished_run
    plan = _plan(out, config=CONFIG.replace(lr=5e-4), resume=resume)
    assert plan.action == action
    if resume is False:  # last/ is not even read
        assert plan.stored is None and plan.problems == ()
        return
    assert any(p.startswith("train config lr") for p in plan.problems)
    if action == "refuse":
        with pytest.raises(CheckpointError, match="cannot resume: train config lr"):
            plan.enforce()
    else:
        assert plan.replaces and "replacing the previous run in last/ (train config lr" in plan.describe()
        plan.enforce()  # a fresh start is never refused


def test_another_number_of_processes_is_refused_even_in_auto_mode(finished_run):
    out, _ = finished_run
    plan = _plan(out, world_size=2)
    assert plan.action == "refuse"
    with pytest.raises(CheckpointError, match="saved with 1 processes, resuming with 2"):
        plan.enforce()


def test_the_starting_checkpoint_is_read_once_and_checked_on_resume(finished_run, tmp_path):
    out, _ = finished_run
    start = StartingPoint.read(out / "best")
    assert start.fingerprint == sha256_file(out / "best" / "model.safetensors")
    assert start.meta["phase"] == "phase1" and StartingPoint.read(None) is None
    with pytest.raises(CheckpointError, match="does not exist"):
        StartingPoint.read(tmp_path / "missing")
    phase2 = CONFIG.replace(phase="phase2", init_from=str(out / "best"))
    fresh = _plan(tmp_path / "phase2", config=phase2, start=start, model_config=start.meta["model_config"])
    assert fresh.action == "fresh" and f"fresh start from {start.directory}" in fresh.describe()
    # a run whose starting weights changed since it was saved must not be continued
    changed = dataclasses.replace(start, fingerprint="0" * 64)
    problems = _plan(out, config=CONFIG.replace(init_from=str(out / "best")), start=changed).problems
    assert any("starting checkpoint" in p for p in problems)


def test_plan_rejects_an_unknown_resume_mode(tmp_path):
    with pytest.raises(ValueError, match="resume must be True, False or 'auto'"):
        _plan(tmp_path, resume="yes", model_config={})


# ------------------------------------------------------------------------------ state_dict
def _trainer(data, out_dir, seed=0, callbacks=()):
    torch.manual_seed(seed)  # a different initialisation: load_state_dict must replace it
    return Trainer(
        build_model(SMALL.replace(with_seg_decoder=False)),
        CONFIG,
        *data,
        out_dir,
        device="cpu",
        train_transform=TrainAugment(CONFIG.crop_size),
        callbacks=callbacks,
    )


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("through", ["memory", "disk"])
def test_state_dict_round_trip_continues_like_an_uninterrupted_run(data, tmp_path, through):
    straight = _trainer(data, tmp_path / "straight")
    expected = straight.fit()

    saved = {}

    def keep_state(trainer, step):
        if step == 3:
            saved["state"] = snapshot(trainer.state_dict())
            raise Interrupted

    first = _trainer(data, tmp_path / "first", callbacks=[_stop_at(3) if through == "disk" else keep_state])
    with pytest.raises(Interrupted):
        first.fit()
    first.wait_for_checkpoints()
    state = read_resume_state(tmp_path / "first" / "last") if through == "disk" else saved["state"]
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "progress", "history", "world_size"}
    assert state["progress"]["step"] == 3 and state["progress"]["step_in_epoch"] == 1

    second = _trainer(data, tmp_path / "second", seed=1)
    second.load_state_dict(state)
    assert (second.step, second.epoch, second.history) == (3, 1, first.history)
    result = second.fit()
    assert result.steps == expected.steps == 4
    assert result.best_epoch == expected.best_epoch and result.best_value == expected.best_value
    for a, b in zip(expected.history, result.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-9)
    want, got = _weights(straight), _weights(second)
    assert [k for k in want if not torch.equal(want[k], got[k])] == []


def test_load_state_dict_refuses_another_number_of_processes(data, tmp_path):
    trainer = _trainer(data, tmp_path)
    state = snapshot(trainer.state_dict())
    state["world_size"] = 2
    with pytest.raises(CheckpointError, match="saved with 2 processes"):
        trainer.load_state_dict(state)


def test_a_copied_run_folder_resumes_from_its_own_last(finished_run, tmp_path):
    """The plan reads the folder it is given (no path recorded in the run is trusted)."""
    out, _ = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert _plan(copy).stored.directory == copy / "last"
