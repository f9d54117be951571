"""Model sizes: the one place where named model sizes are defined.

Each preset is a dict of :class:`tdpcr_lib.models.config.ModelConfig` size fields (no ``arch``),
so one name sizes every architecture. Everything else refers to them by name:
:meth:`ModelConfig.preset`, :meth:`ModelConfig.small`, :func:`tdpcr_lib.models.named_configs`,
the notebooks' modes (:func:`tdpcr_lib.training.presets.notebook_configs`) and the ablation
budget (``AblationBudget.model_size``).

This module imports nothing from the package, so :mod:`tdpcr_lib.models.config` can use it.
"""

from __future__ import annotations

from typing import Any

#: Named model sizes (``ModelConfig`` fields over its defaults).
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # The smallest TDP-CR, for scene-prediction tests and the notebooks' demo model.
    "tiny": {
        "widths": (8, 8, 16, 16),
        "encoder_depths": (1, 1, 1, 1),
        "decoder_depths": (1, 1, 1, 1),
        "prompt_channels": 4,
        "prompt_components": 2,
        "pgf_hidden": 4,
        "seg_width": 8,
    },
    # The same topology shrunk for tests and smoke runs (CPU, seconds), every architecture.
    "small": {
        "widths": (8, 16, 32, 64),
        "encoder_depths": (1, 1, 1, 1),
        "decoder_depths": (1, 1, 1, 1),
        "prompt_channels": 8,
        "prompt_components": 2,
        "pgf_hidden": 8,
        "seg_width": 16,
        "dsen2cr_features": 16,
        "dsen2cr_blocks": 2,
        "unet_widths": (8, 16, 32, 64, 128),
    },
    # Notebook modes; "default" is sized for a 2-core CPU (see docs/decisions.md).
    "smoke": {
        "widths": (8, 16, 32, 64),
        "encoder_depths": (1, 1, 1, 1),
        "decoder_depths": (1, 1, 1, 1),
        "prompt_channels": 8,
        "prompt_components": 2,
        "pgf_hidden": 8,
        "seg_width": 16,
    },
    "default": {
        "widths": (16, 32, 64, 96),
        "encoder_depths": (1, 1, 1, 1),
        "decoder_depths": (1, 1, 1, 1),
        "prompt_channels": 8,
        "prompt_components": 4,
        "pgf_hidden": 8,
        "seg_width": 32,
    },
    "full": {},  # ModelConfig() defaults: the paper's sizes
}


def preset_fields(name: str) -> dict[str, Any]:
    """A copy of the size fields of preset ``name`` (``KeyError`` naming the presets)."""
    if name not in MODEL_PRESETS:
        raise KeyError(f"unknown model size {name!r}; choose from {list(MODEL_PRESETS)}")
    return dict(MODEL_PRESETS[name])
