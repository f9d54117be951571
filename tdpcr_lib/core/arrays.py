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
    def centred(cls, centre_row: float, centre_col: float, size: int,
                shape: tuple[int, int]) -> Window:
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
    return array[..., w.row:w.row + w.height, w.col:w.col + w.width]


def crop_rgb(image: np.ndarray, window: Window | None) -> np.ndarray:
    """Crop a channels-last image ``(H, W, 3)`` to ``window``."""
    if window is None:
        return image
    w = Window(*window).clip(image.shape[:2])
    return image[w.row:w.row + w.height, w.col:w.col + w.width]


def percentile_stretch(image: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None,
                       percentiles: tuple[float, float] = (2.0, 98.0)) -> np.ndarray:
    """Per-channel linear stretch of (C, H, W) to [0, 1] → (H, W, C).

    ``lo``/``hi`` default to the channel percentiles of ``image``; pass the target's limits to
    show cloudy, clear and reconstructed images on the same scale.
    """
    image = np.nan_to_num(np.asarray(image, dtype=np.float32))
    if lo is None or hi is None:
        lo, hi = stretch_limits(image, percentiles)
    out = (image - lo[:, None, None]) / np.maximum(hi - lo, 1e-6)[:, None, None]
    return np.clip(out, 0, 1).transpose(1, 2, 0)


def stretch_limits(image: np.ndarray, percentiles: tuple[float, float] = (2.0, 98.0)
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel percentile limits of a (C, H, W) image."""
    flat = np.nan_to_num(np.asarray(image, dtype=np.float32)).reshape(image.shape[0], -1)
    lo, hi = np.percentile(flat, percentiles, axis=1)
    return lo, hi
