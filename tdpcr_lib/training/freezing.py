"""Phase-1/phase-2 trainable parameter sets, the optimiser and the learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from tdpcr_lib.models.checkpoint import unwrap_model
from tdpcr_lib.training.config import TrainConfig
from tdpcr_lib.training.phases import TRAINABLE_SETS


# --------------------------------------------------------------------------------------------
# Parameter groups and freezing
# --------------------------------------------------------------------------------------------
def apply_trainable_set(model: nn.Module, config: TrainConfig) -> list[str]:
    """Set ``requires_grad`` for the run; returns the names of the frozen module groups.

    Only phase 2 freezes anything; the groups come from ``model.module_groups()``.
    """
    model = unwrap_model(model)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    groups = TRAINABLE_SETS[config.trainable]
    if config.phase != "phase2" or groups is None:
        return []
    if not hasattr(model, "module_groups"):
        raise TypeError(
            f"trainable={config.trainable!r} needs a model with module_groups() (TDP-CR); got {type(model).__name__}"
        )
    module_groups = model.module_groups()
    missing = [g for g in groups if g not in module_groups]
    if missing:
        raise KeyError(f"model has no module groups {missing} (has {sorted(module_groups)})")
    frozen = [name for name in module_groups if name not in groups]
    for name in frozen:
        for parameter in module_groups[name].parameters():
            parameter.requires_grad_(False)
    for name in groups:  # a shared submodule listed in a trainable group stays trainable
        for parameter in module_groups[name].parameters():
            parameter.requires_grad_(True)
    return frozen


def parameter_report(model: nn.Module) -> dict[str, Any]:
    """Total and trainable parameter counts, overall and per module group.

    Returns
    -------
    dict
        ``{"total": int, "trainable": int, "trainable_fraction": float,
        "groups": {name: {"total": int, "trainable": int}}}`` (groups only for TDP-CR).
    """
    model = unwrap_model(model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    report: dict[str, Any] = {
        "total": total,
        "trainable": trainable,
        "trainable_fraction": trainable / total if total else 0.0,
        "groups": {},
    }
    if hasattr(model, "module_groups"):
        for name, module in model.module_groups().items():
            report["groups"][name] = {
                "total": sum(p.numel() for p in module.parameters()),
                "trainable": sum(p.numel() for p in module.parameters() if p.requires_grad),
            }
    return report


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; no weight decay on 0/1-D tensors (biases, norms)."""
    decay, no_decay = [], []
    for parameter in unwrap_model(model).parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    if not decay and not no_decay:
        raise ValueError("no trainable parameters (check TrainConfig.trainable)")
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, betas=(0.9, 0.999))


def lr_factor(step: int, total_steps: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based) of ``total_steps``."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "multistep":
        progress = step / max(total_steps, 1)
        return config.gamma ** sum(progress >= m for m in config.milestones)
    decay_steps = max(total_steps - config.warmup_steps, 1)
    progress = min(max(step - config.warmup_steps, 0) / decay_steps, 1.0)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
