"""One training run: datasets, model, resume checks, and the ``train()`` entry point.

:func:`train` is the core call: ``train(config, model_config, train_set, val_set, out_dir)``
with ``ModelConfig`` and dataset objects. :func:`train_on_folder` is the convenience for a
LuojiaSET-OSFCR folder (it builds the splits with :func:`build_datasets`).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from tdpcr_lib.core.io import sha256_file
from tdpcr_lib.core.legend import class_scheme
from tdpcr_lib.core.runtime import seed_everything
from tdpcr_lib.datasets.sources import open_dataset
from tdpcr_lib.metrics.results import VAL_PREFIX, from_records, headline
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint import (
    MODEL_FILE,
    CheckpointError,
    config_differences,
    load_model,
    read_meta,
    resolve_checkpoint_dir,
    unwrap_model,
)
from tdpcr_lib.models.checkpoint_files import recover_checkpoint, staging_dirs
from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.training.config import RESUME_MUTABLE_FIELDS, TrainConfig
from tdpcr_lib.training.freezing import apply_trainable_set, parameter_report
from tdpcr_lib.training.result import LogCallback, StepCallback, TrainResult
from tdpcr_lib.training.trainer import Trainer
from tdpcr_lib.transforms import TrainAugment

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# High-level entry point: build model + data, train
# --------------------------------------------------------------------------------------------
def build_datasets(data_root: str | Path, config: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """Training and validation splits (whole tiles; augmentation is applied by the trainer)."""
    train_set = open_dataset(data_root, split=config.train_split)
    val_set: Dataset | None = open_dataset(data_root, split=config.val_split)
    if len(train_set) == 0:
        raise ValueError(f"{data_root}: the {config.train_split!r} split is empty")
    if val_set is not None and len(val_set) == 0:
        val_set = None
    return train_set, val_set


def fit_crop_to_data(config: TrainConfig, dataset: Dataset) -> TrainConfig:
    """Clip ``crop_size`` to the tile size of ``dataset`` (a 128 crop on 64 px tiles → 64)."""
    if config.crop_size is None or len(dataset) == 0:
        return config
    height, width = dataset[0]["optical"].shape[-2:]
    if config.crop_size <= min(height, width):
        return config
    return config.replace(crop_size=int(min(height, width)))


def build_model_for(
    config: TrainConfig, model_config: ModelConfig | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """The model a run starts from (phase 2: the phase-1 checkpoint + a seg decoder).

    ``model_config`` (default ``ModelConfig()``) is ignored in phase 2, which takes the phase-1
    checkpoint's architecture; phase 1 and joint training set ``with_seg_decoder`` themselves.
    """
    if model_config is not None and not isinstance(model_config, ModelConfig):
        raise TypeError(
            f"model_config must be a ModelConfig, got {type(model_config).__name__}"
            " (build one with ModelConfig.from_dict / ModelConfig.preset)"
        )
    if config.phase == "phase2":
        model, meta = load_model(config.init_from, device=device)
        if meta["model_config"].get("arch") != "tdpcr":
            raise CheckpointError(
                f"{config.init_from}: phase 2 needs a TDP-CR checkpoint, got arch={meta['model_config'].get('arch')!r}"
            )
        model.attach_segmentation_decoder()
        return model
    if model_config is None:
        model_config = ModelConfig()
    if config.phase == "phase1":
        if model_config.arch != "tdpcr":
            raise ValueError("phase1 trains TDP-CR; use phase='baseline' for other architectures")
        model_config = model_config.replace(with_seg_decoder=False)
    elif config.phase == "joint":
        if model_config.arch != "tdpcr":
            raise ValueError("joint training is the TDP-CR ablation; use phase='baseline' for other architectures")
        model_config = model_config.replace(with_seg_decoder=True)
    if config.init_from:
        model, _ = load_model(config.init_from, device=device, expected_config=model_config)
        return model
    return build_model(model_config)


def init_fingerprint(config: TrainConfig) -> str | None:
    """sha256 of the starting checkpoint's weights (a resumed phase 2 must start from it)."""
    if not config.init_from:
        return None
    return sha256_file(resolve_checkpoint_dir(config.init_from) / MODEL_FILE)


def resume_problems(
    out_dir: str | Path, config: TrainConfig, model: nn.Module, manifest_hash: str | None, fingerprint: str | None
) -> list[str] | None:
    """Why ``out_dir/last`` cannot be resumed by this run (``[]`` = it can; ``None`` = no state)."""
    last = Path(out_dir) / "last"
    if not _has_resumable_state(last):
        return None
    meta = read_meta(last)
    problems = [
        f"train config {d}"
        for d in config_differences(meta.get("train_config") or {}, config.to_dict(), ignore=RESUME_MUTABLE_FIELDS)
    ]
    problems += [
        f"model config {d}" for d in config_differences(meta["model_config"], unwrap_model(model).config.to_dict())
    ]
    if meta.get("manifest_hash") != manifest_hash:
        problems.append("the data split manifest changed")
    if meta.get("init_fingerprint") != fingerprint:
        problems.append(f"the starting checkpoint {config.init_from} changed")
    return problems


def _has_resumable_state(last_dir: Path) -> bool:
    try:
        directory = resolve_checkpoint_dir(last_dir)
    except CheckpointError:
        return False
    return (directory / "trainer_state.json").is_file()


RUN_FILES = ("last", "best", ".last.old", ".best.old", "history.json", "history.csv", "steps.csv", "loss_curve.png")


def clear_run(out_dir: str | Path) -> None:
    """Remove a previous run's checkpoints and logs from ``out_dir`` (only tdpcr's own files).

    Also removes what interrupted saves left: checkpoint staging folders (``.last.tmp-*``,
    ``.best.tmp-*``) and the hidden temporaries of atomic log writes (``.history.json.*.tmp``).
    Any other file in ``out_dir`` stays.
    """
    out_dir = Path(out_dir)
    for name in RUN_FILES:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in _leftovers(out_dir):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _leftovers(out_dir: Path) -> list[Path]:
    """Staging folders and atomic-write temporaries of this run's own files."""
    found = [*staging_dirs(out_dir / "last"), *staging_dirs(out_dir / "best")]
    if out_dir.is_dir():
        for name in RUN_FILES:
            # core.io.atomic_path names its temporaries ".<name>.<random><suffix>"
            found += [p for p in out_dir.glob(f".{name}.*") if p.is_file() and p.name.endswith((".tmp", ".png"))]
    return found


def recover_run(out_dir: str | Path) -> list[str]:
    """Bring ``out_dir`` back to a consistent state after a crash; returns what was done.

    For ``last/`` and ``best/``: a complete, verified staging folder left in the swap window is
    promoted, incomplete staging folders are removed
    (:func:`tdpcr_lib.models.checkpoint_files.recover_checkpoint`); hidden temporaries of the
    logs are removed. Nothing the run did not write is touched.
    """
    out_dir = Path(out_dir)
    actions = [*recover_checkpoint(out_dir / "last"), *recover_checkpoint(out_dir / "best")]
    for path in _leftovers(out_dir):
        if path.is_file():
            path.unlink(missing_ok=True)
            actions.append(f"removed the temporary {path.name}")
    return actions


def train(
    config: TrainConfig,
    model_config: ModelConfig | None,
    train_set: Dataset,
    val_set: Dataset | None,
    out_dir: str | Path,
    *,
    device: str | torch.device = "auto",
    resume: bool | str = "auto",
    callbacks: Sequence[StepCallback] = (),
    log_callbacks: Sequence[LogCallback] = (),
    source: str | None = None,
    stop_rule: StepCallback | None = None,
) -> TrainResult:
    """Train one run end to end on the given datasets (the core call).

    Parameters
    ----------
    config
        The run settings. ``crop_size`` larger than the tiles is clipped to the tile size.
    model_config
        The architecture (``None``: ``ModelConfig()``); ignored for phase 2, which takes the
        phase-1 checkpoint's architecture.
    train_set, val_set
        Training split and validation split (``None``: no validation; runs are then scored at
        their last step). :func:`build_datasets` builds both from a folder.
    out_dir
        Run folder (e.g. ``runs/phase1``).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    resume
        ``True``: continue ``out_dir/last`` (an incompatible one is an error); ``"auto"``:
        continue it when it is compatible (same configs, data manifest and starting checkpoint),
        otherwise start afresh, replacing the old run; ``False``: always start afresh. A finished
        compatible run is not retrained.
    callbacks
        Per-step callbacks (see :class:`Trainer`).
    log_callbacks
        Called with ``out_dir`` whenever the logs are rewritten (see :class:`Trainer`).
    source
        Data source label, recorded in the checkpoint.
    stop_rule
        Ends the run early when it returns ``True`` after a validation (see :class:`Trainer`;
        e.g. :class:`tdpcr_lib.training.plateau.PlateauStop`).

    Returns
    -------
    TrainResult
    """
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
    config = fit_crop_to_data(config, train_set)
    model_config = classes_from_legend(config, model_config, train_set)
    seed_everything(config.seed, config.deterministic)  # model initialisation is seeded too
    model = build_model_for(config, model_config, device="cpu")
    fingerprint = init_fingerprint(config)
    manifest_hash = getattr(train_set, "manifest_hash", None)
    is_main = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
    if is_main:  # before anything reads the folder: a killed run may have left a half swap
        for action in recover_run(out_dir):
            log.info("%s: recovering after an interrupted run: %s", out_dir, action)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    problems = resume_problems(out_dir, config, model, manifest_hash, fingerprint)
    do_resume = False
    if resume and problems is not None:
        if not problems:
            do_resume = True
        elif resume is True:
            raise CheckpointError(
                f"{Path(out_dir) / 'last'}: cannot resume: " + "; ".join(problems) + " (use a new output folder or "
                "resume=False / --no-resume to start afresh)"
            )
        elif is_main:
            log.warning("%s: previous run is not compatible (%s); starting afresh", out_dir, "; ".join(problems[:3]))
    if not do_resume and is_main:
        clear_run(out_dir)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    trainer = Trainer(
        model,
        config,
        train_set,
        val_set,
        out_dir,
        device=device,
        train_transform=TrainAugment(config.crop_size),
        callbacks=callbacks,
        log_callbacks=log_callbacks,
        resume=do_resume,
        stop_rule=stop_rule,
        run_info={"init_fingerprint": fingerprint, "source": source, "data_root": _data_root_of(train_set)},
    )
    return trainer.fit()


def _base_dataset(dataset: Dataset) -> Dataset:
    """The dataset under index subsets and wrappers (``.base`` / ``.dataset``)."""
    while not hasattr(dataset, "root") and (hasattr(dataset, "base") or hasattr(dataset, "dataset")):
        dataset = getattr(dataset, "base", None) or dataset.dataset
    return dataset


def classes_from_legend(config: TrainConfig, model_config: ModelConfig | None, dataset: Dataset) -> ModelConfig | None:
    """The model config with the number of classes and the legend of ``dataset`` (its
    ``legend``), so a model trained on SEN12MS-CR predicts its 10 classes and says so.

    Phase 2 takes the phase-1 checkpoint's architecture: its legend must be the dataset's.
    """
    legend = getattr(_base_dataset(dataset), "legend", None)
    if legend is None:
        return model_config
    if config.phase == "phase2":
        start = read_meta(resolve_checkpoint_dir(config.init_from))["model_config"]
        trained_for = start.get("legend", "luojiaset")
        if class_scheme(trained_for) != class_scheme(legend.name):
            raise CheckpointError(
                f"{config.init_from}: trained for the {trained_for!r} legend, "
                f"but the data use {legend.name!r}; train phase 1 on the "
                "same dataset"
            )
        return model_config
    model_config = model_config if model_config is not None else ModelConfig()
    return model_config.replace(num_classes=legend.num_classes, legend=legend.name)


def _data_root_of(dataset: Dataset) -> str | None:
    """The folder a dataset reads (recorded in the checkpoint), through index subsets."""
    root = getattr(_base_dataset(dataset), "root", None)
    return None if root is None else str(root)


def train_on_folder(
    config: TrainConfig, model_config: ModelConfig | None, data_root: str | Path, out_dir: str | Path, **kwargs: Any
) -> TrainResult:
    """:func:`train` on the splits of a LuojiaSET-OSFCR folder (what ``tdpcr train`` runs).

    ``kwargs`` are :func:`train`'s keyword arguments (``device``, ``resume``, ...).
    """
    train_set, val_set = build_datasets(data_root, config)
    return train(config, model_config, train_set, val_set, out_dir, **kwargs)


def trainable_parameter_table(config: TrainConfig, model_config: ModelConfig | None = None) -> pd.DataFrame:
    """Total and trainable parameters per module group for a run's config (a pandas table).

    Builds the run's starting model (phase 2: the phase-1 checkpoint + seg decoder) and applies
    the trainable set; the last row, ``total``, sums every group.
    """
    model = build_model_for(config, model_config)
    apply_trainable_set(model, config)
    report = parameter_report(model)
    rows = dict(report["groups"]) or {}
    rows["total"] = {"total": report["total"], "trainable": report["trainable"]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame["trainable_%"] = (100 * frame["trainable"] / frame["total"].clip(lower=1)).round(2)
    frame.index.name = "module group"
    return frame


def run_summary(result: TrainResult) -> dict[str, Any]:
    """What notebooks 01/02 record: run facts plus the best checkpoint's headline val metrics."""
    summary = result.summary()
    best_metrics: Any = None
    if result.best_dir is not None:
        best_metrics = read_meta(result.best_dir).get("metrics")
    # a checkpoint stores its validation result frame as rows (older ones: a nested dict)
    summary["validation"] = (
        headline(from_records(best_metrics), prefix=VAL_PREFIX)
        if isinstance(best_metrics, list) and best_metrics
        else {}
    )
    summary["history"] = result.history
    return summary
