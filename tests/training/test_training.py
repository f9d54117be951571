"""The trainer: configs, schedules, freezing, deterministic data order, runs of every phase."""

from __future__ import annotations

import json

import pytest
import torch

from tdpcr_lib.metrics.results import from_records, value
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models.checkpoint import CheckpointError, load_model, read_meta
from tdpcr_lib.plot.curves import write_loss_curve
from tdpcr_lib.samplers import ResumableSampler
from tdpcr_lib.training.config import TrainConfig, resolve_objective
from tdpcr_lib.training.freezing import apply_trainable_set, lr_factor, parameter_report
from tdpcr_lib.training.presets import STEP_BUDGETS, notebook_configs
from tdpcr_lib.training.run import build_datasets, train, train_on_folder
from tdpcr_lib.transforms import SeededAugmentDataset

SMALL = ModelConfig.small()


def tiny_config(**changes) -> TrainConfig:
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
    base.update(changes)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"phase": "phase3"}, "phase must be one of"),
        ({"trainable": "encoders"}, "trainable must be one of"),
        ({"schedule": "linear"}, "schedule must be one of"),
        ({"objective": "gan"}, "objective must be"),
        ({"phase": "phase2"}, "phase2 needs init_from"),
        ({"max_steps": 0}, "max_steps must be"),
    ],
)
def test_invalid_train_configs_are_rejected(changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**changes)


def test_train_config_round_trips_through_json_and_rejects_unknown_keys():
    config = TrainConfig(milestones=(0.5, 0.8), max_steps=7)
    restored = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 1.0})


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    config = TrainConfig(schedule="cosine", warmup_steps=4, min_lr_ratio=0.1)
    assert lr_factor(0, 100, config) == pytest.approx(0.25)
    assert lr_factor(3, 100, config) == pytest.approx(1.0)
    assert lr_factor(4, 100, config) == pytest.approx(1.0)
    assert lr_factor(52, 100, config) == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-9)  # halfway
    assert lr_factor(100, 100, config) == pytest.approx(0.1)


def test_multistep_schedule_halves_at_each_milestone():
    config = TrainConfig(schedule="multistep", milestones=(0.5, 0.75), gamma=0.5)
    assert [lr_factor(s, 100, config) for s in (0, 49, 50, 74, 75, 99)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


@pytest.mark.parametrize(
    ("trainable", "expected_groups"),
    [
        ("prompt_pgf_seg", {"prompt_generator", "pgf", "seg_decoder"}),
        ("seg_decoder_only", {"seg_decoder"}),
        (
            "all",
            {
                "sar_encoder",
                "optical_encoder",
                "prompt_generator",
                "pgf",
                "shared_decoder",
                "reconstruction_head",
                "seg_decoder",
            },
        ),
    ],
)
def test_phase2_trainable_sets_freeze_the_right_groups(trainable, expected_groups):
    model = build_model(ModelConfig.small(with_seg_decoder=True))
    config = TrainConfig(phase="phase2", init_from="unused", trainable=trainable)
    apply_trainable_set(model, config)
    report = parameter_report(model)
    trainable_groups = {g for g, counts in report["groups"].items() if counts["trainable"]}
    assert trainable_groups == expected_groups
    for group in trainable_groups:
        assert report["groups"][group]["trainable"] == report["groups"][group]["total"]
    assert report["trainable"] == sum(report["groups"][g]["total"] for g in expected_groups)
    assert report["total"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("phase", "arch", "expected"),
    [
        ("phase1", "tdpcr", "rec"),
        ("joint", "tdpcr", "seg_rec"),
        ("baseline", "dsen2cr", "rec"),
        ("baseline", "multitask_unet", "multitask"),
    ],
)
def test_objective_follows_phase_and_architecture(phase, arch, expected):
    model = build_model(ModelConfig.small(arch=arch, with_seg_decoder=phase == "joint" or None))
    assert resolve_objective(TrainConfig(phase=phase), model) == expected


# ------------------------------------------------------------------------------ data order
class _Constant(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> dict:
        return {"optical": torch.arange(64.0).reshape(1, 8, 8) + index}


def _random_crop(sample: dict) -> dict:
    top, left = (int(v) for v in torch.randint(0, 5, (2,)))
    return {"optical": sample["optical"][:, top : top + 4, left : left + 4]}


def test_augmentation_depends_only_on_seed_epoch_and_index():
    data = SeededAugmentDataset(_Constant(), _random_crop, seed=3)
    first = [data[i]["optical"] for i in range(12)]
    torch.manual_seed(999)  # the global RNG state must not matter ...
    before = torch.get_rng_state()
    reversed_order = [data[i]["optical"] for i in reversed(range(12))][::-1]
    assert torch.equal(torch.get_rng_state(), before)  # ... nor be changed
    assert all(torch.equal(a, b) for a, b in zip(first, reversed_order, strict=True))
    data.set_epoch(1)
    assert any(not torch.equal(a, data[i]["optical"]) for i, a in enumerate(first))


def test_resumable_sampler_skips_consumed_samples_and_shards_like_one_process():
    dataset = _Constant()
    single = ResumableSampler(dataset, seed=5)
    single.set_epoch(2)
    order = list(single)
    assert sorted(order) == list(range(12))
    single.set_epoch(2, skip=4)
    assert list(single) == order[4:] and len(single) == 8
    ranks = []
    for rank in range(2):
        sampler = ResumableSampler(dataset, seed=5, rank=rank, world_size=2)
        sampler.set_epoch(2)
        ranks.append(list(sampler))
    # a global batch of 4 = 2 per rank holds the same samples as a one-process batch of 4
    for step in range(3):
        union = set(ranks[0][2 * step : 2 * step + 2]) | set(ranks[1][2 * step : 2 * step + 2])
        assert union == set(order[4 * step : 4 * step + 4])


# ------------------------------------------------------------------------------ whole runs
@pytest.fixture(scope="module")
def phase1_run(tiny_luojiaset_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "phase1"
    config = tiny_config(epochs=2, max_steps=None, checkpoint_every=3)
    train_set, val_set = build_datasets(tiny_luojiaset_root, config)
    result = train(
        config,
        SMALL,
        train_set,
        val_set,
        out,
        device="cpu",  # the core call
        log_callbacks=[write_loss_curve],
    )
    return config, result, out


def test_phase1_run_writes_checkpoints_logs_and_figure(phase1_run):
    config, result, out = phase1_run
    for name in (
        "best/model.safetensors",
        "best/config.json",
        "last/trainer_state.json",
        "history.csv",
        "history.json",
        "steps.csv",
        "loss_curve.png",
    ):
        assert (out / name).is_file(), name
    assert result.steps == 20 and len(result.history) == 2  # 40 train tiles / batch 4 × 2 epochs
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]
    assert {"train_loss", "val_psnr", "val_psnr_cloudy", "val_input_psnr_cloudy", "lr"} <= set(history["epochs"][0])
    assert all(0 < row["train_loss"] < 2 for row in history["epochs"])
    meta = read_meta(out / "best")
    assert meta["phase"] == "phase1" and meta["epoch"] == result.best_epoch
    assert meta["train_config"]["crop_size"] == 16 and meta["manifest_hash"]
    best_psnr = max(row["val_psnr"] for row in history["epochs"])
    stored = from_records(meta["metrics"])
    assert value(stored, "psnr") == pytest.approx(best_psnr)
    assert set(stored["split"]) == {"val"} and result.best_metric == "psnr"
    assert value(result.final_metrics, "psnr") == pytest.approx(history["epochs"][-1]["val_psnr"])
    assert meta["model_config"]["with_seg_decoder"] is False


def test_finished_compatible_run_is_not_retrained(phase1_run, tiny_luojiaset_root):
    config, result, out = phase1_run
    before = (out / "last" / "model.safetensors").read_bytes()
    again = train_on_folder(config, SMALL, tiny_luojiaset_root, out, device="cpu")
    assert again.steps == result.steps
    assert (out / "last" / "model.safetensors").read_bytes() == before


def test_incompatible_run_folder_is_refused_or_replaced(phase1_run, tiny_luojiaset_root, tmp_path):
    config, _, out = phase1_run
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    changed = config.replace(lr=5e-4, max_steps=1)
    with pytest.raises(CheckpointError, match="train config lr"):
        train_on_folder(changed, SMALL, tiny_luojiaset_root, copy, device="cpu", resume=True)
    result = train_on_folder(changed, SMALL, tiny_luojiaset_root, copy, device="cpu", resume="auto")
    assert result.steps == 1 and read_meta(copy / "last")["train_config"]["lr"] == 5e-4


def test_phase2_updates_only_the_trainable_set(phase1_run, tiny_luojiaset_root, tmp_path):
    _, _, phase1_dir = phase1_run
    config = tiny_config(phase="phase2", init_from=str(phase1_dir / "best"))
    result = train_on_folder(config, None, tiny_luojiaset_root, tmp_path / "phase2", device="cpu")
    start, _ = load_model(phase1_dir / "best")
    trained, meta = load_model(tmp_path / "phase2" / "last")
    assert meta["model_config"]["with_seg_decoder"] is True
    assert meta["frozen_groups"] == ["sar_encoder", "optical_encoder", "shared_decoder", "reconstruction_head"]
    before, after = start.state_dict(), trained.state_dict()
    changed = {name.split(".")[0] for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"prompt_generator", "pgf"}  # (the seg decoder is new, not in `before`)
    assert result.parameters["trainable"] < result.parameters["total"]
    assert "miou" == result.best_metric


@pytest.mark.parametrize(
    ("phase", "arch"), [("joint", "tdpcr"), ("baseline", "dsen2cr"), ("baseline", "multitask_unet")]
)
def test_single_phase_and_baselines_train_through_the_same_trainer(phase, arch, tiny_luojiaset_root, tmp_path):
    config = tiny_config(phase=phase, max_steps=1)
    model_config = SMALL.replace(arch=arch, with_seg_decoder=phase == "joint" or None)
    result = train_on_folder(config, model_config, tiny_luojiaset_root, tmp_path / phase, device="cpu")
    meta = read_meta(tmp_path / phase / "last")
    assert meta["model_config"]["arch"] == arch
    assert result.parameters["trainable"] == result.parameters["total"]
    assert result.history[0]["train_loss"] > 0


def test_notebook_presets_keep_the_modes_apart():
    smoke, model = notebook_configs("phase1", smoke=True)
    default, _ = notebook_configs("phase1")
    full, full_model = notebook_configs(
        "phase2", full=True, init_from="runs/phase1/best", config={"lr": 1e-4, "model": {"seg_width": 8}}
    )
    quick, _ = notebook_configs("phase1", quick=True)
    assert smoke.max_steps < quick.max_steps < default.max_steps and full.max_steps is None
    # the CPU recipe: 32² crops, enough epochs for the step budget (25 steps/epoch on the twin)
    assert (default.crop_size, default.batch_size) == (32, 8)
    assert default.max_steps == STEP_BUDGETS["default"][0] and quick.max_steps * 4 == default.max_steps
    assert default.epochs * 25 >= default.max_steps
    assert notebook_configs("phase1", quick=True, max_steps=60)[0].epochs == 3
    assert full.epochs >= 30 and full.lr == 1e-4 and full.init_from == "runs/phase1/best"
    assert isinstance(model, ModelConfig) and isinstance(full_model, ModelConfig)
    assert model.widths == (8, 16, 32, 64) and full_model.seg_width == 8
    with pytest.raises(ValueError, match="at most one of SMOKE, QUICK, LONG and FULL"):
        notebook_configs("phase1", smoke=True, full=True)
