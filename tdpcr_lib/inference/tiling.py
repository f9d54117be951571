"""The one pad-aligned tiler and blender, used by evaluation and by scene prediction.

Design choices (the paper describes no tiled inference; these are ours, see ``docs/decisions.md``,
section "Scene prediction"):

* **Tiling.** Tiles of ``tile`` px (clipped to the image) start every ``tile - overlap`` px,
  rounded so every origin is a multiple of the model's ``pad_multiple`` (a network that
  downsamples by 2**k is only shift-equivariant for such shifts; unaligned tiles differed by
  hundreds of DN). The last tile may stick out past the image by less than ``pad_multiple`` px,
  filled by reflection exactly like the model's own padding. Any image size works and every tile
  has the same shape (they batch). Default ``overlap = tile // 4``.
* **Blending.** Each tile's output is weighted by a separable flat-top window: 1 inside, a
  ``sin²`` ramp at every edge that borders another tile (never at the image edge), floored at
  :data:`WEIGHT_FLOOR`. Two facing ramps add up to exactly 1, and all outputs are divided by the
  accumulated weight, so the blend is a convex combination with smoothly varying coefficients:
  no seams, and a model that is a per-pixel function gives identical tiled and untiled results.
  Segmentation is blended as softmax *probabilities* (scale-free, unlike logits), then
  arg-maxed.

:class:`TileGrid` is the plan (origins, tile shape, blending windows) both callers share;
:func:`sliding_window_predict` runs it on in-memory tensors (evaluation), and
:func:`tdpcr_lib.inference.scene.predict_scene` runs it strip by strip on a raster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tdpcr_lib.inference.options import check_tiling

#: Smallest blending weight, so that every covered pixel has a strictly positive total weight.
WEIGHT_FLOOR = 1e-3


# --------------------------------------------------------------------------------------------
# Tile origins and blending windows
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
            weights[size - ramp_len :] = np.minimum(weights[size - ramp_len :], ramp[::-1])
    return np.maximum(weights, WEIGHT_FLOOR).astype(np.float32)


def _axis_windows(origins: Sequence[int], size: int, overlap: int) -> list[np.ndarray]:
    last = len(origins) - 1
    return [blend_window(size, overlap, taper_start=i > 0, taper_end=i < last) for i in range(len(origins))]


@dataclass(frozen=True)
class TileGrid:
    """The tiles covering a ``height × width`` image and their blending windows.

    Build it with :meth:`plan`. Tile ``(r, c)`` covers rows ``ys[r] : ys[r] + th`` and columns
    ``xs[c] : xs[c] + tw`` of the *canvas* (the image reflect-padded at the bottom/right to
    ``canvas_height × canvas_width``, less than ``align`` px larger) and is weighted by
    :meth:`weight`.
    """

    height: int
    width: int
    tile: int
    overlap: int
    align: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    row_windows: tuple[np.ndarray, ...]
    col_windows: tuple[np.ndarray, ...]

    @classmethod
    def plan(cls, height: int, width: int, tile: int, overlap: int | None = None, align: int = 1) -> TileGrid:
        """The pad-aligned grid of ``tile``-px tiles (``overlap`` default ``tile // 4``).

        ``align`` is the model's ``pad_multiple`` (see :func:`model_alignment`).
        """
        overlap = check_tiling(tile, overlap)
        align = max(1, int(align))
        ys = tile_origins(height, tile, overlap, align)
        xs = tile_origins(width, tile, overlap, align)
        th, tw = min(tile, height), min(tile, width)
        # The ramps span the *effective* overlap of regular neighbours, which alignment may widen.
        ramp = tile - tile_stride(tile, overlap, align)
        return cls(
            height,
            width,
            tile,
            overlap,
            align,
            tuple(ys),
            tuple(xs),
            tuple(_axis_windows(ys, th, ramp)),
            tuple(_axis_windows(xs, tw, ramp)),
        )

    @property
    def th(self) -> int:
        """Tile height (the tile size clipped to the image)."""
        return min(self.tile, self.height)

    @property
    def tw(self) -> int:
        """Tile width."""
        return min(self.tile, self.width)

    @property
    def canvas_height(self) -> int:
        return self.ys[-1] + self.th

    @property
    def canvas_width(self) -> int:
        return self.xs[-1] + self.tw

    @property
    def n_tiles(self) -> int:
        return len(self.ys) * len(self.xs)

    def weight(self, row: int, col: int) -> np.ndarray:
        """The ``(th, tw)`` blending weight of tile ``(row, col)``."""
        return self.row_windows[row][:, None] * self.col_windows[col][None, :]


def model_alignment(model: nn.Module) -> int:
    """The model's ``pad_multiple`` (1 for a model without one): tile origins snap to it."""
    return int(getattr(model, "pad_multiple", 1))


def reflect_pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad the last two axes at the bottom/right to ``height × width`` by reflection.

    The same filling as the model's own padding (edge copy when the image is too small).
    """
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


# --------------------------------------------------------------------------------------------
# Running a model over the grid
# --------------------------------------------------------------------------------------------
def forward(
    model: nn.Module, optical: torch.Tensor, sar: torch.Tensor, autocast_dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """``model(optical, sar)`` under autocast (``autocast_dtype``, e.g. bf16 on a GPU)."""
    with torch.autocast(optical.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        return model(optical, sar)


@torch.inference_mode()
def sliding_window_predict(
    model: nn.Module,
    optical: torch.Tensor,
    sar: torch.Tensor,
    tile: int | None,
    overlap: int | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Predict whole images, tile by tile on the pad-aligned :class:`TileGrid`, blended.

    Parameters
    ----------
    model
        Returns a dict with ``reconstruction`` and optionally ``segmentation`` logits; its
        ``pad_multiple`` (if any) aligns the tile origins.
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
    height, width = optical.shape[-2:]
    if tile is None or (height <= tile and width <= tile):
        out = forward(model, optical, sar, autocast_dtype)
        result = {"reconstruction": out["reconstruction"].float()}
        if out.get("segmentation") is not None:
            result["segmentation"] = out["segmentation"].float()
        return result
    grid = TileGrid.plan(height, width, tile, overlap, model_alignment(model))
    optical = reflect_pad_to(optical, grid.canvas_height, grid.canvas_width)
    sar = reflect_pad_to(sar, grid.canvas_height, grid.canvas_width)
    canvas = (optical.shape[0], grid.canvas_height, grid.canvas_width)
    device = optical.device
    rec_sum: torch.Tensor | None = None
    seg_sum: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, *canvas[1:], device=device)
    for r, y0 in enumerate(grid.ys):
        for c, x0 in enumerate(grid.xs):
            weight = torch.from_numpy(grid.weight(r, c)).to(device)[None, None]
            window = (..., slice(y0, y0 + grid.th), slice(x0, x0 + grid.tw))
            out = forward(model, optical[window], sar[window], autocast_dtype)
            rec = out["reconstruction"].float()
            if rec_sum is None:
                rec_sum = torch.zeros(canvas[0], rec.shape[1], *canvas[1:], device=device)
            rec_sum[window] += rec * weight
            if out.get("segmentation") is not None:
                probs = torch.softmax(out["segmentation"].float(), dim=1)
                if seg_sum is None:
                    seg_sum = torch.zeros(canvas[0], probs.shape[1], *canvas[1:], device=device)
                seg_sum[window] += probs * weight
            weight_sum[window] += weight
    assert rec_sum is not None  # the grid has at least one tile
    crop = (..., slice(0, height), slice(0, width))
    result = {"reconstruction": (rec_sum / weight_sum)[crop]}
    if seg_sum is not None:
        result["segmentation"] = torch.log((seg_sum / weight_sum).clamp_min(1e-12))[crop]
    return result
