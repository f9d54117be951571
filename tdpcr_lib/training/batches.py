"""Moving a training batch to the device (kept out of the trainer to keep it small)."""

from __future__ import annotations

from typing import Any

import torch


def batch_to_device(batch: dict[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    """The tensors of ``batch`` on ``device`` (4-D ones channels-last when asked)."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if channels_last and value.ndim == 4:
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out
