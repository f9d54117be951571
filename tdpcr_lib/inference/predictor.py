"""The model side of scene prediction: loading a predictor and running it on tile batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tdpcr_lib.core.bands import S2_BANDS
from tdpcr_lib.core.runtime import resolve_device
from tdpcr_lib.inference.engines import engine_model
from tdpcr_lib.inference.options import PRECISIONS
from tdpcr_lib.inference.tiling import forward
from tdpcr_lib.models.checkpoint import CheckpointError, resolve_checkpoint_dir


def load_predictor(
    checkpoint: str | Path | nn.Module, device: str | torch.device = "auto", engine: str = "torch"
) -> tuple[nn.Module, dict[str, Any]]:
    """The model to predict with: a checkpoint folder (loaded) or a module (used as is).

    ``engine`` (:data:`tdpcr_lib.inference.engines.ENGINES`) runs it with torch or through its
    cached ONNX export; ``meta["engine"]`` says which engine was chosen.

    Raises
    ------
    FileNotFoundError
        The checkpoint folder does not exist (the message says how to get one).
    tdpcr_lib.models.checkpoint.CheckpointError
        The folder exists but is not a readable tdpcr checkpoint.
    """
    device = resolve_device(device)
    if isinstance(checkpoint, nn.Module):
        model, _, chosen = engine_model(checkpoint, engine, device)
        return model, {"source": f"in-memory {type(checkpoint).__name__}", "engine": chosen}
    path = Path(checkpoint)
    try:
        resolve_checkpoint_dir(path)
    except CheckpointError as err:
        if not path.exists():
            raise FileNotFoundError(
                f"checkpoint {path} does not exist; train one first (notebooks 01_train_phase1 "
                "and 02_train_phase2 or `tdpcr train`, which write runs/phase2/best) or pass the "
                "folder of a trained checkpoint (it holds model.safetensors and config.json)"
            ) from err
        raise
    model, meta, chosen = engine_model(path, engine, device)
    meta["source"], meta["engine"] = str(path), chosen
    return model, meta


def prompt_map(prompts: Sequence[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Finest prompt level, averaged over channels, bilinearly upsampled: (B, h, w)."""
    finest = max(prompts, key=lambda p: p.shape[-2] * p.shape[-1])
    gate = finest.float().mean(dim=1, keepdim=True)
    if gate.shape[-2:] != (height, width):
        gate = F.interpolate(gate, size=(height, width), mode="bilinear", align_corners=False)
    return gate[:, 0]


def _to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """NumPy tile batch → tensor on ``device`` in channels_last (faster convolutions)."""
    tensor = torch.from_numpy(batch)
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    return tensor.contiguous(memory_format=torch.channels_last)


def autocast_dtype_for(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision``: ``"auto"`` is bf16 on CUDA and fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


@torch.inference_mode()
def predict_tile_batch(
    model: nn.Module, optical: np.ndarray, sar: np.ndarray, device: torch.device, precision: str = "auto"
) -> dict[str, Any]:
    """Run ``model`` on a ``(N, C, th, tw)`` NumPy tile batch; outputs as validated tensors.

    Tiles go in as ``channels_last``; ``precision="auto"`` runs bf16 autocast on CUDA and fp32
    on the CPU (``"bf16"`` forces autocast, also on a CPU with bf16 instructions; outputs are
    cast back to float32 before blending). Raises ``ValueError`` when the model does not
    return a ``reconstruction`` of the tile shape.
    """
    autocast_dtype = autocast_dtype_for(precision, device)
    out = forward(model, _to_device(optical, device), _to_device(sar, device), autocast_dtype)
    expected = (optical.shape[0], len(S2_BANDS), *optical.shape[-2:])
    rec = out.get("reconstruction") if isinstance(out, dict) else None
    if rec is None or tuple(rec.shape) != expected:
        raise ValueError(
            f"{type(model).__name__} must return a dict with 'reconstruction' of "
            f"shape {expected}, got {None if rec is None else tuple(rec.shape)}"
        )
    return out
