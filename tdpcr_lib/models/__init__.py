"""TDP-CR and the comparison models behind one config object and one builder.

>>> from tdpcr_lib.models import ModelConfig, build_model
>>> model = build_model(ModelConfig(arch="tdpcr", fusion="pgf", with_seg_decoder=True))
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .config import ARCHES, FUSIONS, ModelConfig, ModelConfigError, named_configs
from .tdpcr import TDPCR

__all__ = ["ARCHES", "FUSIONS", "ModelConfig", "ModelConfigError", "TDPCR", "build_model",
           "named_configs"]


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
    from .. import baselines  # lazy: baselines import this package's config

    if config.arch == "dsen2cr":
        return baselines.DSen2CR(config)
    return baselines.MultiTaskUNet(config)
