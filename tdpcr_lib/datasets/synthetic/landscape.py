"""The synthetic twin's landscapes: land cover, clear Sentinel-2 spectra and Sentinel-1 backscatter.

See :mod:`tdpcr_lib.datasets.synthetic.tiles` for how a tile is made and why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from tdpcr_lib.datasets.synthetic.calibration import (
    area_class_prior,
    class_s1_db,
    class_s1_variation_db,
    class_spectra,
    class_texture,
    load_calibration,
)

#: Synthetic meaning of land-cover codes 0-6 (the twin's own; not claims about the real legend).
SYNTHETIC_CLASSES: dict[int, str] = {
    0: "road",
    1: "water",
    2: "built-up",
    3: "cropland",
    4: "bare soil",
    5: "grassland (less vegetated)",
    6: "forest (densely vegetated)",
}


#: Band centre wavelengths (nm) in ``S2_BANDS`` order.
S2_WAVELENGTHS_NM = np.array([443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1375, 1610, 2190], dtype=np.float32)


#: TOA reflectance signatures (rows: class codes 0-6; columns: ``S2_BANDS``), without the DN
#: offset; calibrated, with provenance, in ``tdpcr_lib/resources/twin_calibration.json``.
CLASS_SPECTRA = class_spectra()


#: Mean backscatter in dB (rows: class codes; columns: VV, VH), from the calibration file.
CLASS_S1_DB = class_s1_db()


#: Per-class amplitude of fine optical texture (relative) and of smooth SAR variation (dB).
CLASS_TEXTURE = class_texture()


CLASS_S1_VARIATION_DB = class_s1_variation_db()


#: Prior logits of the area classes 1-6 (codes 1..6); roads are drawn as lines.
AREA_CLASS_PRIOR = area_class_prior()


S2_DN_OFFSET = 1000


SPECKLE_LOOKS = float(load_calibration()["sar"]["speckle_looks"])


# --------------------------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise over the last two axes, rescaled to unit std."""
    sigmas = (0,) * (len(shape) - 2) + (sigma, sigma)
    field = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigmas, mode="reflect")
    axes = (-2, -1)
    field -= field.mean(axis=axes, keepdims=True)
    field /= field.std(axis=axes, keepdims=True) + 1e-6
    return field


def _line_distance(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Distance of every pixel to a random straight line, and the along-line coordinate."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    x0, y0 = rng.uniform(0, size, 2)
    theta = rng.uniform(0, np.pi)
    along = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
    across = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
    return across, along


def make_land_cover(size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) uint8 land-cover map: smooth patches plus a river and roads."""
    patch_sigma = max(2.5, size / 10)
    logits = _smooth_noise(rng, (6, size, size), patch_sigma)
    logits += (AREA_CLASS_PRIOR + rng.normal(0, 0.6, 6).astype(np.float32))[:, None, None]

    roads = np.zeros((size, size), dtype=bool)
    near_road = np.zeros((size, size), dtype=np.float32)
    for _ in range(rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2])):
        across, _ = _line_distance(size, rng)
        roads |= np.abs(across) < rng.uniform(0.5, 1.1)
        near_road = np.maximum(near_road, np.exp(-np.abs(across) / (size / 6)))
    logits[1] += 1.8 * near_road  # built-up (code 2 = index 1) grows along roads

    labels = (np.argmax(logits, axis=0) + 1).astype(np.uint8)
    if rng.random() < 0.35:
        across, along = _line_distance(size, rng)
        amplitude = rng.uniform(0.03, 0.12) * size
        wavelength = rng.uniform(0.5, 1.5) * size
        centre = amplitude * np.sin(2 * np.pi * along / wavelength + rng.uniform(0, 2 * np.pi))
        labels[np.abs(across - centre) < rng.uniform(0.75, 2.0)] = 1
    labels[roads] = 0
    return labels


_VEGETATION = (3, 5, 6)


_SOILS = (0, 4)  # bare soil and unpaved/dusty road verges darken when wet


def powerlaw_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Zero-mean, unit-std noise whose power spectrum falls as ``f ** -beta`` (FFT synthesis)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    amplitude = f ** (-beta / 2)
    amplitude[0, 0] = 0.0
    phase = rng.standard_normal((shape[0], fx.shape[1])) + 1j * rng.standard_normal((shape[0], fx.shape[1]))
    field = np.fft.irfft2(amplitude * phase, s=shape)
    return ((field - field.mean()) / (field.std() + 1e-9)).astype(np.float32)


def make_clear_reflectance(
    labels: np.ndarray, rng: np.random.Generator, conditions: dict[str, Any] | None = None
) -> np.ndarray:
    """Clear-sky TOA reflectance (13, H, W) float32 (no DN offset) from a land-cover map.

    ``conditions`` (from :func:`~tdpcr_lib.datasets.synthetic.calibration.draw_conditions`)
    sets the season's vegetation vigour, illumination, soil moisture and snow; without it a
    summer tile with average moisture is made.
    """
    cal = load_calibration()
    cond = conditions or {"illumination": 1.0, "vigour": 1.0, "moisture": 0.3, "snow": 0.0}
    variation = cal["class_spectra"]["within_class_variation"]
    size = labels.shape[0]
    # Within-tile variation modulates the surface part only: the path reflectance (most of TOA
    # blue) is spatially uniform, so real B01 varies far less within a tile than B08.
    path = np.asarray(cal["atmosphere"]["path_reflectance"], dtype=np.float32)[:, None, None]
    refl = CLASS_SPECTRA[labels].transpose(2, 0, 1) - path
    vegetated = np.isin(labels, _VEGETATION)
    # Season: deciduous vegetation loses NIR/red edge and gains red; forest (mostly evergreen in
    # the LuojiaSET samples) follows half as much.
    loss = (1.0 - cond["vigour"]) * np.where(labels == 6, 0.5, 1.0) * vegetated
    refl[4:9] *= 1 - loss
    refl[3] *= 1 + 0.8 * loss
    # Latent fields shared by all bands: the cross-band correlation of real scenes.
    vigour = variation["vigour_std"] * _smooth_noise(rng, labels.shape, max(2.0, size / 12))
    vigour *= vegetated
    refl[4:9] *= 1 + vigour
    refl[3] *= 1 - 0.8 * vigour
    refl[11:13] *= 1 - 0.5 * vigour
    wet = cal["seasons"]["wet_soil_darkening"]
    moisture = np.clip(cond["moisture"] + 0.15 * _smooth_noise(rng, labels.shape, size / 8), 0, 1)
    soil = np.isin(labels, _SOILS) * moisture
    refl[:11] *= 1 - wet["vnir"] * soil
    refl[11:] *= 1 - wet["swir"] * soil
    brightness = variation["brightness_std"] * _smooth_noise(rng, labels.shape, max(2.0, size / 8))
    # Texture: a flat and a steep power-law field, weighted per band (blue flatter than SWIR).
    flat_slope, steep_slope = cal["texture"]["spectral_slopes"]
    steep = np.asarray(cal["texture"]["steep_weight"], dtype=np.float32)[:, None, None]
    texture = (1 - steep) * powerlaw_noise(rng, labels.shape, flat_slope) + steep * powerlaw_noise(
        rng, labels.shape, steep_slope
    )
    texture /= np.sqrt((1 - steep) ** 2 + steep**2)  # unit variance per band
    refl *= (1 + brightness) * (1 + CLASS_TEXTURE[labels] * texture)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(3.5, 7.0)
    stripes = np.sign(np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period))
    refl *= 1 + 0.05 * stripes * (labels == 3)
    if cond["snow"] > 0:
        field = _smooth_noise(rng, labels.shape, size / 6)
        cover = field > np.quantile(field, 1 - cond["snow"])
        cover = cover * np.where(labels == 6, 0.4, 0.95) * (labels != 1)  # canopy hides snow
        snow = np.asarray(cal["seasons"]["snow_spectrum"], dtype=np.float32)[:, None, None] - path
        refl = refl * (1 - cover) + snow * cover
    # illumination scales the surface signal; the path term is the atmosphere's, not the sun's
    refl = np.maximum(refl, 0) * cond["illumination"] + path * cond.get("path_scale", 1.0)
    refl = gaussian_filter(refl, (0, cal["texture"]["mixed_pixel_sigma_px"], cal["texture"]["mixed_pixel_sigma_px"]))
    refl += rng.normal(0, 1, refl.shape).astype(np.float32) * (0.008 * refl + 0.0003)
    return np.clip(refl, 0, None).astype(np.float32)


def change_ground(clear: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The ground on the cloudy acquisition's date: per-band radiometric change, phenology and,
    in some tiles, a local change (harvest, ploughing, flooding) of a few percent of the area."""
    change = load_calibration()["ground_change"]
    bands, height, width = clear.shape
    other = clear * rng.normal(1.0, change["band_gain_std"], bands).astype(np.float32)[:, None, None]
    vegetated = np.isin(labels, _VEGETATION)
    shift = float(rng.normal(0, change["vigour_change_std"]))
    other[4:9] *= 1 + shift * vegetated
    other[3] *= 1 - 0.8 * shift * vegetated
    if rng.random() < change["local_change_probability"]:
        field = _smooth_noise(rng, (height, width), max(2.0, height / 10))
        fraction = rng.uniform(*change["local_change_fraction"])
        patch = field > np.quantile(field, 1 - fraction)
        new_class = int(rng.choice([1, 4, 3]))  # flooded, ploughed/harvested, regrown
        gain = float(clear.mean() / CLASS_SPECTRA[labels].mean())  # the tile's illumination
        other[:, patch] = CLASS_SPECTRA[new_class][:, None] * gain
    return np.clip(other, 0, None).astype(np.float32)


def make_sar_db(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sentinel-1 VV/VH backscatter (2, H, W) float32 in dB with terrain, GRD blur and speckle."""
    sar = load_calibration()["sar"]
    size = labels.shape[0]
    db = CLASS_S1_DB[labels].transpose(2, 0, 1).copy()
    db += CLASS_S1_VARIATION_DB[labels] * _smooth_noise(rng, (2, size, size), max(1.5, size / 16))
    db += sar["terrain_db"] * powerlaw_noise(rng, (size, size), 3.0)  # local incidence angle
    ramp = np.linspace(-1, 1, size, dtype=np.float32)[None, None, :] * sar["incidence_ramp_db"]
    db += ramp if rng.random() < 0.5 else ramp[..., ::-1]  # incidence angle across the swath
    sigma = sar["resolution_sigma_px"]
    linear = gaussian_filter(10 ** (db / 10), (0, sigma, sigma))  # ~20 m resolution of GRD
    linear += 10 ** (np.asarray(sar["noise_floor_db"], dtype=np.float32)[:, None, None] / 10)
    linear *= rng.gamma(SPECKLE_LOOKS, 1 / SPECKLE_LOOKS, linear.shape)
    return (10 * np.log10(np.maximum(linear, 1e-6))).astype(np.float32)


def reflectance_to_dn(reflectance: np.ndarray) -> np.ndarray:
    """TOA reflectance → uint16 L1C DN with the +1000 offset of processing baseline ≥ 04.00."""
    return np.clip(np.rint(reflectance * 10000 + S2_DN_OFFSET), 0, 65535).astype(np.uint16)
