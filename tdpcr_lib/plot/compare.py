"""Figures for comparing models tile by tile: pure functions that return matplotlib Figures.

Everything here takes a *sample dict* (the data layer's contract: ``optical``, ``sar``, ``target``,
``mask``, ``cloud_mask``, ``bucket``, ``id``; tensors or arrays, with or without a batch dimension
of 1) and *model output dicts* (``reconstruction``, optionally ``segmentation`` logits and
``prompts``). Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot, so no
global figure state accumulates and nothing needs a display; :func:`save_figure` writes PNGs
atomically. In a notebook, ``display(fig)`` shows them. The
interactive viewer (:mod:`tdpcr_lib.plot.widgets`) and the notebooks only call these functions.

Display choices (the paper shows no figures we could copy, so these are ours):

* **One stretch for all optical panels of a tile** (:func:`tdpcr_lib.core.arrays.stretch_limits`
  with ``common=True``): one gain and offset for all three channels, taken from the clear
  target (2 % of the darkest, 98 % of the brightest channel) and applied to the cloudy input and
  to every reconstruction, so colours are comparable between panels and a small excess in one
  band stays a faint tint instead of saturating (clouds saturate to white, which is what they are).
* **SAR false colour**: R = VV, G = VH, B = VV − VH (all in dB), each 2-98 % stretched; the
  dB range of each channel is in the panel title.
* **Absolute error**: mean over the 13 bands of ``|reconstruction − target|`` in reflectance units,
  on a shared colour scale (0 … 99th percentile over all models shown) so models can be compared.
* **Gate maps** (the models' ``prompts`` output): each PGF level's injection gate, averaged over
  channels, on its absolute 0–1 scale (the weight given to SAR), with a colour bar, upsampled to
  the tile by nearest neighbour so the zoom window applies to it too.
* **Per-tile metrics** are computed on the whole tile (not the zoom window) with the project's
  :class:`tdpcr_lib.metrics.accumulator.EvaluationAccumulator`, i.e. exactly the evaluation definitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from tdpcr_lib.core.arrays import Window, crop, crop_rgb, spatial_shape, to_numpy
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
from tdpcr_lib.plot.tile_metrics import format_metrics as format_metrics
from tdpcr_lib.plot.tile_metrics import metrics_frame as metrics_frame
from tdpcr_lib.plot.tile_metrics import tile_metrics as tile_metrics


# ----------------------------------------------------------------------------- figures
def _off(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _legend_handles(legend: Legend, labels: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[Patch]:
    present = set()
    for lab in labels:
        present.update(int(v) for v in np.unique(lab) if 0 <= int(v) < legend.num_classes)
    codes = sorted(present) or list(legend.codes)
    return [
        Patch(
            facecolor=np.asarray(legend.colours[c]) / 255.0, edgecolor="k", label=f"{c}: {(names or legend.names)[c]}"
        )
        for c in codes
    ]


def plot_comparison(
    sample: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]],
    composite: str = DEFAULT_COMPOSITE,
    models: Sequence[str] | None = None,
    window: Window | tuple[int, int, int, int] | None = None,
    show_prompts: bool = True,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    panel_size: float = 2.1,
    show_metrics: bool = True,
    row_titles: Mapping[str, str] | None = None,
    class_names: Sequence[str] | Legend | None = None,
) -> Figure:
    """The full side-by-side comparison of one tile.

    Row 0: SAR false colour, cloudy input, target, cloud mask, true land cover, legends (land
    cover and cloud mask). One row per model: reconstruction, absolute-error map, predicted land
    cover (when the model segments), the gate map of each PGF level (when it has gates and
    ``show_prompts``), and (``show_metrics``) the tile's metrics. Below the last row, one colour
    bar for the error maps (one scale for all models) and one for the gate maps (0–1). Laid out
    by matplotlib's constrained layout: no title, label, legend or colour bar overlaps another
    at any number of models.

    Parameters
    ----------
    sample : dict
        A dataset sample (batch dimension of 1 allowed).
    outputs : dict
        Model name → that model's output dict on this sample.
    composite : str
        Band composite (see :func:`resolve_composite`).
    models : sequence of str, optional
        Which of ``outputs`` to show, in order (default: all).
    window : Window, optional
        Zoom/crop window in tile pixels; the target panel marks it when zoomed.
    show_prompts : bool
        Draw the gate maps.
    metrics : dict, optional
        Model name → :func:`tile_metrics` result; computed when not given (and needed).
    show_metrics : bool
        Draw a metrics column (the viewer shows them as a table widget beside the figure
        instead, and skips this column).
    row_titles : dict, optional
        Model name → row label (e.g. with the run's training budget); default the name.
    class_names : sequence of str or Legend, optional
        Land-cover class names by code (default: the packaged legend's).
    """
    models, legend, names, shape, window, target, composite = comparison_setup(
        sample, outputs, models, window, composite, class_names
    )

    n_prompt_cols = 0
    if show_prompts:
        n_prompt_cols = max([len(outputs[m].get("prompts") or []) for m in models] + [0])
    n_cols = max(6, 3 + n_prompt_cols + int(show_metrics))
    n_rows = 1 + len(models)
    # Constrained layout places the suptitle, panel titles, row labels and colour bars without
    # overlaps at any number of rows (a top margin fixed as a share of the figure put the title
    # over the panels from six rows on). Colour bars are shared (one per scale) and sit below
    # the last row: a bar beside every error map widened that column and opened a gap in row 0.
    fig = Figure(figsize=(panel_size * n_cols, panel_size * n_rows * 1.1), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.04)
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    for ax in axes.ravel():
        _off(ax)
        ax.set_frame_on(False)

    def show(ax: Axes, image: np.ndarray, title: str, rgb: bool = True, **kw: Any) -> Any:
        im = ax.imshow(crop_rgb(image, window) if rgb else crop(image, window), interpolation="nearest", **kw)
        ax.set_title(title, fontsize=8)
        ax.set_frame_on(True)
        return im

    def colour_bar(im: Any, column: Sequence[Axes], label: str, n_spanned: int) -> None:
        # a bar 0.12 in thick and as long as the columns it serves, whatever the number of rows
        # (fractions of the panels' height made it a stub under a single model row)
        thickness = 0.12
        fraction = thickness / (panel_size * 1.1 * len(models))
        aspect = 0.9 * panel_size * n_spanned / thickness
        bar = fig.colorbar(im, ax=list(column), location="bottom", fraction=fraction, aspect=aspect, pad=0.01)
        bar.ax.tick_params(labelsize=7)
        bar.set_label(label, fontsize=7)

    true_labels = legend.sanitise(to_numpy(sample["mask"]))
    show(axes[0, 0], sar_false_colour(sample["sar"]), sar_caption(sample["sar"]).replace(", ", "\n", 1))
    axes[0, 0].title.set_fontsize(6)
    show(axes[0, 1], band_composite(sample["optical"], composite, reference=target), "cloudy input")
    show(axes[0, 2], band_composite(target, composite, reference=target), "target (clear)")
    show(
        axes[0, 3],
        to_numpy(sample["cloud_mask"]).astype(np.float32),
        "cloud mask",
        rgb=False,
        cmap="gray",
        vmin=0,
        vmax=1,
    )
    show(axes[0, 4], legend.colourise(true_labels), "true land cover")

    predicted = {
        m: predicted_labels(outputs[m]["segmentation"]) for m in models if outputs[m].get("segmentation") is not None
    }
    handles = _legend_handles(legend, [true_labels, *predicted.values()], names)
    # anchored at the cell's left edge: long class names run into row 0's empty cells to the
    # right, never over the true land-cover panel (centred, they did)
    first = axes[0, 5].legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.0, 1.0),
        fontsize=7,
        frameon=False,
        title="land cover",
        title_fontsize=8,
        alignment="left",
    )
    axes[0, 5].add_artist(first)
    axes[0, 5].legend(
        handles=[
            Patch(facecolor="white", edgecolor="k", label="cloud"),
            Patch(facecolor="black", edgecolor="k", label="clear"),
        ],
        loc="lower left",
        bbox_to_anchor=(0.0, 0.0),
        fontsize=7,
        frameon=False,
        title="cloud mask",
        alignment="left",
        title_fontsize=8,
        ncol=2,
    )
    bucket, tile_id = sample.get("bucket", "?"), sample.get("id", "?")
    bucket = bucket[0] if isinstance(bucket, list | tuple) else bucket
    tile_id = tile_id[0] if isinstance(tile_id, list | tuple) else tile_id
    zoom = (
        f", zoom rows {window.row}:{window.row + window.height}, cols {window.col}:{window.col + window.width}"
        if window
        else ""
    )
    fig.suptitle(
        f"tile {tile_id} (cloud cover {bucket}) — {composite}, one stretch for all optical panels{zoom}", fontsize=10
    )

    errors = {m: absolute_error_map(outputs[m]["reconstruction"], target) for m in models}
    err_max = max([float(np.percentile(crop(e, window), 99)) for e in errors.values()] + [1e-6])
    error_image = gate_image = None
    for row, name in enumerate(models, start=1):
        out = outputs[name]
        show(axes[row, 0], band_composite(out["reconstruction"], composite, reference=target), "reconstruction")
        # the model name (and budget) as the row label: titles of long names would be clipped;
        # the size on a line of its own, or the label runs past its row into the next one's
        label = (row_titles or {}).get(name, name).replace(" · ", "\n")
        axes[row, 0].set_ylabel(label, fontsize=6, fontweight="bold")
        error_image = show(
            axes[row, 1], errors[name], "|error| (band mean)", rgb=False, cmap="magma", vmin=0, vmax=err_max
        )
        if name in predicted:
            show(axes[row, 2], legend.colourise(predicted[name]), "predicted land cover")
        else:
            axes[row, 2].text(
                0.5,
                0.5,
                "no segmentation\nhead",
                ha="center",
                va="center",
                fontsize=7,
                transform=axes[row, 2].transAxes,
            )
        if show_prompts:
            maps = prompt_maps(out, shape)
            for level, pmap in enumerate(maps):
                gate_image = show(
                    axes[row, 3 + level], pmap, f"gate L{level + 1}", rgb=False, cmap="viridis", vmin=0, vmax=1
                )
            if not maps and n_prompt_cols:
                axes[row, 3].text(
                    0.5,
                    0.5,
                    "no gate\n(no PGF)",
                    ha="center",
                    va="center",
                    fontsize=7,
                    transform=axes[row, 3].transAxes,
                )
        if show_metrics:
            tile = metrics[name] if metrics and name in metrics else tile_metrics(sample, out)
            axes[row, n_cols - 1].text(
                0.3,
                0.5,
                format_metrics(tile),
                ha="left",
                va="center",
                fontsize=8,
                family="monospace",
                transform=axes[row, n_cols - 1].transAxes,
            )
    # one bar per scale (the error scale and the 0–1 gate scale are shared by all rows)
    colour_bar(error_image, axes[1:, 1], "|error| (band mean), reflectance", 1)
    if gate_image is not None:
        colour_bar(gate_image, axes[1:, 3 : 3 + n_prompt_cols].ravel(), GATE_LABEL, n_prompt_cols)
    if window is not None:
        axes[0, 2].set_title("target (clear, zoomed)", fontsize=8)
    return fig


def plot_overview_with_window(
    sample: Mapping[str, Any], window: Window | None, composite: str = DEFAULT_COMPOSITE, panel_size: float = 3.0
) -> Figure:
    """The whole target tile with the zoom window outlined (orientation for a zoomed view)."""
    target = to_numpy(sample["target"])
    fig = Figure(figsize=(panel_size, panel_size), layout="constrained")
    ax = fig.subplots()
    ax.imshow(band_composite(target, composite, reference=target), interpolation="nearest")
    if window is not None:
        w = Window(*window).clip(target.shape[-2:])
        ax.add_patch(
            Rectangle((w.col - 0.5, w.row - 0.5), w.width, w.height, fill=False, edgecolor="red", linewidth=1.5)
        )
    ax.set_title("target, zoom window in red", fontsize=8)
    _off(ax)
    return fig


def plot_prompt_maps(
    output: Mapping[str, Any], sample: Mapping[str, Any], window: Window | None = None, title: str = ""
) -> Figure:
    """Gate map (weight given to SAR, 0–1) of every PGF level beside the cloud mask, for one model."""
    shape = spatial_shape(sample["target"])
    maps = prompt_maps(output, shape)
    if not maps:
        raise ValueError("this model's outputs have no 'prompts' (only PGF variants produce them)")
    fig = Figure(figsize=(2.4 * (len(maps) + 1), 2.6), layout="constrained")
    axes = fig.subplots(1, len(maps) + 1, squeeze=False)[0]
    axes[0].imshow(crop(to_numpy(sample["cloud_mask"]), window), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("cloud mask", fontsize=8)
    axes[0].legend(
        handles=[
            Patch(facecolor="white", edgecolor="k", label="cloud"),
            Patch(facecolor="black", edgecolor="k", label="clear"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        fontsize=7,
        ncol=2,
        frameon=False,
    )
    im = None
    for level, (ax, pmap) in enumerate(zip(axes[1:], maps, strict=True)):
        im = ax.imshow(crop(pmap, window), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"gate, level {level + 1} (1/{2**level} res.)", fontsize=8)
    for ax in axes:
        _off(ax)
    bar = fig.colorbar(im, ax=list(axes[1:]), fraction=0.03, pad=0.02)
    bar.set_label(GATE_LABEL.replace(" (", "\n("), fontsize=7)
    bar.ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
