"""Checkpoint folders: round-trips, pickle-free state, atomic replacement, refusal of mismatches."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from tdpcr_lib.core.runtime import capture_rng_state, restore_rng_state
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models import checkpoint as ckpt
from tdpcr_lib.models.checkpoint import (
    CheckpointError,
    flatten_state,
    load_model,
    load_trainer_state,
    load_weights_into,
    read_meta,
    save_checkpoint,
    unflatten_state,
)


@pytest.fixture()
def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig.small())


def _inputs(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(2, 13, size, size, generator=generator), torch.rand(2, 2, size, size, generator=generator))


def test_round_trip_restores_identical_outputs_and_metadata(tmp_path, small_model):
    directory = save_checkpoint(
        tmp_path / "best",
        small_model,
        phase="phase1",
        epoch=3,
        step=42,
        train_config={"lr": 0.001},
        metrics={"cr": {"psnr": 30.5}},
        manifest_hash="abc123",
    )
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    model, meta = load_model(directory)
    optical, sar = _inputs()
    small_model.eval()
    with torch.no_grad():
        expected = small_model(optical, sar)["reconstruction"]
        got = model(optical, sar)["reconstruction"]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert (meta["phase"], meta["epoch"], meta["step"]) == ("phase1", 3, 42)
    assert meta["metrics"] == {"cr": {"psnr": 30.5}}
    assert meta["manifest_hash"] == "abc123"
    assert meta["model_config"] == small_model.config.to_dict()
    assert meta["tdpcr_version"] and meta["git_sha"]
    assert meta["num_parameters"] == sum(p.numel() for p in small_model.parameters())


def test_seg_decoder_checkpoint_rebuilds_with_decoder(tmp_path, small_model):
    small_model.attach_segmentation_decoder()
    save_checkpoint(tmp_path / "p2", small_model, phase="phase2", epoch=1, step=1)
    model, _ = load_model(tmp_path / "p2")
    out = model(*_inputs())
    assert out["segmentation"].shape == (2, 7, 32, 32)


def test_nested_state_round_trips_exactly_without_pickle():
    state = {
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4, 2)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "foreused": None, "amsgrad": False}],
        },
        "numpy": np.arange(5, dtype=np.uint32),
        "inf": float("inf"),
        "__weird_key": "kept",
    }
    data, tensors = flatten_state(state)
    json.dumps(data)  # everything that is not a tensor is plain JSON
    restored = unflatten_state(json.loads(json.dumps(data)), tensors)
    assert restored["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert list(restored["optimizer"]["state"]) == [0]  # int keys stay ints
    torch.testing.assert_close(restored["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert restored["numpy"].dtype == np.uint32
    np.testing.assert_array_equal(restored["numpy"], state["numpy"])
    assert restored["inf"] == float("inf")
    assert restored["__weird_key"] == "kept"


def test_flatten_refuses_objects_that_would_need_pickle():
    with pytest.raises(TypeError, match="without pickling"):
        flatten_state({"fn": lambda x: x})


def test_trainer_state_round_trip_resumes_optimizer_and_rng(tmp_path, small_model):
    optimizer = torch.optim.AdamW(small_model.parameters(), lr=1e-3)
    small_model(*_inputs())["reconstruction"].mean().backward()
    optimizer.step()
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002
    torch.manual_seed(5)
    rng = capture_rng_state()
    expected_draws = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    save_checkpoint(
        tmp_path / "last",
        small_model,
        phase="phase1",
        epoch=0,
        step=1,
        trainer_state={"optimizer": optimizer.state_dict(), "rng": rng},
    )
    state = load_trainer_state(tmp_path / "last")
    fresh = torch.optim.AdamW(small_model.parameters(), lr=1e-3)
    fresh.load_state_dict(state["optimizer"])
    for key in ("exp_avg", "exp_avg_sq", "step"):
        torch.testing.assert_close(fresh.state_dict()["state"][0][key], optimizer.state_dict()["state"][0][key])
    restore_rng_state(state["rng"])
    torch.testing.assert_close(torch.rand(3), expected_draws[0])
    np.testing.assert_array_equal(np.random.rand(3), expected_draws[1])  # noqa: NPY002
    assert random.random() == expected_draws[2]


def test_best_checkpoint_without_state_cannot_be_resumed(tmp_path, small_model):
    save_checkpoint(tmp_path / "best", small_model, phase="phase1", epoch=1, step=1)
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        load_trainer_state(tmp_path / "best")


def test_loading_into_a_different_architecture_is_refused(tmp_path, small_model):
    save_checkpoint(tmp_path / "ck", small_model, phase="phase1", epoch=1, step=1)
    other = build_model(ModelConfig.small(widths=(8, 16, 32, 48)))
    with pytest.raises(CheckpointError, match=r"model config does not match.*widths"):
        load_weights_into(other, tmp_path / "ck")
    with pytest.raises(CheckpointError, match="weights do not fit the architecture"):
        load_weights_into(other, tmp_path / "ck", check_config=False)


def test_load_model_with_expected_config_names_the_difference(tmp_path, small_model):
    save_checkpoint(tmp_path / "ck", small_model, phase="phase1", epoch=1, step=1)
    with pytest.raises(CheckpointError, match="fusion: checkpoint='pgf' vs requested='concat'"):
        load_model(tmp_path / "ck", expected_config={"fusion": "concat"})
    model, _ = load_model(tmp_path / "ck", expected_config={"fusion": "pgf"})
    assert model.config.fusion == "pgf"


@pytest.mark.parametrize("problem", ["missing", "not_checkpoint", "bad_version", "corrupt_weights"])
def test_bad_checkpoint_folders_raise_clear_errors(tmp_path, small_model, problem):
    directory = tmp_path / "ck"
    if problem == "missing":
        expected = "does not exist"
    elif problem == "not_checkpoint":
        directory.mkdir()
        expected = "not a tdpcr checkpoint"
    else:
        save_checkpoint(directory, small_model, phase="phase1", epoch=1, step=1)
        if problem == "bad_version":
            meta = json.loads((directory / "config.json").read_text())
            meta["format_version"] = 99
            (directory / "config.json").write_text(json.dumps(meta))
            expected = "format version 99"
        else:
            (directory / "model.safetensors").write_bytes(b"not a safetensors file")
            expected = "cannot read weights"
    with pytest.raises(CheckpointError, match=expected):
        load_model(directory)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, small_model, monkeypatch):
    save_checkpoint(tmp_path / "last", small_model, phase="phase1", epoch=1, step=10)

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "atomic_write_json", explode)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "last", small_model, phase="phase1", epoch=2, step=20)
    assert read_meta(tmp_path / "last")["step"] == 10
    assert [p.name for p in tmp_path.iterdir()] == ["last"]  # no staging folder left behind


def test_crash_between_renames_falls_back_to_the_previous_version(tmp_path, small_model):
    save_checkpoint(tmp_path / "last", small_model, phase="phase1", epoch=1, step=10)
    (tmp_path / "last").rename(tmp_path / ".last.old")  # state right after the first rename
    assert read_meta(tmp_path / "last")["step"] == 10
    model, _ = load_model(tmp_path / "last")
    assert model.config == small_model.config
    save_checkpoint(tmp_path / "last", small_model, phase="phase1", epoch=2, step=20)
    assert read_meta(tmp_path / "last")["step"] == 20
    assert not (tmp_path / ".last.old").exists()


def test_loading_never_unpickles(tmp_path, small_model, monkeypatch):
    optimizer = torch.optim.AdamW(small_model.parameters())
    save_checkpoint(
        tmp_path / "last",
        small_model,
        phase="phase1",
        epoch=0,
        step=0,
        trainer_state={"optimizer": optimizer.state_dict()},
    )

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load / pickle must not be used to read checkpoints")

    import pickle

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    load_model(tmp_path / "last")
    load_trainer_state(tmp_path / "last")


def test_equal_weights_give_byte_identical_weight_files(tmp_path, small_model):
    """A resumed run and a straight one end in the same model.safetensors, byte for byte: the
    file's metadata has one key, because safetensors writes a metadata map in a random order."""
    files = {
        (
            save_checkpoint(tmp_path / f"c{i}", small_model, phase="phase1", epoch=0, step=0) / "model.safetensors"
        ).read_bytes()
        for i in range(12)
    }
    assert len(files) == 1
