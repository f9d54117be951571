"""Is the model meeting data like its training data? The one-line domain warning of prediction.

A checkpoint records what it was trained on (``training_data``:
:func:`tdpcr_lib.datasets.provenance.describe_training_data`). Before predicting, the input
scene's per-band statistics (a decimated read) are compared with the training inputs'. The
warning is raised (:class:`DomainWarning`, one line; the CLI prints it as ``tdpcr predict:
warning: ...``) and stored in ``prediction.json`` (``domain``) when

* a checkpoint trained on the synthetic twin is applied to real files (files that do not carry
  the tags tdpcr's twin and synthetic scenes write), or
* the input's median of a band lies outside the central 98 % (1-99 % quantiles) of the training
  inputs' values of that band; those bands are named (e.g. Sentinel-2 without the +1000 DN offset
  the training tiles carried shows as B01…B12 below range).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.datasets.provenance import band_statistics

#: Pixels of the decimated read used for the input statistics (enough for 1-99 % quantiles; small
#: so the check adds little to prediction's strip-bounded memory).
STATS_MAX_PIXELS = 128 * 128

#: Tag values that mark tdpcr's own synthetic files (the twin's tiles, synthetic scenes).
SYNTHETIC_MARKERS = ("synthetic",)


class DomainWarning(UserWarning):
    """The input differs from the data the checkpoint was trained on."""


def _decimated(path: Path, nodata_zero: bool) -> np.ndarray:
    with rasterio.open(path) as src:
        scale = max(1.0, float(np.sqrt(src.height * src.width / STATS_MAX_PIXELS)))
        shape = (src.count, max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        data = src.read(out_shape=shape, resampling=Resampling.nearest).astype(np.float32)
        nodata = src.nodata
    flat = data.reshape(data.shape[0], -1)
    valid = np.isfinite(flat).all(axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(flat == nodata).all(axis=0)
    elif nodata_zero:
        valid &= ~(flat == 0).all(axis=0)
    return flat[:, valid]


def input_statistics(s2_path: str | Path, s1_path: str | Path, s2_shift: float = 0.0) -> dict[str, Any]:
    """Per-band statistics of an input pair in network-input units (as the training stats).

    ``s2_shift``: DN that prediction adds to the Sentinel-2 input to bring it into the model's
    offset convention (:mod:`tdpcr_lib.inference.offset`), so the comparison sees what the
    network sees, not a 0.1-reflectance offset difference that prediction already removes.
    """
    norm = load_normalisation()
    s2 = _decimated(Path(s2_path), nodata_zero=True)
    s2 += np.float32(s2_shift)  # in place: prediction's peak memory must not grow (tested)
    s1 = _decimated(Path(s1_path), nodata_zero=False)
    return {
        "optical": band_statistics(norm.s2_to_unit(s2), S2_BANDS) if s2.size else {},
        "sar": band_statistics(norm.s1_to_unit(s1), S1_BANDS) if s1.size else {},
    }


def is_synthetic_file(path: str | Path) -> bool:
    """Whether a GeoTIFF carries the tags tdpcr writes into its synthetic data."""
    try:
        with rasterio.open(path) as src:
            tags = " ".join(str(v) for v in src.tags().values()).lower()
    except rasterio.errors.RasterioIOError:
        return False
    return any(marker in tags for marker in SYNTHETIC_MARKERS)


def bands_outside(training: Mapping[str, Any], observed: Mapping[str, Any]) -> list[str]:
    """Bands whose observed median lies outside the training inputs' 1-99 % range."""
    out = []
    for group in ("optical", "sar"):
        for band, stats in observed.get(group, {}).items():
            ref = training.get(group, {}).get(band)
            if ref is not None and not ref["p01"] <= stats["p50"] <= ref["p99"]:
                out.append(band)
    return out


def domain_check(
    training_data: Mapping[str, Any] | None, observed: Mapping[str, Any], synthetic_input: bool
) -> dict[str, Any]:
    """Compare an input with a checkpoint's training data.

    Returns
    -------
    dict
        ``trained_on`` (source, dataset, twin version or None), ``input`` (``"synthetic"`` or
        ``"real"``), ``bands_outside_training`` and ``warning`` (one line, or None).
    """
    info = dict(training_data or {})
    source = info.get("source")
    trained_on = {"source": source, "dataset": info.get("dataset"), "twin_version": info.get("twin_version")}
    outside = bands_outside(info.get("input_statistics", {}), observed)
    parts = []
    if source == "synthetic" and not synthetic_input:
        parts.append(
            f"this checkpoint was trained on tdpcr's synthetic twin (version "
            f"{info.get('twin_version') or '?'}) and is applied to real files; a "
            "twin-trained model can damage real images (docs/twin.md)"
        )
    if outside:
        parts.append(
            f"input band(s) {', '.join(outside)} lie outside the range of the training "
            "inputs (median outside their 1-99 % quantiles, in the model's offset convention; "
            "if every Sentinel-2 band is named, check --s2-offset)"
        )
    if training_data is None:
        note = "the checkpoint records no training data, so the input is not checked against it"
        return {
            "trained_on": trained_on,
            "input": "synthetic" if synthetic_input else "real",
            "bands_outside_training": [],
            "warning": None,
            "note": note,
        }
    return {
        "trained_on": trained_on,
        "input": "synthetic" if synthetic_input else "real",
        "bands_outside_training": outside,
        "warning": "; ".join(parts) if parts else None,
    }


def check_domain(
    meta: Mapping[str, Any], s2_path: str | Path, s1_path: str | Path, s2_shift: float = 0.0
) -> dict[str, Any]:
    """:func:`domain_check` for a checkpoint's metadata and an input pair (Sentinel-2 shifted by
    ``s2_shift`` DN, as prediction feeds it); warns (one line, :class:`DomainWarning`) when there
    is something to say."""
    observed = input_statistics(s2_path, s1_path, s2_shift)
    result = domain_check(meta.get("training_data"), observed, is_synthetic_file(s2_path))
    if result["warning"]:
        warnings.warn(result["warning"], DomainWarning, stacklevel=3)
    return result
