"""Apply a trained model to your own Sentinel-2/Sentinel-1 scene: georeferenced, tiled, seamless.

``predict_scene`` reads a cloudy Sentinel-2 L1C GeoTIFF (13 bands, DN) and a Sentinel-1 GeoTIFF
(VV, VH in dB) of any size, runs the model tile by tile and writes, on the Sentinel-2 grid:

* ``cloud_free.tif``: 13-band uint16 DN (inverse of :mod:`tdpcr_lib.core.normalisation`), band
  descriptions in :data:`tdpcr_lib.core.bands.S2_BANDS` order (``B01 … B08, B8A, B09 … B12``), nodata 0;
* ``land_cover.tif``: uint8 class codes with the legend's colour table and class names in the
  metadata, nodata 255 (the legend's ``ignore_index``); only for models with a segmentation head;
* ``degradation_prompt.tif`` (``write_prompt=True``): float32 map of the model's prompt/gate,
  nodata NaN;
* ``prediction.json``: what was run (inputs, checkpoint, tiling, timings, class fractions) and the
  domain check (``domain``: the one-line warning when the model meets data unlike its training
  data, :mod:`tdpcr_lib.inference.domain`).

Design choices (the paper describes no scene-level inference; these are ours, see
``docs/decisions.md``, section "Scene prediction"):

* **Tiling and blending** are those of :mod:`tdpcr_lib.inference.tiling` (pad-aligned
  origins, ``sin²`` cross-fade, probabilities blended for segmentation), shared with
  evaluation's sliding window.
* **Bounded memory.** Only one strip (one row of tiles, ``tile`` px tall, full scene width) of
  inputs and accumulators lives in memory; rows are written as soon as no later tile touches
  them. A 10980 × 10980 S2 scene at ``tile=256`` needs ≈ 0.5 GB of arrays, not ≈ 10 GB.
* **Overlapped I/O.** The network runs in the calling thread; the next strip is read (S2 window,
  S1 warp, normalisation) on a reader thread and finished outputs are blended and written on a
  writer thread (:mod:`tdpcr_lib.inference.strips`) meanwhile. GDAL and NumPy release the GIL, so
  on a CPU the I/O fills the gaps of the forward pass and on a GPU the CPU work hides behind it;
  at most one strip ahead and :data:`~tdpcr_lib.inference.scene_loop.PENDING_BATCHES` batches behind are held.
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
  (:func:`tdpcr_lib.core.io.atomic_path`). The overview levels are built from each finished strip
  on the writer thread (:mod:`tdpcr_lib.inference.overviews`, GDAL's values) and the COG driver
  copies them instead of re-reading the whole intermediate to compute them. All of it happens in a hidden staging folder inside
  ``out_dir``; the finished set is published as one unit (:mod:`tdpcr_lib.inference.publish`):
  products an earlier run wrote and this one does not are removed, ``prediction.json`` always
  describes exactly the products beside it, files tdpcr did not write are never replaced, and the
  leftovers of a killed run are cleaned by the next prediction into the same folder.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import rasterio
import rasterio.shutil  # noqa: F401 - kept as written; only ruff's preview F401 flags it
import torch
from torch import nn

from tdpcr_lib import __version__
from tdpcr_lib.core.io import atomic_write_json
from tdpcr_lib.core.runtime import model_device
from tdpcr_lib.inference.domain import check_domain
from tdpcr_lib.inference.engines import EngineError
from tdpcr_lib.inference.inputs import PredictionInputError, materialise, scene_inputs
from tdpcr_lib.inference.metadata import portable
from tdpcr_lib.inference.offset import check_s2_offset, model_s2_offset, resolve_s2_offset
from tdpcr_lib.inference.options import PRECISIONS, check_blocksize, check_tiling
from tdpcr_lib.inference.predictor import load_predictor
from tdpcr_lib.inference.products import OUTPUT_FILES
from tdpcr_lib.inference.publish import check_replaceable, new_staging, publish, recover_products, remove_stale_scratch
from tdpcr_lib.inference.scene_loop import describe_source as describe_source
from tdpcr_lib.inference.scene_loop import predict_into as predict_into

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------
#: GDAL block-cache cap (MiB) during prediction. GDAL fills its cache up to the cap, so the cap
#: is the part of the peak RAM that grows with the scene: 128 MiB let 3x the rows add 115 MiB
#: (share 0.40 of the whole-scene arrays' growth in benchmarks/scene_inference), 32 MiB 17 MiB.
#: Writes do not need the cache (16-row intermediate blocks, ``products._INTERMEDIATE_BLOCK_ROWS``).
GDAL_CACHE_MB = 32


def predict_scene(
    s2_cloudy: Any,
    s1: Any,
    checkpoint: str | Path | nn.Module,
    out_dir: str | Path,
    tile: int = 256,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    write_prompt: bool = False,
    progress: bool = True,
    blocksize: int = 512,
    overlap_io: bool = True,
    precision: str = "auto",
    s2_offset: str | int = "auto",
    engine: str = "torch",
) -> dict[str, Path]:
    """Predict a cloud-free image and a land-cover map for a whole scene, tile by tile.

    Parameters
    ----------
    s2_cloudy : path or xarray.DataArray
        Cloudy Sentinel-2 L1C scene, 13 bands in :data:`tdpcr_lib.core.bands.S2_BANDS` order, DN
        (reflectance × 10000). Defines the output grid. A DataArray (dims ``band, y, x`` with a
        CRS) is written to a scratch GeoTIFF first.
    s1 : path or xarray.DataArray
        Sentinel-1 (VV, VH) in dB, on any grid/resolution that overlaps the S2 scene.
    checkpoint : path or torch.nn.Module
        A checkpoint folder (e.g. ``runs/phase2/best``) or a model following the forward contract
        ``model(optical, sar) -> {"reconstruction", ["segmentation"], ["prompts"]}``.
    out_dir : path
        Output folder (created). The products of an earlier tdpcr prediction there are replaced
        as a set (also those this run does not write); a file of a product's name that tdpcr did
        not write raises :class:`PredictionInputError` before any work. Other files stay.
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
    overlap_io : bool
        Read the next strip and blend/write the finished outputs on two helper threads while the
        network runs (default). ``False`` does reading, prediction and writing one after another
        (same products, byte for byte; the benchmark's "before").
    precision : {"auto", "bf16", "fp32"}
        ``"auto"``: bf16 autocast on CUDA (with ``channels_last`` tiles: the GPU path), fp32 on
        the CPU. ``"bf16"`` also on the CPU (bf16 keeps 8 mantissa bits: reflectance differs by
        up to a few 1e-3 from fp32).
    s2_offset : {"auto", 0, 1000}
        Radiometric offset (DN) of the Sentinel-2 input. ``"auto"``: the offset the file declares
        (ESA ``RADIO_ADD_OFFSET``/``BOA_ADD_OFFSET`` tags, tdpcr's ``S2_OFFSET_DN``, or a GDAL
        band offset), else the convention of the checkpoint's training data (said in one
        line). The input is shifted into the model's convention and the reconstruction back;
        ``cloud_free.tif`` keeps the input's offset and declares it as GDAL scale/offset
        (:mod:`tdpcr_lib.inference.offset`); ``prediction.json`` records it as ``s2_offset``.
    engine : {"torch", "auto", "onnxruntime", "openvino"}
        ``"torch"`` runs the model as trained; the others run its ONNX export, cached beside the
        checkpoint (:mod:`tdpcr_lib.inference.engines`, ``docs/engines.md``). ``"auto"``: the
        fastest installed engine on a CPU, torch on CUDA. Exported engines run fp32 on the CPU.

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
    try:
        overlap = check_tiling(tile, overlap)
    except ValueError as err:
        raise PredictionInputError(str(err)) from None
    if precision not in PRECISIONS:
        raise PredictionInputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if batch_size is not None and batch_size < 1:
        raise PredictionInputError(f"batch_size must be >= 1, got {batch_size}")
    try:
        s2_offset = check_s2_offset(s2_offset)
    except ValueError as err:
        raise PredictionInputError(str(err)) from None
    try:  # before any work: a bad block size used to fail only after the whole prediction
        check_blocksize(blocksize)
    except ValueError as err:
        raise PredictionInputError(str(err)) from None
    out_dir = Path(out_dir)
    started = time.time()
    remove_stale_scratch()  # empty scratch folders of killed runs (SIGKILL skips cleanup)
    with tempfile.TemporaryDirectory(prefix="tdpcr-predict-") as scratch_name:
        scratch = Path(scratch_name)
        s2_path = materialise(s2_cloudy, "Sentinel-2", scratch)
        s1_path = materialise(s1, "Sentinel-1", scratch)
        # GDAL's block cache would otherwise grow with the scene (up to 5 % of RAM); a small cap
        # keeps peak memory independent of scene size (measured in benchmarks/scene_inference).
        # rasterio hands an int to GDALSetCacheMax, i.e. *bytes*: GDAL_CACHEMAX=128 was a 128-byte
        # cache, which made decimated reads re-decompress every block per output row (22 s for a
        # 300x350 scene); say MiB explicitly.
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024), scene_inputs(s2_path, s1_path) as inputs:
            if engine == "auto" and precision == "bf16":
                engine = "torch"  # bf16 autocast is torch's; the exported graphs are float32
            try:
                model, meta = load_predictor(checkpoint, device, engine)
            except EngineError as err:
                raise PredictionInputError(str(err)) from None
            if meta["engine"] != "torch" and precision == "bf16":
                raise PredictionInputError(
                    f"precision='bf16' needs engine='torch'; engine {meta['engine']!r} runs float32"
                )
            legend = getattr(getattr(getattr(model, "module", model), "config", None), "legend", None)
            inputs.s2_offset, note = resolve_s2_offset(
                s2_offset, inputs.s2, describe_source(s2_cloudy), legend, inputs.s2_content_offset
            )
            inputs.s2_shift = model_s2_offset(legend) - inputs.s2_offset
            log.info(note)
            # one-line warning if unlike training, judged on the input as the network will see it
            domain = check_domain(meta, s2_path, s1_path, inputs.s2_shift)
            if batch_size is None:
                batch_size = 16 if model_device(model).type == "cuda" else 2
            out_dir.mkdir(parents=True, exist_ok=True)
            check_replaceable(out_dir)  # before any work: never replace a file tdpcr did not write
            for action in recover_products(out_dir):
                log.info("%s: %s", out_dir, action)
            # products are made in a staging folder and published together (inference.publish)
            staging = new_staging(out_dir)
            was_training = model.training
            model.eval()
            try:
                stats = predict_into(
                    inputs,
                    model,
                    staging,
                    tile=tile,
                    overlap=overlap,
                    batch_size=batch_size,
                    write_prompt=write_prompt,
                    progress=progress,
                    blocksize=blocksize,
                    overlap_io=overlap_io,
                    precision=precision,
                    sources={"s2": s2_cloudy, "s1": s1, "checkpoint": meta.get("source")},
                )
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            finally:
                model.train(was_training)
    paths = {name: out_dir / OUTPUT_FILES[name] for name in stats["products"]}
    summary = {
        "tdpcr_version": __version__,
        "inputs": {"s2": describe_source(s2_cloudy), "s1": describe_source(s1)},
        "checkpoint": meta.get("source"),
        "checkpoint_phase": meta.get("phase"),
        "checkpoint_epoch": meta.get("epoch"),
        "s2_offset": inputs.s2_offset,
        "s2_offset_model": inputs.s2_offset + inputs.s2_shift,
        "tile": tile,
        "overlap": overlap,
        "batch_size": batch_size,
        "precision": precision,
        "engine": meta.get("engine", "torch"),
        "device": str(model_device(model)),
        "wall_time_s": round(time.time() - started, 3),
        "domain": domain,
        **{k: v for k, v in stats.items() if k != "products"},
        "outputs": {k: str(v) for k, v in paths.items()},
    }
    try:
        # last: the staging folder is complete once prediction.json is in it
        atomic_write_json(staging / OUTPUT_FILES["summary"], portable(summary, out_dir))
        publish(staging, out_dir)
    except BaseException:
        if not (staging / OUTPUT_FILES["summary"]).is_file():
            shutil.rmtree(staging, ignore_errors=True)
        raise
    paths["summary"] = out_dir / OUTPUT_FILES["summary"]
    return paths
