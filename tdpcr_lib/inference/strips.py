"""The output side of scene prediction: blending tile outputs into strip accumulators and
streaming finished rows into the intermediate GeoTIFFs.

:func:`tdpcr_lib.inference.scene.predict_scene` runs the network in the calling thread and hands
every batch's outputs to one :class:`StripWriter`, on a worker thread (its own, so the blending,
the DN conversion, the arg-max and the compressed writes overlap with the next batch's forward
pass). Only that thread touches the accumulators and the writers, so they need no locks; the
strip buffers hold one row of tiles (``tile`` px tall, full scene width), whatever the scene's
height.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.transform import Affine
from rasterio.windows import Window

from tdpcr_lib.core.bands import S2_BANDS
from tdpcr_lib.core.legend import LEGEND_NAME_TAG, Legend, load_legend
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.inference.offset import OFFSET_TAG
from tdpcr_lib.inference.overviews import OverviewPyramid
from tdpcr_lib.inference.predictor import prompt_map
from tdpcr_lib.inference.products import CLOUD_FREE_NODATA, intermediate_profile
from tdpcr_lib.inference.tiling import TileGrid


@dataclass(frozen=True)
class GridOfScene:
    """The georeferencing the writers need, copied from the S2 dataset before any thread starts
    (a GDAL dataset must not be used from two threads; the reader thread owns the inputs)."""

    width: int
    height: int
    crs: Any
    transform: Any

    @classmethod
    def of(cls, dataset: Any) -> GridOfScene:
        return cls(dataset.width, dataset.height, dataset.crs, dataset.transform)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float32 NumPy copy/view of a model output (on any device)."""
    return tensor.detach().float().cpu().numpy()


def _probabilities(logits: torch.Tensor) -> np.ndarray:
    """Softmax over the class axis, as float32 NumPy.

    On the CPU it is computed with NumPy: this runs on the writer thread, and a torch operator
    there would start a second OpenMP team next to the forward pass's (oversubscribing the
    cores); on a GPU it runs there before the copy.
    """
    if logits.device.type != "cpu":
        return torch.softmax(logits.float(), dim=1).cpu().numpy()
    values = _numpy(logits)
    values = np.exp(values - values.max(axis=1, keepdims=True))
    values /= values.sum(axis=1, keepdims=True)
    return values


class StripWriter:
    """Accumulates blended outputs of one strip of tiles and writes its finished rows.

    Parameters
    ----------
    scene
        Output grid (:class:`GridOfScene`).
    grid
        The tile plan.
    out_dir
        Folder of the intermediate files (``.{product}.*.partial.tif``).
    common_tags
        GeoTIFF tags written into every product.
    legend
        The classes the model predicts (default: LuojiaSET's packaged legend).
    s2_offset, s2_shift
        The input's DN offset (stated in ``cloud_free.tif``) and the shift the input got into
        the model's convention (taken off the reconstruction again; ``inference.offset``).
    blocksize
        Block size of the COGs to come: the overview levels GDAL would make for it are built
        from each finished strip (:mod:`tdpcr_lib.inference.overviews`) and written beside the
        intermediates as their external overviews, which the COG copy then uses. ``None``: no
        overviews here (GDAL computes them during the COG copy, from the whole intermediate).
    """

    def __init__(
        self,
        scene: GridOfScene,
        grid: TileGrid,
        out_dir: Path,
        common_tags: dict[str, str],
        legend: Legend | None = None,
        s2_offset: int = 0,
        s2_shift: int = 0,
        blocksize: int | None = None,
    ) -> None:
        self.scene, self.grid, self.out_dir, self.common_tags = scene, grid, out_dir, common_tags
        self.blocksize = blocksize
        self.s2_offset, self.s2_shift = s2_offset, s2_shift
        self.norm = load_normalisation()
        self.legend = legend if legend is not None else load_legend()
        th, canvas_width = grid.th, grid.canvas_width
        self.acc_rec = np.zeros((len(S2_BANDS), th, canvas_width), dtype=np.float32)
        self.acc_w = np.zeros((th, canvas_width), dtype=np.float32)
        self.acc_seg: np.ndarray | None = None
        self.acc_prompt: np.ndarray | None = None
        self.class_counts = np.zeros(self.legend.num_classes, dtype=np.int64)
        self.n_valid = 0
        self.tmp_files: dict[str, Path] = {}
        self.writers: dict[str, Any] = {}
        self.pyramids: dict[str, OverviewPyramid] = {}
        self.side_files: list[Path] = []  # the overview levels' files (removed after the COG copy)

    # ------------------------------------------------------------------------------------------
    def open_writer(self, name: str, count: int, dtype: str, nodata: float | None) -> Any:
        """A streamed intermediate GTiff for product ``name`` (its path kept for the COG copy)."""
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial.tif", dir=self.out_dir)
        os.close(fd)
        self.tmp_files[name] = Path(tmp)
        dst = rasterio.open(tmp, "w", **intermediate_profile(self.scene, count, dtype, nodata))
        self.writers[name] = dst
        if self.blocksize is not None:
            self.pyramids[name] = OverviewPyramid(
                self.scene.width,
                self.scene.height,
                dtype,
                nodata,
                "mode" if name == "land_cover" else "average",  # as OVERVIEW_RESAMPLING in predict_into
                self.blocksize,
                lambda level, w, h: self._open_level(Path(tmp), level, w, h, count, dtype, nodata),
            )
        return dst

    def _open_level(self, tmp: Path, level: int, width: int, height: int, count: int, dtype: str, nodata) -> Any:
        """Overview ``level`` of ``tmp``: GDAL's external overview chain ``tmp.ovr``, ``tmp.ovr.ovr``..."""
        path = tmp.with_name(tmp.name + ".ovr" * level)
        self.side_files.append(path)
        scale = Affine.scale(self.scene.width / width, self.scene.height / height)
        level_grid = GridOfScene(width, height, self.scene.crs, self.scene.transform @ scale)
        return rasterio.open(path, "w", **intermediate_profile(level_grid, count, dtype, nodata))

    def _write(self, name: str, rows: np.ndarray, window: Window) -> None:
        """Write finished rows of product ``name`` and feed them to its overview levels."""
        self.writers[name].write(rows, window=window)
        if name in self.pyramids:
            self.pyramids[name].add_rows(rows)

    def open_cloud_free(self) -> None:
        cf = self.open_writer("cloud_free", len(S2_BANDS), "uint16", CLOUD_FREE_NODATA)
        for i, name in enumerate(S2_BANDS, start=1):
            cf.set_band_description(i, name)
        cf.update_tags(
            PRODUCT="cloud-free Sentinel-2 reconstruction",
            UNITS="L1C digital number (TOA reflectance x 10000, offset as in input)",
            **{OFFSET_TAG: str(self.s2_offset)},
            NODATA_MEANING="0 = no data in the Sentinel-2 input",
            **self.common_tags,
        )

    def _open_land_cover(self) -> None:
        legend = self.legend
        lc = self.open_writer("land_cover", 1, "uint8", legend.ignore_index)
        lc.set_band_description(1, "land_cover")
        lc.write_colormap(1, legend.rasterio_colormap())
        lc.update_tags(
            PRODUCT="land-cover classes (argmax of blended probabilities)",
            LEGEND=json.dumps(dict(zip(map(str, legend.codes), legend.names, strict=True))),
            NODATA_MEANING=f"{legend.ignore_index} = no data in the Sentinel-2 input",
            **{LEGEND_NAME_TAG: legend.name},
            **{f"CLASS_{c}": n for c, n in zip(legend.codes, legend.names, strict=True)},
            **self.common_tags,
        )

    def _open_prompt(self) -> None:
        pr = self.open_writer("degradation_prompt", 1, "float32", float("nan"))
        pr.set_band_description(1, "degradation_prompt")
        pr.update_tags(
            PRODUCT="model prompt/gate map (finest level, channel mean, blended like the other outputs)",
            **self.common_tags,
        )

    # ------------------------------------------------------------------------------------------
    def add_batch(self, row: int, cols: list[int], out: dict[str, Any], write_prompt: bool) -> None:
        """Blend one batch of model outputs (tiles ``(row, c)`` for ``c`` in ``cols``)."""
        grid, tw = self.grid, self.grid.tw
        rec = np.clip(_numpy(out["reconstruction"]), 0.0, 1.0)
        seg = out.get("segmentation")
        probs = None
        if seg is not None:
            probs = _probabilities(seg)
            if self.acc_seg is None:
                self.acc_seg = np.zeros((probs.shape[1], grid.th, grid.canvas_width), dtype=np.float32)
        prompt = None
        if write_prompt:
            prompt = prompt_map(out["prompts"], grid.th, tw).cpu().numpy()
            if self.acc_prompt is None:
                self.acc_prompt = np.zeros((grid.th, grid.canvas_width), dtype=np.float32)
        for k, c in enumerate(cols):
            x0 = grid.xs[c]
            weight = grid.weight(row, c)
            self.acc_rec[:, :, x0 : x0 + tw] += rec[k] * weight
            self.acc_w[:, x0 : x0 + tw] += weight
            if probs is not None and self.acc_seg is not None:
                self.acc_seg[:, :, x0 : x0 + tw] += probs[k] * weight
            if prompt is not None and self.acc_prompt is not None:
                self.acc_prompt[:, x0 : x0 + tw] += prompt[k] * weight

    def finish_strip(self, row: int, valid: np.ndarray) -> None:
        """Write the rows no later strip touches, then slide the buffers to the next origin."""
        grid, height, width = self.grid, self.scene.height, self.scene.width
        ys, th, y0 = grid.ys, grid.th, grid.ys[row]
        last = row + 1 == len(ys)
        n_final = height - y0 if last else ys[row + 1] - y0
        window = Window(0, y0, width, n_final)
        ok = valid[:n_final, :width]
        self.n_valid += int(ok.sum())
        total_w = self.acc_w[:n_final, :width]
        dn = self.norm.s2_to_dn(self.acc_rec[:, :n_final, :width] / total_w)
        if self.s2_shift:  # back from the model's offset convention into the input's
            dn = np.clip(dn.astype(np.int32) - self.s2_shift, 1, 65535)
        dn = np.where(ok, np.maximum(dn, 1), CLOUD_FREE_NODATA).astype(np.uint16)
        self._write("cloud_free", dn, window)
        if self.acc_seg is not None:
            if "land_cover" not in self.writers:
                self._open_land_cover()
            legend = self.legend
            labels = self.acc_seg[:, :n_final, :width].argmax(axis=0)
            self.class_counts += np.bincount(labels[ok], minlength=legend.num_classes)[: legend.num_classes]
            labels = np.where(ok, labels, legend.ignore_index).astype(np.uint8)
            self._write("land_cover", labels[None], window)
        if self.acc_prompt is not None:
            if "degradation_prompt" not in self.writers:
                self._open_prompt()
            gate = np.where(ok, self.acc_prompt[:n_final, :width] / total_w, np.nan).astype(np.float32)
            self._write("degradation_prompt", gate[None], window)
        if last:
            return
        for acc in (self.acc_rec, self.acc_seg, self.acc_prompt, self.acc_w):
            if acc is not None:
                acc[..., : th - n_final, :] = acc[..., n_final:, :]
                acc[..., th - n_final :, :] = 0.0

    def close(self) -> None:
        """Close every writer (idempotent)."""
        for dst in self.writers.values():
            if not dst.closed:
                dst.close()
        for pyramid in self.pyramids.values():
            pyramid.close()

    def check_overviews(self) -> None:
        """Raise if an overview level misses rows (every strip must have been finished)."""
        for name, pyramid in self.pyramids.items():
            if not pyramid.complete:
                raise RuntimeError(f"{name}: overview levels incomplete after the last strip")


class Inline:
    """A stand-in for a one-thread executor that runs each task when it is submitted
    (``predict_scene(..., overlap_io=False)``: reading, prediction and writing in turn)."""

    def submit(self, fn: Any, *args: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Nothing to stop."""
