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
  at most one strip ahead and :data:`PENDING_BATCHES` batches behind are held.
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
  (:func:`tdpcr_lib.core.io.atomic_path`). All of it happens in a hidden staging folder inside
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
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil  # noqa: F401 - kept as written; only ruff's preview F401 flags it
import torch
from torch import nn

from tdpcr_lib import __version__
from tdpcr_lib.core.io import atomic_write_json
from tdpcr_lib.core.legend import legend_of
from tdpcr_lib.core.progress import tqdm
from tdpcr_lib.core.runtime import model_device
from tdpcr_lib.inference.domain import check_domain
from tdpcr_lib.inference.engines import EngineError
from tdpcr_lib.inference.inputs import (
    PredictionInputError,
    SceneInputs,
    is_dataarray,
    materialise,
    read_strip,
    scene_inputs,
    warn_if_units_look_wrong,
)
from tdpcr_lib.inference.metadata import portable
from tdpcr_lib.inference.offset import check_s2_offset, model_s2_offset, resolve_s2_offset
from tdpcr_lib.inference.predictor import PRECISIONS, load_predictor, predict_tile_batch
from tdpcr_lib.inference.products import OUTPUT_FILES, check_blocksize, to_cog
from tdpcr_lib.inference.publish import check_replaceable, new_staging, publish, recover_products, remove_stale_scratch
from tdpcr_lib.inference.strips import GridOfScene, Inline, StripWriter
from tdpcr_lib.inference.styles import write_styles
from tdpcr_lib.inference.tiling import TileGrid, check_tiling, model_alignment

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------
#: GDAL block-cache cap (MiB) during prediction. GDAL fills its cache up to the cap, so the cap
#: is the part of the peak RAM that grows with the scene: 128 MiB let 3x the rows add 115 MiB
#: (share 0.40 of the whole-scene arrays' growth in benchmarks/scene_inference), 32 MiB 17 MiB.
#: Writes do not need the cache (16-row intermediate blocks, ``products._INTERMEDIATE_BLOCK_ROWS``).
GDAL_CACHE_MB = 32
#: Batches of outputs that may wait for the writer thread (bounds the memory of the overlap).
PENDING_BATCHES = 2


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
            domain = check_domain(meta, s2_path, s1_path)  # one-line warning if unlike training
            legend = getattr(getattr(getattr(model, "module", model), "config", None), "legend", None)
            inputs.s2_offset, note = resolve_s2_offset(s2_offset, inputs.s2, _describe(s2_cloudy), legend)
            inputs.s2_shift = model_s2_offset(legend) - inputs.s2_offset
            log.info(note)
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
                stats = _predict_into(
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
        "inputs": {"s2": _describe(s2_cloudy), "s1": _describe(s1)},
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


def _describe(obj: Any) -> str:
    return "<xarray.DataArray>" if is_dataarray(obj) else str(obj)


def _predict_into(
    inputs: SceneInputs,
    model: nn.Module,
    out_dir: Path,
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    write_prompt: bool,
    progress: bool,
    blocksize: int,
    sources: dict[str, Any],
    overlap_io: bool = True,
    precision: str = "auto",
) -> dict[str, Any]:
    """Run the strip loop, stream into intermediates, then publish COGs. Returns statistics.

    The network runs in this thread. With ``overlap_io`` the next strip is read (S2 window, S1
    warp, normalisation) on a reader thread while this strip is predicted, and the outputs are
    blended and written on a writer thread (:class:`StripWriter`) while the next batch runs; at
    most :data:`PENDING_BATCHES` batches wait for the writer, so memory stays bounded.
    """
    height, width = inputs.shape
    grid = TileGrid.plan(height, width, tile, overlap, model_alignment(model))
    ys, xs, th, tw, canvas_width = grid.ys, grid.xs, grid.th, grid.tw, grid.canvas_width
    device = model_device(model)
    described = {k: _describe(v) for k, v in sources.items()}
    common_tags = {
        "TDPCR_VERSION": __version__,
        "SOURCE_S2": described["s2"],
        "SOURCE_S1": described["s1"],
        "CHECKPOINT": str(described["checkpoint"]),
        "TILE": str(tile),
        "OVERLAP": str(overlap),
    }
    sink = StripWriter(
        GridOfScene.of(inputs.s2),
        grid,
        out_dir,
        common_tags,
        legend=legend_of(getattr(model, "module", model)),  # the model's classes
        s2_offset=inputs.s2_offset,
        s2_shift=inputs.s2_shift,
    )
    reader = ThreadPoolExecutor(1, thread_name_prefix="tdpcr-read") if overlap_io else Inline()
    writer = ThreadPoolExecutor(1, thread_name_prefix="tdpcr-write") if overlap_io else Inline()
    pending: deque[Future] = deque()
    # where the calling thread's time goes (prediction.json "timings"; benchmarks/scene_inference)
    timings = dict.fromkeys(("forward_s", "wait_read_s", "wait_write_s", "cog_s"), 0.0)

    def submit(fn, *args) -> None:  # in order, on the writer; bounded backlog; errors surface
        pending.append(writer.submit(fn, *args))
        started = time.perf_counter()
        while pending and (len(pending) > PENDING_BATCHES or pending[0].done()):
            pending.popleft().result()
        timings["wait_write_s"] += time.perf_counter() - started

    try:
        sink.open_cloud_free()
        bar = tqdm(total=len(ys) * len(xs), unit="tile", disable=not progress, desc="tdpcr predict")
        next_strip = reader.submit(read_strip, inputs, ys[0], th, canvas_width)
        for r in range(len(ys)):
            started = time.perf_counter()
            optical, sar, valid = next_strip.result()
            timings["wait_read_s"] += time.perf_counter() - started
            if r + 1 < len(ys):
                next_strip = reader.submit(read_strip, inputs, ys[r + 1], th, canvas_width)
            if r == 0:
                warn_if_units_look_wrong(optical, inputs.s2_path, valid)
            for b0 in range(0, len(xs), batch_size):
                cols = list(range(b0, min(b0 + batch_size, len(xs))))
                opt_b = np.stack([optical[:, :, xs[c] : xs[c] + tw] for c in cols])
                sar_b = np.stack([sar[:, :, xs[c] : xs[c] + tw] for c in cols])
                started = time.perf_counter()
                out = predict_tile_batch(model, opt_b, sar_b, device, precision)
                if device.type == "cuda":  # the forward pass's time, not its launch
                    torch.cuda.synchronize(device)
                timings["forward_s"] += time.perf_counter() - started
                if write_prompt and not out.get("prompts"):
                    raise PredictionInputError(
                        f"write_prompt=True but {type(model).__name__} returns no 'prompts' "
                        "(baselines and the optical_only/concat variants have none)"
                    )
                submit(sink.add_batch, r, cols, out, write_prompt)
                bar.update(len(cols))
            # rows before the next strip's origin receive no more contributions: write them
            submit(sink.finish_strip, r, valid)
        started = time.perf_counter()
        while pending:
            pending.popleft().result()
        timings["wait_write_s"] += time.perf_counter() - started
        bar.close()
        sink.close()
        started = time.perf_counter()
        resampling = {"cloud_free": "AVERAGE", "land_cover": "MODE", "degradation_prompt": "AVERAGE"}
        for name, tmp in sink.tmp_files.items():
            to_cog(tmp, out_dir / OUTPUT_FILES[name], resampling[name], blocksize)
        write_styles(out_dir, list(sink.tmp_files), sink.legend)  # QGIS .qml beside each map
        timings["cog_s"] = time.perf_counter() - started
    finally:
        for executor in (reader, writer):
            executor.shutdown(wait=True, cancel_futures=True)
        sink.close()
        for tmp in sink.tmp_files.values():
            tmp.unlink(missing_ok=True)

    n_pixels = height * width
    stats: dict[str, Any] = {
        "products": list(sink.tmp_files),
        "height": height,
        "width": width,
        "crs": str(inputs.s2.crs),
        "n_tiles": grid.n_tiles,
        "tile_grid": [len(ys), len(xs)],
        "valid_fraction": sink.n_valid / n_pixels,
        "s1_resampled": inputs.s1_resampled,
        "s1_coverage": inputs.s1_coverage,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    if "land_cover" in sink.tmp_files:
        fractions = sink.class_counts / max(1, sink.class_counts.sum())
        stats["class_fractions"] = {name: float(f) for name, f in zip(sink.legend.names, fractions, strict=True)}
    else:
        warnings.warn(
            f"{type(model).__name__} has no segmentation head; land_cover.tif was not "
            "written (use a phase-2 checkpoint)",
            stacklevel=3,
        )
    return stats
