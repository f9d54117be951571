"""Model sizes: the one place where named model sizes are defined."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

# --------------------------------------------------------------------------------------------
# Presets used by the notebooks
# --------------------------------------------------------------------------------------------
#: Model sizes per notebook mode; "default" is sized for a 2-core CPU (see docs/design.md).
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"widths": [8, 16, 32, 64], "encoder_depths": [1, 1, 1, 1],
              "decoder_depths": [1, 1, 1, 1], "prompt_channels": 8, "prompt_components": 2,
              "pgf_hidden": 8, "seg_width": 16},
    "default": {"widths": [16, 32, 64, 96], "encoder_depths": [1, 1, 1, 1],
                "decoder_depths": [1, 1, 1, 1], "prompt_channels": 8, "prompt_components": 4,
                "pgf_hidden": 8, "seg_width": 32},
    "full": {},  # ModelConfig() defaults
}


def tiny_model_kwargs() -> dict[str, Any]:
    """ModelConfig fields of the smallest TDP-CR used for smoke runs and tests."""

    from tdpcr_lib.models import ModelConfig

    names = {f.name for f in fields(ModelConfig)}
    wanted = {"arch": "tdpcr", "fusion": "pgf", "with_seg_decoder": True,
              "widths": (8, 8, 16, 16), "encoder_depths": (1, 1, 1, 1),
              "decoder_depths": (1, 1, 1, 1), "prompt_channels": 4, "prompt_components": 2,
              "pgf_hidden": 4, "seg_width": 8, "name": "tiny (smoke runs and tests)"}
    return {k: v for k, v in wanted.items() if k in names}
