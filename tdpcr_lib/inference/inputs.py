"""Opening and checking a user's Sentinel-1/-2 GeoTIFF scene, strip by strip."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil  # noqa: F401 - kept as written; only ruff's preview F401 flags it
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.normalisation import load_normalisation


class PredictionInputError(ValueError):
    """An input scene cannot be used (unreadable, wrong bands, no CRS, no overlap, ...)."""


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def is_dataarray(obj: Any) -> bool:
    try:  # lazy: importing xarray costs ~0.5 s and only DataArray inputs need it
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        return False
    return isinstance(obj, xr.DataArray)


def materialise(obj: Any, role: str, scratch: Path) -> Path:
    """A path for ``obj``: the path itself, or a DataArray written to a scratch GeoTIFF."""
    if is_dataarray(obj):
        if obj.rio.crs is None:
            raise PredictionInputError(f"{role} DataArray has no CRS; set one with da.rio.write_crs(...) first")
        if obj.ndim != 3:
            raise PredictionInputError(f"{role} DataArray must have dims (band, y, x), got dims {obj.dims}")
        path = scratch / f"{role}.tif"
        obj.rio.to_raster(path)
        return path
    path = Path(obj)
    if not path.exists():
        raise FileNotFoundError(f"{role} file {path} does not exist")
    if not path.is_file():
        raise PredictionInputError(f"{role} {path} is not a file")
    return path


def _open(path: Path, role: str) -> rasterio.DatasetReader:
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise PredictionInputError(f"{role} file {path} cannot be read as a raster: {err}") from err


def _check(src: rasterio.DatasetReader, path: Path, role: str, bands: Sequence[str]) -> None:
    if src.count != len(bands):
        raise PredictionInputError(
            f"{role} file {path} has {src.count} band(s); expected {len(bands)} ({', '.join(bands)})"
        )
    if src.crs is None:
        raise PredictionInputError(
            f"{role} file {path} has no CRS (coordinate reference system); georeference it "
            "(e.g. gdal_edit.py -a_srs EPSG:...) so it can be placed on the Sentinel-2 grid"
        )


#: Data types accepted per input (as the dataset loader, :mod:`tdpcr_lib.datasets.luojiaset.layout`, plus
#: float64): S2 holds L1C digital numbers, S1 backscatter in dB, which integers cannot carry.
S2_DTYPES: tuple[str, ...] = ("uint16", "float32", "float64")
S1_DTYPES: tuple[str, ...] = ("float32", "float64")


#: Side (px) of the decimated read that checks the S2 content before any prediction (small, so
#: the check adds no memory that grows with the scene).
CONTENT_SAMPLE_PX = 256


def _reason(err: BaseException) -> str:
    # rasterio's read error says only "Read failed. See previous exception"; GDAL's cause is useful
    return " ".join(str(err.__cause__ or err).split())


def _check_dtype(src: rasterio.DatasetReader, path: Path, role: str, allowed: Sequence[str], expected: str) -> None:
    dtypes = sorted(set(src.dtypes))
    if any(d not in allowed for d in dtypes):
        raise PredictionInputError(
            f"{role} file {path} has data type {'/'.join(dtypes)}; expected {' or '.join(allowed)} ({expected})"
        )


def _valid_pixels(raw: np.ndarray, nodata: float) -> np.ndarray:
    """(H, W) mask of S2 pixels with data: finite in every band and not nodata in all bands."""
    finite = np.isfinite(raw).all(axis=0) if raw.dtype.kind == "f" else True
    return finite & ~(raw == nodata).all(axis=0)


def _s2_read(src: rasterio.DatasetReader, path: Path, **kwargs: Any) -> np.ndarray:
    try:
        return src.read(**kwargs)
    except RasterioError as err:
        raise PredictionInputError(
            f"Sentinel-2 file {path} cannot be read (truncated or corrupt?): {_reason(err)}"
        ) from err


def _has_valid_pixel(src: rasterio.DatasetReader, path: Path, nodata: float) -> bool:
    # Full-resolution scan, 64 rows at a time, stopping at the first valid pixel: only run when
    # the decimated sample found none, so a normal scene never pays for it.
    for y0 in range(0, src.height, 64):
        window = Window(0, y0, src.width, min(64, src.height - y0))
        if _valid_pixels(_s2_read(src, path, window=window), nodata).any():
            return True
    return False


def _check_s2_content(src: rasterio.DatasetReader, path: Path, nodata: float) -> None:
    """Refuse an S2 scene without a single usable pixel; warn on implausible values.

    A decimated read (at most :data:`CONTENT_SAMPLE_PX` px a side, nearest neighbour) keeps this
    cheap for a full 10980 px scene; it also meets a truncated file before the model is loaded.
    """
    height, width = min(src.height, CONTENT_SAMPLE_PX), min(src.width, CONTENT_SAMPLE_PX)
    sample = _s2_read(src, path, out_shape=(src.count, height, width), resampling=Resampling.nearest)
    valid = _valid_pixels(sample, nodata)
    if not valid.any() and not _has_valid_pixel(src, path, nodata):
        raise PredictionInputError(
            f"Sentinel-2 file {path} holds no valid pixel: every pixel is nodata ({nodata:g} in "
            "all 13 bands) or NaN/inf; nothing to predict"
        )
    values = sample[:, valid]
    if values.size and not values.any():
        raise PredictionInputError(
            f"Sentinel-2 file {path} is zero in every band of every valid pixel; nothing to predict"
        )
    if values.size and float(values.min()) < 0:
        warnings.warn(
            f"Sentinel-2 file {path} has negative values (min {values.min():g}); "
            "L1C digital numbers are >= 0, negative ones are clipped to 0",
            stacklevel=3,
        )
    clip_max = load_normalisation().s2_clip[1]
    if values.size and float(np.mean(values.max(axis=0) > clip_max)) > 0.5:
        warnings.warn(
            f"Sentinel-2 file {path}: most valid pixels exceed {clip_max:g} DN in some "
            f"band (max {values.max():g}); expected L1C digital numbers (reflectance "
            "x 10000)",
            stacklevel=3,
        )


@dataclass
class SceneInputs:
    """Open handles on a scene pair, with S1 already on the S2 grid.

    Attributes
    ----------
    s2 : rasterio dataset
        The cloudy Sentinel-2 scene (defines the output grid).
    s1 : rasterio dataset or WarpedVRT
        Sentinel-1 on the S2 grid (float32, NaN outside its footprint/nodata).
    s2_nodata : float
        The S2 value meaning "no data" (declared nodata, else 0).
    s1_coverage : float
        Fraction of the S2 footprint inside the S1 footprint (from the bounds).
    s1_resampled : bool
        Whether S1 had to be warped onto the S2 grid.
    """

    s2: Any
    s1: Any
    s2_path: Path
    s1_path: Path
    s2_nodata: float
    s1_coverage: float
    s1_resampled: bool
    _stack: contextlib.ExitStack = field(repr=False, default_factory=contextlib.ExitStack)

    @property
    def shape(self) -> tuple[int, int]:
        return self.s2.height, self.s2.width

    def close(self) -> None:
        self._stack.close()


def _same_grid(a: Any, b: Any) -> bool:
    return (
        a.crs == b.crs
        and a.width == b.width
        and a.height == b.height
        and a.transform.almost_equals(b.transform, precision=1e-9)
    )


def open_scene_inputs(s2_path: str | Path, s1_path: str | Path) -> SceneInputs:
    """Open and validate a scene pair; call ``.close()`` (or use :func:`scene_inputs`) after.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    PredictionInputError
        A file cannot be read, has the wrong number of bands or data type, has no CRS, holds no
        valid Sentinel-2 pixel, or the two footprints do not overlap. Messages name the file.
    """
    s2_path, s1_path = Path(s2_path), Path(s1_path)
    for role, path in (("Sentinel-2", s2_path), ("Sentinel-1", s1_path)):
        if not path.exists():
            raise FileNotFoundError(f"{role} file {path} does not exist")
    stack = contextlib.ExitStack()
    try:
        s2 = stack.enter_context(_open(s2_path, "Sentinel-2"))
        _check(s2, s2_path, "Sentinel-2", S2_BANDS)
        _check_dtype(s2, s2_path, "Sentinel-2", S2_DTYPES, "L1C digital numbers")
        nodata = s2.nodata if s2.nodata is not None else 0.0
        _check_s2_content(s2, s2_path, float(nodata))
        s1 = stack.enter_context(_open(s1_path, "Sentinel-1"))
        _check(s1, s1_path, "Sentinel-1", S1_BANDS)
        _check_dtype(s1, s1_path, "Sentinel-1", S1_DTYPES, "backscatter in dB")

        left, bottom, right, top = transform_bounds(s1.crs, s2.crs, *s1.bounds, densify_pts=21)
        s2b = s2.bounds
        ix = max(0.0, min(right, s2b.right) - max(left, s2b.left))
        iy = max(0.0, min(top, s2b.top) - max(bottom, s2b.bottom))
        if ix * iy <= 0.0:
            raise PredictionInputError(
                f"Sentinel-1 file {s1_path} does not overlap Sentinel-2 file {s2_path}: in "
                f"{s2.crs} the S1 bounds are ({left:.1f}, {bottom:.1f}, {right:.1f}, {top:.1f}) "
                f"and the S2 bounds are ({s2b.left:.1f}, {s2b.bottom:.1f}, {s2b.right:.1f}, "
                f"{s2b.top:.1f})"
            )
        coverage = (ix * iy) / ((s2b.right - s2b.left) * (s2b.top - s2b.bottom))
        if coverage < 0.999:
            warnings.warn(
                f"Sentinel-1 file {s1_path} covers only {coverage:.1%} of the "
                f"Sentinel-2 scene; pixels without SAR are predicted from optical "
                "data alone (SAR set to the normalisation's non-finite value)",
                stacklevel=2,
            )

        resampled = not _same_grid(s1, s2)
        s1_grid: Any = s1
        if resampled:
            s1_grid = stack.enter_context(
                WarpedVRT(
                    s1,
                    crs=s2.crs,
                    transform=s2.transform,
                    width=s2.width,
                    height=s2.height,
                    resampling=Resampling.bilinear,
                    dtype="float32",
                    nodata=float("nan"),
                )
            )
        return SceneInputs(
            s2=s2,
            s1=s1_grid,
            s2_path=s2_path,
            s1_path=s1_path,
            s2_nodata=float(nodata),
            s1_coverage=float(min(coverage, 1.0)),
            s1_resampled=resampled,
            _stack=stack,
        )
    except BaseException:
        stack.close()
        raise


@contextlib.contextmanager
def scene_inputs(s2_path: str | Path, s1_path: str | Path) -> Iterator[SceneInputs]:
    """Context-manager form of :func:`open_scene_inputs`."""
    inputs = open_scene_inputs(s2_path, s1_path)
    try:
        yield inputs
    finally:
        inputs.close()


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
            f"(truncated or corrupt?): {_reason(err)}"
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


def describe_scene(s2_cloudy: str | Path, s1: str | Path) -> dict[str, Any]:
    """Grid facts of a scene pair (validated as :func:`predict_scene` would), for display."""
    with scene_inputs(s2_cloudy, s1) as inputs, rasterio.open(s1) as raw_s1:
        return {
            "s2": str(s2_cloudy),
            "s1": str(s1),
            "size (rows x cols)": inputs.shape,
            "crs": str(inputs.s2.crs),
            "s2 pixel size (m)": inputs.s2.res,
            "s1 pixel size (m)": raw_s1.res,
            "s1 crs": str(raw_s1.crs),
            "s1 resampled onto the s2 grid": inputs.s1_resampled,
            "s1 coverage of the s2 footprint": round(inputs.s1_coverage, 4),
            "s2 nodata value": inputs.s2_nodata,
        }
