"""The twin's calibration numbers, read from ``tdpcr_lib/resources/twin_calibration.json``.

Why a resource file: every number that decides how the twin looks (class spectra, seasons, haze,
cirrus, SAR backscatter, texture, class frequencies, ground change) carries its provenance there
(real SEN12MS-CR samples, statistics derived from the public LuojiaSET-OSFCR samples, spectral
libraries), and can be re-calibrated without touching code. ``twin_version`` is recorded in every
twin's ``synthetic.json`` and in checkpoints trained on it.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import numpy as np

CALIBRATION_FILE = "twin_calibration.json"


@functools.lru_cache(maxsize=1)
def load_calibration() -> dict[str, Any]:
    """The parsed calibration resource (cached; treat it as read-only)."""
    text = resources.files("tdpcr_lib.resources").joinpath(CALIBRATION_FILE).read_text()
    return json.loads(text)


def twin_version() -> str:
    """Version string of the twin's content (``twin_version`` in the calibration file)."""
    return str(load_calibration()["twin_version"])


def _per_class(block: dict[str, Any], n_classes: int = 7) -> np.ndarray:
    """Rows ``"0"`` … ``"n-1"`` of a per-class block as a float32 array (classes first)."""
    return np.asarray([block[str(c)] for c in range(n_classes)], dtype=np.float32)


def class_spectra() -> np.ndarray:
    """(7, 13) TOA reflectance per class code, ``S2_BANDS`` order, without the DN offset."""
    return _per_class(load_calibration()["class_spectra"]["values"])


def class_texture() -> np.ndarray:
    """(7,) relative amplitude of fine optical texture per class."""
    return _per_class(load_calibration()["class_spectra"]["within_class_variation"]["texture_std"])


def class_s1_db() -> np.ndarray:
    """(7, 2) mean VV/VH backscatter in dB per class."""
    return _per_class(load_calibration()["sar"]["class_db"])


def class_s1_variation_db() -> np.ndarray:
    """(7,) amplitude of smooth within-class SAR variation (dB)."""
    return _per_class(load_calibration()["sar"]["class_variation_db"])


def area_class_prior() -> np.ndarray:
    """(6,) prior logits of the area classes, codes 1..6 (roads are drawn as lines)."""
    priors = load_calibration()["class_frequencies"]["area_class_prior_logits"]
    return np.asarray([priors[str(c)] for c in range(1, 7)], dtype=np.float32)


def cloud_spectrum() -> np.ndarray:
    """(13,) reflectance of an opaque cloud per band."""
    return np.asarray(load_calibration()["atmosphere"]["cloud_spectrum"], dtype=np.float32)


def draw_conditions(rng: np.random.Generator) -> dict[str, Any]:
    """The acquisition conditions of one tile: season, illumination, vigour, soil moisture, snow,
    haze and cirrus, drawn from the calibration's distributions.

    Returns
    -------
    dict
        ``season`` (name), ``illumination`` (gain), ``vigour`` (vegetation NIR scale),
        ``moisture`` in [0, 1], ``snow`` (fraction of the tile, 0 if none), ``path_scale``
        (factor on the clear-sky path reflectance), ``haze_aod`` (0 if none), ``haze_angstrom``,
        ``cirrus_b10`` (B10 reflectance of the cirrus layer, 0 if none).
    """
    cal = load_calibration()
    seasons, atmosphere = cal["seasons"], cal["atmosphere"]
    s = int(rng.choice(len(seasons["names"]), p=seasons["probability"]))
    lo, hi = seasons["illumination"][s]
    m_lo, m_hi = seasons["soil_moisture"][s]
    snowy = rng.random() < seasons["snow_probability"][s]
    hazy = rng.random() < atmosphere["haze_probability"]
    cirrus = rng.random() < atmosphere["cirrus_probability"]
    return {
        "season": seasons["names"][s],
        "illumination": float(rng.uniform(lo, hi)),
        "vigour": float(seasons["vigour"][s]),
        "moisture": float(rng.uniform(m_lo, m_hi)),
        "snow": float(rng.uniform(*seasons["snow_cover"])) if snowy else 0.0,
        "path_scale": float(rng.uniform(*atmosphere["path_scale"])),
        "haze_aod": float(rng.uniform(*atmosphere["haze_aod"])) if hazy else 0.0,
        "haze_angstrom": float(rng.uniform(*atmosphere["haze_angstrom"])),
        "cirrus_b10": float(rng.uniform(*atmosphere["cirrus_b10"])) if cirrus else 0.0,
    }
