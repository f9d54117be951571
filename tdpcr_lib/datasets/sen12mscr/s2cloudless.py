"""s2cloudless cloud masks for SEN12MS-CR, computed exactly as UnCRtainTS computes them.

UnCRtainTS (PatrickTUM/UnCRtainTS ``data/dataLoader.py``, class ``SEN12MSCR``, default
``cloud_masks='s2cloudless_mask'``) builds
``S2PixelCloudDetector(threshold=0.4, all_bands=True, average_over=4, dilation_size=2)`` and, in
``get_cloud_map``, clips the cloudy image to 0–10000 DN, returns an all-cloudy mask for a blank
patch (mean and standard deviation both below 1e-5) and otherwise runs ``get_cloud_masks`` on the
13 bands divided by 10000, bands last. This module does the same. The LightGBM model ships inside
the ``s2cloudless`` wheel (``s2cloudless/models/pixel_s2_cloud_detector_lightGBM_v0.1.txt``,
CC-BY-SA 4.0), so nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

#: UnCRtainTS data/dataLoader.py: S2PixelCloudDetector(threshold=0.4, all_bands=True,
#: average_over=4, dilation_size=2).
S2CLOUDLESS_PARAMETERS: dict[str, Any] = {"threshold": 0.4, "all_bands": True, "average_over": 4, "dilation_size": 2}


class MissingS2Cloudless(ImportError):
    """s2cloudless (or lightgbm) is not installed."""


@functools.lru_cache(maxsize=1)
def detector() -> Any:
    """The shared detector (the LightGBM model is loaded once, on first use)."""
    try:
        from s2cloudless import S2PixelCloudDetector
    except ImportError as err:  # s2cloudless, lightgbm, opencv or sentinelhub missing
        raise MissingS2Cloudless(
            f"the s2cloudless cloud mask needs the packages s2cloudless and lightgbm ({err}); "
            "install them with `pip install s2cloudless lightgbm` (declared in pyproject.toml) "
            "or choose the rule-based mask (`--cloud-mask rule-based`)"
        ) from err
    return S2PixelCloudDetector(**S2CLOUDLESS_PARAMETERS)


def s2cloudless_mask(dn: np.ndarray) -> np.ndarray:
    """Binary cloud mask (float32 H×W in {0, 1}) of a 13-band Sentinel-2 L1C image in DN.

    NaN and infinite values count as 0 DN (the detector needs finite input).
    """
    dn = np.asarray(dn)
    if dn.ndim != 3 or dn.shape[0] != 13:
        raise ValueError(f"s2cloudless_mask expects a (13, H, W) Sentinel-2 image, got {dn.shape}")
    image = np.clip(np.nan_to_num(dn.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0), 0, 10000)
    if image.mean() < 1e-5 and image.std() < 1e-5:
        # get_cloud_map: 'Encountered a blank sample, defaulting to cloudy mask.'
        return np.ones(image.shape[1:], dtype=np.float32)
    mask = detector().get_cloud_masks(np.moveaxis(image / 10000, 0, -1)[None, ...])[0]
    return mask.astype(np.float32)
