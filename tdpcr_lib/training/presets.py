"""Training budgets for the notebooks: smoke, quick, default (CPU) and full (GPU).

The default budget is also the ablation protocol's (notebook 04 trains every variant with exactly
these configs, so the main run of notebooks 01/02 is seed 0 of its TDP-CR row).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.training.config import TrainConfig

#: Optimizer steps (phase 1, phase 2) of the CPU modes: the largest budget whose 3-seed ablation
#: grid keeps the main job within ~25 min on a 2-core CPU. Every run records whether it reached
#: its plateau; phase 1 typically does not reach the strict 0.1 dB one at this budget (measured
#: curves in docs/decisions.md § Ablation protocol). ``quick`` is a quarter of it (indicative).
#: ``long`` is 4× the default (``tdpcr reproduce --budget long``: hours on 2 cores, resumable),
#: for settling budget-dependent claims overnight.
STEP_BUDGETS: dict[str, tuple[int, int]] = {"default": (300, 150), "quick": (75, 38), "long": (1200, 600)}


def budget_mode(smoke: bool = False, full: bool = False, quick: bool = False, long: bool = False) -> str:
    """``"smoke"``, ``"quick"``, ``"long"``, ``"full"`` or ``"default"`` from the notebook flags."""
    if sum((smoke, full, quick, long)) > 1:
        raise ValueError("choose at most one of SMOKE, QUICK, LONG and FULL")
    return "smoke" if smoke else "full" if full else "quick" if quick else "long" if long else "default"


def preset_config(
    phase: str,
    *,
    smoke: bool = False,
    full: bool = False,
    quick: bool = False,
    long: bool = False,
    epochs: int | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    init_from: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """The :class:`TrainConfig` of a notebook run.

    * ``smoke``: a few steps on small crops, to check the pipeline end to end.
    * default: sized for the synthetic twin on a 2-core CPU: :data:`STEP_BUDGETS` steps (at
      most; plateau-based stopping may end a run earlier), batch 8, 32² crops, cosine schedule.
    * ``quick``: the default recipe with a quarter of the steps (outputs are indicative).
    * ``long``: the default recipe with 4× the steps (``tdpcr reproduce --budget long``).
    * ``full``: the recipe's full budget for a GPU (the first author's ECRformer recipe, see ``docs/decisions.md`` § Training: phase 1 100 epochs of
      AdamW 2e-3, wd 1e-3, clip 0.5, crop 128, batch 16, the author's multistep schedule;
      phase 2 40 epochs at 3e-4, cosine).

    ``epochs``/``max_steps`` and ``overrides`` (any :class:`TrainConfig` field) win over the preset.
    """
    mode = budget_mode(smoke, full, quick, long)
    base: dict[str, Any] = {"phase": phase, "seed": seed, "init_from": str(init_from) if init_from else None}
    second = phase == "phase2"
    if smoke:
        base.update(
            epochs=1,
            max_steps=3,
            batch_size=2,
            crop_size=32,
            val_max_batches=2,
            eval_batch_size=4,
            lr=1e-3,
            log_every=1,
        )
    elif full:
        base.update(
            epochs=40 if second else 100,
            batch_size=16,
            crop_size=128,
            lr=3e-4 if second else 2e-3,
            schedule="cosine" if second else "multistep",
            warmup_steps=0 if second else 500,
            checkpoint_every=1000,
            num_workers=4,
            eval_batch_size=16,
        )
    else:
        steps = STEP_BUDGETS[mode][1 if second else 0]
        # 25 steps per epoch on the twin's 200 training tiles; max_steps caps larger datasets
        base.update(
            epochs=-(-steps // 25),
            max_steps=steps,
            batch_size=8,
            crop_size=32,
            lr=2e-3,
            warmup_steps=10,
            log_every=5,
            eval_batch_size=25,
            checkpoint_every=50,
        )
    if max_steps is not None:
        base["max_steps"] = int(max_steps)
        if mode in STEP_BUDGETS:  # enough epochs for the steps (the grid derives them alike)
            base["epochs"] = max(1, -(-int(max_steps) // 25))
    if epochs is not None:
        base["epochs"] = int(epochs)
    base.update(overrides or {})
    return TrainConfig.from_dict(base)


def notebook_configs(
    phase: str,
    *,
    smoke: bool = False,
    full: bool = False,
    quick: bool = False,
    long: bool = False,
    epochs: int | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    init_from: str | Path | None = None,
    config: dict[str, Any] | None = None,
) -> tuple[TrainConfig, ModelConfig]:
    """``(TrainConfig, ModelConfig)`` from a notebook's parameters.

    The model has the size preset of the mode (``"smoke"``, ``"default"`` or ``"full"`` in
    :data:`tdpcr_lib.models.presets.MODEL_PRESETS`). ``config`` is the notebook's ``CONFIG``
    dict: :class:`TrainConfig` fields, plus an optional ``"model"`` dict of ``ModelConfig``
    fields (ignored in phase 2, which inherits phase 1's).
    """
    overrides = dict(config or {})
    model_overrides = dict(overrides.pop("model", {}) or {})
    train_config = preset_config(
        phase,
        smoke=smoke,
        full=full,
        quick=quick,
        long=long,
        epochs=epochs,
        max_steps=max_steps,
        seed=seed,
        init_from=init_from,
        overrides=overrides,
    )
    mode = budget_mode(smoke, full, quick, long)
    model_config = ModelConfig.preset("default" if mode in ("quick", "long") else mode, **model_overrides)
    return train_config, model_config
