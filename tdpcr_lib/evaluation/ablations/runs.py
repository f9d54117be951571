"""Training one ablation run with the main run's recipe: configs, shared phases, compute, plateaus.

* **The main run's recipe.** Every phase's ``TrainConfig`` is
  :func:`tdpcr_lib.training.presets.preset_config` of the budget's mode with the budget's steps,
  so TDP-CR's seed-``k`` run is exactly what notebooks 01/02 train with ``SEED=k``; the seed-0 run
  *is* the main run (``runs/phase1``, ``runs/phase2``) when its configs match, and is reused.
* **Shared phase 1.** Variants that differ only in phase 2 (``seg_decoder_only``) start from the
  TDP-CR run of the same seed (``phase1/best``), which is trained once.
* **Validation and plateaus.** Runs validate every epoch; the best checkpoint by the phase's
  metric is kept (as in the main run) and plateau-based stopping ends a phase once it is flat
  (:mod:`tdpcr_lib.training.plateau`). The plateau status of each phase is recorded.
* **Compute.** Training FLOPs are counted as 3 × the forward FLOPs of a crop per sample
  (forward + backward); runs in ``budget.equal_compute`` (DSen2-CR) get the samples that spend
  the FLOPs of TDP-CR's two phases, and are scored at their last step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from tdpcr_lib.core.portable import resolve_project_path
from tdpcr_lib.evaluation.ablations.spec import ABLATIONS, REFERENCE, AblationBudget, AblationSpec, model_config_for
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint import read_meta
from tdpcr_lib.models.complexity import flops_per_tile
from tdpcr_lib.models.config import ModelConfig, config_differences
from tdpcr_lib.training import run as training_run
from tdpcr_lib.training.config import RESUME_MUTABLE_FIELDS, TrainConfig
from tdpcr_lib.training.plateau import PlateauStop, curve, phase_plateau
from tdpcr_lib.training.presets import preset_config


def train_config(phase: str, steps: int, lr: float, budget: AblationBudget, seed: int, **extra: Any) -> TrainConfig:
    """The ``TrainConfig`` of one phase: the notebooks' preset of ``budget.mode`` + the budget."""
    mode = budget.mode
    return preset_config(
        phase,
        smoke=mode == "smoke",
        full=mode == "full",
        quick=mode == "quick",
        long=mode == "long",
        seed=seed,
        max_steps=steps,
        overrides={
            "batch_size": budget.batch_size,
            "crop_size": budget.crop_size,
            "lr": lr,
            "warmup_steps": min(budget.warmup_steps, steps - 1),
            "progress": False,
            "eval_batch_size": budget.eval_batch_size,
            **extra,
        },
    )


def training_flops_per_sample(model_config: ModelConfig, crop: int) -> int:
    """3 × the forward FLOPs of one ``crop``² sample (forward + backward), on the meta device."""
    config = model_config if model_config.arch == "dsen2cr" else model_config.replace(with_seg_decoder=True)
    with torch.no_grad():
        return 3 * int(flops_per_tile(build_model(config), size=crop))


def equal_compute_steps(spec: AblationSpec, budget: AblationBudget) -> tuple[int, int]:
    """``(steps, batch)`` that spend the training FLOPs of TDP-CR's two phases on ``spec``."""
    reference = training_flops_per_sample(model_config_for(ABLATIONS[REFERENCE], budget), budget.crop_size)
    own = training_flops_per_sample(model_config_for(spec, budget), budget.crop_size)
    samples = max(1, round(budget.total_steps * budget.batch_size * reference / own))
    batch = min(budget.batch_size, samples)
    return max(1, samples // batch), batch


def same_recipe(
    checkpoint_dir: Path, config: TrainConfig, model_config: ModelConfig | None, manifest_hash: str | None
) -> bool:
    """Was ``checkpoint_dir`` trained with ``config`` (ignoring paths and logging fields)?"""
    try:
        meta = read_meta(checkpoint_dir)
    except Exception:  # noqa: BLE001 - any unreadable checkpoint is "not the same run"
        return False
    ignore = {*RESUME_MUTABLE_FIELDS, "init_from"}
    stored = {k: v for k, v in (meta.get("train_config") or {}).items() if k not in ignore}
    wanted = {k: v for k, v in json.loads(json.dumps(config.to_dict())).items() if k not in ignore}
    if stored != wanted or meta.get("manifest_hash") != manifest_hash:
        return False
    if model_config is None:
        return True
    mine = json.loads(json.dumps(model_config.to_dict()))
    return not config_differences(meta["model_config"], mine, ignore=("name", "with_seg_decoder"))


#: Validation curves every phase keeps (the claims' metrics; ``stats.claims`` reads them).
CURVE_METRICS: tuple[str, ...] = ("psnr", "psnr_cloudy", "miou")


def phase_record(
    result: Any, phase: str, flops_per_sample: int, batch: int, flops_before: int = 0, budget_steps: int | None = None
) -> dict[str, Any]:
    """What a run keeps of one phase: steps and step budget, plateau status (with its noise
    estimate), the validation curves of the claim metrics, and the selection metric's curve
    against training FLOPs."""
    metric = result.best_metric  # the checkpoint-selection metric: PSNR, or mIoU with a seg head
    points = curve(result.history, metric)
    # the same judgement as early stopping and notebooks 01/02 (over 20 % of the phase's budget)
    status = phase_plateau(result, budget_steps)
    curves = {m: [[s, v] for s, v in curve(result.history, m)] for m in CURVE_METRICS}
    return {
        "phase": phase,
        "steps": int(result.steps),
        "metric": metric,
        "budget_steps": int(budget_steps if budget_steps is not None else result.steps),
        "curves": {m: c for m, c in curves.items() if c},
        "plateau": status,
        "wall_time_s": round(float(result.wall_time_s), 2),
        "curve": [
            {"step": s, "value": v, "train_flops": flops_before + s * batch * flops_per_sample} for s, v in points
        ],
        "train_flops": flops_before + int(result.steps) * batch * flops_per_sample,
    }


def _train(
    config: TrainConfig,
    model_config: ModelConfig | None,
    train_set: Dataset,
    val_set: Dataset | None,
    out_dir: Path,
    device: str,
    budget: AblationBudget,
) -> Any:
    stop = PlateauStop() if budget.plateau_stop and val_set is not None else None
    # looked up on the module at call time so that tests can replace it
    return training_run.train(config, model_config, train_set, val_set, out_dir, device=device, stop_rule=stop)


def train_run(
    spec: AblationSpec,
    budget: AblationBudget,
    seed: int,
    run_dir: Path,
    train_set: Dataset,
    val_set: Dataset | None,
    device: str,
    main_runs: Path | None = None,
) -> tuple[Path, dict, list[dict]]:
    """Train one run; returns (final checkpoint, parameter report of the last phase, phases).

    ``main_runs``: the folder of the main run (``runs/``), whose ``phase1``/``phase2`` are this
    run's phases when they were trained with the same configs (TDP-CR, seed 0); variants that
    share phase 1 with TDP-CR take the TDP-CR run of this seed (``run_dir``'s sibling).
    """
    model_config = model_config_for(spec, budget)
    manifest = getattr(train_set, "manifest_hash", None)
    pick = "best" if (budget.validate and val_set is not None) else "last"
    if spec.schedule != "two_phase":
        equal = model_config.arch in budget.equal_compute
        steps, batch = equal_compute_steps(spec, budget) if equal else (budget.total_steps, budget.batch_size)
        phase = "joint" if spec.schedule == "joint" else "baseline"
        lr = spec.lr if spec.lr is not None else budget.lr_phase1
        config = train_config(phase, steps, lr, budget, seed, batch_size=batch)
        val = None if equal or not budget.validate else val_set
        result = _train(config, model_config, train_set, val, run_dir / phase, device, budget)
        flops = training_flops_per_sample(model_config, budget.crop_size)
        chosen = "best" if val is not None else "last"
        return (
            run_dir / phase / chosen,
            result.parameters,
            [phase_record(result, phase, flops, batch, budget_steps=steps)],
        )
    val = val_set if budget.validate else None
    cfg1 = train_config("phase1", budget.phase1_steps, budget.lr_phase1, budget, seed)
    phase1_dir = run_dir / "phase1"
    shared = spec.trainable != ABLATIONS[REFERENCE].trainable and dict(spec.model) == dict(ABLATIONS[REFERENCE].model)
    phase1_model = model_config
    if shared:  # phase 1 is TDP-CR's of this seed (a resume of it must match its config exactly)
        phase1_dir = run_dir.parent / f"{REFERENCE}_seed{seed}" / "phase1"
        phase1_model = model_config_for(ABLATIONS[REFERENCE], budget)
    if (
        main_runs is not None
        and (spec.name == REFERENCE or shared)
        and same_recipe(main_runs / "phase1" / "last", cfg1, model_config, manifest)
    ):
        phase1_dir = main_runs / "phase1"
        # the main run's own model config (its name differs): resuming it must not restart it
        phase1_model = ModelConfig.from_dict(read_meta(phase1_dir / "last")["model_config"])
    result1 = _train(cfg1, phase1_model, train_set, val, phase1_dir, device, budget)
    cfg2 = train_config(
        "phase2",
        budget.phase2_steps,
        budget.lr_phase2,
        budget,
        seed,
        trainable=spec.trainable,
        init_from=str(phase1_dir / pick),
    )
    phase2_dir = run_dir / "phase2"
    if (
        main_runs is not None
        and spec.name == REFERENCE
        and phase1_dir == main_runs / "phase1"
        and same_recipe(main_runs / "phase2" / "last", cfg2, None, manifest)
    ):
        phase2_dir = main_runs / "phase2"
        # the main run's own spelling of its start (a resume compares it literally)
        stored = read_meta(phase2_dir / "last")["train_config"]["init_from"]  # project-relative
        if stored:  # None: outside the project; resume compares both sides in that form anyway
            cfg2 = cfg2.replace(init_from=str(resolve_project_path(stored)))
    result2 = _train(cfg2, None, train_set, val, phase2_dir, device, budget)
    flops = training_flops_per_sample(model_config, budget.crop_size)
    first = phase_record(result1, "phase1", flops, budget.batch_size, budget_steps=budget.phase1_steps)
    second = phase_record(
        result2, "phase2", flops, budget.batch_size, first["train_flops"], budget_steps=budget.phase2_steps
    )
    if shared or phase1_dir.parent == main_runs:
        first["shared_from"] = str(phase1_dir)
    return phase2_dir / pick, result2.parameters, [first, second]
