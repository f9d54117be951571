"""Apply a trained model to your own Sentinel-2/Sentinel-1 scene: georeferenced, tiled, seamless.

``predict_scene`` reads a cloudy Sentinel-2 L1C GeoTIFF (13 bands, DN) and a Sentinel-1 GeoTIFF
(VV, VH in dB) of any size, runs the model tile by tile and writes, on the Sentinel-2 grid:

* ``cloud_free.tif``: 13-band uint16 DN (inverse of :mod:`tdpcr_lib.normalisation`), band
  descriptions ``B01 … B12, B8A`` in L1C order, nodata 0;
* ``land_cover.tif``: uint8 class codes with the legend's colour table and class names in the
  metadata, nodata 255 (the legend's ``ignore_index``); only for models with a segmentation head;
* ``degradation_prompt.tif`` (``write_prompt=True``): float32 map of the model's prompt/gate,
  nodata NaN;
* ``prediction.json``: what was run (inputs, checkpoint, tiling, timings, class fractions).

Design choices (the paper describes no scene-level inference; these are ours, see
``docs/design.md``, section "Scene prediction"):

* **Tiling.** Tiles of ``tile`` px (clipped to the scene) start every ``tile - overlap`` px,
  rounded so every origin is a multiple of the model's ``pad_multiple`` (a network that
  downsamples by 2**k is only shift-equivariant for such shifts; unaligned tiles differed by
  hundreds of DN). The last tile may stick out past the scene by less than ``pad_multiple`` px,
  filled by reflection exactly like the model's own padding. Any scene size works and every tile
  has the same shape (they batch). Default ``overlap = tile // 4``.
* **Blending.** Each tile's output is weighted by a separable flat-top window: 1 inside, a
  ``sin²`` ramp over ``overlap`` px at every edge that borders another tile (never at the scene
  edge), floored at :data:`WEIGHT_FLOOR`. Two facing ramps add up to exactly 1, and all outputs are
  divided by the accumulated weight, so the blend is a convex combination with smoothly varying
  coefficients: no seams, and a model that is a per-pixel function gives identical tiled and
  untiled results. Segmentation is blended as softmax *probabilities* (scale-free, unlike
  logits), then arg-maxed.
* **Bounded memory.** Only one strip (one row of tiles, ``tile`` px tall, full scene width) of
  inputs and accumulators lives in memory; rows are written as soon as no later tile touches
  them. A 10980 × 10980 S2 scene at ``tile=256`` needs ≈ 0.5 GB of arrays, not ≈ 10 GB.
* **S1 on another grid** is resampled onto the S2 grid on the fly with a bilinear
  :class:`rasterio.vrt.WarpedVRT` (interpolation in dB). Pixels outside the S1 footprint or at S1
  nodata get the normalisation's non-finite value (0 in network units), i.e. "no SAR signal".
* **Nodata.** An S2 pixel is nodata when *all 13 bands* equal the file's nodata value (0 — the L1C
  "NO_DATA" value — when the file declares none) or any band is non-finite. Nodata pixels are fed
  to the network as 0 and written as nodata (``cloud_free`` 0, ``land_cover`` 255,
  ``degradation_prompt`` NaN). Valid reconstructed pixels are clipped to DN ≥ 1 so that 0 is never
  ambiguous.
* **File layout.** Rows are streamed into a tiled (256 × 256), deflate-compressed intermediate
  GTiff; it is then copied with GDAL's **COG driver** (Cloud-Optimized GeoTIFF: ``blocksize``
  tiles, internal overviews — average for reflectance and prompt, mode for classes — deflate with
  predictor) into a temporary file that is renamed onto the final name
  (:func:`tdpcr_lib.io_utils.atomic_path`). An interrupted run leaves no output under a final name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import torch
import torch.nn.functional as F
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from torch import nn

from . import __version__
from .bands import S1_BANDS, S2_BANDS
from .io_utils import atomic_path, atomic_write_json
from .legend import load_legend
from .normalisation import load_normalisation
from .runtime import resolve_device

#: File names of the products inside ``out_dir``.
OUTPUT_FILES: dict[str, str] = {
    "cloud_free": "cloud_free.tif",
    "land_cover": "land_cover.tif",
    "degradation_prompt": "degradation_prompt.tif",
    "summary": "prediction.json",
}
#: Nodata of ``cloud_free.tif`` (valid pixels are clipped to DN >= 1).
CLOUD_FREE_NODATA = 0
#: Smallest blending weight, so that every covered pixel has a strictly positive total weight.
WEIGHT_FLOOR = 1e-3
#: Block size of the streamed intermediate GTiff.
_INTERMEDIATE_BLOCK = 256


class PredictionInputError(ValueError):
    """An input scene cannot be used (unreadable, wrong bands, no CRS, no overlap, ...)."""


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


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def _is_dataarray(obj: Any) -> bool:
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        return False
    return isinstance(obj, xr.DataArray)


def _materialise(obj: Any, role: str, scratch: Path) -> Path:
    """A path for ``obj``: the path itself, or a DataArray written to a scratch GeoTIFF."""
    if _is_dataarray(obj):
        if obj.rio.crs is None:
            raise PredictionInputError(
                f"{role} DataArray has no CRS; set one with da.rio.write_crs(...) first")
        if obj.ndim != 3:
            raise PredictionInputError(
                f"{role} DataArray must have dims (band, y, x), got dims {obj.dims}")
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
            f"{role} file {path} has {src.count} band(s); expected {len(bands)} "
            f"({', '.join(bands)})")
    if src.crs is None:
        raise PredictionInputError(
            f"{role} file {path} has no CRS (coordinate reference system); georeference it "
            "(e.g. gdal_edit.py -a_srs EPSG:...) so it can be placed on the Sentinel-2 grid")


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
    return (a.crs == b.crs and a.width == b.width and a.height == b.height
            and a.transform.almost_equals(b.transform, precision=1e-9))


def open_scene_inputs(s2_path: str | Path, s1_path: str | Path) -> SceneInputs:
    """Open and validate a scene pair; call ``.close()`` (or use :func:`scene_inputs`) after.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    PredictionInputError
        A file cannot be read, has the wrong number of bands, has no CRS, or the two footprints
        do not overlap. Messages name the file.
    """
    s2_path, s1_path = Path(s2_path), Path(s1_path)
    for role, path in (("Sentinel-2", s2_path), ("Sentinel-1", s1_path)):
        if not path.exists():
            raise FileNotFoundError(f"{role} file {path} does not exist")
    stack = contextlib.ExitStack()
    try:
        s2 = stack.enter_context(_open(s2_path, "Sentinel-2"))
        _check(s2, s2_path, "Sentinel-2", S2_BANDS)
        s1 = stack.enter_context(_open(s1_path, "Sentinel-1"))
        _check(s1, s1_path, "Sentinel-1", S1_BANDS)

        left, bottom, right, top = transform_bounds(s1.crs, s2.crs, *s1.bounds, densify_pts=21)
        s2b = s2.bounds
        ix = max(0.0, min(right, s2b.right) - max(left, s2b.left))
        iy = max(0.0, min(top, s2b.top) - max(bottom, s2b.bottom))
        if ix * iy <= 0.0:
            raise PredictionInputError(
                f"Sentinel-1 file {s1_path} does not overlap Sentinel-2 file {s2_path}: in "
                f"{s2.crs} the S1 bounds are ({left:.1f}, {bottom:.1f}, {right:.1f}, {top:.1f}) "
                f"and the S2 bounds are ({s2b.left:.1f}, {s2b.bottom:.1f}, {s2b.right:.1f}, "
                f"{s2b.top:.1f})")
        coverage = (ix * iy) / ((s2b.right - s2b.left) * (s2b.top - s2b.bottom))
        if coverage < 0.999:
            warnings.warn(f"Sentinel-1 file {s1_path} covers only {coverage:.1%} of the "
                          f"Sentinel-2 scene; pixels without SAR are predicted from optical "
                          "data alone (SAR set to the normalisation's non-finite value)",
                          stacklevel=2)

        resampled = not _same_grid(s1, s2)
        s1_grid: Any = s1
        if resampled:
            s1_grid = stack.enter_context(WarpedVRT(
                s1, crs=s2.crs, transform=s2.transform, width=s2.width, height=s2.height,
                resampling=Resampling.bilinear, dtype="float32", nodata=float("nan")))
        nodata = s2.nodata if s2.nodata is not None else 0.0
        return SceneInputs(s2=s2, s1=s1_grid, s2_path=s2_path, s1_path=s1_path,
                           s2_nodata=float(nodata), s1_coverage=float(min(coverage, 1.0)),
                           s1_resampled=resampled, _stack=stack)
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


def _read_strip(inputs: SceneInputs, y0: int, height: int, canvas_width: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``[y0, y0 + height)``: optical and SAR in [0, 1] and the validity mask.

    Rows/columns past the scene edge (up to ``canvas_width``) are filled by reflection for the
    network inputs and marked invalid in the mask.
    """
    norm = load_normalisation()
    rows = min(height, inputs.s2.height - y0)
    window = Window(0, y0, inputs.s2.width, rows)
    raw = inputs.s2.read(window=window)
    if np.issubdtype(raw.dtype, np.floating):
        finite = np.isfinite(raw).all(axis=0)
    else:
        finite = np.ones(raw.shape[1:], dtype=bool)
    valid = finite & ~(raw == inputs.s2_nodata).all(axis=0)
    optical = norm.s2_to_unit(raw)
    optical[:, ~valid] = 0.0
    s1 = inputs.s1.read(window=window, out_dtype="float32")
    if not inputs.s1_resampled and inputs.s1.nodata is not None and not np.isnan(inputs.s1.nodata):
        s1[s1 == inputs.s1.nodata] = np.nan
    sar = norm.s1_to_unit(s1)
    pad_rows, pad_cols = height - rows, canvas_width - inputs.s2.width
    valid = np.pad(valid, [(0, pad_rows), (0, pad_cols)], constant_values=False)
    return _reflect_pad(optical, pad_rows, pad_cols), _reflect_pad(sar, pad_rows, pad_cols), valid


def _warn_if_units_look_wrong(optical: np.ndarray, s2_path: Path, valid: np.ndarray) -> None:
    # Reflectance in [0, 1] divided by 10000 is <= 1e-4 everywhere: almost surely wrong units.
    if valid.any() and float(optical[:, valid].max()) <= 2e-4:
        warnings.warn(f"Sentinel-2 file {s2_path} looks like reflectance in [0, 1]; tdpcr "
                      "expects L1C digital numbers (reflectance x 10000)", stacklevel=3)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
def load_predictor(checkpoint: str | Path | nn.Module,
                   device: str | torch.device = "auto") -> tuple[nn.Module, dict[str, Any]]:
    """The model to predict with: a checkpoint folder (loaded) or a module (used as is).

    Raises
    ------
    FileNotFoundError
        The checkpoint folder does not exist (the message says how to get one).
    tdpcr_lib.checkpoint.CheckpointError
        The folder exists but is not a readable tdpcr checkpoint.
    """
    device = resolve_device(device)
    if isinstance(checkpoint, nn.Module):
        return checkpoint.to(device), {"source": f"in-memory {type(checkpoint).__name__}"}
    from .checkpoint import CheckpointError, load_model, resolve_checkpoint_dir

    path = Path(checkpoint)
    try:
        resolve_checkpoint_dir(path)
    except CheckpointError as err:
        if not path.exists():
            raise FileNotFoundError(
                f"checkpoint {path} does not exist; train one first (notebooks 03/04 or "
                "`tdpcr train`, which write runs/phase2/best) or pass the folder of a trained "
                "checkpoint (it holds model.safetensors and config.json)") from err
        raise
    model, meta = load_model(path, device=device)
    meta = dict(meta)
    meta["source"] = str(path)
    return model, meta


def _prompt_map(prompts: Sequence[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Finest prompt level, averaged over channels, bilinearly upsampled: (B, h, w)."""
    finest = max(prompts, key=lambda p: p.shape[-2] * p.shape[-1])
    gate = finest.float().mean(dim=1, keepdim=True)
    if gate.shape[-2:] != (height, width):
        gate = F.interpolate(gate, size=(height, width), mode="bilinear", align_corners=False)
    return gate[:, 0]


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------
def _intermediate_profile(src: Any, count: int, dtype: str, nodata: float | None) -> dict:
    block = _INTERMEDIATE_BLOCK
    profile = dict(driver="GTiff", width=src.width, height=src.height, count=count,
                   dtype=dtype, crs=src.crs, transform=src.transform, nodata=nodata,
                   compress="deflate", zlevel=1, bigtiff="if_safer")
    if src.width >= block and src.height >= block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    return profile


def _to_cog(src_path: Path, dst_path: Path, resampling: str, blocksize: int) -> None:
    """Copy a finished intermediate GTiff into a COG at ``dst_path`` atomically."""
    with atomic_path(dst_path, suffix=".tif") as tmp:
        rasterio.shutil.copy(src_path, tmp, driver="COG", compress="DEFLATE", predictor="YES",
                             blocksize=blocksize, overview_resampling=resampling,
                             bigtiff="IF_SAFER", num_threads="ALL_CPUS")


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------
#: GDAL block-cache cap (MB) during prediction.
GDAL_CACHE_MB = 128


def predict_scene(s2_cloudy: Any, s1: Any, checkpoint: str | Path | nn.Module,
                  out_dir: str | Path, tile: int = 256, overlap: int | None = None,
                  batch_size: int | None = None, device: str | torch.device = "auto",
                  write_prompt: bool = False, progress: bool = True,
                  blocksize: int = 512) -> dict[str, Path]:
    """Predict a cloud-free image and a land-cover map for a whole scene, tile by tile.

    Parameters
    ----------
    s2_cloudy : path or xarray.DataArray
        Cloudy Sentinel-2 L1C scene, 13 bands in :data:`tdpcr_lib.bands.S2_BANDS` order, DN
        (reflectance × 10000). Defines the output grid. A DataArray (dims ``band, y, x`` with a
        CRS) is written to a scratch GeoTIFF first.
    s1 : path or xarray.DataArray
        Sentinel-1 (VV, VH) in dB, on any grid/resolution that overlaps the S2 scene.
    checkpoint : path or torch.nn.Module
        A checkpoint folder (e.g. ``runs/phase2/best``) or a model following the forward contract
        ``model(optical, sar) -> {"reconstruction", ["segmentation"], ["prompts"]}``.
    out_dir : path
        Output folder (created). Existing products of the same names are replaced.
    tile : int
        Tile size in px (multiples of 16 avoid internal padding). ``tile >= max(H, W)`` predicts
        the scene in one piece.
    overlap : int, optional
        Overlap between neighbouring tiles in px (default ``tile // 4``); ``0 <= overlap < tile``.
    batch_size : int, optional
        Tiles per forward pass. Default: 2 on the CPU (larger batches only add activation memory
        there; measured in ``benchmarks/``), 16 on CUDA.
    device : str or torch.device
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda:0"``, ...
    write_prompt : bool
        Also write ``degradation_prompt.tif`` (needs a model that returns ``prompts``).
    progress : bool
        Show a tqdm progress bar over tiles.
    blocksize : int
        Internal tile size of the output COGs (256 or 512 are usual).

    Returns
    -------
    dict of str to Path
        ``cloud_free``, ``land_cover`` (if the model segments), ``degradation_prompt`` (if
        asked) and ``summary`` (``prediction.json``).

    Raises
    ------
    FileNotFoundError
        An input file or the checkpoint folder does not exist.
    PredictionInputError
        Unreadable input, wrong band count, missing CRS, no overlap, bad tiling arguments, or a
        model without prompts when ``write_prompt`` is set.
    """
    overlap = tile // 4 if overlap is None else int(overlap)
    if tile < 1 or not 0 <= overlap < tile:
        raise PredictionInputError(f"need tile >= 1 and 0 <= overlap < tile, got tile={tile}, "
                                   f"overlap={overlap}")
    if batch_size is not None and batch_size < 1:
        raise PredictionInputError(f"batch_size must be >= 1, got {batch_size}")
    out_dir = Path(out_dir)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tdpcr-predict-") as scratch_name:
        scratch = Path(scratch_name)
        s2_path = _materialise(s2_cloudy, "Sentinel-2", scratch)
        s1_path = _materialise(s1, "Sentinel-1", scratch)
        # GDAL's block cache would otherwise grow with the scene (up to 5 % of RAM); a small cap
        # keeps peak memory independent of scene size (measured in benchmarks/scene_inference).
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), scene_inputs(s2_path, s1_path) as inputs:
            model, meta = load_predictor(checkpoint, device)
            if batch_size is None:
                batch_size = 16 if _model_device(model).type == "cuda" else 2
            out_dir.mkdir(parents=True, exist_ok=True)
            was_training = model.training
            model.eval()
            try:
                stats = _predict_into(inputs, model, out_dir, tile=tile, overlap=overlap,
                                      batch_size=batch_size, write_prompt=write_prompt,
                                      progress=progress, blocksize=blocksize,
                                      sources={"s2": s2_cloudy, "s1": s1,
                                               "checkpoint": meta.get("source")})
            finally:
                model.train(was_training)
    paths = {name: out_dir / OUTPUT_FILES[name] for name in stats["products"]}
    summary = {
        "tdpcr_version": __version__,
        "inputs": {"s2": _describe(s2_cloudy), "s1": _describe(s1)},
        "checkpoint": meta.get("source"),
        "checkpoint_phase": meta.get("phase"),
        "checkpoint_epoch": meta.get("epoch"),
        "tile": tile, "overlap": overlap, "batch_size": batch_size,
        "device": str(_model_device(model)),
        "wall_time_s": round(time.time() - started, 3),
        **{k: v for k, v in stats.items() if k != "products"},
        "outputs": {k: str(v) for k, v in paths.items()},
    }
    paths["summary"] = atomic_write_json(out_dir / OUTPUT_FILES["summary"], summary)
    return paths


def _model_device(model: nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def _autocast(device: torch.device):
    """bf16 autocast on CUDA (outputs are cast back to float32 before blending); none on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def _to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """NumPy tile batch → tensor on ``device`` in channels_last (faster convolutions)."""
    tensor = torch.from_numpy(batch)
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    return tensor.contiguous(memory_format=torch.channels_last)


def _describe(obj: Any) -> str:
    return "<xarray.DataArray>" if _is_dataarray(obj) else str(obj)


def _predict_into(inputs: SceneInputs, model: nn.Module, out_dir: Path, *, tile: int,
                  overlap: int, batch_size: int, write_prompt: bool, progress: bool,
                  blocksize: int, sources: dict[str, Any]) -> dict[str, Any]:
    """Run the strip loop, stream into intermediates, then publish COGs. Returns statistics."""
    from tqdm.auto import tqdm

    norm = load_normalisation()
    legend = load_legend()
    height, width = inputs.shape
    align = int(getattr(model, "pad_multiple", 1))
    th, tw = min(tile, height), min(tile, width)
    ys, xs = tile_origins(height, tile, overlap, align), tile_origins(width, tile, overlap, align)
    ramp = tile - tile_stride(tile, overlap, align)  # effective overlap of regular neighbours
    wys, wxs = _axis_windows(ys, th, ramp), _axis_windows(xs, tw, ramp)
    canvas_width = xs[-1] + tw
    device = _model_device(model)

    acc_rec = np.zeros((len(S2_BANDS), th, canvas_width), dtype=np.float32)
    acc_w = np.zeros((th, canvas_width), dtype=np.float32)
    acc_seg: np.ndarray | None = None
    acc_prompt: np.ndarray | None = None
    class_counts = np.zeros(legend.num_classes, dtype=np.int64)
    n_valid = 0

    tmp_files: dict[str, Path] = {}
    writers: dict[str, Any] = {}
    described = {k: _describe(v) for k, v in sources.items()}
    common_tags = {"TDPCR_VERSION": __version__, "SOURCE_S2": described["s2"],
                   "SOURCE_S1": described["s1"], "CHECKPOINT": str(described["checkpoint"]),
                   "TILE": str(tile), "OVERLAP": str(overlap)}

    def open_writer(name: str, count: int, dtype: str, nodata: float | None) -> Any:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial.tif", dir=out_dir)
        os.close(fd)
        tmp_files[name] = Path(tmp)
        dst = rasterio.open(tmp, "w", **_intermediate_profile(inputs.s2, count, dtype, nodata))
        writers[name] = dst
        return dst

    try:
        cf = open_writer("cloud_free", len(S2_BANDS), "uint16", CLOUD_FREE_NODATA)
        for i, name in enumerate(S2_BANDS, start=1):
            cf.set_band_description(i, name)
        cf.update_tags(PRODUCT="cloud-free Sentinel-2 reconstruction",
                       UNITS="L1C digital number (TOA reflectance x 10000, offset as in input)",
                       NODATA_MEANING="0 = no data in the Sentinel-2 input", **common_tags)

        bar = tqdm(total=len(ys) * len(xs), unit="tile", disable=not progress,
                   desc="tdpcr predict")
        checked_units = False
        for r, y0 in enumerate(ys):
            optical, sar, valid = _read_strip(inputs, y0, th, canvas_width)
            if not checked_units:
                _warn_if_units_look_wrong(optical, inputs.s2_path, valid)
                checked_units = True
            for b0 in range(0, len(xs), batch_size):
                cols = list(range(b0, min(b0 + batch_size, len(xs))))
                opt_b = np.stack([optical[:, :, xs[c]:xs[c] + tw] for c in cols])
                sar_b = np.stack([sar[:, :, xs[c]:xs[c] + tw] for c in cols])
                with torch.inference_mode(), _autocast(device):
                    out = model(_to_device(opt_b, device), _to_device(sar_b, device))
                rec = out.get("reconstruction") if isinstance(out, dict) else None
                if rec is None or tuple(rec.shape) != (len(cols), len(S2_BANDS), th, tw):
                    raise ValueError(
                        f"{type(model).__name__} must return a dict with 'reconstruction' of "
                        f"shape {(len(cols), len(S2_BANDS), th, tw)}, got "
                        f"{None if rec is None else tuple(rec.shape)}")
                rec = rec.float().clamp(0.0, 1.0).cpu().numpy()
                seg = out.get("segmentation")
                probs = None
                if seg is not None:
                    probs = torch.softmax(seg.float(), dim=1).cpu().numpy()
                    if acc_seg is None:
                        acc_seg = np.zeros((probs.shape[1], th, canvas_width), dtype=np.float32)
                prompt = None
                if write_prompt:
                    prompts = out.get("prompts")
                    if not prompts:
                        raise PredictionInputError(
                            f"write_prompt=True but {type(model).__name__} returns no 'prompts' "
                            "(baselines and the optical_only/concat variants have none)")
                    prompt = _prompt_map(prompts, th, tw).cpu().numpy()
                    if acc_prompt is None:
                        acc_prompt = np.zeros((th, canvas_width), dtype=np.float32)
                for k, c in enumerate(cols):
                    x0 = xs[c]
                    weight = wys[r][:, None] * wxs[c][None, :]
                    acc_rec[:, :, x0:x0 + tw] += rec[k] * weight
                    acc_w[:, x0:x0 + tw] += weight
                    if probs is not None and acc_seg is not None:
                        acc_seg[:, :, x0:x0 + tw] += probs[k] * weight
                    if prompt is not None and acc_prompt is not None:
                        acc_prompt[:, x0:x0 + tw] += prompt[k] * weight
                bar.update(len(cols))

            # Rows before the next strip's origin receive no more contributions: write them.
            n_final = (ys[r + 1] - y0) if r + 1 < len(ys) else height - y0
            window = Window(0, y0, width, n_final)
            ok = valid[:n_final, :width]
            n_valid += int(ok.sum())
            total_w = acc_w[:n_final, :width]
            dn = norm.s2_to_dn(acc_rec[:, :n_final, :width] / total_w)
            dn = np.where(ok, np.maximum(dn, 1), CLOUD_FREE_NODATA).astype(np.uint16)
            cf.write(dn, window=window)
            if acc_seg is not None:
                if "land_cover" not in writers:
                    lc = open_writer("land_cover", 1, "uint8", legend.ignore_index)
                    lc.set_band_description(1, "land_cover")
                    lc.write_colormap(1, legend.rasterio_colormap())
                    lc.update_tags(
                        PRODUCT="land-cover classes (argmax of blended probabilities)",
                        LEGEND=json.dumps(dict(zip(map(str, legend.codes), legend.names,
                                                   strict=True))),
                        NODATA_MEANING=f"{legend.ignore_index} = no data in the Sentinel-2 input",
                        **{f"CLASS_{c}": n for c, n in zip(legend.codes, legend.names,
                                                            strict=True)},
                        **common_tags)
                labels = acc_seg[:, :n_final, :width].argmax(axis=0)
                class_counts += np.bincount(labels[ok], minlength=legend.num_classes)[
                    :legend.num_classes]
                labels = np.where(ok, labels, legend.ignore_index).astype(np.uint8)
                writers["land_cover"].write(labels[None], window=window)
            if acc_prompt is not None:
                if "degradation_prompt" not in writers:
                    pr = open_writer("degradation_prompt", 1, "float32", float("nan"))
                    pr.set_band_description(1, "degradation_prompt")
                    pr.update_tags(PRODUCT="model prompt/gate map (finest level, channel mean, "
                                           "blended like the other outputs)", **common_tags)
                gate = np.where(ok, acc_prompt[:n_final, :width] / total_w, np.nan).astype(np.float32)
                writers["degradation_prompt"].write(gate[None], window=window)

            # Slide the strip buffers down to the next strip's origin.
            for acc in (acc_rec, acc_seg, acc_prompt, acc_w):
                if acc is None or r + 1 == len(ys):
                    continue
                acc[..., : th - n_final, :] = acc[..., n_final:, :]
                acc[..., th - n_final:, :] = 0.0
        bar.close()
        if write_prompt and acc_prompt is None:  # pragma: no cover - guarded in the loop
            raise PredictionInputError("no prompt map was produced")

        for dst in writers.values():
            dst.close()
        resampling = {"cloud_free": "AVERAGE", "land_cover": "MODE",
                      "degradation_prompt": "AVERAGE"}
        for name, tmp in tmp_files.items():
            _to_cog(tmp, out_dir / OUTPUT_FILES[name], resampling[name], blocksize)
    finally:
        for dst in writers.values():
            if not dst.closed:
                dst.close()
        for tmp in tmp_files.values():
            tmp.unlink(missing_ok=True)

    n_pixels = height * width
    stats: dict[str, Any] = {
        "products": list(tmp_files),
        "height": height, "width": width, "crs": str(inputs.s2.crs),
        "n_tiles": len(ys) * len(xs), "tile_grid": [len(ys), len(xs)],
        "valid_fraction": n_valid / n_pixels,
        "s1_resampled": inputs.s1_resampled, "s1_coverage": inputs.s1_coverage,
    }
    if "land_cover" in tmp_files:
        fractions = class_counts / max(1, class_counts.sum())
        stats["class_fractions"] = {name: float(f) for name, f in
                                    zip(legend.names, fractions, strict=True)}
    else:
        warnings.warn(f"{type(model).__name__} has no segmentation head; land_cover.tif was not "
                      "written (use a phase-2 checkpoint)", stacklevel=3)
    return stats


# --------------------------------------------------------------------------------------------
# xarray API
# --------------------------------------------------------------------------------------------
def open_prediction(outputs: dict[str, Path] | str | Path, load: bool = False) -> dict[str, Any]:
    """Open written products as rioxarray DataArrays with band coordinates and CRS.

    Parameters
    ----------
    outputs : dict or path
        The dict returned by :func:`predict_scene`, or its ``out_dir``.
    load : bool
        Read the data into memory and close the files (otherwise the arrays are lazy and keep
        the files open; call ``.close()`` on them when done).

    Returns
    -------
    dict of str to xarray.DataArray
        ``cloud_free`` (dims ``band, y, x``, ``band`` = ``B01 … B12, B8A``, uint16 DN),
        ``land_cover`` (``y, x``, uint8; ``attrs["class_names"]``, ``attrs["class_colors"]``),
        ``degradation_prompt`` (``y, x``, float32) — whichever exist.
    """
    import rioxarray

    if not isinstance(outputs, dict):
        folder = Path(outputs)
        outputs = {k: folder / f for k, f in OUTPUT_FILES.items()
                   if k != "summary" and (folder / f).exists()}
    legend = load_legend()
    arrays: dict[str, Any] = {}
    for name in ("cloud_free", "land_cover", "degradation_prompt"):
        path = outputs.get(name)
        if path is None:
            continue
        da = rioxarray.open_rasterio(path)
        if load:
            loaded = da.load()
            da.close()
            da = loaded
        if name == "cloud_free":
            da = da.assign_coords(band=list(S2_BANDS))
            da.attrs["units"] = "L1C DN (reflectance x 10000)"
        else:
            da = da.squeeze("band", drop=True)
        if name == "land_cover":
            da.attrs["class_names"] = list(legend.names)
            da.attrs["class_colors"] = [list(c) for c in legend.colors]
        da.name = name
        arrays[name] = da
    return arrays


def predict_dataarrays(s2_cloudy: Any, s1: Any, checkpoint: str | Path | nn.Module, *,
                       tile: int = 256, overlap: int | None = None, batch_size: int | None = None,
                       device: str | torch.device = "auto", include_prompt: bool = False,
                       progress: bool = True) -> dict[str, Any]:
    """Like :func:`predict_scene`, but returns in-memory DataArrays (for notebook users).

    Inputs may be rioxarray DataArrays (dims ``band, y, x``, with a CRS) or GeoTIFF paths. The
    products are written to a scratch folder with the same code path as :func:`predict_scene`
    (so grid, nodata and blending are identical) and read back with :func:`open_prediction`.

    Returns
    -------
    dict of str to xarray.DataArray
        ``cloud_free`` (``band`` coordinate ``B01 … B12, B8A``), ``land_cover`` and, with
        ``include_prompt``, ``degradation_prompt``; all carry the S2 CRS (``da.rio.crs``) and
        transform.
    """
    with tempfile.TemporaryDirectory(prefix="tdpcr-predict-xr-") as tmp:
        paths = predict_scene(s2_cloudy, s1, checkpoint, tmp, tile=tile, overlap=overlap,
                              batch_size=batch_size, device=device,
                              write_prompt=include_prompt, progress=progress)
        return open_prediction(paths, load=True)


# --------------------------------------------------------------------------------------------
# Helpers for the notebook: checkpoint choice, reference scores, figure
# --------------------------------------------------------------------------------------------
def prepare_checkpoint(checkpoint: str | Path, *, smoke: bool, scratch_dir: str | Path,
                       seed: int = 0) -> tuple[Path, str]:
    """The checkpoint folder to use, and a sentence saying what it is.

    If ``checkpoint`` exists it is used. If it is missing and ``smoke`` is true, a freshly
    initialised *tiny* TDP-CR (with segmentation head) is saved under ``scratch_dir`` so the
    pipeline can run standalone — its outputs are meaningless and the sentence says so. If it is
    missing and ``smoke`` is false, :class:`FileNotFoundError` explains how to get one.
    """
    from .checkpoint import CheckpointError, resolve_checkpoint_dir, save_checkpoint

    path = Path(checkpoint)
    try:
        resolve_checkpoint_dir(path)
        return path, f"trained checkpoint {path}"
    except CheckpointError as err:
        if path.exists():
            raise
        if not smoke:
            raise FileNotFoundError(
                f"checkpoint {path} does not exist. Run the training notebooks first "
                "(03_train_phase1 and 04_train_phase2 write runs/phase2/best), or set CHECKPOINT "
                "to a trained checkpoint folder, or set SMOKE=True to try the pipeline with an "
                "untrained tiny model.") from err
    from .models import ModelConfig, build_model
    from .runtime import seed_everything

    seed_everything(seed)
    model = build_model(ModelConfig(**tiny_model_kwargs()))
    if hasattr(model, "attach_segmentation_decoder"):
        model.attach_segmentation_decoder()
    target = Path(scratch_dir) / "untrained_tiny_checkpoint"
    save_checkpoint(target, model, phase="untrained", epoch=0, step=0,
                    extra={"note": "freshly initialised tiny model written by "
                                   "tdpcr_lib.predict.prepare_checkpoint (SMOKE mode)"})
    return target, (f"checkpoint {path} not found; SMOKE mode uses a freshly initialised tiny "
                    f"TDP-CR saved at {target} (its predictions are meaningless)")


def tiny_model_kwargs() -> dict[str, Any]:
    """ModelConfig fields of the smallest TDP-CR used for smoke runs and tests."""
    from dataclasses import fields

    from .models import ModelConfig

    names = {f.name for f in fields(ModelConfig)}
    wanted = {"arch": "tdpcr", "fusion": "pgf", "with_seg_decoder": True,
              "widths": (8, 8, 16, 16), "encoder_depths": (1, 1, 1, 1),
              "decoder_depths": (1, 1, 1, 1), "prompt_channels": 4, "prompt_components": 2,
              "pgf_hidden": 4, "seg_width": 8, "name": "tiny (smoke runs and tests)"}
    return {k: v for k, v in wanted.items() if k in names}


def compare_to_reference(outputs: dict[str, Path], reference_s2: str | Path,
                         cloudy_s2: str | Path | None = None,
                         reference_land_cover: str | Path | None = None,
                         rows_per_read: int = 512) -> dict[str, float]:
    """Score written products against a reference scene on the same grid, strip by strip.

    Returns MAE and PSNR (reflectance units, data range 1, over valid pixels and all 13 bands) of
    the prediction — and of the cloudy input when given, as the "do nothing" baseline — and the
    overall land-cover accuracy when a reference label map is given (reference codes outside the
    legend are ignored).
    """
    norm = load_normalisation()
    legend = load_legend()
    sums = {"pred_abs": 0.0, "pred_sq": 0.0, "in_abs": 0.0, "in_sq": 0.0}
    n_values = 0
    correct = labelled = 0
    with contextlib.ExitStack() as stack:
        pred = stack.enter_context(rasterio.open(outputs["cloud_free"]))
        ref = stack.enter_context(rasterio.open(reference_s2))
        if (ref.width, ref.height) != (pred.width, pred.height):
            raise PredictionInputError(f"reference {reference_s2} is {ref.width}x{ref.height}, "
                                       f"prediction is {pred.width}x{pred.height}")
        cloudy = stack.enter_context(rasterio.open(cloudy_s2)) if cloudy_s2 else None
        lc = (stack.enter_context(rasterio.open(outputs["land_cover"]))
              if reference_land_cover and "land_cover" in outputs else None)
        lc_ref = stack.enter_context(rasterio.open(reference_land_cover)) if lc else None
        for y0 in range(0, pred.height, rows_per_read):
            window = Window(0, y0, pred.width, min(rows_per_read, pred.height - y0))
            p = pred.read(window=window)
            ok = (p != CLOUD_FREE_NODATA).any(axis=0)
            target = norm.s2_to_unit(ref.read(window=window))[:, ok]
            diff = norm.s2_to_unit(p)[:, ok] - target
            sums["pred_abs"] += float(np.abs(diff).sum())
            sums["pred_sq"] += float((diff.astype(np.float64) ** 2).sum())
            n_values += diff.size
            if cloudy is not None:
                d_in = norm.s2_to_unit(cloudy.read(window=window))[:, ok] - target
                sums["in_abs"] += float(np.abs(d_in).sum())
                sums["in_sq"] += float((d_in.astype(np.float64) ** 2).sum())
            if lc is not None and lc_ref is not None:
                labels = lc.read(1, window=window)
                truth = legend.sanitise(lc_ref.read(1, window=window))
                keep = ok & (truth != legend.ignore_index)
                correct += int((labels[keep] == truth[keep]).sum())
                labelled += int(keep.sum())

    def psnr(sq: float) -> float:
        mse = sq / max(1, n_values)
        return float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf")

    scores = {"mae_prediction": sums["pred_abs"] / max(1, n_values),
              "psnr_prediction": psnr(sums["pred_sq"])}
    if cloudy is not None:
        scores.update(mae_cloudy_input=sums["in_abs"] / max(1, n_values),
                      psnr_cloudy_input=psnr(sums["in_sq"]))
    if labelled:
        scores["land_cover_accuracy"] = correct / labelled
    return scores


def describe_scene(s2_cloudy: str | Path, s1: str | Path) -> dict[str, Any]:
    """Grid facts of a scene pair (validated as :func:`predict_scene` would), for display."""
    with scene_inputs(s2_cloudy, s1) as inputs, rasterio.open(s1) as raw_s1:
        return {"s2": str(s2_cloudy), "s1": str(s1), "size (rows x cols)": inputs.shape,
                "crs": str(inputs.s2.crs), "s2 pixel size (m)": inputs.s2.res,
                "s1 pixel size (m)": raw_s1.res, "s1 crs": str(raw_s1.crs),
                "s1 resampled onto the s2 grid": inputs.s1_resampled,
                "s1 coverage of the s2 footprint": round(inputs.s1_coverage, 4),
                "s2 nodata value": inputs.s2_nodata}


def read_summary(outputs: dict[str, Path] | str | Path) -> dict[str, Any]:
    """The ``prediction.json`` written by :func:`predict_scene` (from its dict or ``out_dir``)."""
    path = outputs["summary"] if isinstance(outputs, dict) else Path(outputs) / OUTPUT_FILES[
        "summary"]
    return json.loads(Path(path).read_text())


def describe_outputs(outputs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Layout of each written GeoTIFF (dtype, bands, blocks, overviews, compression, size)."""
    table = {}
    for name, path in outputs.items():
        if Path(path).suffix != ".tif":
            continue
        with rasterio.open(path) as src:
            table[name] = {
                "dtype": src.dtypes[0], "bands": src.count, "size": f"{src.height}x{src.width}",
                "nodata": src.nodata, "crs": str(src.crs), "block": src.block_shapes[0],
                "overviews": src.overviews(1),
                "layout": src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "GTiff"),
                "compression": src.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION"),
                "MB": round(Path(path).stat().st_size / 2**20, 2)}
    return table


def _read_overview(path: str | Path, max_size: int, resampling: Resampling) -> np.ndarray:
    """The whole raster decimated to at most ``max_size`` px on its long side (uses overviews)."""
    with rasterio.open(path) as src:
        scale = max(1.0, max(src.width, src.height) / max_size)
        shape = (src.count, max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        return src.read(out_shape=shape, resampling=resampling)


def plot_scene_prediction(s2_cloudy: str | Path, outputs: dict[str, Path],
                          s1: str | Path | None = None, max_size: int = 1024) -> Any:
    """Before/after figure: cloudy input, (SAR,) cloud-free output, land cover (and prompt).

    Reads decimated versions (COG overviews) so it is cheap for full scenes. Both optical panels
    share one 2-98 % stretch taken from the cloud-free output, so colours are comparable.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from .viz import band_composite, sar_false_colour

    norm = load_normalisation()
    legend = load_legend()
    cloudy = norm.s2_to_unit(_read_overview(s2_cloudy, max_size, Resampling.average))
    clear = norm.s2_to_unit(_read_overview(outputs["cloud_free"], max_size, Resampling.average))
    panels: list[tuple[str, Any, dict]] = [
        ("cloudy Sentinel-2 input", band_composite(cloudy, reference=clear), {})]
    if s1 is not None:
        db = _read_overview(s1, max_size, Resampling.average).astype(np.float32)
        panels.append(("Sentinel-1 (R=VV, G=VH, B=VV-VH)", sar_false_colour(norm.s1_to_unit(db)),
                       {}))
    panels.append(("predicted cloud-free", band_composite(clear, reference=clear), {}))
    if "land_cover" in outputs:
        labels = _read_overview(outputs["land_cover"], max_size, Resampling.nearest)[0]
        panels.append(("predicted land cover", legend.colorize(labels), {}))
    if "degradation_prompt" in outputs:
        gate = _read_overview(outputs["degradation_prompt"], max_size, Resampling.average)[0]
        panels.append(("degradation prompt", gate, {"cmap": "magma"}))
    fig = Figure(figsize=(4.2 * len(panels), 4.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, image, kwargs) in zip(axes, panels, strict=True):
        ax.imshow(image, interpolation="nearest", **kwargs)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    if "land_cover" in outputs:
        handles = [Patch(color=np.asarray(c) / 255.0, label=n)
                   for c, n in zip(legend.colors, legend.names, strict=True)]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8)
    return fig


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdpcr predict",
        description="Apply a tdpcr checkpoint to your own Sentinel-2 (cloudy, 13-band L1C DN) "
                    "and Sentinel-1 (VV, VH dB) GeoTIFFs; writes cloud_free.tif, land_cover.tif "
                    "(and degradation_prompt.tif) on the Sentinel-2 grid as Cloud-Optimized "
                    "GeoTIFFs.")
    parser.add_argument("--s2", required=True, type=Path, help="cloudy Sentinel-2 GeoTIFF")
    parser.add_argument("--s1", required=True, type=Path, help="Sentinel-1 GeoTIFF (any grid)")
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="checkpoint folder, e.g. runs/phase2/best")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--tile", type=int, default=256, help="tile size in px (default 256)")
    parser.add_argument("--overlap", type=int, default=None,
                        help="tile overlap in px (default tile // 4)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="tiles per forward pass (default: 2 on CPU, 16 on CUDA)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--write-prompt", action="store_true",
                        help="also write degradation_prompt.tif")
    parser.add_argument("--blocksize", type=int, default=512, help="COG block size (px)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``tdpcr predict --s2 … --s1 … --checkpoint … --out …``; returns the exit status."""
    from .checkpoint import CheckpointError

    args = build_parser().parse_args(argv)
    try:
        paths = predict_scene(args.s2, args.s1, args.checkpoint, args.out, tile=args.tile,
                              overlap=args.overlap, batch_size=args.batch_size,
                              device=args.device, write_prompt=args.write_prompt,
                              progress=not args.no_progress, blocksize=args.blocksize)
    except (FileNotFoundError, PredictionInputError, CheckpointError) as err:
        print(f"tdpcr predict: error: {err}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
