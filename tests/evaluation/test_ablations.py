"""Tests for tdpcr_lib.evaluation.ablations.grid: run identity and reuse, aggregation, noise verdicts, tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tdpcr_lib.evaluation.ablations import grid as ablations_grid
from tdpcr_lib.evaluation.ablations import report as ablations_report
from tdpcr_lib.evaluation.ablations import spec as ablations
from tdpcr_lib.evaluation.ablations import stats as ablations_stats
from tdpcr_lib.metrics.results import from_records, make_frame, value
from tdpcr_lib.notebook.checkpoints import discover_checkpoints
from tdpcr_lib.plot import curves as ablations_curves
from tdpcr_lib.training.presets import preset_config

#: Narrow baselines so the grid trains in seconds (part of the config hash, like any budget field).
NARROW = {
    "dsen2cr": {"dsen2cr_features": 16, "dsen2cr_blocks": 2},
    "multitask_unet": {"unet_widths": [8, 16, 16, 32, 32]},
}
SUBSET = ["tdpcr_full", "dsen2cr", "multitask"]


def tiny_budget(**changes) -> ablations.AblationBudget:
    budget = ablations.preset_budget(smoke=True)
    budget.model_overrides = NARROW
    for key, setting in changes.items():
        setattr(budget, key, setting)
    return budget


# ------------------------------------------------------------------ pure functions
def test_grid_has_every_required_variant():
    assert list(ablations.ABLATIONS) == [
        "tdpcr_full",
        "pgf_no_prompt",
        "concat_fusion",
        "optical_only",
        "joint_single_phase",
        "seg_decoder_only",
        "dsen2cr",
        "multitask",
    ]
    specs = ablations.ABLATIONS
    assert specs["seg_decoder_only"].trainable == "seg_decoder_only"
    assert specs["joint_single_phase"].schedule == "joint"
    assert {specs[n].model["fusion"] for n in list(specs)[:4]} == {"pgf", "pgf_no_prompt", "concat", "optical_only"}
    with pytest.raises(ValueError, match="schedule"):
        ablations.AblationSpec("x", "x", {}, "three_phase")


def test_config_hash_is_stable_and_sensitive():
    spec = ablations.ABLATIONS["tdpcr_full"]
    budget = tiny_budget()
    base = ablations.config_hash(ablations.run_config(spec, budget, 0, "abc"))
    assert base == ablations.config_hash(ablations.run_config(spec, tiny_budget(), 0, "abc"))
    assert len(base) == 16
    changed = [
        ablations.run_config(spec, budget, 1, "abc"),
        ablations.run_config(spec, tiny_budget(phase2_steps=5), 0, "abc"),
        ablations.run_config(spec, budget, 0, "other-manifest"),
        ablations.run_config(ablations.ABLATIONS["seg_decoder_only"], budget, 0, "abc"),
    ]
    assert len({base, *map(ablations.config_hash, changed)}) == 5


def test_architecture_change_changes_the_hash(monkeypatch):
    spec = ablations.ABLATIONS["tdpcr_full"]
    before = ablations.config_hash(ablations.run_config(spec, tiny_budget(), 0, "abc"))
    from tdpcr_lib.models import fingerprint

    original = fingerprint.build_model

    def build_with_extra_layer(config):
        model = original(config)
        model.extra = torch.nn.Linear(2, 2)
        return model

    monkeypatch.setattr(fingerprint, "build_model", build_with_extra_layer)
    after = ablations.config_hash(ablations.run_config(spec, tiny_budget(), 0, "abc"))
    assert after != before


def test_preset_budget_and_seeds():
    assert ablations.preset_budget(steps=30).phase1_steps == 20
    assert ablations.preset_budget(steps=30).total_steps == 30
    assert ablations.default_seeds(5) == [5, 6, 7]  # ≥ 3 paired seeds by default
    assert ablations.default_seeds(0, smoke=True) == [0]
    assert ablations.default_seeds(0, n_seeds=2) == [0, 1]
    full = ablations.preset_budget(full=True)
    assert full.eval_crop is None and full.max_eval_tiles is None and full.validate
    default = ablations.preset_budget()
    # the main run's recipe (notebooks 01/02): same steps, batch, crop and model size
    phase1 = preset_config("phase1")
    assert (default.phase1_steps, default.batch_size, default.crop_size) == (
        phase1.max_steps,
        phase1.batch_size,
        phase1.crop_size,
    )
    assert default.phase2_steps == preset_config("phase2", init_from="p1").max_steps
    assert default.model_size == "default" and default.equal_compute == ("dsen2cr",)
    assert default.max_eval_tiles is None and default.plateau_stop
    assert ablations.preset_budget(quick=True).total_steps < default.total_steps
    with pytest.raises(ValueError, match="at most one"):
        ablations.preset_budget(smoke=True, full=True)
    with pytest.raises(ValueError, match="STEPS"):
        ablations.preset_budget(steps=1)


def test_eval_indices_cover_the_split_evenly():
    assert ablations_grid.eval_indices(5, None) == [0, 1, 2, 3, 4]
    assert ablations_grid.eval_indices(50, 5) == [0, 12, 24, 37, 49]
    assert ablations_grid.eval_indices(3, 10) == [0, 1, 2]


def test_mean_std_hand_computed():
    out = ablations_report.mean_std([1.0, 2.0, 4.0, float("nan"), None])
    assert out["n"] == 3 and out["mean"] == pytest.approx(7 / 3)
    assert out["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    single = ablations_report.mean_std([3.0])
    assert single["mean"] == 3.0 and math.isnan(single["std"])


def test_headline_metrics_reads_the_result_frame():
    rows = [
        ("all", "all", "psnr", 30.0),
        ("all", "all", "ssim", 0.9),
        ("all", "all", "sam", 3.0),
        ("all", "all", "mae", 0.01),
        ("cloudy", "all", "psnr", 25.0),
        ("cloudy", "all", "ssim", 0.8),
        ("cloudy", "all", "sam", 5.0),
        ("cloudy", "all", "mae", 0.03),
        ("all", "0-20%", "psnr", 31.0),
    ]
    seg = [
        ("all", "all", "oa", 0.8),
        ("all", "all", "miou", 0.5),
        ("cloudy", "all", "oa", 0.7),
        ("cloudy", "all", "miou", 0.4),
        ("clear", "all", "oa", 0.9),
        ("clear", "all", "miou", 0.6),
        ("all", "0-20%", "miou", 0.55),
    ]
    flat = ablations_report.headline_metrics(make_frame(rows + seg, model="m", seed=0))
    assert flat["psnr_cloudy"] == 25.0 and flat["miou_clear"] == 0.6
    assert flat["per_bucket"] == {"0-20%": {"psnr": 31.0, "miou": 0.55}}
    assert set(flat) == {*ablations_report.HEADLINE_KEYS, "per_bucket"}
    no_seg = ablations_report.headline_metrics(make_frame(rows))
    assert math.isnan(no_seg["miou"]) and no_seg["psnr"] == 30.0
    assert math.isnan(no_seg["per_bucket"]["0-20%"]["miou"])


def _fake_results(name, label, seeds, psnr, miou, params):
    out = []
    for seed, p, m in zip(seeds, psnr, miou, strict=True):
        headline = {k: 0.5 for k in ablations_report.HEADLINE_KEYS}
        headline.update(psnr=p, miou=m, per_bucket={"0-20%": {"psnr": p, "miou": m}})
        out.append(
            {
                "name": name,
                "label": label,
                "seed": seed,
                "headline": headline,
                "complexity": {"params": params, "trainable_last_phase": params // 2, "flops_256": 2e9},
                "steps": 600,
                "plateau": None if name == "dsen2cr" else seed != 2,
            }
        )
    return out


@pytest.fixture
def aggregated():
    results = (
        _fake_results("tdpcr_full", "TDP-CR", [0, 1, 2], [30.0, 30.2, 30.4], [0.50, 0.52, 0.54], 3_000_000)
        + _fake_results("dsen2cr", "DSen2-CR", [0, 1, 2], [29.9, 30.1, 30.3], [float("nan")] * 3, 20_000_000)
        + _fake_results("multitask", "multi-task", [0, 1, 2], [28.0, 28.1, 28.2], [0.40, 0.41, 0.42], 8_000_000)
    )
    return ablations_report.aggregate(results)


def test_aggregate_and_table(aggregated):
    assert aggregated["tdpcr_full"]["metrics"]["psnr"]["mean"] == pytest.approx(30.2)
    assert aggregated["tdpcr_full"]["metrics"]["psnr"]["std"] == pytest.approx(0.2)
    table = ablations_report.ablation_table(aggregated)
    assert list(table.index) == ["TDP-CR", "DSen2-CR", "multi-task"]
    assert list(table.columns) == [*ablations_report.TABLE_COLUMNS, "seeds", "steps (mean)", "plateau"]
    assert table.loc["TDP-CR", "plateau"] == "2/3"  # runs at their plateau / runs
    assert table.loc["DSen2-CR", "plateau"] == "n/a (not validated)"
    assert table.loc["TDP-CR", "steps (mean)"] == "600"
    assert table.loc["TDP-CR", "PSNR all (dB)"] == "30.20 ± 0.20"
    assert table.loc["TDP-CR", "mIoU all (%)"] == "52.0 ± 2.0"
    assert table.loc["DSen2-CR", "mIoU all (%)"] == "—"
    assert table.loc["TDP-CR", "params (M)"] == "3.000"


def test_run_records_hold_the_json_schema():
    results = _fake_results("tdpcr_full", "TDP-CR", [0, 1], [30.0, 30.2], [0.5, float("nan")], 1)
    runs = ablations_report.run_records(results)
    assert [(r["model"], r["seed"], r["steps"], r["plateau"]) for r in runs] == [
        ("tdpcr_full", 0, 600, True),
        ("tdpcr_full", 1, 600, True),
    ]
    assert runs[0]["metrics"]["psnr"] == 30.0 and runs[1]["metrics"]["miou"] is None
    assert "per_bucket" not in runs[0]["metrics"]
    json.dumps(runs, allow_nan=False)  # strict JSON: no NaN


def test_report_tables_and_figures(aggregated, tmp_path):
    claims = [
        {
            "label": "TDP-CR vs DSen2-CR",
            "delta_mean": 0.1,
            "ci95_low": -0.2,
            "ci95_high": 0.4,
            "n_seeds": 3,
            "unit": "dB",
            "equal_compute": True,
            "verdict": ablations_stats.WITHIN_NOISE,
            "paper": "+0.18 dB",
        }
    ]
    path = ablations_report.write_report(
        aggregated,
        tmp_path / "ablations.md",
        budget=tiny_budget(),
        seeds=[0, 1, 2],
        claims=claims,
        figures=["figures/x.png"],
        label="indicative",
    )
    text = path.read_text()
    for heading in ("## Results per model", "## Paired differences", "(indicative)"):
        assert heading in text
    assert "| +0.10 dB | [-0.20, +0.40] | 3 | — | — | within noise | equal training FLOPs |" in text
    assert "![x](figures/x.png)" in text
    fig = ablations_curves.plot_per_bucket(aggregated)
    assert len(fig.axes[0].get_legend().get_texts()) == 3  # PSNR: every model
    assert len(fig.axes[1].get_legend().get_texts()) == 2  # mIoU: not DSen2-CR
    json.dumps(ablations_report.results_json(aggregated, claims), default=str)


# ------------------------------------------------------------------ training and reuse
@pytest.fixture(scope="module")
def grid(tiny_luojiaset_root, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("ablation_runs")
    results = ablations_grid.run_grid(
        tiny_luojiaset_root, runs_dir, [0], tiny_budget(), names=SUBSET, device="cpu", log=None
    )
    return runs_dir, results


def test_grid_trains_each_run_into_its_own_folder(grid):
    runs_dir, results = grid
    assert [r["name"] for r in results] == SUBSET and not any(r["reused"] for r in results)
    for r in results:
        run_dir = ablations.run_dir_for(runs_dir, r["name"], 0)
        assert (run_dir / r["checkpoint"] / "model.safetensors").is_file()
        assert (run_dir / "results.json").is_file()
        assert np.isfinite(r["headline"]["psnr"]) and r["complexity"]["flops_256"] > 0
    full = results[0]
    assert full["checkpoint"] == "phase2/last"
    assert 0 < full["complexity"]["trainable_last_phase"] < full["complexity"]["params"]
    assert results[1]["headline"]["miou"] is None  # DSen2-CR does not segment (NaN → JSON null)
    assert np.isfinite(results[2]["headline"]["miou"])
    stored = from_records(results[2]["metrics"])  # the whole result frame, labelled
    assert set(stored["model"]) == {"multitask"} and set(stored["seed"]) == {0}
    assert value(stored, "miou") == pytest.approx(results[2]["headline"]["miou"])
    found = discover_checkpoints(runs_dir, seed=0)
    assert list(found) == ["tdpcr_full (seed 0)", "dsen2cr (seed 0)", "multitask (seed 0)"]


def test_rerun_reuses_finished_runs_without_training(grid, tiny_luojiaset_root, monkeypatch):
    runs_dir, first = grid
    weights = {
        r["name"]: ablations.run_dir_for(runs_dir, r["name"], 0) / r["checkpoint"] / "model.safetensors" for r in first
    }
    mtimes = {name: path.stat().st_mtime_ns for name, path in weights.items()}

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr("tdpcr_lib.training.run.train", no_training)
    again = ablations_grid.run_grid(
        tiny_luojiaset_root, runs_dir, [0], tiny_budget(), names=SUBSET, device="cpu", log=None
    )
    assert all(r["reused"] for r in again)
    assert [r["headline"]["psnr"] for r in again] == [r["headline"]["psnr"] for r in first]
    assert {n: p.stat().st_mtime_ns for n, p in weights.items()} == mtimes


def test_changed_config_retrains_and_replaces_the_folder(grid, tiny_luojiaset_root):
    runs_dir, first = grid
    run_dir = ablations.run_dir_for(runs_dir, "dsen2cr", 0)
    (run_dir / "stale.txt").write_text("from the old config")
    budget = tiny_budget(phase1_steps=1, phase2_steps=1)
    result = ablations_grid.run_grid(
        tiny_luojiaset_root, runs_dir, [0], budget, names=["dsen2cr"], device="cpu", log=None
    )[0]
    assert not result["reused"] and result["config_hash"] != first[1]["config_hash"]
    assert not (run_dir / "stale.txt").exists()
    assert (run_dir / "config_hash.txt").read_text().strip() == result["config_hash"]


def test_unknown_ablation_name(tiny_luojiaset_root, tmp_path):
    with pytest.raises(KeyError, match="unknown ablation"):
        ablations_grid.run_grid(tiny_luojiaset_root, tmp_path, [0], tiny_budget(), names=["nope"])


def test_model_sizes_come_from_the_named_presets():
    from tdpcr_lib.models.config import ModelConfig
    from tdpcr_lib.models.presets import MODEL_PRESETS

    spec = ablations.ABLATIONS["tdpcr_full"]
    full = ablations.model_config_for(spec, ablations.AblationBudget())
    small = ablations.model_config_for(spec, ablations.AblationBudget(model_size="small"))
    assert isinstance(full, ModelConfig) and full.widths == ModelConfig().widths
    assert small.widths == MODEL_PRESETS["small"]["widths"] == ModelConfig.small().widths
    assert ablations.AblationBudget(model_size="small").to_dict()["model_size"] == "small"
    with pytest.raises(KeyError, match="unknown model size"):
        ablations.AblationBudget(model_size="huge")


def test_tdpcr_seed0_is_the_main_run_and_seg_decoder_only_shares_its_phase1(tiny_luojiaset_root, tmp_path, monkeypatch):
    """The main run (runs/phase1, runs/phase2) trained with the grid's recipe is reused as
    TDP-CR seed 0; the phase-2-only variant starts from that phase 1, which is not retrained."""
    from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
    from tdpcr_lib.evaluation.ablations import runs as ablation_runs
    from tdpcr_lib.training import run as training_run

    budget = tiny_budget()
    spec = ablations.ABLATIONS["tdpcr_full"]
    train_set = LuojiaSETOSFCR(tiny_luojiaset_root, split="train")
    main = tmp_path / "main"
    cfg1 = ablation_runs.train_config("phase1", budget.phase1_steps, budget.lr_phase1, budget, 0)
    model_config = ablations.model_config_for(spec, budget).replace(name="tdpcr")
    training_run.train(cfg1, model_config, train_set, None, main / "phase1", device="cpu")
    cfg2 = ablation_runs.train_config(
        "phase2", budget.phase2_steps, budget.lr_phase2, budget, 0, init_from=str(main / "phase1" / "last")
    )
    training_run.train(cfg2, None, train_set, None, main / "phase2", device="cpu")
    weights = {p: (main / p / "last" / "model.safetensors").stat().st_mtime_ns for p in ("phase1", "phase2")}
    trained = []
    real_train = training_run.train
    monkeypatch.setattr(
        training_run,
        "train",
        lambda config, *a, **k: (trained.append((config.phase, str(a[3]))), real_train(config, *a, **k))[1],
    )
    results = ablations_grid.run_grid(
        tiny_luojiaset_root,
        tmp_path / "runs",
        [0],
        budget,
        names=["tdpcr_full", "seg_decoder_only"],
        device="cpu",
        log=None,
        main_runs=main,
    )
    by_name = {r["name"]: r for r in results}
    run_dir = ablations.run_dir_for(tmp_path / "runs", "tdpcr_full", 0)
    assert (run_dir / by_name["tdpcr_full"]["checkpoint"]).resolve() == (main / "phase2" / "last").resolve()
    assert by_name["seg_decoder_only"]["phases"][0]["shared_from"] == str(main / "phase1")
    # the main run's weights were not touched; only seg_decoder_only's own phase 2 trained steps
    assert {p: (main / p / "last" / "model.safetensors").stat().st_mtime_ns for p in ("phase1", "phase2")} == weights
    own = ablations.run_dir_for(tmp_path / "runs", "seg_decoder_only", 0) / "phase2"
    assert ("phase2", str(own)) in trained and not (run_dir / "phase1").exists()
    # a rerun of notebooks 01/02 replaces the main run's weights: seed 0 is then not reused
    results_path = run_dir / "results.json"
    stored = json.loads(results_path.read_text())
    assert ablations_grid.read_completed(run_dir, stored["config_hash"]) is not None
    results_path.write_text(json.dumps({**stored, "checkpoint_sha256": "0" * 64}))
    assert ablations_grid.read_completed(run_dir, stored["config_hash"]) is None


@pytest.mark.parametrize(
    ("workers", "threads", "cores", "expected"),
    [(2, 1, 2, 2), (2, 2, 2, 1), (4, 2, 8, 4), (4, 3, 8, 2), (3, 4, 2, 1), (1, 1, 16, 1)],
)
def test_grid_workers_are_cut_so_their_threads_fit_the_cores(workers, threads, cores, expected):
    from tdpcr_lib.evaluation.ablations.grid import fit_workers

    assert fit_workers(workers, threads, cores=cores) == expected
