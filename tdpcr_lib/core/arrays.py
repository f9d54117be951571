"""Array helpers shared by the transforms and the figures: crop windows and display stretches.

Everything takes NumPy arrays or torch tensors with the spatial axes last (``(..., H, W)``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class Window(NamedTuple):
    """A zoom/crop window in tile pixels: top-left ``row``, ``col`` and its ``height``, ``width``."""

    row: int
    col: int
    height: int
    width: int

    @classmethod
    def centred(cls, centre_row: float, centre_col: float, size: int, shape: tuple[int, int]) -> Window:
        """A ``size``×``size`` window centred on a point, shifted to stay inside ``shape``."""
        height, width = shape
        size = int(max(1, min(size, height, width)))
        row = int(round(centre_row - size / 2))
        col = int(round(centre_col - size / 2))
        return cls(min(max(row, 0), height - size), min(max(col, 0), width - size), size, size)

    def clip(self, shape: tuple[int, int]) -> Window:
        """The part of the window inside an image of ``shape``; an empty overlap is an error."""
        height, width = shape
        row0, col0 = max(self.row, 0), max(self.col, 0)
        row1, col1 = min(self.row + self.height, height), min(self.col + self.width, width)
        if row1 <= row0 or col1 <= col0:
            raise ValueError(f"window {tuple(self)} does not overlap an image of shape {shape}")
        return Window(row0, col0, row1 - row0, col1 - col0)


def to_numpy(x: Any) -> np.ndarray:
    """Tensor or array → NumPy, dropping a leading batch dimension of 1 and any autograd graph."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    arr = np.asarray(x)
    return arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr


def spatial_shape(x: Any) -> tuple[int, int]:
    """The last two (height, width) dimensions of a tensor or array."""
    arr = to_numpy(x)
    return int(arr.shape[-2]), int(arr.shape[-1])


def crop(array: np.ndarray, window: Window | None) -> np.ndarray:
    """Crop the last two (spatial) axes of ``array`` to ``window`` (``None`` → unchanged).

    For channels-last RGB images ``(H, W, 3)`` use :func:`crop_rgb`.
    """
    if window is None:
        return array
    w = Window(*window).clip(array.shape[-2:])
    return array[..., w.row : w.row + w.height, w.col : w.col + w.width]


def crop_rgb(image: np.ndarray, window: Window | None) -> np.ndarray:
    """Crop a channels-last image ``(H, W, 3)`` to ``window``."""
    if window is None:
        return image
    w = Window(*window).clip(image.shape[:2])
    return image[w.row : w.row + w.height, w.col : w.col + w.width]


def percentile_stretch(
    image: np.ndarray,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    percentiles: tuple[float, float] = (2.0, 98.0),
) -> np.ndarray:
    """Per-channel linear stretch of (C, H, W) to [0, 1] → (H, W, C).

    ``lo``/``hi`` default to the channel percentiles of ``image``; pass the target's limits to
    show cloudy, clear and reconstructed images on the same scale.
    """
    image = np.nan_to_num(np.asarray(image, dtype=np.float32))
    if lo is None or hi is None:
        lo, hi = stretch_limits(image, percentiles)
    out = (image - lo[:, None, None]) / np.maximum(hi - lo, 1e-6)[:, None, None]
    return np.clip(out, 0, 1).transpose(1, 2, 0)


def stretch_limits(
    image: np.ndarray, percentiles: tuple[float, float] = (2.0, 98.0), common: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile limits of a (C, H, W) image, one ``(lo, hi)`` per channel.

    Parameters
    ----------
    image : ndarray
        ``(C, H, W)``.
    percentiles : (float, float)
        Lower and upper percentile.
    common : bool
        ``False``: each channel's own percentiles (maximum contrast, but a channel with a
        narrow range — the blue band of a clear scene — gets a large gain, so a small excess
        in it saturates as a strong colour). ``True``: one ``lo``/``hi`` for every channel —
        the lower percentile of each pixel's darkest channel and the upper percentile of its
        brightest — so all channels share one gain and offset, relative band differences keep
        their physical size (a 0.02 blue excess stays a faint tint) and clouds stay white.
    """
    arr = np.nan_to_num(np.asarray(image, dtype=np.float32))
    if common:
        lo = np.percentile(arr.min(axis=0), percentiles[0])
        hi = np.percentile(arr.max(axis=0), percentiles[1])
        return np.full(arr.shape[0], lo, np.float32), np.full(arr.shape[0], hi, np.float32)
    lo, hi = np.percentile(arr.reshape(arr.shape[0], -1), percentiles, axis=1)
    return lo, hi


def nan_if_none(value: Any) -> float:
    """``value`` as a float, NaN for None (a metric that was not measured)."""
    return float("nan") if value is None else float(value)
