"""Figures of the dataset itself: one sample (with an optional prediction) and class histograms.

They live in the dataset layer so that ``LuojiaSETOSFCR.plot()`` (torchgeo style) needs nothing
from the layers above.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tdpcr_lib.core.arrays import percentile_stretch, stretch_limits, to_numpy
from tdpcr_lib.core.bands import RGB_INDICES
from tdpcr_lib.core.legend import Legend, load_legend


def plot_sample(
    sample: Mapping[str, Any],
    prediction: Any = None,
    *,
    legend: Legend | None = None,
    show_titles: bool = True,
    suptitle: str | None = None,
):
    """Figure of a sample: cloudy RGB, SAR false colour, clear RGB, land cover, cloud mask.

    Parameters
    ----------
    sample : mapping
        A dataset sample (tensors or arrays; unbatched).
    prediction : tensor, array or mapping, optional
        A (13, H, W) reconstruction, or a dict with ``reconstruction`` and/or ``segmentation``
        ((K, H, W) logits or (H, W) codes). Adds a panel for each.
    legend : Legend, optional
        Class colours and names (default: ``tdpcr_lib/resources/legend.json``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure  # not pyplot: no global figure list, no auto-display
    from matplotlib.patches import Patch

    legend = legend or load_legend()
    rgb = list(RGB_INDICES)
    target = to_numpy(sample["target"])[rgb]
    lo, hi = stretch_limits(target, common=True)  # one gain for R, G, B: see plot.compare
    sar = to_numpy(sample["sar"])
    sar_rgb = np.stack([sar[0], sar[1], np.clip(sar[0] - sar[1] + 0.5, 0, 1)])
    labels = to_numpy(sample["mask"]).astype(np.int64)

    panels: list[tuple[str, np.ndarray, dict[str, Any]]] = [
        ("cloudy S2 (B04/B03/B02)", percentile_stretch(to_numpy(sample["optical"])[rgb], lo, hi), {}),
        ("S1 false colour (VV, VH, VV−VH)", percentile_stretch(sar_rgb), {}),
        ("clear S2 target", percentile_stretch(target, lo, hi), {}),
        ("land cover", legend.colourise(labels), {}),
        ("cloud mask", to_numpy(sample["cloud_mask"]), {"cmap": "gray", "vmin": 0, "vmax": 1}),
    ]
    if prediction is not None:
        pred = prediction if isinstance(prediction, Mapping) else {"reconstruction": prediction}
        if pred.get("reconstruction") is not None:
            recon = to_numpy(pred["reconstruction"])
            panels.append(("reconstruction", percentile_stretch(recon[rgb], lo, hi), {}))
        if pred.get("segmentation") is not None:
            seg = to_numpy(pred["segmentation"])
            seg = seg.argmax(0) if seg.ndim == 3 else seg
            panels.append(("predicted land cover", legend.colourise(seg.astype(np.int64)), {}))

    fig = Figure(figsize=(2.6 * len(panels), 3.0))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (title, image, kwargs) in zip(axes[0], panels, strict=True):
        ax.imshow(image, interpolation="nearest", **kwargs)
        ax.set_axis_off()
        if show_titles:
            ax.set_title(title, fontsize=8)
    present = sorted(set(np.unique(labels).tolist()) & set(legend.codes))
    handles = [
        Patch(facecolor=np.asarray(legend.colours[c]) / 255, edgecolor="k", label=f"{c}: {legend.names[c]}")
        for c in present
    ]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=7, frameon=False)
    title = (
        suptitle
        if suptitle is not None
        else (f"{sample.get('id', '')}  [{sample.get('bucket', '')}]" if show_titles else None)
    )
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.12 if handles else 0, 1, 1))
    return fig


def plot_class_histogram(
    histogram: Mapping[str, int], legend: Legend | None = None, title: str = "land-cover pixels per class"
):
    """Bar chart of a :func:`dataset_statistics` class histogram in the legend's colours."""
    from matplotlib.figure import Figure  # not pyplot: no global figure list, no auto-display

    legend = legend or load_legend()
    keys = [str(c) for c in legend.codes] + ["ignored"]
    counts = np.array([histogram.get(k, 0) for k in keys], dtype=np.float64)
    fractions = counts / max(counts.sum(), 1)
    colors = [np.asarray(c) / 255 for c in legend.colours] + [np.asarray(legend.ignore_colour) / 255]
    labels = [f"{c}: {n}" for c, n in zip(legend.codes, legend.names, strict=True)] + ["ignored"]
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    ax.barh(range(len(keys)), fractions, color=colors, edgecolor="k")
    ax.set_yticks(range(len(keys)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(float(fractions.max()), 0.01) * 1.2)  # room for the percentages
    ax.set_xlabel("fraction of labelled pixels")
    ax.set_title(title, fontsize=10)
    for y, f in enumerate(fractions):
        ax.text(f, y, f" {100 * f:.1f}%", va="center", fontsize=8)
    fig.tight_layout()
    return fig
