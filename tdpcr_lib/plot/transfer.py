"""Figure of the transfer check (:mod:`tdpcr_lib.evaluation.transfer`)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tdpcr_lib.plot.composites import band_composite

_PANELS = (
    ("cloudy", "cloudy input", "psnr_cloudy"),
    ("prediction_as_is", "prediction (DN as is)", "psnr_prediction_as_is"),
    ("prediction_offset_added", "prediction (+1000 DN offset)", "psnr_prediction_offset_added"),
    ("clear", "clear (other date)", None),
)


def plot_transfer(table: pd.DataFrame, images: Mapping[str, Mapping[str, np.ndarray]]) -> Figure:
    """One row per real sample: cloudy input, the two predictions and the clear image, on the
    clear image's stretch (true colour), each titled with its PSNR against the clear image."""
    fig, axes = plt.subplots(
        len(images),
        len(_PANELS),
        figsize=(3.2 * len(_PANELS), 3.4 * len(images)),
        squeeze=False,
        constrained_layout=True,
    )
    for r, (name, arrays) in enumerate(images.items()):
        for c, (key, title, column) in enumerate(_PANELS):
            ax = axes[r, c]
            ax.imshow(band_composite(arrays[key], reference=arrays["clear"]))
            psnr = f"\nPSNR {table.loc[name, column]:.2f} dB" if column else ""
            ax.set_title(f"{title}{psnr}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("Transfer check: the model on real SEN12MS-CR samples (CC-BY 4.0)")
    return fig
