"""The strip loop of scene prediction: read strips ahead on one thread, run the model over the tiles
of each strip, blend them and write the finished rows (and the overview levels they complete) on
another, then convert the products to Cloud-Optimized GeoTIFFs (used by
:func:`tdpcr_lib.inference.scene.predict_scene`)."""

from __future__ import annotations

import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio.shutil  # noqa: F401 - kept as written; only ruff's preview F401 flags it
import torch
from torch import nn

from tdpcr_lib import __version__
from tdpcr_lib.core.legend import legend_of
from tdpcr_lib.core.progress import tqdm
from tdpcr_lib.core.runtime import model_device
from tdpcr_lib.inference.inputs import PredictionInputError, SceneInputs, is_dataarray
from tdpcr_lib.inference.predictor import predict_tile_batch
from tdpcr_lib.inference.products import OUTPUT_FILES, to_cog
from tdpcr_lib.inference.strip_reads import read_strip, warn_if_units_look_wrong
from tdpcr_lib.inference.strips import GridOfScene, Inline, StripWriter
from tdpcr_lib.inference.styles import write_styles
from tdpcr_lib.inference.tiling import TileGrid, model_alignment

#: Batches of outputs that may wait for the writer thread (bounds the memory of the overlap).
PENDING_BATCHES = 2


def describe_source(obj: Any) -> str:
    return "<xarray.DataArray>" if is_dataarray(obj) else str(obj)


def predict_into(
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
    overviews_while_writing: bool = True,
) -> dict[str, Any]:
    """Run the strip loop, stream into intermediates, then publish COGs. Returns statistics.

    The network runs in this thread. With ``overlap_io`` the next strip is read (S2 window, S1
    warp, normalisation) on a reader thread while this strip is predicted, and the outputs are
    blended and written on a writer thread (:class:`StripWriter`) while the next batch runs; at
    most :data:`PENDING_BATCHES` batches wait for the writer, so memory stays bounded.

    With ``overviews_while_writing`` the writer also builds the COG overview levels from each
    finished strip (:mod:`tdpcr_lib.inference.overviews`), so the COG copy at the end no longer
    reads the full-resolution intermediate a second time to resample it; ``False`` leaves them
    to GDAL's COG driver (same full-resolution pixels and overviews; the benchmark's "before").
    """
    height, width = inputs.shape
    grid = TileGrid.plan(height, width, tile, overlap, model_alignment(model))
    ys, xs, th, tw, canvas_width = grid.ys, grid.xs, grid.th, grid.tw, grid.canvas_width
    device = model_device(model)
    described = {k: describe_source(v) for k, v in sources.items()}
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
        blocksize=blocksize if overviews_while_writing else None,
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
        sink.check_overviews()
        sink.close()
        started = time.perf_counter()
        # the same resampling as the levels built while writing (StripWriter), which GDAL then uses
        resampling = {"cloud_free": "AVERAGE", "land_cover": "MODE", "degradation_prompt": "AVERAGE"}
        for name, tmp in sink.tmp_files.items():
            to_cog(tmp, out_dir / OUTPUT_FILES[name], resampling[name], blocksize)
        write_styles(out_dir, list(sink.tmp_files), sink.legend)  # QGIS .qml beside each map
        timings["cog_s"] = time.perf_counter() - started
    finally:
        for executor in (reader, writer):
            executor.shutdown(wait=True, cancel_futures=True)
        sink.close()
        for tmp in [*sink.tmp_files.values(), *sink.side_files]:
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
