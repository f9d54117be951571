"""The figure of a predicted scene (overviews of the products)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil  # noqa: F401 - kept as written; only ruff's preview F401 flags it
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from rasterio.enums import Resampling

from tdpcr_lib.core.legend import legend_of_tags, load_legend
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.plot.composites import GATE_LABEL, band_composite, sar_caption, sar_false_colour


def _extent(path: str | Path) -> tuple[tuple[float, float, float, float], str, bool]:
    """``imshow`` extent (left, right, bottom, top) in map units, the CRS name, projected?"""
    with rasterio.open(path) as src:
        b = src.bounds
        crs = src.crs
    name = crs.to_string() if crs is not None else "no CRS"
    return (b.left, b.right, b.bottom, b.top), name, bool(crs is not None and crs.is_projected)


def _scale_bar(ax: Any, extent: tuple[float, float, float, float]) -> None:
    """A black-and-white scale bar of a round length (≈ 1/5 of the width), bottom left."""
    left, right, bottom, top = extent
    target = (right - left) / 5
    length = 10 ** np.floor(np.log10(target))
    for step in (5, 2, 1):
        if step * length <= target:
            length *= step
            break
    x0, y0 = left + 0.05 * (right - left), bottom + 0.06 * (top - bottom)
    ax.plot([x0, x0 + length], [y0, y0], color="white", linewidth=5, solid_capstyle="butt")
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=2.5, solid_capstyle="butt")
    text = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(
        x0 + length / 2,
        y0 + 0.02 * (top - bottom),
        text,
        ha="center",
        va="bottom",
        fontsize=8,
        color="black",
        backgroundcolor=(1, 1, 1, 0.6),
    )


def _read_overview(path: str | Path, max_size: int, resampling: Resampling) -> np.ndarray:
    """The whole raster decimated to at most ``max_size`` px on its long side (uses overviews)."""
    with rasterio.open(path) as src:
        scale = max(1.0, max(src.width, src.height) / max_size)
        shape = (src.count, max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        return src.read(out_shape=shape, resampling=resampling)


def plot_scene_prediction(
    s2_cloudy: str | Path,
    outputs: dict[str, Path],
    s1: str | Path | None = None,
    max_size: int = 1024,
    class_names: Any = None,
) -> Any:
    """Before/after figure: cloudy input, (SAR,) cloud-free output, land cover (and gate).

    Reads decimated versions (COG overviews) so it is cheap for full scenes. Both optical panels
    share one common-gain stretch taken from the cloud-free output, so colours are comparable.
    Axes are in map coordinates of the Sentinel-2 grid (easting/northing in the CRS named in the
    title) with a scale bar; the SAR title gives its dB ranges, the gate has a 0–1 colour bar.
    """
    norm = load_normalisation()
    legend = load_legend()
    if outputs.get("land_cover") is not None:
        with rasterio.open(outputs["land_cover"]) as src:
            legend = legend_of_tags(src.tags())  # the classes the product was written with
    cloudy = norm.s2_to_unit(_read_overview(s2_cloudy, max_size, Resampling.average))
    clear = norm.s2_to_unit(_read_overview(outputs["cloud_free"], max_size, Resampling.average))
    panels: list[tuple[str, Any, dict]] = [("cloudy Sentinel-2 input", band_composite(cloudy, reference=clear), {})]
    if s1 is not None:
        db = _read_overview(s1, max_size, Resampling.average).astype(np.float32)
        sar = norm.s1_to_unit(db)
        panels.append((f"Sentinel-1\n{sar_caption(sar)}", sar_false_colour(sar), {}))
    panels.append(("predicted cloud-free", band_composite(clear, reference=clear), {}))
    if "land_cover" in outputs:
        labels = _read_overview(outputs["land_cover"], max_size, Resampling.nearest)[0]
        panels.append(("predicted land cover", legend.colourise(labels), {}))
    if "degradation_prompt" in outputs:
        gate = _read_overview(outputs["degradation_prompt"], max_size, Resampling.average)[0]
        panels.append(("gate (degradation_prompt.tif)", gate, {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}))
    extent, crs_name, projected = _extent(outputs["cloud_free"])
    fig = Figure(figsize=(4.2 * len(panels), 4.9), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    unit = "m" if projected else "°"
    for k, (ax, (title, image, kwargs)) in enumerate(zip(axes, panels, strict=True)):
        im = ax.imshow(image, interpolation="nearest", extent=extent, **kwargs)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(style="plain", useOffset=False)
        ax.set_xlabel(f"easting ({unit})" if projected else "longitude", fontsize=7)
        if k == 0:
            ax.set_ylabel(f"northing ({unit})" if projected else "latitude", fontsize=7)
        if projected:
            _scale_bar(ax, extent)
        if "cmap" in kwargs:
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            bar.set_label(GATE_LABEL, fontsize=7)
            bar.ax.tick_params(labelsize=6)
    fig.suptitle(f"map coordinates: {crs_name}", fontsize=9)
    if "land_cover" in outputs:
        names = list(class_names) if class_names is not None else list(legend.names)
        handles = [
            Patch(color=np.asarray(c) / 255.0, label=f"{k}: {n}")
            for k, (c, n) in enumerate(zip(legend.colours, names, strict=True))
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8)
    return fig
