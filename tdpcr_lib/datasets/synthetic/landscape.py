"""The synthetic twin's landscapes: land cover, clear Sentinel-2 spectra and Sentinel-1 backscatter.

See :mod:`tdpcr_lib.datasets.synthetic.tiles` for how a tile is made and why.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

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


#: TOA reflectance signatures (rows: class codes 0-6; columns: ``S2_BANDS``).
CLASS_SPECTRA = np.array(
    [
        # B01   B02   B03   B04   B05   B06   B07   B08   B8A   B09   B10     B11   B12
        [0.110, 0.100, 0.100, 0.110, 0.115, 0.120, 0.125, 0.130, 0.132, 0.050, 0.0008, 0.150, 0.140],  # road
        [0.100, 0.080, 0.060, 0.040, 0.032, 0.026, 0.022, 0.018, 0.016, 0.006, 0.0006, 0.008, 0.005],  # water
        [0.130, 0.120, 0.120, 0.130, 0.140, 0.150, 0.160, 0.170, 0.172, 0.070, 0.0010, 0.210, 0.190],  # built-up
        [0.100, 0.085, 0.095, 0.080, 0.130, 0.230, 0.280, 0.310, 0.320, 0.110, 0.0008, 0.230, 0.140],  # cropland
        [0.120, 0.110, 0.130, 0.160, 0.180, 0.200, 0.210, 0.220, 0.230, 0.090, 0.0010, 0.310, 0.260],  # bare soil
        [0.095, 0.075, 0.085, 0.065, 0.110, 0.190, 0.220, 0.240, 0.250, 0.090, 0.0008, 0.200, 0.110],  # grassland
        [0.085, 0.065, 0.060, 0.035, 0.075, 0.200, 0.255, 0.280, 0.290, 0.100, 0.0008, 0.140, 0.060],  # forest
    ],
    dtype=np.float32,
)


#: Mean backscatter in dB (rows: class codes; columns: VV, VH).
CLASS_S1_DB = np.array(
    [
        [-17.0, -25.0],  # road: smooth surface, specular
        [-21.0, -28.0],  # water
        [-4.0, -11.0],  # built-up: double bounce
        [-10.0, -17.0],  # cropland
        [-13.0, -21.0],  # bare soil
        [-11.0, -18.0],  # grassland
        [-7.5, -13.0],  # forest: volume scattering (high VH)
    ],
    dtype=np.float32,
)


#: Per-class amplitude of fine optical texture (relative) and of smooth SAR variation (dB).
CLASS_TEXTURE = np.array([0.03, 0.02, 0.12, 0.04, 0.06, 0.05, 0.08], dtype=np.float32)


CLASS_S1_VARIATION_DB = np.array([0.5, 0.8, 2.0, 1.0, 1.0, 0.8, 1.0], dtype=np.float32)


#: Prior logits of the area classes 1-6 (codes 1..6); roads are drawn as lines.
AREA_CLASS_PRIOR = np.array([-0.9, -0.6, 0.0, -0.5, 0.4, 0.7], dtype=np.float32)


S2_DN_OFFSET = 1000


SPECKLE_LOOKS = 4.4


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


def make_clear_reflectance(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clear-sky TOA reflectance (13, H, W) float32 from a land-cover map."""
    size = labels.shape[0]
    refl = CLASS_SPECTRA[labels].transpose(2, 0, 1).copy()
    vegetated = np.isin(labels, (3, 5, 6))
    vigour = 0.18 * _smooth_noise(rng, labels.shape, max(2.0, size / 12)) * vegetated
    refl[4:9] *= 1 + vigour  # red edge and NIR follow vigour
    refl[3] *= 1 - 0.8 * vigour  # red absorbed more by vigorous vegetation
    fine = _smooth_noise(rng, labels.shape, 0.7)
    refl *= 1 + CLASS_TEXTURE[labels] * fine
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(3.5, 7.0)
    stripes = np.sign(np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period))
    refl *= 1 + 0.08 * stripes * (labels == 3)
    refl = gaussian_filter(refl, (0, 0.5, 0.5))  # mixed pixels at boundaries
    refl *= rng.uniform(0.92, 1.08)  # illumination / season
    refl += rng.normal(0, 1, refl.shape).astype(np.float32) * (0.008 * refl + 0.0003)
    return np.clip(refl, 0, None).astype(np.float32)


def make_sar_db(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sentinel-1 VV/VH backscatter (2, H, W) float32 in dB with speckle."""
    size = labels.shape[0]
    db = CLASS_S1_DB[labels].transpose(2, 0, 1).copy()
    db += CLASS_S1_VARIATION_DB[labels] * _smooth_noise(rng, (2, size, size), max(1.5, size / 16))
    ramp = np.linspace(-0.75, 0.75, size, dtype=np.float32)[None, None, :]
    db += ramp if rng.random() < 0.5 else ramp[..., ::-1]  # incidence angle across the swath
    linear = gaussian_filter(10 ** (db / 10), (0, 0.7, 0.7))  # ~20 m resolution of GRD
    linear *= rng.gamma(SPECKLE_LOOKS, 1 / SPECKLE_LOOKS, linear.shape)
    return (10 * np.log10(np.maximum(linear, 1e-6))).astype(np.float32)


def reflectance_to_dn(reflectance: np.ndarray) -> np.ndarray:
    """TOA reflectance → uint16 L1C DN with the +1000 offset of processing baseline ≥ 04.00."""
    return np.clip(np.rint(reflectance * 10000 + S2_DN_OFFSET), 0, 65535).astype(np.uint16)
