"""Model cards beside each checkpoint; ``config.json`` without absolute paths of the training machine."""

from __future__ import annotations

import json
import os

import pytest

from tdpcr_lib.core import paths
from tdpcr_lib.core.legend import legend_of
from tdpcr_lib.core.portable import project_path, resolve_project_path
from tdpcr_lib.models import ModelConfig
from tdpcr_lib.models.checkpoint import load_model
from tdpcr_lib.models.checkpoint_files import HASHES_FIELD
from tdpcr_lib.training.config import TrainConfig
from tdpcr_lib.training.model_card import MODEL_CARD_FILE, model_card, write_model_card
from tdpcr_lib.training.run import train_on_folder


def _config(**changes) -> TrainConfig:
    base = dict(
        phase="phase1",
        epochs=1,
        max_steps=2,
        batch_size=4,
        crop_size=16,
        lr=1e-3,
        progress=False,
        val_max_batches=1,
        log_every=1,
    )
    return TrainConfig(**{**base, **changes})


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


@pytest.fixture(scope="module")
def runs(tiny_luojiaset_root, tmp_path_factory):
    home = tmp_path_factory.getbasetemp()  # the "project": data and runs inside it
    patch = pytest.MonkeyPatch()
    patch.setattr(paths, "HOME", home)
    out = tmp_path_factory.mktemp("runs")
    phase1 = train_on_folder(
        _config(), ModelConfig.small(), tiny_luojiaset_root, out / "phase1", device="cpu", source="synthetic"
    )
    phase2 = train_on_folder(
        _config(phase="phase2", init_from=str(out / "phase1" / "best")),
        None,
        tiny_luojiaset_root,
        out / "phase2",
        device="cpu",
    )
    yield home, out, phase1, phase2
    patch.undo()


@pytest.mark.parametrize("phase", ["phase1", "phase2"])
def test_every_checkpoint_has_a_card_from_its_own_record(runs, phase):
    home, out, *_ = runs
    for kind in ("best", "last"):
        folder = out / phase / kind
        card = (folder / MODEL_CARD_FILE).read_text()
        meta = json.loads((folder / "config.json").read_text())
        assert MODEL_CARD_FILE in meta[HASHES_FIELD]  # part of the verified folder
        assert "synthetic twin" in card and "demonstration, not a product" in card
        assert meta["manifest_hash"] and meta["manifest_hash"] in card
        assert f"{meta['num_parameters']:,} parameters" in card and "MiB of weights" in card
        assert f"{meta['step']} optimizer steps" in card and "max_steps=2" in card
        assert "| PSNR, all pixels |" in card and "| dB |" in card
        assert "## Licence" in card and "MIT" in card
        for name in legend_of(meta["model_config"]).names:  # the twin's own class names (one legend per dataset)
            assert name in card
    card = (out / "phase2" / "best" / MODEL_CARD_FILE).read_text()
    if phase == "phase2":
        assert "| mIoU, all pixels |" in card and "| % |" in card
        assert "started from `" in card


def test_config_json_holds_no_absolute_path(runs, tiny_luojiaset_root):
    home, out, *_ = runs
    for folder in ("phase1/best", "phase1/last", "phase2/best", "phase2/last"):
        meta = json.loads((out / folder / "config.json").read_text())
        absolute = [s for s in _strings(meta) if os.path.isabs(s) or str(home) in s]
        assert not absolute, (folder, absolute)
        assert meta["data_root"] == tiny_luojiaset_root.relative_to(home).as_posix()
    stored = json.loads((out / "phase2/best/config.json").read_text())["train_config"]
    assert stored["init_from"] == (out / "phase1" / "best").relative_to(home).as_posix()
    assert resolve_project_path(stored["init_from"], home) == out / "phase1" / "best"
    history = json.loads((out / "phase2" / "history.json").read_text())
    assert not [s for s in _strings(history) if str(home) in s]


def test_relative_paths_still_resume_and_load(runs, tiny_luojiaset_root, monkeypatch):
    home, out, phase1, phase2 = runs
    monkeypatch.setattr(paths, "HOME", home)
    again = train_on_folder(
        _config(phase="phase2", init_from=str(out / "phase1" / "best")),
        None,
        tiny_luojiaset_root,
        out / "phase2",
        device="cpu",
    )
    assert again.steps == phase2.steps  # the finished compatible run is recognised, not redone
    model, meta = load_model(out / "phase2" / "best")
    assert meta["phase"] == "phase2"


def test_paths_outside_the_project_are_dropped(tmp_path):
    assert project_path(tmp_path / "x", home=tmp_path / "project") is None
    assert project_path(tmp_path / "project" / "runs" / "a", home=tmp_path / "project") == "runs/a"
    assert project_path("runs/a") == "runs/a" and project_path(None) is None


def test_a_real_data_card_is_not_called_a_demo(runs, tmp_path):
    home, out, *_ = runs
    meta = json.loads((out / "phase2/best/config.json").read_text())
    meta.update(synthetic_twin=False, data_root=None)
    card = model_card(meta)
    assert "real data: LuojiaSET-OSFCR" in card and "not a product" not in card
    # a card can be (re)written for an existing checkpoint
    copy = tmp_path / "ckpt"
    copy.mkdir()
    (copy / "config.json").write_text(json.dumps(meta))
    assert "real data" in write_model_card(copy).read_text()


def test_an_unrecorded_data_kind_is_not_called_real():
    card = model_card({"phase": "phase1", "model_config": {"legend": "luojiaset"}})
    assert "not recorded" in card and "real data" not in card and "not a product" in card
