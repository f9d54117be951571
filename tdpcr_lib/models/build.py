"""One builder for every network: TDP-CR and the two comparison models."""

from __future__ import annotations

from typing import Any

from torch import nn

from tdpcr_lib.models.baselines import DSen2CR, MultiTaskUNet
from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.models.tdpcr import TDPCR


def build_model(config: ModelConfig | dict[str, Any]) -> nn.Module:
    """Build the network a config describes (``config`` may also be its ``to_dict()`` form).

    Every model takes ``forward(optical, sar)`` and returns a dict with at least
    ``reconstruction``; ``model.config`` is its (copied) :class:`ModelConfig`.
    """
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model expects a ModelConfig or dict, got {type(config).__name__}")
    if config.arch == "tdpcr":
        return TDPCR(config)
    if config.arch == "dsen2cr":
        return DSen2CR(config)
    return MultiTaskUNet(config)
