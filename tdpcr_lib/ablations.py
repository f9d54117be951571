"""The ablation grid: every variant and baseline trained on the same data, crop, budget and seeds.

Each (variant, seed) is one *run* with its own folder ``<runs>/ablations/<name>_seed<k>/``. The run
is keyed by a hash of everything that determines its result (variant spec, budget, seed, model
config, data manifest hash); a run whose ``results.json`` is present with the same hash is reused
on rerun instead of retrained (the hash includes a fingerprint of the model's parameter names and
shapes, so a change of architecture in the code forces a retrain), and a run interrupted
mid-training resumes from its ``last/``
checkpoint (the trainer's exact resume). A folder holding a run of a *different* config is
cleared before retraining, so a result never mixes two configs.

Design choices (the paper publishes no ablation protocol; these are ours):

* **Same budget for everyone**: the same number of optimizer steps, batch, crop and learning
  rate schedule. A two-phase run spends ``phase1_steps`` on phase 1 and ``phase2_steps`` on
  phase 2; single-phase runs (joint training and the two baselines) get the sum.
* **Final weights, not "best"**: runs train without validation and are scored at their last
  step, so no variant gets an extra model-selection advantage (and it is faster).
* **Evaluation** on the test split, optionally centre-cropped (``eval_crop``) and thinned to
  ``max_eval_tiles`` evenly spaced tiles (so all cloud-cover buckets stay represented): DSen2-CR
  costs ~2.5 TFLOP per 256² tile, which a CPU cannot afford for a whole split in minutes.
* **Noise**: mean ± sample std (ddof=1) over seeds; a difference is called *within noise* when
  ``|Δmean| < sqrt(std_a² + std_b²)`` (the spread of a difference of two single runs), and a
  Welch t-test p-value is given when both sides have ≥ 2 seeds. With one seed nothing can be
  told from noise and the report says so.
* **Paper claims** are recomputed from *our* numbers (ΔPSNR of TDP-CR vs DSen2-CR with the
  parameter ratio; ΔmIoU vs the multi-task competitor). The paper's values (+0.18 dB at 15 % of
  the parameters; +1.4 mIoU) appear only in a separate column labelled as reference.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .io_utils import atomic_write_json, atomic_write_text

#: Version of the run layout / results format; part of the config hash.
ABLATION_FORMAT_VERSION = 1
RESULTS_FILE = "results.json"
SCHEDULES = ("two_phase", "joint", "baseline")

#: What the paper claims (reference only; never mixed with our numbers).
PAPER_CLAIMS: dict[str, str] = {
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
    """

    name: str
    label: str
    model: Mapping[str, Any]
    schedule: str
    trainable: str = "prompt_pgf_seg"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"AblationSpec {self.name!r}: schedule must be one of {SCHEDULES}, "
                             f"got {self.schedule!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "model": dict(self.model),
                "schedule": self.schedule,
                "trainable": self.trainable if self.schedule == "two_phase" else None}


#: The grid, in table order. ``tdpcr_full`` is the reference every other row is compared with.
ABLATIONS: dict[str, AblationSpec] = {spec.name: spec for spec in (
    AblationSpec("tdpcr_full", "TDP-CR (PGF + prompt, two-phase)", {"arch": "tdpcr", "fusion": "pgf"},
                 "two_phase", "prompt_pgf_seg"),
    AblationSpec("pgf_no_prompt", "PGF without prompt", {"arch": "tdpcr", "fusion": "pgf_no_prompt"},
                 "two_phase", "prompt_pgf_seg"),
    AblationSpec("concat_fusion", "concat fusion (no PGF)", {"arch": "tdpcr", "fusion": "concat"},
                 "two_phase", "prompt_pgf_seg"),
    AblationSpec("optical_only", "optical only (no SAR)", {"arch": "tdpcr", "fusion": "optical_only"},
                 "two_phase", "prompt_pgf_seg"),
    AblationSpec("joint_single_phase", "single-phase joint training", {"arch": "tdpcr", "fusion": "pgf"},
                 "joint"),
    AblationSpec("seg_decoder_only", "phase 2: seg decoder only", {"arch": "tdpcr", "fusion": "pgf"},
                 "two_phase", "seg_decoder_only"),
    AblationSpec("dsen2cr", "DSen2-CR (heavy CR baseline)", {"arch": "dsen2cr"}, "baseline"),
    AblationSpec("multitask", "multi-task competitor (CloudSeg-style)", {"arch": "multitask_unet"},
                 "baseline"),
)}
REFERENCE = "tdpcr_full"


@dataclass
class AblationBudget:
    """The shared training/evaluation budget of every run of a grid.

    Attributes
    ----------
    phase1_steps, phase2_steps
        Optimizer steps of the two phases; single-phase runs get their sum.
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
        Tiles per forward pass in evaluation.
    model_overrides
        Extra ``ModelConfig`` fields per ``arch`` (e.g. a narrow DSen2-CR for unit tests). Part
        of the config hash.
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

    def __post_init__(self) -> None:
        for key in ("phase1_steps", "phase2_steps", "batch_size", "crop_size"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"AblationBudget.{key} must be >= 1, got {getattr(self, key)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def total_steps(self) -> int:
        return self.phase1_steps + self.phase2_steps


def preset_budget(smoke: bool = False, full: bool = False,
                  steps: int | None = None) -> AblationBudget:
    """The budget of notebook 04.

    * ``smoke``: 2 + 1 steps, batch 2, 32² crops, 4 test tiles of 32² (checks the plumbing only).
    * default (2-core CPU, about 3 min for the 8 runs of one seed): 40 + 20 steps, batch 2, 32²
      crops, 8 test tiles centre-cropped to 64². Enough to see every model improve on the
      cloudy input (PSNR) and to exercise the whole pipeline, not to rank close variants; the
      segmentation heads only start learning in 20 steps.
    * ``full`` (a GPU): 3000 + 1500 steps, batch 16, 128² crops, whole test split and tiles.

    ``steps`` overrides the total step count (split 2:1 between the phases).
    """
    if smoke and full:
        raise ValueError("choose either smoke or full, not both")
    if smoke:
        budget = AblationBudget(phase1_steps=2, phase2_steps=1, batch_size=2, crop_size=32,
                                warmup_steps=0, eval_crop=32, max_eval_tiles=4)
    elif full:
        budget = AblationBudget(phase1_steps=3000, phase2_steps=1500, batch_size=16,
                                crop_size=128, lr_phase2=3e-4, warmup_steps=200, eval_crop=None,
                                max_eval_tiles=None, eval_batch_size=8)
    else:
        budget = AblationBudget()
    if steps is not None:
        if steps < 2:
            raise ValueError(f"STEPS must be >= 2 (one per phase), got {steps}")
        budget.phase1_steps = max(1, round(steps * 2 / 3))
        budget.phase2_steps = max(1, steps - budget.phase1_steps)
    return budget


def default_seeds(seed: int = 0, smoke: bool = False, full: bool = False,
                  n_seeds: int | None = None) -> list[int]:
    """Seeds of notebook 04: 1 by default and in smoke mode, 3 in full mode (``n_seeds`` wins)."""
    n = n_seeds if n_seeds is not None else (3 if full else 1)
    if n < 1:
        raise ValueError(f"N_SEEDS must be >= 1, got {n}")
    return [seed + k for k in range(n)]


# --------------------------------------------------------------------------------------------
# Run identity
# --------------------------------------------------------------------------------------------
def model_config_for(spec: AblationSpec, budget: AblationBudget) -> dict[str, Any]:
    """The full ``ModelConfig`` dict of a run (defaults + spec + budget overrides)."""
    from .models import ModelConfig

    overrides = {**dict(spec.model), **budget.model_overrides.get(spec.model.get("arch", "tdpcr"),
                                                                   {})}
    base = ModelConfig().to_dict()
    base.pop("with_seg_decoder")
    config = ModelConfig.from_dict({**base, **overrides, "name": spec.name})
    return config.to_dict()


def architecture_fingerprint(model_config: Mapping[str, Any]) -> str:
    """sha256 (16 hex) of the parameter names and shapes of the run's *final* model.

    Built on the ``meta`` device (no memory, milliseconds). It changes when the model code
    changes the architecture, so a run trained with older code is retrained instead of reused
    (its weights would no longer load).
    """
    import torch

    from .models import ModelConfig, build_model

    config = dict(model_config)
    if config.get("arch") != "dsen2cr":
        config["with_seg_decoder"] = True  # the final model segments (phase 2 / joint / multitask)
    with torch.device("meta"):
        model = build_model(ModelConfig.from_dict(config))
    names = sorted(f"{name}:{tuple(t.shape)}" for name, t in model.state_dict().items())
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def run_config(spec: AblationSpec, budget: AblationBudget, seed: int,
               manifest_hash: str | None) -> dict[str, Any]:
    """Everything that determines a run's result (hashed by :func:`config_hash`)."""
    model_config = model_config_for(spec, budget)
    return {"format": ABLATION_FORMAT_VERSION, "spec": spec.to_dict(), "budget": budget.to_dict(),
            "seed": int(seed), "model_config": model_config,
            "architecture": architecture_fingerprint(model_config),
            "manifest_hash": manifest_hash}


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 (first 16 hex digits) of the canonical JSON of a run config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_dir_for(runs_dir: str | Path, name: str, seed: int) -> Path:
    """``<runs_dir>/ablations/<name>_seed<seed>``."""
    return Path(runs_dir) / "ablations" / f"{name}_seed{seed}"


def read_completed(run_dir: str | Path, expected_hash: str) -> dict[str, Any] | None:
    """The run's results if it finished with this config hash and its checkpoint exists."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if results.get("config_hash") != expected_hash:
        return None
    checkpoint = Path(run_dir) / results.get("checkpoint", "")
    if not (checkpoint / "model.safetensors").is_file():
        return None
    return results


# --------------------------------------------------------------------------------------------
# Training and evaluation of one run
# --------------------------------------------------------------------------------------------
def _train_config(phase: str, steps: int, lr: float, budget: AblationBudget, seed: int,
                  **extra: Any):
    from .training import TrainConfig

    return TrainConfig(phase=phase, epochs=10_000, max_steps=steps, batch_size=budget.batch_size,
                       crop_size=budget.crop_size, lr=lr, warmup_steps=min(budget.warmup_steps,
                                                                           steps - 1),
                       seed=seed, progress=False, log_every=max(1, steps), **extra)


def eval_indices(n: int, max_tiles: int | None) -> list[int]:
    """``max_tiles`` evenly spaced indices of ``range(n)`` (all when ``None`` or ≥ n).

    Splits are stored bucket by bucket, so even spacing keeps every bucket represented.
    """
    if max_tiles is None or max_tiles >= n:
        return list(range(n))
    if max_tiles < 1:
        raise ValueError(f"max_eval_tiles must be >= 1, got {max_tiles}")
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, max_tiles)})


class _Subset:
    """Index subset that keeps the base's ``manifest_hash`` and ``split`` (for evaluation)."""

    def __init__(self, base: Any, indices: Sequence[int]) -> None:
        self.base, self.indices = base, list(indices)
        self.split = getattr(base, "split", None)
        self.manifest_hash = getattr(base, "manifest_hash", None)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.base[self.indices[i]]


def build_eval_dataset(data_root: str | Path, budget: AblationBudget, split: str = "test") -> Any:
    """The evaluation set of a grid: the split, centre-cropped and thinned per the budget."""
    from functools import partial

    from .data import LuojiaSETOSFCR
    from .viz import centre_crop_sample

    transform = partial(centre_crop_sample, size=budget.eval_crop) if budget.eval_crop else None
    base = LuojiaSETOSFCR(data_root, split=split, transforms=transform)
    return _Subset(base, eval_indices(len(base), budget.max_eval_tiles))


def _train_run(spec: AblationSpec, budget: AblationBudget, seed: int, run_dir: Path,
               train_set: Any, device: str, model_config: dict[str, Any]) -> tuple[Path, dict]:
    """Train one run; returns (final checkpoint folder, parameter report of the last phase)."""
    from .training import train

    datasets = (train_set, None)  # no validation: every run is scored at its last step
    if spec.schedule == "two_phase":
        cfg1 = _train_config("phase1", budget.phase1_steps, budget.lr_phase1, budget, seed)
        train(cfg1, train_set.root if hasattr(train_set, "root") else ".", run_dir / "phase1",
              model_config=model_config, device=device, datasets=datasets)
        cfg2 = _train_config("phase2", budget.phase2_steps, budget.lr_phase2, budget, seed,
                             trainable=spec.trainable,
                             init_from=str(run_dir / "phase1" / "last"))
        result = train(cfg2, ".", run_dir / "phase2", device=device, datasets=datasets)
        return run_dir / "phase2" / "last", result.parameters
    phase = "joint" if spec.schedule == "joint" else "baseline"
    cfg = _train_config(phase, budget.total_steps, budget.lr_phase1, budget, seed)
    result = train(cfg, ".", run_dir / phase, model_config=model_config, device=device,
                   datasets=datasets)
    return run_dir / phase / "last", result.parameters


def run_ablation(spec: AblationSpec, budget: AblationBudget, seed: int, *, train_set: Any,
                 eval_set: Any, runs_dir: str | Path, device: str = "auto",
                 force: bool = False) -> dict[str, Any]:
    """Train and evaluate one (variant, seed), or reuse it when it already finished.

    Returns the run's results dict (as written to ``results.json``) with ``"reused"`` set to
    whether it was read back instead of trained.
    """
    import torch

    from .checkpoint import load_model
    from .complexity import count_parameters, flops_per_tile
    from .evaluation import evaluate

    config = run_config(spec, budget, seed, getattr(train_set, "manifest_hash", None))
    digest = config_hash(config)
    run_dir = run_dir_for(runs_dir, spec.name, seed)
    if not force:
        done = read_completed(run_dir, digest)
        if done is not None:
            return {**done, "reused": True}
    marker = run_dir / "config_hash.txt"
    if run_dir.exists() and (force or not marker.is_file() or marker.read_text().strip() != digest):
        shutil.rmtree(run_dir)  # a different config lived here: never resume across configs
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, digest + "\n")
    atomic_write_json(run_dir / "run_config.json", config)

    started = time.time()
    checkpoint, train_params = _train_run(spec, budget, seed, run_dir, train_set, device,
                                          config["model_config"])
    train_seconds = time.time() - started
    started = time.time()
    evaluation = evaluate(checkpoint, eval_set, device=device, batch_size=budget.eval_batch_size,
                          tile=None, progress=False)
    eval_seconds = time.time() - started
    model, _ = load_model(checkpoint, device="cpu")
    counts = count_parameters(model)
    with torch.no_grad():
        flops = flops_per_tile(model, size=256)
    results = {
        "name": spec.name, "label": spec.label, "seed": int(seed), "config_hash": digest,
        "config": config, "checkpoint": str(checkpoint.relative_to(run_dir)),
        "metrics": evaluation.metrics, "headline": headline_metrics(evaluation.metrics),
        "complexity": {"params": int(counts["total"]),
                       "trainable_last_phase": int(train_params.get("trainable", counts["total"])),
                       "flops_256": int(flops)},
        "n_eval_images": evaluation.metrics.get("n_images"),
        "train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
        "tdpcr_version": __version__,
    }
    atomic_write_json(run_dir / RESULTS_FILE, results)
    return {**json.loads((run_dir / RESULTS_FILE).read_text()), "reused": False}


def run_grid(data_root: str | Path, runs_dir: str | Path, seeds: Sequence[int],
             budget: AblationBudget, *, names: Sequence[str] | None = None,
             specs: Mapping[str, AblationSpec] | None = None, device: str = "auto",
             force: bool = False, log: Callable[[str], None] | None = print) -> list[dict[str, Any]]:
    """Run (or reuse) every (variant, seed) of the grid; returns their results in grid order."""
    from .data import LuojiaSETOSFCR

    specs = dict(specs or ABLATIONS)
    names = list(names) if names is not None else list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise KeyError(f"unknown ablation(s) {unknown}; choose from {list(specs)}")
    train_set = LuojiaSETOSFCR(data_root, split="train")
    eval_set = build_eval_dataset(data_root, budget)
    results = []
    for seed in seeds:
        for name in names:
            started = time.time()
            result = run_ablation(specs[name], budget, seed, train_set=train_set,
                                  eval_set=eval_set, runs_dir=runs_dir, device=device,
                                  force=force)
            if log is not None:
                how = "reused" if result["reused"] else f"trained in {time.time() - started:.1f} s"
                log(f"{name} seed {seed}: {how}; PSNR {_nan(result['headline'].get('psnr')):.2f}"
                    f" dB, mIoU {100 * _nan(result['headline'].get('miou')):.1f}")
            results.append(result)
    return results


# --------------------------------------------------------------------------------------------
# Metrics: flatten, aggregate over seeds, noise
# --------------------------------------------------------------------------------------------
def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _block(block: Any, region: str) -> dict[str, Any]:
    if not isinstance(block, Mapping):
        return {}
    inner = block.get(region)
    if isinstance(inner, Mapping):
        return dict(inner)
    return dict(block) if region == "all" and "all" not in block else {}


#: Flat metric key → (task, region, metric) in the evaluator's nested dict.
HEADLINE_KEYS: dict[str, tuple[str, str, str]] = {
    "psnr": ("cr", "all", "psnr"), "ssim": ("cr", "all", "ssim"), "sam": ("cr", "all", "sam"),
    "mae": ("cr", "all", "mae"), "psnr_cloudy": ("cr", "cloudy", "psnr"),
    "ssim_cloudy": ("cr", "cloudy", "ssim"), "sam_cloudy": ("cr", "cloudy", "sam"),
    "mae_cloudy": ("cr", "cloudy", "mae"), "oa": ("seg", "all", "oa"),
    "oa_cloudy": ("seg", "cloudy", "oa"), "oa_clear": ("seg", "clear", "oa"),
    "miou": ("seg", "all", "miou"), "miou_cloudy": ("seg", "cloudy", "miou"),
    "miou_clear": ("seg", "clear", "miou"),
}


def headline_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluator's nested metrics → flat keys of :data:`HEADLINE_KEYS` plus ``per_bucket``.

    Segmentation keys are NaN for models without a segmentation head (``null`` once written to
    JSON, so readers must accept both).
    """
    flat: dict[str, Any] = {}
    for key, (task, region, metric) in HEADLINE_KEYS.items():
        flat[key] = _nan(_block(metrics.get(task), region).get(metric))
    per_bucket = {}
    for bucket, block in (metrics.get("per_bucket") or {}).items():
        per_bucket[bucket] = {"psnr": _nan(_block(block.get("cr"), "all").get("psnr")),
                              "miou": _nan(_block(block.get("seg"), "all").get("miou"))}
    flat["per_bucket"] = per_bucket
    return flat


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` over the finite values (std: ddof=1, NaN when n < 2)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(finite)
    mean = float(np.mean(finite)) if n else float("nan")
    std = float(np.std(finite, ddof=1)) if n >= 2 else float("nan")
    return {"mean": mean, "std": std, "n": n, "values": finite}


def aggregate(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Results of many runs → per variant: metric → mean/std/n over seeds, complexity, buckets."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for result in results:
        grouped.setdefault(result["name"], []).append(result)
    out: dict[str, dict[str, Any]] = {}
    for name, runs in grouped.items():
        entry: dict[str, Any] = {"label": runs[0]["label"], "seeds": [r["seed"] for r in runs],
                                 "metrics": {}, "per_bucket": {}}
        for key in HEADLINE_KEYS:
            entry["metrics"][key] = mean_std([r["headline"].get(key) for r in runs])
        buckets = sorted({b for r in runs for b in r["headline"].get("per_bucket", {})})
        for bucket in buckets:
            entry["per_bucket"][bucket] = {
                m: mean_std([r["headline"]["per_bucket"].get(bucket, {}).get(m) for r in runs])
                for m in ("psnr", "miou")}
        entry["complexity"] = dict(runs[0]["complexity"])
        entry["train_seconds"] = mean_std([r.get("train_seconds") for r in runs])
        out[name] = entry
    return out


def compare(a_values: Sequence[float], b_values: Sequence[float]) -> dict[str, Any]:
    """Is ``mean(a) − mean(b)`` distinguishable from seed noise?

    Returns ``delta``, ``combined_std`` (``sqrt(std_a² + std_b²)``), ``p_value`` (Welch's t-test,
    NaN unless both sides have ≥ 2 seeds) and ``verdict``: ``"within noise"`` when
    ``|delta| < combined_std``, ``"beyond noise"`` otherwise, ``"unknown (1 seed)"`` when a side
    has fewer than 2 seeds, ``"n/a"`` when a side has no value.
    """
    a, b = mean_std(a_values), mean_std(b_values)
    delta = a["mean"] - b["mean"]
    out = {"delta": delta, "combined_std": float("nan"), "p_value": float("nan"),
           "n_a": a["n"], "n_b": b["n"]}
    if not a["n"] or not b["n"]:
        return {**out, "verdict": "n/a"}
    if a["n"] < 2 or b["n"] < 2:
        return {**out, "verdict": "unknown (1 seed)"}
    combined = math.hypot(a["std"], b["std"])
    out["combined_std"] = combined
    if combined > 0:
        from scipy import stats

        out["p_value"] = float(stats.ttest_ind(a["values"], b["values"], equal_var=False).pvalue)
    out["verdict"] = "within noise" if abs(delta) < combined else "beyond noise"
    return out


# --------------------------------------------------------------------------------------------
# Tables and report
# --------------------------------------------------------------------------------------------
#: Table column → (source, key, scale, digits). source "c": complexity, "m": metrics.
TABLE_COLUMNS: dict[str, tuple[str, str, float, int]] = {
    "params (M)": ("c", "params", 1e-6, 3),
    "phase-2 trainable (M)": ("c", "trainable_last_phase", 1e-6, 3),
    "GFLOPs / 256² tile": ("c", "flops_256", 1e-9, 1),
    "PSNR all (dB)": ("m", "psnr", 1, 2), "PSNR cloudy (dB)": ("m", "psnr_cloudy", 1, 2),
    "SSIM all": ("m", "ssim", 1, 3), "SSIM cloudy": ("m", "ssim_cloudy", 1, 3),
    "SAM all (°)": ("m", "sam", 1, 2), "SAM cloudy (°)": ("m", "sam_cloudy", 1, 2),
    "MAE all": ("m", "mae", 1, 4), "MAE cloudy": ("m", "mae_cloudy", 1, 4),
    "OA all (%)": ("m", "oa", 100, 1), "OA cloudy (%)": ("m", "oa_cloudy", 100, 1),
    "OA clear (%)": ("m", "oa_clear", 100, 1), "mIoU all (%)": ("m", "miou", 100, 1),
    "mIoU cloudy (%)": ("m", "miou_cloudy", 100, 1), "mIoU clear (%)": ("m", "miou_clear", 100, 1),
}


def format_mean_std(stat: Mapping[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """``"m ± s"`` (``"m"`` with one seed, ``"—"`` without a value)."""
    mean = stat.get("mean", float("nan"))
    if mean is None or not math.isfinite(mean):
        return "—"
    std = stat.get("std", float("nan"))
    text = f"{mean * scale:.{digits}f}"
    if std is not None and math.isfinite(std):
        text += f" ± {std * scale:.{digits}f}"
    return text


def ablation_table(aggregated: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per variant (grid order), one column per :data:`TABLE_COLUMNS`; strings."""
    rows = {}
    for entry in aggregated.values():
        row = {}
        for column, (source, key, scale, digits) in TABLE_COLUMNS.items():
            if source == "c":
                value = entry["complexity"].get(key)
                row[column] = "—" if value is None else f"{value * scale:.{digits}f}"
            else:
                row[column] = format_mean_std(entry["metrics"][key], scale, digits)
        rows[entry["label"]] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame


def paper_claims_table(aggregated: Mapping[str, Mapping[str, Any]],
                       reference: str = REFERENCE) -> pd.DataFrame:
    """The two headline claims recomputed from our runs; paper values in a separate column."""
    rows = {}
    ref = aggregated.get(reference)
    specs = (("delta_psnr_vs_dsen2cr", "ΔPSNR TDP-CR − DSen2-CR (dB)", "dsen2cr", "psnr", 1.0),
             ("delta_miou_vs_multitask", "ΔmIoU TDP-CR − multi-task (points)", "multitask", "miou",
              100.0))
    for key, label, other_name, metric, scale in specs:
        other = aggregated.get(other_name)
        if ref is None or other is None:
            rows[label] = {"ours: Δ mean": "—", "combined std": "—", "within noise?": "not run",
                           "TDP-CR / other parameters": "—",
                           "paper (reference only, not ours)": PAPER_CLAIMS[key]}
            continue
        cmp = compare(ref["metrics"][metric]["values"], other["metrics"][metric]["values"])
        ratio = ref["complexity"]["params"] / other["complexity"]["params"]
        std = cmp["combined_std"]
        rows[label] = {
            "ours: Δ mean": "—" if not math.isfinite(cmp["delta"]) else f"{cmp['delta'] * scale:+.2f}",
            "combined std": f"{std * scale:.2f}" if math.isfinite(std) else "n/a",
            "within noise?": cmp["verdict"],
            "TDP-CR / other parameters": f"{100 * ratio:.1f} %",
            "paper (reference only, not ours)": PAPER_CLAIMS[key]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "claim"
    return frame


def noise_statements(aggregated: Mapping[str, Mapping[str, Any]], reference: str = REFERENCE,
                     metrics: Sequence[tuple[str, str, float]] = (("psnr", "PSNR", 1.0),
                                                                  ("miou", "mIoU", 100.0))
                     ) -> list[str]:
    """One sentence per (variant, metric): the difference to the reference and its verdict."""
    if reference not in aggregated:
        return [f"the reference run {reference!r} is not in the results"]
    lines = []
    ref = aggregated[reference]
    for name, entry in aggregated.items():
        if name == reference:
            continue
        for key, label, scale in metrics:
            cmp = compare(entry["metrics"][key]["values"], ref["metrics"][key]["values"])
            if cmp["verdict"] == "n/a":
                continue
            extra = ""
            if math.isfinite(cmp["combined_std"]):
                extra = f" (combined std {cmp['combined_std'] * scale:.2f}"
                extra += f", Welch p = {cmp['p_value']:.2f})" if math.isfinite(cmp["p_value"]) \
                    else ")"
            lines.append(f"{entry['label']} vs {ref['label']}: Δ{label} = "
                         f"{cmp['delta'] * scale:+.2f} → {cmp['verdict']}{extra}")
    return lines


def per_bucket_for_plot(aggregated: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """``{label: {bucket: {"psnr": {mean, std}, "miou": {mean, std}}}}`` for the bucket plot."""
    out = {}
    for entry in aggregated.values():
        out[entry["label"]] = {
            bucket: {m: {"mean": s["mean"] * (100 if m == "miou" else 1),
                         "std": (s["std"] if math.isfinite(s["std"]) else 0.0)
                         * (100 if m == "miou" else 1)}
                     for m, s in stats.items()}
            for bucket, stats in entry["per_bucket"].items()}
    return out


def plot_per_bucket(aggregated: Mapping[str, Mapping[str, Any]]):
    """PSNR and mIoU vs cloud cover, one line per model (error bars: std over seeds)."""
    from .viz import plot_bucket_metrics

    return plot_bucket_metrics(per_bucket_for_plot(aggregated),
                               metrics=(("psnr", "PSNR (dB)"), ("miou", "mIoU (%)")),
                               title="Ablations: metrics by cloud cover (mean ± std over seeds)")


def write_report(aggregated: Mapping[str, Mapping[str, Any]], path: str | Path, *,
                 budget: AblationBudget, seeds: Sequence[int], figures: Sequence[str] = (),
                 notes: str = "") -> Path:
    """Write ``reports/ablations.md``: budget, main table, claim rows, noise statements."""
    from .evaluation import dataframe_to_markdown

    lines = ["# Ablations and baseline comparison", "",
             f"Seeds: {list(seeds)} · budget: {budget.phase1_steps} + {budget.phase2_steps} steps "
             f"(single-phase runs: {budget.total_steps}), batch {budget.batch_size}, "
             f"crop {budget.crop_size}², evaluation on "
             f"{'all' if budget.max_eval_tiles is None else f'≤ {budget.max_eval_tiles}'} test tiles"
             f"{'' if budget.eval_crop is None else f' centre-cropped to {budget.eval_crop}²'}.",
             "Values are mean ± std over seeds (std only with ≥ 2 seeds). Parameters and FLOPs are "
             "of the evaluated model at a 256² tile; 'phase-2 trainable' is the number of "
             "parameters trained in the run's last phase (all of them for single-phase runs).", ""]
    if notes:
        lines += [notes, ""]
    lines += ["## Results per model", "", dataframe_to_markdown(ablation_table(aggregated)), "",
              "## The paper's claims, recomputed from our runs", "",
              "Our numbers are in the 'ours' columns; the last column is the paper's claim, for "
              "reference only.", "", dataframe_to_markdown(paper_claims_table(aggregated)), "",
              "## Which differences are within noise", ""]
    lines += [f"- {s}" for s in noise_statements(aggregated)] or ["- (no comparisons)"]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{Path(f).stem}]({f})" for f in figures]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def results_json(aggregated: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What ``reports/metrics/04_ablations.json`` records besides the RunRecord fields."""
    return {"models": aggregated,
            "claims": paper_claims_table(aggregated).to_dict(orient="index"),
            "noise": noise_statements(aggregated),
            "paper_reference": PAPER_CLAIMS}


def discover_checkpoints(runs_dir: str | Path, seed: int | None = None,
                         include_main: bool = True) -> dict[str, Path]:
    """Display name → checkpoint folder of every finished model under ``runs_dir``.

    ``runs/phase2/best`` (the main pipeline's model) first, then each finished ablation run
    (of ``seed`` only, when given), in grid order.
    """
    runs_dir = Path(runs_dir)
    found: dict[str, Path] = {}
    main = runs_dir / "phase2" / "best"
    if include_main and (main / "model.safetensors").is_file():
        found["TDP-CR (runs/phase2/best)"] = main
    order = {name: k for k, name in enumerate(ABLATIONS)}
    runs = []
    for results_path in sorted((runs_dir / "ablations").glob(f"*/{RESULTS_FILE}")):
        try:
            results = json.loads(results_path.read_text())
        except json.JSONDecodeError:
            continue
        checkpoint = results_path.parent / results.get("checkpoint", "")
        if (checkpoint / "model.safetensors").is_file() and (seed is None
                                                            or results.get("seed") == seed):
            runs.append((order.get(results["name"], len(order)), results["seed"],
                         f"{results['name']} (seed {results['seed']})", checkpoint))
    for _, _, name, checkpoint in sorted(runs):
        found[name] = checkpoint
    return found


def load_models(checkpoints: Mapping[str, str | Path], device: str = "cpu") -> dict[str, Any]:
    """Load each checkpoint folder (``tdpcr_lib.checkpoint.load_model``) in eval mode."""
    from .checkpoint import load_model

    models = {}
    for name, path in checkpoints.items():
        model, _ = load_model(path, device=device)
        models[name] = model.eval()
    return models
