"""The figure of a predicted scene (overviews of the products)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from rasterio.enums import Resampling

from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.plot.composites import band_composite, sar_false_colour


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
        panels.append(("predicted land cover", legend.colourise(labels), {}))
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
                   for c, n in zip(legend.colours, legend.names, strict=True)]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8)
    return fig
