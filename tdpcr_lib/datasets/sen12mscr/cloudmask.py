"""Cloud masks for data that ship none (SEN12MS-CR): s2cloudless (default) or the rule-based detector.

:func:`compute_cloud_mask` picks one of :data:`CLOUD_MASKS`: ``"s2cloudless"`` (the default for
SEN12MS-CR, as UnCRtainTS computes it: :mod:`tdpcr_lib.datasets.sen12mscr.s2cloudless`) or
``"rule-based"``, the cloud score below.

SEN12MS-CR has no cloud masks. DSen2-CR (Meraner et al. 2020, ``ameraner/dsen2-cr``
``Code/tools/feature_detectors.py``) and UnCRtainTS (Ebel et al. 2023, ``util/detect_cloudshadow.py``,
its ``cloud_cloudshadow_mask`` option) compute one from the cloudy Sentinel-2 image with a
rule-based score and threshold it at 0.2; this module re-implements that cloud score in NumPy/SciPy
(no model weights, deterministic, about 5 ms for a 256² patch):

* start from 1 ("cloud until proven otherwise") and take the minimum of linear ramps that need a
  cloud to be bright in blue B02 (0.1 → 0.5 reflectance), in aerosol B01 (0.1 → 0.3), in
  B01 + cirrus B10 (0.15 → 0.2) and in B04 + B03 + B02 (0.2 → 0.8), and not snow-like
  (NDSI of B03/B11 ramping down from 0.6 to 0.8);
* grey closing (5×5), then a 7×7 mean (zero padding at the border, as ``convolve2d(mode="same")``);
* clip to [1e-5, 1]; a pixel is cloudy where the score is >= the threshold (0.2).

Cloud shadows are not included (the authors' shadow rule thresholds each image against its own
mean and marks dark pixels even in clear images, which would bias the cloud-cover buckets).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Score threshold of DSen2-CR / UnCRtainTS (``cloud_threshold=0.2``).
CLOUD_THRESHOLD = 0.2

_B01, _B02, _B03, _B04, _B10, _B11 = 0, 1, 2, 3, 10, 11

#: The cloud masks a SEN12MS-CR manifest can be built with; the first is the default.
CLOUD_MASKS: tuple[str, ...] = ("s2cloudless", "rule-based")
DEFAULT_CLOUD_MASK = "s2cloudless"

#: What ``split_config.json`` says about each mask.
CLOUD_MASK_DESCRIPTIONS: dict[str, str] = {
    "s2cloudless": "s2cloudless 1.7 as UnCRtainTS computes it (threshold 0.4, average_over 4, "
    "dilation_size 2; DN clipped to 0-10000 / 10000; blank patch = cloudy)",
    "rule-based": f"rule-based cloud score of DSen2-CR/UnCRtainTS, threshold {CLOUD_THRESHOLD} "
    "(tdpcr_lib.datasets.sen12mscr.cloudmask)",
}


def _ramp(values: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 at ``start``, 1 at ``end``, linear between (and beyond: clipped later by the minimum)."""
    return (values - start) / (end - start)


def cloud_score(dn: np.ndarray) -> np.ndarray:
    """Cloud score in [1e-5, 1] of a 13-band Sentinel-2 L1C image in DN (bands first, 10000 = 1).

    NaN and infinite values count as 0 reflectance.
    """
    dn = np.asarray(dn)
    if dn.ndim != 3 or dn.shape[0] != 13:
        raise ValueError(f"cloud_score expects a (13, H, W) Sentinel-2 image, got {dn.shape}")
    x = np.nan_to_num(dn.astype(np.float32) / 10000.0, nan=0.0, posinf=0.0, neginf=0.0)
    score = np.ones(x.shape[1:], dtype=np.float32)
    score = np.minimum(score, _ramp(x[_B02], 0.1, 0.5))
    score = np.minimum(score, _ramp(x[_B01], 0.1, 0.3))
    score = np.minimum(score, _ramp(x[_B01] + x[_B10], 0.15, 0.2))
    score = np.minimum(score, _ramp(x[_B04] + x[_B03] + x[_B02], 0.2, 0.8))
    total = x[_B03] + x[_B11]
    ndsi = (x[_B03] - x[_B11]) / np.where(total == 0, 0.001, total)
    score = np.minimum(score, _ramp(ndsi, 0.8, 0.6))  # snow is bright too, but has a high NDSI
    score = ndimage.grey_closing(score, size=(5, 5))
    score = ndimage.uniform_filter(score, size=7, mode="constant", cval=0.0)
    return np.clip(score, 1e-5, 1.0).astype(np.float32)


def cloud_mask(dn: np.ndarray, threshold: float = CLOUD_THRESHOLD) -> np.ndarray:
    """Binary cloud mask (float32 H×W in {0, 1}) of a cloudy Sentinel-2 image in DN."""
    return (cloud_score(dn) >= threshold).astype(np.float32)


def compute_cloud_mask(dn: np.ndarray, method: str = DEFAULT_CLOUD_MASK) -> np.ndarray:
    """Binary cloud mask (float32 H×W in {0, 1}) of a cloudy S2 image in DN with ``method``."""
    if method == "s2cloudless":
        from tdpcr_lib.datasets.sen12mscr.s2cloudless import s2cloudless_mask

        return s2cloudless_mask(dn)
    if method == "rule-based":
        return cloud_mask(dn)
    raise ValueError(f"unknown cloud mask {method!r}; choose from {', '.join(CLOUD_MASKS)}")
