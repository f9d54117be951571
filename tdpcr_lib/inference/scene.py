"""Apply a trained model to your own Sentinel-2/Sentinel-1 scene: georeferenced, tiled, seamless.

``predict_scene`` reads a cloudy Sentinel-2 L1C GeoTIFF (13 bands, DN) and a Sentinel-1 GeoTIFF
(VV, VH in dB) of any size, runs the model tile by tile and writes, on the Sentinel-2 grid:

* ``cloud_free.tif``: 13-band uint16 DN (inverse of :mod:`tdpcr_lib.core.normalisation`), band
  descriptions ``B01 … B12, B8A`` in L1C order, nodata 0;
* ``land_cover.tif``: uint8 class codes with the legend's colour table and class names in the
  metadata, nodata 255 (the legend's ``ignore_index``); only for models with a segmentation head;
* ``degradation_prompt.tif`` (``write_prompt=True``): float32 map of the model's prompt/gate,
  nodata NaN;
* ``prediction.json``: what was run (inputs, checkpoint, tiling, timings, class fractions).

Design choices (the paper describes no scene-level inference; these are ours, see
``docs/design.md``, section "Scene prediction"):

* **Tiling and blending** are those of :mod:`tdpcr_lib.inference.tiling` (pad-aligned
  origins, ``sin²`` cross-fade, probabilities blended for segmentation), shared with
  evaluation's sliding window.
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
  (:func:`tdpcr_lib.core.io.atomic_path`). All of it happens in a hidden staging folder inside
  ``out_dir``; the finished set is published as one unit (:mod:`tdpcr_lib.inference.publish`):
  products an earlier run wrote and this one does not are removed, ``prediction.json`` always
  describes exactly the products beside it, files tdpcr did not write are never replaced, and the
  leftovers of a killed run are cleaned by the next prediction into the same folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import torch
from rasterio.windows import Window
from torch import nn

from tdpcr_lib import __version__
from tdpcr_lib.core.bands import S2_BANDS
from tdpcr_lib.core.io import atomic_write_json
from tdpcr_lib.core.legend import LEGEND_NAME_TAG, legend_of
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.core.progress import tqdm
from tdpcr_lib.core.runtime import model_device
from tdpcr_lib.inference.inputs import (
    PredictionInputError,
    SceneInputs,
    _is_dataarray,
    _materialise,
    _read_strip,
    _warn_if_units_look_wrong,
    scene_inputs,
)
from tdpcr_lib.inference.metadata import portable
from tdpcr_lib.inference.predictor import load_predictor, predict_tile_batch, prompt_map
from tdpcr_lib.inference.products import (
    CLOUD_FREE_NODATA,
    OUTPUT_FILES,
    _intermediate_profile,
    _to_cog,
    check_blocksize,
)
from tdpcr_lib.inference.publish import check_replaceable, new_staging, publish, recover_products
from tdpcr_lib.inference.tiling import TileGrid, check_tiling, model_alignment

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
    if batch_size is not None and batch_size < 1:
        raise PredictionInputError(f"batch_size must be >= 1, got {batch_size}")
    try:  # before any work: a bad block size used to fail only after the whole prediction
        check_blocksize(blocksize)
    except ValueError as err:
        raise PredictionInputError(str(err)) from None
    out_dir = Path(out_dir)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tdpcr-predict-") as scratch_name:
        scratch = Path(scratch_name)
        s2_path = _materialise(s2_cloudy, "Sentinel-2", scratch)
        s1_path = _materialise(s1, "Sentinel-1", scratch)
        # GDAL's block cache would otherwise grow with the scene (up to 5 % of RAM); a small cap
        # keeps peak memory independent of scene size (measured in benchmarks/scene_inference).
        # rasterio hands an int to GDALSetCacheMax, i.e. *bytes*: GDAL_CACHEMAX=128 was a 128-byte
        # cache, which made decimated reads re-decompress every block per output row (22 s for a
        # 300x350 scene); say MiB explicitly.
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024), \
                scene_inputs(s2_path, s1_path) as inputs:
            model, meta = load_predictor(checkpoint, device)
            if batch_size is None:
                batch_size = 16 if model_device(model).type == "cuda" else 2
            out_dir.mkdir(parents=True, exist_ok=True)
            check_replaceable(out_dir)  # before any work: never replace a file tdpcr did not write
            for action in recover_products(out_dir):
                print(f"{out_dir}: {action}", flush=True)
            # products are made in a staging folder and published together (inference.publish)
            staging = new_staging(out_dir)
            was_training = model.training
            model.eval()
            try:
                stats = _predict_into(inputs, model, staging, tile=tile, overlap=overlap,
                                      batch_size=batch_size, write_prompt=write_prompt,
                                      progress=progress, blocksize=blocksize,
                                      sources={"s2": s2_cloudy, "s1": s1,
                                               "checkpoint": meta.get("source")})
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
        "tile": tile, "overlap": overlap, "batch_size": batch_size,
        "device": str(model_device(model)),
        "wall_time_s": round(time.time() - started, 3),
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
    return "<xarray.DataArray>" if _is_dataarray(obj) else str(obj)


def _predict_into(inputs: SceneInputs, model: nn.Module, out_dir: Path, *, tile: int,
                  overlap: int, batch_size: int, write_prompt: bool, progress: bool,
                  blocksize: int, sources: dict[str, Any]) -> dict[str, Any]:
    """Run the strip loop, stream into intermediates, then publish COGs. Returns statistics."""
    norm = load_normalisation()
    legend = legend_of(getattr(model, "module", model))  # the classes the model predicts
    height, width = inputs.shape
    grid = TileGrid.plan(height, width, tile, overlap, model_alignment(model))
    ys, xs, th, tw, canvas_width = grid.ys, grid.xs, grid.th, grid.tw, grid.canvas_width
    device = model_device(model)

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
                out = predict_tile_batch(model, opt_b, sar_b, device)
                rec = out["reconstruction"].float().clamp(0.0, 1.0).cpu().numpy()
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
                    prompt = prompt_map(prompts, th, tw).cpu().numpy()
                    if acc_prompt is None:
                        acc_prompt = np.zeros((th, canvas_width), dtype=np.float32)
                for k, c in enumerate(cols):
                    x0 = xs[c]
                    weight = grid.weight(r, c)
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
                        **{LEGEND_NAME_TAG: legend.name},
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
        "n_tiles": grid.n_tiles, "tile_grid": [len(ys), len(xs)],
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
