"""Reading one strip of a scene for prediction: optical and SAR on the model's scale, the validity
mask, reflection padding past the scene edge, and the unit check of what was read."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio.shutil  # noqa: F401 - kept as written; only ruff's preview F401 flags it
from rasterio.errors import RasterioError
from rasterio.windows import Window

from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.inference.inputs import PredictionInputError, SceneInputs, read_error_reason


def _reflect_pad(array: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Pad the last two axes at the bottom/right by reflection (edge copy if too small)."""
    if rows == 0 and cols == 0:
        return array
    h, w = array.shape[-2:]
    mode = "reflect" if rows < h and cols < w else "edge"
    pad = [(0, 0)] * (array.ndim - 2) + [(0, rows), (0, cols)]
    return np.pad(array, pad, mode=mode)


def _read_window(src: Any, path: Path, role: str, window: Window, **kwargs: Any) -> np.ndarray:
    """``src.read`` whose failure (a truncated or corrupt file met mid-scene) names the file."""
    try:
        return src.read(window=window, **kwargs)
    except RasterioError as err:
        raise PredictionInputError(
            f"{role} file {path} cannot be read at rows "
            f"{window.row_off}-{window.row_off + window.height} "
            f"(truncated or corrupt?): {read_error_reason(err)}"
        ) from err


def read_strip(
    inputs: SceneInputs, y0: int, height: int, canvas_width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``[y0, y0 + height)``: optical and SAR in [0, 1] and the validity mask.

    Rows/columns past the scene edge (up to ``canvas_width``) are filled by reflection for the
    network inputs and marked invalid in the mask.
    """
    norm = load_normalisation()
    rows = min(height, inputs.s2.height - y0)
    window = Window(0, y0, inputs.s2.width, rows)
    raw = _read_window(inputs.s2, inputs.s2_path, "Sentinel-2", window)
    if np.issubdtype(raw.dtype, np.floating):
        finite = np.isfinite(raw).all(axis=0)
    else:
        finite = np.ones(raw.shape[1:], dtype=bool)
    valid = finite & ~(raw == inputs.s2_nodata).all(axis=0)
    if inputs.s2_shift:  # into the model's offset convention (inference.offset)
        raw = raw.astype(np.float32) + np.float32(inputs.s2_shift)
    optical = norm.s2_to_unit(raw)
    optical[:, ~valid] = 0.0
    s1 = _read_window(inputs.s1, inputs.s1_path, "Sentinel-1", window, out_dtype="float32")
    if not inputs.s1_resampled and inputs.s1.nodata is not None and not np.isnan(inputs.s1.nodata):
        s1[s1 == inputs.s1.nodata] = np.nan
    sar = norm.s1_to_unit(s1)
    pad_rows, pad_cols = height - rows, canvas_width - inputs.s2.width
    valid = np.pad(valid, [(0, pad_rows), (0, pad_cols)], constant_values=False)
    return _reflect_pad(optical, pad_rows, pad_cols), _reflect_pad(sar, pad_rows, pad_cols), valid


def warn_if_units_look_wrong(optical: np.ndarray, s2_path: Path, valid: np.ndarray) -> None:
    # Reflectance in [0, 1] divided by 10000 is <= 1e-4 everywhere: almost surely wrong units.
    if valid.any() and float(optical[:, valid].max()) <= 2e-4:
        warnings.warn(
            f"Sentinel-2 file {s2_path} looks like reflectance in [0, 1]; tdpcr "
            "expects L1C digital numbers (reflectance x 10000)",
            stacklevel=3,
        )
