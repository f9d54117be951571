"""The viewer's fast renderer: the comparison of one tile as one mosaic image in one axes.

:func:`tdpcr_lib.plot.compare.plot_comparison` builds one matplotlib axes per panel (~80 with
all models, plus colour bars); creating and drawing them took 5–15 s per control change on a
2-core machine, almost all of it matplotlib bookkeeping (ticks, axes, layout), not pixels. Here
every panel is coloured with NumPy (the same composites, stretch, colour maps and scales as the
static figure), pasted into one RGB array and drawn with a single ``imshow`` plus text labels, so
a view-only change costs well under a second. Colour scales are shared by all rows (one error
scale across models; the gate is 0–1), so one colour bar per scale sits in the bottom row.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from tdpcr_lib.core.arrays import Window, crop, crop_rgb, to_numpy
from tdpcr_lib.core.legend import Legend
from tdpcr_lib.plot.composites import (
    DEFAULT_COMPOSITE,
    GATE_LABEL,
    absolute_error_map,
    band_composite,
    comparison_setup,
    predicted_labels,
    prompt_maps,
    sar_caption,
    sar_false_colour,
)

#: Pixels per panel side, title strip height and row-label width of the mosaic.
PANEL, TITLE, LABEL, GAP = 150, 20, 190, 6

#: Smallest font (pt) in the mosaic: 8 pt at 100 dpi is 11 px, readable at 1:1 (7 pt was 9.7 px).
SMALL_FONT = 8

#: Width (px) the land-cover legend needs ("6: forest (densely vegetated)" at :data:`SMALL_FONT`).
LEGEND_WIDTH = 260

#: Characters per line of a row label (wrapped inside the label column, never over the panels).
LABEL_CHARS = 22


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of ``(h, w, 3)`` to ``(size, size, 3)`` (pixels stay crisp)."""
    h, w = rgb.shape[:2]
    rows = np.minimum(np.arange(size) * h // size, h - 1)
    cols = np.minimum(np.arange(size) * w // size, w - 1)
    return rgb[np.ix_(rows, cols)]


def _coloured(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    scaled = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    return matplotlib.colormaps[cmap](scaled)[..., :3]


def plot_comparison_mosaic(
    sample: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]],
    composite: str = DEFAULT_COMPOSITE,
    models: Sequence[str] | None = None,
    window: Window | None = None,
    show_prompts: bool = True,
    row_titles: Mapping[str, str] | None = None,
    class_names: Sequence[str] | Legend | None = None,
) -> Figure:
    """The panels of :func:`tdpcr_lib.plot.compare.plot_comparison` (less the metrics column)
    as one image: row 0 the inputs, then one row per model.

    Parameters are those of :func:`~tdpcr_lib.plot.compare.plot_comparison`.
    """
    models, legend, names, shape, window, target, composite = comparison_setup(
        sample, outputs, models, window, composite, class_names
    )

    def rgb_panel(image: np.ndarray) -> np.ndarray:
        return _resize(crop_rgb(np.asarray(image, dtype=np.float32), window), PANEL)

    def map_panel(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
        return _resize(_coloured(crop(values, window), cmap, vmin, vmax), PANEL)

    true_labels = legend.sanitise(to_numpy(sample["mask"]))
    cloud = to_numpy(sample["cloud_mask"]).astype(np.float32)
    rows: list[tuple[str, list[tuple[str, np.ndarray | None]]]] = [
        (
            "inputs",
            [
                ("SAR (VV, VH, VV−VH)", rgb_panel(sar_false_colour(sample["sar"]))),
                ("cloudy input", rgb_panel(band_composite(sample["optical"], composite, reference=target))),
                ("target (clear)", rgb_panel(band_composite(target, composite, reference=target))),
                ("cloud mask (white = cloud)", rgb_panel(np.repeat(cloud[..., None], 3, axis=2))),
                ("true land cover", rgb_panel(legend.colourise(true_labels) / 255.0)),
            ],
        )
    ]
    errors = {m: absolute_error_map(outputs[m]["reconstruction"], target) for m in models}
    err_max = max([float(np.percentile(crop(e, window), 99)) for e in errors.values()] + [1e-6])
    present = set(np.unique(true_labels).tolist())
    any_gate = False
    for name in models:
        out = outputs[name]
        panels: list[tuple[str, np.ndarray | None]] = [
            ("reconstruction", rgb_panel(band_composite(out["reconstruction"], composite, reference=target))),
            ("|error| (band mean)", map_panel(errors[name], "magma", 0.0, err_max)),
        ]
        if out.get("segmentation") is not None:
            labels = predicted_labels(out["segmentation"])
            present.update(np.unique(labels).tolist())
            panels.append(("predicted land cover", rgb_panel(legend.colourise(labels) / 255.0)))
        else:
            panels.append(("no segmentation head", None))
        if show_prompts:
            maps = prompt_maps(out, shape)
            any_gate = any_gate or bool(maps)
            panels += [(f"gate L{level + 1}", map_panel(m, "viridis", 0.0, 1.0)) for level, m in enumerate(maps)]
        rows.append(((row_titles or {}).get(name, name), panels))

    n_cols = max(len(p) for _, p in rows)
    cell_w, cell_h = PANEL + GAP, PANEL + TITLE + GAP
    height = TITLE + len(rows) * cell_h + 2 * TITLE + 14
    # The legends go into row 0's free cells when the model rows are wider than the inputs
    # row (models with gates); only otherwise does the picture grow a legend column. A narrower
    # picture is shown 1:1 in more of JupyterLab's width (it was 1,582 px for 4 gate levels).
    free = (n_cols - len(rows[0][1])) * cell_w
    legend_in_row0 = free >= LEGEND_WIDTH
    width = LABEL + n_cols * cell_w + (0 if legend_in_row0 else LEGEND_WIDTH)
    mosaic = np.ones((height, width, 3), dtype=np.float32)
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    texts: list[tuple[float, float, str, dict[str, Any]]] = []
    zoom = (
        f", zoom rows {window.row}:{window.row + window.height}, cols {window.col}:{window.col + window.width}"
        if window
        else ""
    )
    bucket, tile_id = sample.get("bucket", "?"), sample.get("id", "?")
    texts.append(
        (
            6,
            TITLE - 4,
            f"tile {tile_id} (cloud cover {bucket}) — {composite}, one "
            f"stretch for all optical panels{zoom}; {sar_caption(sample['sar'])}",
            {"fontsize": 9},
        )
    )
    for r, (label, panels) in enumerate(rows):
        y0 = TITLE + r * cell_h + TITLE
        wrapped = "\n".join(textwrap.fill(line, LABEL_CHARS) for line in label.split("\n"))
        texts.append((6, y0 + PANEL / 2, wrapped, {"fontsize": SMALL_FONT, "fontweight": "bold", "va": "center"}))
        for c, (title, panel) in enumerate(panels):
            x0 = LABEL + c * cell_w
            texts.append((x0, y0 - 4, title, {"fontsize": SMALL_FONT}))
            if panel is not None:
                mosaic[y0 : y0 + PANEL, x0 : x0 + PANEL] = panel
    # legends to the right of row 0: land cover and cloud mask
    x_leg = LABEL + (len(rows[0][1]) if legend_in_row0 else n_cols) * cell_w + 4
    y_leg = TITLE + TITLE
    codes = sorted(c for c in present if 0 <= c < legend.num_classes) or list(legend.codes)
    for k, code in enumerate(codes):
        y = y_leg + 16 * k
        mosaic[y : y + 12, x_leg : x_leg + 12] = np.asarray(legend.colours[code]) / 255.0
        texts.append((x_leg + 16, y + 10, f"{code}: {names[code]}", {"fontsize": SMALL_FONT}))
    # colour bars (shared by all rows) along the bottom
    y_bar = height - TITLE - 10
    bars = [("magma", f"|error|, reflectance: 0 … {err_max:.3f}")]
    if any_gate:
        bars.append(("viridis", GATE_LABEL))
    for k, (cmap, text) in enumerate(bars):
        x0 = LABEL + k * 2 * cell_w
        ramp = np.linspace(0.0, 1.0, 2 * cell_w - 40)
        mosaic[y_bar : y_bar + 10, x0 : x0 + ramp.size] = _coloured(ramp, cmap, 0.0, 1.0)[None]
        texts.append((x0, y_bar - 3, text, {"fontsize": SMALL_FONT}))
    # figimage pastes the pixels 1:1 (no axes, no resampling: the slowest step of imshow)
    fig.figimage((mosaic * 255).astype(np.uint8), xo=0, yo=0, origin="upper")
    for x, y, text, kw in texts:
        fig.text(x / width, 1 - y / height, text, **kw)
    return fig
