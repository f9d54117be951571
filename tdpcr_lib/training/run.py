"""One training run: the starting model, the run plan, and the ``train()`` entry point.

:func:`train` is the core call: ``train(config, model_config, train_set, val_set, out_dir)``
with ``ModelConfig`` and dataset objects. It repairs the run folder
(:mod:`tdpcr_lib.training.housekeeping`), builds the starting model (its classes from the data's
legend), decides once what to do with the folder (:func:`tdpcr_lib.training.plan.plan_run`: start
fresh, resume ``last/``, report a finished run, or refuse), logs that plan in one line and follows
it. :func:`train_on_folder` is the convenience for a data folder (it builds the splits with
:func:`build_datasets`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from tdpcr_lib.core.legend import class_scheme
from tdpcr_lib.core.runtime import seed_everything
from tdpcr_lib.datasets.provenance import describe_training_data
from tdpcr_lib.datasets.sources import open_dataset
from tdpcr_lib.datasets.synthetic.tiles import read_synthetic_info
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint import CheckpointError, load_model, unwrap_model
from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.training.config import TrainConfig
from tdpcr_lib.training.freezing import apply_trainable_set, parameter_report
from tdpcr_lib.training.housekeeping import clear_run, recover_run
from tdpcr_lib.training.plan import ResumeMode, StartingPoint, plan_run
from tdpcr_lib.training.result import LogCallback, StepCallback, StopRule, TrainResult
from tdpcr_lib.training.resume import read_resume_state
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
    config: TrainConfig,
    model_config: ModelConfig | None = None,
    device: str | torch.device = "cpu",
    start: StartingPoint | None = None,
) -> nn.Module:
    """The model a run starts from (phase 2: the phase-1 checkpoint + a seg decoder).

    ``model_config`` (default ``ModelConfig()``) is ignored in phase 2, which takes the phase-1
    checkpoint's architecture; phase 1 and joint training set ``with_seg_decoder`` themselves.
    ``start`` is the starting checkpoint already read (default: read ``config.init_from``).
    """
    if model_config is not None and not isinstance(model_config, ModelConfig):
        raise TypeError(
            f"model_config must be a ModelConfig, got {type(model_config).__name__}"
            " (build one with ModelConfig.from_dict / ModelConfig.preset)"
        )
    if start is None:
        start = StartingPoint.read(config.init_from)
    if config.phase == "phase2":
        assert start is not None  # TrainConfig requires init_from in phase 2
        arch = start.meta["model_config"].get("arch")
        if arch != "tdpcr":
            raise CheckpointError(f"{config.init_from}: phase 2 needs a TDP-CR checkpoint, got arch={arch!r}")
        model, _ = load_model(start.directory, device=device)
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
    if start is not None:
        model, _ = load_model(start.directory, device=device, expected_config=model_config)
        return model
    return build_model(model_config)


def train(
    config: TrainConfig,
    model_config: ModelConfig | None,
    train_set: Dataset,
    val_set: Dataset | None,
    out_dir: str | Path,
    *,
    device: str | torch.device = "auto",
    resume: ResumeMode = "auto",
    callbacks: Sequence[StepCallback] = (),
    log_callbacks: Sequence[LogCallback] = (),
    source: str | None = None,
    stop_rule: StopRule | None = None,
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
        compatible run is not retrained. The decision is :func:`tdpcr_lib.training.plan.plan_run`'s,
        logged in one line.
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
    config = fit_crop_to_data(config, train_set)
    start = StartingPoint.read(config.init_from)  # the only read of init_from's config and hash
    model_config = classes_from_legend(config, model_config, train_set, start)
    seed_everything(config.seed, config.deterministic)  # model initialisation is seeded too
    model = build_model_for(config, model_config, device="cpu", start=start)
    distributed = dist.is_available() and dist.is_initialized()
    is_main = not distributed or dist.get_rank() == 0
    if is_main:  # before anything reads the folder: a killed run may have left a half swap
        for action in recover_run(out_dir):
            log.info("%s: recovering after an interrupted run: %s", out_dir, action)
    if distributed:
        dist.barrier()
    plan = plan_run(
        out_dir,
        config,
        resume=resume,
        model_config=unwrap_model(model).config.to_dict(),
        manifest_hash=getattr(train_set, "manifest_hash", None),
        n_samples=len(train_set),
        start=start,
        world_size=dist.get_world_size() if distributed else 1,
    )
    if is_main:
        log.log(logging.WARNING if plan.replaces and plan.problems else logging.INFO, plan.describe())
    plan.enforce()
    if not plan.continues and is_main:
        clear_run(out_dir)
    if distributed:
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
        stop_rule=stop_rule,
        run_info={
            "init_fingerprint": start.fingerprint if start else None,
            "source": source,
            "data_root": _data_root_of(train_set),
            # what the model learnt from: prediction warns on data unlike it
            "training_data": describe_training_data(train_set, source),
            "synthetic_twin": _is_twin(train_set),
        },
    )
    if plan.continues:
        trainer.load_state_dict(read_resume_state(plan.last_dir))
    return trainer.fit()


def _base_dataset(dataset: Dataset) -> Dataset:
    """The dataset under index subsets and wrappers (``.base`` / ``.dataset``)."""
    while not hasattr(dataset, "root") and (hasattr(dataset, "base") or hasattr(dataset, "dataset")):
        dataset = getattr(dataset, "base", None) or dataset.dataset
    return dataset


def classes_from_legend(
    config: TrainConfig, model_config: ModelConfig | None, dataset: Dataset, start: StartingPoint | None = None
) -> ModelConfig | None:
    """The model config with the number of classes and the legend of ``dataset`` (its
    ``legend``), so a model trained on SEN12MS-CR predicts its 10 classes and says so.

    Phase 2 takes the phase-1 checkpoint's architecture: its legend must be the dataset's.
    ``start`` is the starting checkpoint already read (default: read ``config.init_from``).
    """
    legend = getattr(_base_dataset(dataset), "legend", None)
    if legend is None:
        return model_config
    if config.phase == "phase2":
        start = start if start is not None else StartingPoint.read(config.init_from)
        assert start is not None  # TrainConfig requires init_from in phase 2
        trained_for = start.meta["model_config"].get("legend", "luojiaset")
        if class_scheme(trained_for) != class_scheme(legend.name):
            raise CheckpointError(
                f"{config.init_from}: trained for the {trained_for!r} legend, "
                f"but the data use {legend.name!r}; train phase 1 on the "
                "same dataset"
            )
        return model_config
    model_config = model_config if model_config is not None else ModelConfig()
    return model_config.replace(num_classes=legend.num_classes, legend=legend.name)


def _is_twin(dataset: Dataset) -> bool | None:
    """Whether ``dataset`` is the synthetic twin (recorded for the model card); ``None``: unknown."""
    root = _data_root_of(dataset)
    return None if root is None else read_synthetic_info(root) is not None


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
