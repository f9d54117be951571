"""The one pad-aligned tiler and blender used by evaluation and scene prediction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

#: Smallest blending weight, so that every covered pixel has a strictly positive total weight.
WEIGHT_FLOOR = 1e-3


# --------------------------------------------------------------------------------------------
# Tiling and blending
# --------------------------------------------------------------------------------------------
def tile_stride(tile: int, overlap: int, align: int = 1) -> int:
    """Distance between tile origins: ``tile - overlap`` rounded down to a multiple of ``align``.

    Rounding keeps every origin on the model's downsampling grid (a network that pools by 2**k
    is only shift-equivariant for shifts that are multiples of 2**k), at the cost of an effective
    overlap ``tile - stride`` that may exceed the requested one.
    """
    return max(align, (tile - overlap) // align * align)


def tile_origins(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles along one axis of ``length`` px.

    Tiles are ``min(tile, length)`` long and start every :func:`tile_stride` px, all on
    multiples of ``align``. The last tile is the first origin (rounded up to ``align``) that
    reaches the end; it may stick out past ``length`` by less than ``align`` px, which the
    caller fills by reflection (as the model itself pads to a multiple of ``align``).

    Examples
    --------
    >>> tile_origins(700, 256, 64)
    [0, 192, 384, 444]
    >>> tile_origins(700, 256, 64, align=16)
    [0, 192, 384, 448]
    >>> tile_origins(100, 256, 64)
    [0]
    """
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    size = min(tile, length)
    if size == length:
        return [0]
    stride = tile_stride(tile, overlap, align)
    last = -(-(length - size) // align) * align
    origins = list(range(0, last, stride))
    if not origins or origins[-1] != last:
        origins.append(last)
    return origins


def blend_window(size: int, overlap: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    """One axis of the blending window: 1, with ``sin²`` ramps of ``overlap`` px at tapered ends.

    The ramp values ``sin²(π/2 · (i + ½) / overlap)`` and their mirror add up to exactly 1, so two
    neighbouring tiles that overlap by ``overlap`` px cross-fade with weights summing to 1. Values
    are floored at :data:`WEIGHT_FLOOR`.
    """
    weights = np.ones(size, dtype=np.float64)
    ramp_len = min(overlap, size)
    if ramp_len > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / ramp_len) ** 2
        if taper_start:
            weights[:ramp_len] = np.minimum(weights[:ramp_len], ramp)
        if taper_end:
            weights[size - ramp_len:] = np.minimum(weights[size - ramp_len:], ramp[::-1])
    return np.maximum(weights, WEIGHT_FLOOR).astype(np.float32)


def _axis_windows(origins: Sequence[int], size: int, overlap: int) -> list[np.ndarray]:
    last = len(origins) - 1
    return [blend_window(size, overlap, taper_start=i > 0, taper_end=i < last)
            for i in range(len(origins))]


def _forward(model: nn.Module, optical: torch.Tensor, sar: torch.Tensor,
             autocast_dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    with torch.autocast(optical.device.type, dtype=autocast_dtype or torch.float32,
                        enabled=autocast_dtype is not None):
        return model(optical, sar)


@torch.inference_mode()
def sliding_window_predict(model: nn.Module, optical: torch.Tensor, sar: torch.Tensor,
                           tile: int | None, overlap: int | None = None,
                           autocast_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Predict whole images, tile by tile with overlap and blending when they exceed ``tile``.

    Parameters
    ----------
    model
        Returns a dict with ``reconstruction`` and optionally ``segmentation`` logits.
    optical, sar
        ``(B, 13, H, W)`` and ``(B, 2, H, W)`` on the model's device.
    tile
        Tile size in px; ``None`` (or images no larger than it) → a single forward pass.
    overlap
        Overlap between neighbouring tiles (default ``tile // 4``).
    autocast_dtype
        e.g. ``torch.bfloat16`` on a GPU.

    Returns
    -------
    dict
        ``reconstruction`` ``(B, 13, H, W)`` float32 and, for segmenting models,
        ``segmentation`` ``(B, K, H, W)`` log-probabilities (argmax = predicted class).
    """
    from tdpcr_lib.inference.tiling import blend_window, tile_origins

    height, width = optical.shape[-2:]
    if tile is None or (height <= tile and width <= tile):
        out = _forward(model, optical, sar, autocast_dtype)
        result = {"reconstruction": out["reconstruction"].float()}
        if out.get("segmentation") is not None:
            result["segmentation"] = out["segmentation"].float()
        return result
    overlap = tile // 4 if overlap is None else int(overlap)
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    ys, xs = tile_origins(height, tile, overlap), tile_origins(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    device = optical.device
    rec_sum = torch.zeros(optical.shape[0], 0, height, width, device=device)
    seg_sum: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, height, width, device=device)
    for i, y0 in enumerate(ys):
        wy = torch.from_numpy(blend_window(th, overlap, i > 0, i < len(ys) - 1)).to(device)
        for j, x0 in enumerate(xs):
            wx = torch.from_numpy(blend_window(tw, overlap, j > 0, j < len(xs) - 1)).to(device)
            weight = (wy[:, None] * wx[None, :])[None, None]
            window = (..., slice(y0, y0 + th), slice(x0, x0 + tw))
            out = _forward(model, optical[window], sar[window], autocast_dtype)
            rec = out["reconstruction"].float()
            if rec_sum.shape[1] == 0:
                rec_sum = torch.zeros(optical.shape[0], rec.shape[1], height, width,
                                      device=device)
            rec_sum[window] += rec * weight
            if out.get("segmentation") is not None:
                probs = torch.softmax(out["segmentation"].float(), dim=1)
                if seg_sum is None:
                    seg_sum = torch.zeros(optical.shape[0], probs.shape[1], height, width,
                                          device=device)
                seg_sum[window] += probs * weight
            weight_sum[window] += weight
    result = {"reconstruction": rec_sum / weight_sum}
    if seg_sum is not None:
        result["segmentation"] = torch.log((seg_sum / weight_sum).clamp_min(1e-12))
    return result
