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
from tdpcr_lib.inference.offset import offset_from_content


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


#: The S2 content check reads CONTENT_SAMPLE_GRID² windows of CONTENT_SAMPLE_PX px a side spread
#: evenly over the scene: it decompresses only the blocks under them, whatever the scene's size.
#: (The decimated read it replaces touched every block of the file: ~1800 a band on a 10980²
#: scene with 256-px blocks, against at most 4 per window here.)
CONTENT_SAMPLE_PX = 32
CONTENT_SAMPLE_GRID = 4


def read_error_reason(err: BaseException) -> str:
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
            f"Sentinel-2 file {path} cannot be read (truncated or corrupt?): {read_error_reason(err)}"
        ) from err


def _has_valid_pixel(src: rasterio.DatasetReader, path: Path, nodata: float) -> bool:
    # Full-resolution scan, 64 rows at a time, stopping at the first valid pixel: only run when
    # the decimated sample found none, so a normal scene never pays for it.
    for y0 in range(0, src.height, 64):
        window = Window(0, y0, src.width, min(64, src.height - y0))
        if _valid_pixels(_s2_read(src, path, window=window), nodata).any():
            return True
    return False


def _s1_finite_fraction(s1: Any, path: Path, warn: bool = True) -> float:
    """Fraction of the S2 grid where Sentinel-1 has finite values (decimated read), with a
    warning when SAR is missing: a footprint that overlaps can still hold only NaN/nodata."""
    scale = max(1, -(-max(s1.height, s1.width) // CONTENT_SAMPLE_PX))
    shape = (s1.count, max(1, s1.height // scale), max(1, s1.width // scale))
    try:
        sample = s1.read(out_shape=shape, masked=True)
    except RasterioError:
        return 1.0  # unreadable parts are reported where the prediction reads them
    data = np.ma.filled(sample.astype(np.float32), np.nan)
    fraction = float(np.isfinite(data).all(axis=0).mean())
    if fraction == 0.0:  # said even after the footprint warning: no SAR at all
        warnings.warn(
            f"Sentinel-1 file {path} holds no finite value on the Sentinel-2 grid (all "
            "NaN or nodata); the whole scene is predicted from optical data alone",
            stacklevel=3,
        )
    elif fraction < 0.99 and warn:
        warnings.warn(
            f"Sentinel-1 file {path} has finite values on only {fraction:.1%} of the "
            "Sentinel-2 grid; pixels without SAR are predicted from optical data alone",
            stacklevel=3,
        )
    return fraction


def content_sample(src: rasterio.DatasetReader, path: Path) -> np.ndarray:
    """``(bands, n, CONTENT_SAMPLE_PX)`` pixels from a grid of small windows over the scene."""
    size_y, size_x = min(src.height, CONTENT_SAMPLE_PX), min(src.width, CONTENT_SAMPLE_PX)
    ys = np.unique(np.linspace(0, src.height - size_y, CONTENT_SAMPLE_GRID).astype(int))
    xs = np.unique(np.linspace(0, src.width - size_x, CONTENT_SAMPLE_GRID).astype(int))
    windows = [_s2_read(src, path, window=Window(int(x), int(y), size_x, size_y)) for y in ys for x in xs]
    return np.concatenate(windows, axis=1)


def _check_s2_content(src: rasterio.DatasetReader, path: Path, nodata: float) -> np.ndarray:
    """Refuse an S2 scene without a single usable pixel; warn on implausible values.

    A sample of small windows spread over the scene (:func:`content_sample`) keeps this cheap
    for a full 10980 px scene; a scene whose sample holds no valid pixel is scanned in full
    before it is refused. A truncated file met later is reported by the strip reader.
    Returns the sample's valid pixels, ``(13, n)`` DN, for judging the radiometric offset.
    """
    sample = content_sample(src, path)
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
    return values


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
    s2_offset : int
        Radiometric offset (DN) of the S2 input (:mod:`tdpcr_lib.inference.offset`); set by
        prediction once the model is known.
    s2_shift : int
        DN added to the S2 input before normalising: the model's offset minus the input's.
    s2_content_offset : tuple
        ``(offset or None, evidence)``: the offset the content check's sample implies
        (:func:`tdpcr_lib.inference.offset.offset_from_content`), used when the file declares none.
    """

    s2: Any
    s1: Any
    s2_path: Path
    s1_path: Path
    s2_nodata: float
    s1_coverage: float
    s1_resampled: bool
    s2_offset: int = 0
    s2_shift: int = 0
    s2_content_offset: tuple[int | None, str] = (None, "")
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
        # judged now, so that the sample is freed before prediction allocates its strips
        content_offset = offset_from_content(_check_s2_content(s2, s2_path, float(nodata)))
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
        coverage = min(coverage, _s1_finite_fraction(s1_grid, s1_path, warn=coverage >= 0.999))
        return SceneInputs(
            s2=s2,
            s1=s1_grid,
            s2_path=s2_path,
            s1_path=s1_path,
            s2_nodata=float(nodata),
            s1_coverage=float(min(coverage, 1.0)),
            s1_resampled=resampled,
            s2_content_offset=content_offset,
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
