"""What an ablation is: the variants, their budgets, and how a run is identified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.models.fingerprint import architecture_fingerprint
from tdpcr_lib.models.presets import preset_fields
from tdpcr_lib.training.presets import STEP_BUDGETS, budget_mode

#: Version of the run layout / results format; part of the config hash.
ABLATION_FORMAT_VERSION = 3  # 3: the noise-aware plateau rule (runs stop differently)


RESULTS_FILE = "results.json"


#: How an ablation run is trained (not to be confused with the learning-rate schedules,
#: :data:`tdpcr_lib.training.config.LR_SCHEDULES`).
TRAINING_SCHEDULES: tuple[str, ...] = ("two_phase", "joint", "baseline")


#: What the paper claims about the ablation comparisons, keyed like our recomputed claims
#: (reference only; never mixed with our numbers). The results page's claim table is
#: :data:`tdpcr_lib.evaluation.report.PAPER_CLAIMS`.
PAPER_ABLATION_CLAIMS: dict[str, str] = {
    "delta_psnr_vs_dsen2cr": "+0.18 dB at 15 % of the parameters (vs heavy SOTA CR baselines)",
    "delta_miou_vs_multitask": "+1.4 mIoU (vs multi-task competitors)",
}


@dataclass(frozen=True)
class AblationSpec:
    """One row of the ablation grid.

    Attributes
    ----------
    name
        Folder-safe key (``runs/ablations/<name>_seed<k>``).
    label
        Row label in tables and figures.
    model
        ``ModelConfig`` overrides (``arch``, ``fusion``).
    schedule
        ``"two_phase"`` (phase 1 reconstruction, then phase 2 with ``trainable``), ``"joint"``
        (single phase, everything from scratch, CE + L_rec) or ``"baseline"`` (the baseline's own
        loss, single phase).
    trainable
        Phase-2 trainable set (two-phase runs only).
    lr
        Peak learning rate where a baseline's authors publish their own (DSen2-CR: 7e-5; at
        TDP-CR's 2e-3 one Adam step moves each of its 18.95 M weights by ~2e-3 and its
        reconstruction collapsed to ~6 dB PSNR). ``None``: the budget's.
    """

    name: str
    label: str
    model: Mapping[str, Any]
    schedule: str
    trainable: str = "prompt_pgf_seg"
    lr: float | None = None

    def __post_init__(self) -> None:
        if self.schedule not in TRAINING_SCHEDULES:
            raise ValueError(
                f"AblationSpec {self.name!r}: schedule must be one of {TRAINING_SCHEDULES}, got {self.schedule!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "label": self.label,
            "model": dict(self.model),
            "schedule": self.schedule,
            "trainable": self.trainable if self.schedule == "two_phase" else None,
        }
        if self.lr is not None:  # only then: the other runs' config hashes stay as they were
            out["lr"] = self.lr
        return out


#: The grid, in table order. ``tdpcr_full`` is the reference every other row is compared with.
ABLATIONS: dict[str, AblationSpec] = {
    spec.name: spec
    for spec in (
        AblationSpec(
            "tdpcr_full",
            "TDP-CR (PGF + prompt, two-phase)",
            {"arch": "tdpcr", "fusion": "pgf"},
            "two_phase",
            "prompt_pgf_seg",
        ),
        AblationSpec(
            "pgf_no_prompt",
            "PGF without prompt",
            {"arch": "tdpcr", "fusion": "pgf_no_prompt"},
            "two_phase",
            "prompt_pgf_seg",
        ),
        AblationSpec(
            "concat_fusion",
            "concat fusion (no PGF)",
            {"arch": "tdpcr", "fusion": "concat"},
            "two_phase",
            "prompt_pgf_seg",
        ),
        AblationSpec(
            "optical_only",
            "optical only (no SAR)",
            {"arch": "tdpcr", "fusion": "optical_only"},
            "two_phase",
            "prompt_pgf_seg",
        ),
        AblationSpec("joint_single_phase", "single-phase joint training", {"arch": "tdpcr", "fusion": "pgf"}, "joint"),
        AblationSpec(
            "seg_decoder_only",
            "phase 2: seg decoder only",
            {"arch": "tdpcr", "fusion": "pgf"},
            "two_phase",
            "seg_decoder_only",
        ),
        AblationSpec("dsen2cr", "DSen2-CR (heavy CR baseline)", {"arch": "dsen2cr"}, "baseline", lr=7e-5),
        AblationSpec("multitask", "multi-task competitor (CloudSeg-style)", {"arch": "multitask_unet"}, "baseline"),
    )
}


REFERENCE = "tdpcr_full"


#: The CPU modes' multi-task competitor: the U-Net width-scaled to TDP-CR's 0.29 M class (its
#: paper-size widths cost 7x TDP-CR per step); DSen2-CR keeps its paper size (18.95 M) and is
#: compared at equal training compute instead. The first level is 16 wide, not 8: with an 8-channel
#: full-resolution level feeding both heads, some seeds never learned more than one or two classes
#: (test mIoU 17-46 % over three seeds; 16-wide: 58-60 %, see docs/verdicts.md).
CPU_MODEL_OVERRIDES: dict[str, dict[str, Any]] = {"multitask_unet": {"unet_widths": (16, 32, 48, 64, 96)}}


@dataclass
class AblationBudget:
    """The shared training/evaluation budget of every run of a grid.

    Attributes
    ----------
    mode
        The notebooks' training recipe (:func:`tdpcr_lib.training.presets.preset_config`):
        ``"default"``, ``"quick"``, ``"smoke"`` or ``"full"``. Every run's ``TrainConfig`` is that
        preset with the fields below, so TDP-CR's seed-``k`` run is the main run's recipe.
    phase1_steps, phase2_steps
        Optimizer steps (at most: plateau-based stopping may end earlier) of the two phases;
        single-phase runs (joint, multi-task) get their sum.
    batch_size, crop_size
        Training batch and random crop.
    lr_phase1, lr_phase2
        Peak learning rates (single-phase runs use ``lr_phase1``).
    warmup_steps
        Linear warm-up steps of every phase.
    eval_crop
        Centre crop of each test tile (``None`` = whole tiles).
    max_eval_tiles
        Evaluate on at most this many evenly spaced test tiles (``None`` = all).
    eval_batch_size
        Tiles per forward pass in evaluation (and validation).
    model_overrides
        Extra ``ModelConfig`` fields per ``arch`` on top of ``model_size``. Part of the config hash.
    model_size
        Name of the model-size preset every run uses
        (:data:`tdpcr_lib.models.presets.MODEL_PRESETS`; ``"full"`` = the paper's sizes).
    validate
        Validate every epoch (curves, best checkpoint, plateau flags). Runs in ``equal_compute``
        are not validated (they stop long before an epoch ends) and are scored at their last step.
    plateau_stop
        End a run once its validation metric is on its plateau (``training.plateau``).
    equal_compute
        Architectures trained to the same training FLOPs as TDP-CR's two phases instead of the
        same number of samples (DSen2-CR: ~900x TDP-CR's FLOPs per pixel at the CPU size).
    equal_compute_eval_tiles
        Those runs are scored on at most this many evenly spaced test tiles (``None``: as the
        others). On a CPU DSen2-CR makes one optimiser step (its claim is *not comparable*) and
        costs ~3 s per 64² tile, so scoring it on the whole 100-tile split would cost minutes
        for nothing; a claim whose sides were scored on different tiles gets no Δ.
    """

    phase1_steps: int = 40
    phase2_steps: int = 20
    batch_size: int = 2
    crop_size: int = 32
    lr_phase1: float = 2e-3
    lr_phase2: float = 1e-3
    warmup_steps: int = 2
    eval_crop: int | None = 64
    max_eval_tiles: int | None = 8
    eval_batch_size: int = 2
    model_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_size: str = "full"
    mode: str = "smoke"
    validate: bool = False
    plateau_stop: bool = False
    equal_compute: tuple[str, ...] = ()
    equal_compute_eval_tiles: int | None = None

    def __post_init__(self) -> None:
        for key in ("phase1_steps", "phase2_steps", "batch_size", "crop_size"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"AblationBudget.{key} must be >= 1, got {getattr(self, key)!r}")
        preset_fields(self.model_size)  # an unknown size name fails here, not mid-grid
        self.equal_compute = tuple(self.equal_compute)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def total_steps(self) -> int:
        return self.phase1_steps + self.phase2_steps


def preset_budget(
    smoke: bool = False, full: bool = False, quick: bool = False, steps: int | None = None, long: bool = False
) -> AblationBudget:
    """The budget of notebook 04: the notebooks' training recipe, for every run.

    * default (2-core CPU): the main run's recipe (:data:`tdpcr_lib.training.presets.STEP_BUDGETS`,
      batch 8, 32² crops, lr 2e-3, validation every epoch, plateau-based stopping), the 0.29 M
      ``"default"`` model size (multi-task U-Net width-scaled to it), DSen2-CR at paper size and
      equal training FLOPs, the whole test split.
    * ``quick``: the same with a quarter of the steps (indicative only).
    * ``long``: the same with 4× the steps (``tdpcr reproduce --budget long``).
    * ``smoke``: 2 + 1 steps, batch 2, 32² crops, 4 test tiles of 32² (checks the plumbing only).
    * ``full`` (a GPU): paper-size models, 3000 + 1500 steps, batch 16, 128² crops, whole test
      split and tiles, validation, plateau flags and DSen2-CR at the same samples.

    ``steps`` overrides the total step count (split 2:1 between the phases).
    """
    mode = budget_mode(smoke, full, quick, long)
    if mode == "smoke":
        budget = AblationBudget(
            phase1_steps=2, phase2_steps=1, batch_size=2, crop_size=32, warmup_steps=0, eval_crop=32, max_eval_tiles=4
        )
    elif mode == "full":
        budget = AblationBudget(
            phase1_steps=3000,
            phase2_steps=1500,
            batch_size=16,
            crop_size=128,
            lr_phase2=3e-4,
            warmup_steps=200,
            eval_crop=None,
            max_eval_tiles=None,
            eval_batch_size=8,
            mode="full",
            validate=True,
            plateau_stop=True,
        )
    else:
        phase1, phase2 = STEP_BUDGETS[mode]
        budget = AblationBudget(
            phase1_steps=phase1,
            phase2_steps=phase2,
            batch_size=8,
            crop_size=32,
            lr_phase1=2e-3,
            lr_phase2=2e-3,
            warmup_steps=10,
            eval_crop=None,
            max_eval_tiles=None,
            eval_batch_size=25,
            model_overrides={k: dict(v) for k, v in CPU_MODEL_OVERRIDES.items()},
            model_size="default",
            mode=mode,
            validate=True,
            plateau_stop=True,
            equal_compute=("dsen2cr",),
            equal_compute_eval_tiles=10,
        )
    if steps is not None:
        if steps < 2:
            raise ValueError(f"STEPS must be >= 2 (one per phase), got {steps}")
        budget.phase1_steps = max(1, round(steps * 2 / 3))
        budget.phase2_steps = max(1, steps - budget.phase1_steps)
    return budget


def default_seeds(seed: int = 0, smoke: bool = False, n_seeds: int | None = None) -> list[int]:
    """Seeds of notebook 04: 3 (1 in smoke mode; ``n_seeds`` wins). Seed ``seed`` of TDP-CR is
    the main run of notebooks 01/02."""
    n = n_seeds if n_seeds is not None else (1 if smoke else 3)
    if n < 1:
        raise ValueError(f"N_SEEDS must be >= 1, got {n}")
    return [seed + k for k in range(n)]


# --------------------------------------------------------------------------------------------
# Run identity
# --------------------------------------------------------------------------------------------
def model_config_for(spec: AblationSpec, budget: AblationBudget) -> ModelConfig:
    """The ``ModelConfig`` of a run: the budget's size preset + the spec + budget overrides."""
    arch = spec.model.get("arch", "tdpcr")
    overrides = {**dict(spec.model), **budget.model_overrides.get(arch, {})}
    # from_dict validates the overrides (they come from notebook parameters) with clear messages;
    # with_seg_decoder is left to the arch's default (the training phase sets it).
    return ModelConfig.from_dict({**preset_fields(budget.model_size), **overrides, "name": spec.name})


def final_model_config(model_config: ModelConfig) -> ModelConfig:
    """The config of the run's *final* model: it segments (phase 2 / joint / multitask)."""
    if model_config.arch == "dsen2cr":
        return model_config
    return model_config.replace(with_seg_decoder=True)


def run_config(spec: AblationSpec, budget: AblationBudget, seed: int, manifest_hash: str | None) -> dict[str, Any]:
    """Everything that determines a run's result (hashed by :func:`config_hash`).

    ``architecture`` is the final model's parameter fingerprint: it changes when the model code
    changes the architecture, so a run trained with older code is retrained instead of reused
    (its weights would no longer load).
    """
    model_config = model_config_for(spec, budget)
    return {
        "format": ABLATION_FORMAT_VERSION,
        "spec": spec.to_dict(),
        "budget": budget.to_dict(),
        "seed": int(seed),
        "model_config": model_config.to_dict(),
        "architecture": architecture_fingerprint(final_model_config(model_config)),
        "manifest_hash": manifest_hash,
    }


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 (first 16 hex digits) of the canonical JSON of a run config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_dir_for(runs_dir: str | Path, name: str, seed: int) -> Path:
    """``<runs_dir>/ablations/<name>_seed<seed>``."""
    return Path(runs_dir) / "ablations" / f"{name}_seed{seed}"
