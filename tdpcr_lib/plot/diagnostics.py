"""Evaluation diagnostics as figures: the normalised confusion matrix and per-band error."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def plot_confusion(table: pd.DataFrame, title: str = "Normalised confusion matrix") -> Figure:
    """Heat map of :func:`tdpcr_lib.evaluation.tables.normalised_confusion` (row %), annotated.

    Rows are true classes, columns predicted; each row sums to 100, so the diagonal is each
    class's recall and off-diagonal cells show which class it is mistaken for.
    """
    values = table.to_numpy(dtype=float)
    k = values.shape[0]
    size = 1.0 + 0.75 * k
    fig = Figure(figsize=(size + 2.5, size + 1.2), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=100)
    for i in range(k):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if values[i, j] > 60 else "black",
                )
    ax.set_xticks(range(values.shape[1]), [str(c) for c in table.columns], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), [str(i) for i in table.index], fontsize=7)
    ax.set_xlabel("predicted class", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label("% of the true class's pixels", fontsize=8)
    return fig


def plot_band_error(table: pd.DataFrame, title: str = "Reconstruction error under clouds") -> Figure:
    """Bars of :func:`tdpcr_lib.evaluation.tables.band_error_under_clouds`: bias and MAE per band
    (reflectance), with the target's 2–98 % range as a reference for how visible an error is."""
    bands = list(table.index)
    x = np.arange(len(bands))
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.bar(x - 0.2, table["bias"], width=0.4, label="bias (reconstruction − target)", color="tab:blue")
    ax.bar(x + 0.2, table["mae"], width=0.4, label="mean absolute error", color="tab:orange")
    ax.plot(x, table["target_range"], "k_", markersize=14, label="target 2–98 % range (display scale)")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, bands, fontsize=8)
    ax.set_ylabel("reflectance", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    return fig
