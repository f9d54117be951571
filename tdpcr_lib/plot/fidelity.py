"""Figures of the twin-vs-real fidelity check (:mod:`tdpcr_lib.evaluation.fidelity`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.evaluation.fidelity import PSD_BANDS

_COLOURS = {"twin": "tab:blue", "sen12mscr": "tab:orange", "luojiaset": "tab:green"}


def _label(name: str) -> str:
    return {"twin": "twin", "sen12mscr": "SEN12MS-CR samples", "luojiaset": "LuojiaSET samples (derived)"}.get(
        name, name
    )


def _histogram(ax: Any, values: np.ndarray, name: str, bins: np.ndarray) -> None:
    ax.hist(values, bins=bins, density=True, histtype="step", lw=1.4, color=_COLOURS.get(name), label=_label(name))


def plot_band_histograms(
    twin: Mapping[str, Any], real: Mapping[str, Mapping[str, Any]], distances: Mapping[str, Any]
) -> Figure:
    """Per-band reflectance histograms (pooled per-tile quantiles), twin against each source."""
    fig, axes = plt.subplots(3, 5, figsize=(15, 8), constrained_layout=True)
    sets = {"twin": twin, **real}
    for i, band in enumerate(S2_BANDS):
        ax = axes.flat[i]
        values = {
            n: np.asarray(s["band_quantiles"])[:, i].ravel()
            for n, s in sets.items()
            if len(s.get("band_quantiles", []))
        }
        hi = max(float(np.quantile(v, 0.99)) for v in values.values())
        lo = min(float(np.quantile(v, 0.01)) for v in values.values())
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 40)
        for name, v in values.items():
            _histogram(ax, v, name, bins)
        ax.set_title(
            f"{band}  W1 {distances['band_wasserstein'][band]:.4f}  KS {distances['band_ks'][band]:.2f}", fontsize=9
        )
        ax.set_yticks([])
    axes.flat[13].axis("off")
    axes.flat[14].axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Clear Sentinel-2 TOA reflectance per band (DN offset removed)")
    return fig


def plot_class_spectra(
    twin: Mapping[str, Any],
    real: Mapping[str, Mapping[str, Any]],
    distances: Mapping[str, Any],
    class_names: Mapping[str, str] | None = None,
) -> Figure:
    """Mean clear spectrum per land-cover code: twin (all codes) against real codes present."""
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    x = np.arange(len(S2_BANDS))
    compared = distances["class_spectra_mae"]
    for code, spectrum in sorted(twin["class_spectra"].items(), key=lambda kv: int(kv[0])):
        name = (class_names or {}).get(code, f"code {code}")
        style = "-" if code in compared else ":"
        (line,) = ax.plot(x, spectrum, style, lw=1.5, label=f"twin {name}")
        for source_name, source in real.items():
            if code in compared and code in source.get("class_spectra", {}):
                ax.plot(
                    x,
                    source["class_spectra"][code],
                    "--",
                    color=line.get_color(),
                    lw=1.5,
                    label=f"{_label(source_name)} {name} (MAE {compared[code]:.3f})",
                )
    ax.set_xticks(x, S2_BANDS)
    ax.set_ylabel("TOA reflectance")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Spectra per class (solid/dotted: twin; dashed: real samples)")
    return fig


def plot_s1_histograms(
    twin: Mapping[str, Any], real: Mapping[str, Mapping[str, Any]], distances: Mapping[str, Any]
) -> Figure:
    """Sentinel-1 dB histograms per polarisation."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    bins = np.linspace(-35, 5, 60)
    for i, band in enumerate(S1_BANDS):
        for name, s in {"twin": twin, **real}.items():
            if len(s.get("s1_quantiles", [])):
                _histogram(axes[i], np.asarray(s["s1_quantiles"])[:, i].ravel(), name, bins)
        axes[i].set_title(
            f"{band}  W1 {distances['s1_wasserstein_db'][band]:.2f} dB  KS {distances['s1_ks'][band]:.2f}"
        )
        axes[i].set_xlabel("dB")
    axes[0].legend(fontsize=8)
    return fig


def plot_power_spectra(
    twin: Mapping[str, Any], real: Mapping[str, Mapping[str, Any]], distances: Mapping[str, Any]
) -> Figure:
    """Radially averaged power spectra (shape, 64 px windows) of B02, B04, B08 and B11."""
    fig, axes = plt.subplots(1, len(PSD_BANDS), figsize=(15, 3.8), constrained_layout=True)
    for i, band in enumerate(PSD_BANDS):
        for name, s in {"twin": twin, **real}.items():
            psd = np.asarray(s.get("psd", []))
            if psd.size:
                f = np.arange(1, psd.shape[1] + 1) / (2 * (psd.shape[1] + 1))
                axes[i].loglog(f, psd[i], color=_COLOURS.get(name), label=_label(name))
        axes[i].set_title(f"{band}  log10 MAE {distances['psd_log10_mae'][band]:.2f}")
        axes[i].set_xlabel("cycles / pixel")
    axes[0].legend(fontsize=8)
    return fig


def plot_cloud_cover(
    twin: Mapping[str, Any], real: Mapping[str, Mapping[str, Any]], distances: Mapping[str, Any]
) -> Figure:
    """Cloud-mask fraction per bucket: twin tiles (dots) and real samples (crosses)."""
    fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    for j, bucket in enumerate(BUCKETS):
        tw = twin.get("cloud_fraction", {}).get(bucket, [])
        ax.scatter(
            np.full(len(tw), j) + np.linspace(-0.15, 0.15, len(tw)),
            tw,
            s=8,
            color=_COLOURS["twin"],
            label="twin" if j == 0 else None,
        )
        for name, s in real.items():
            rf = s.get("cloud_fraction", {}).get(bucket, [])
            ax.scatter(
                np.full(len(rf), j + 0.25),
                rf,
                marker="x",
                s=60,
                color=_COLOURS.get(name),
                label=_label(name) if rf else None,
            )
        w = distances["cloud_fraction_wasserstein"].get(bucket)
        if w is not None:
            ax.text(j, 1.03, f"W1 {w:.3f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(BUCKETS)), BUCKETS)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("cloud-mask fraction")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
    return fig


def plot_fidelity(
    twin: Mapping[str, Any],
    real: Mapping[str, Mapping[str, Any]],
    distances: Mapping[str, Any],
    class_names: Mapping[str, str] | None = None,
) -> dict[str, Figure]:
    """All five fidelity figures, keyed ``bands``, ``class_spectra``, ``s1``, ``power_spectra``,
    ``cloud_cover``; ``class_names`` maps code strings to names (default ``code N``)."""
    return {
        "bands": plot_band_histograms(twin, real, distances),
        "class_spectra": plot_class_spectra(twin, real, distances, class_names),
        "s1": plot_s1_histograms(twin, real, distances),
        "power_spectra": plot_power_spectra(twin, real, distances),
        "cloud_cover": plot_cloud_cover(twin, real, distances),
    }
