"""A synthetic twin of LuojiaSET-OSFCR: same layout, names, headers and units; learnable content.

Why: the real dataset is gated, so the notebooks, tests and CI run on this twin by default. It is
not noise: each tile is a small landscape whose land cover determines the clear Sentinel-2 spectra
and the Sentinel-1 backscatter, so a network can learn to (a) remove clouds using SAR and the
uncovered pixels and (b) segment land cover from either sensor.

How a tile is made (choices documented in ``docs/design.md``):

* **Land cover** (uint8, codes 0–6): arg-max of smooth Gaussian random fields per class plus
  per-tile priors (patches), with linear features drawn on top: a meandering river (water) and
  straight roads; built-up areas prefer the neighbourhood of roads. Synthetic semantics of the
  codes: 0 road, 1 water, 2 built-up, 3 cropland, 4 bare soil, 5 grassland (less vegetated),
  6 forest (densely vegetated). These are the twin's own; the real legend's names are unknown.
* **Clear S2** (uint16 DN): per-class 13-band TOA-reflectance signatures, a smooth vegetation-
  vigour field, per-class fine texture, crop-field stripes, mixed pixels at edges, a per-tile gain
  and sensor noise; DN = reflectance × 10000 + 1000 (the processing-baseline offset the real tiles
  carry, so B10 sits near 1008 as in the real data).
* **S1** (float32 dB, VV/VH): per-class backscatter, smooth within-class variation, an
  incidence-angle ramp and multiplicative Gamma speckle (ENL 4.4), so SAR carries the land cover
  under clouds.
* **Cloudy S2**: the clear scene with a small per-band radiometric change (another acquisition),
  then clouds and shadows from the ``satellite-cloud-generator`` package: its multi-scale Perlin
  noise (``generate_perlin``) shapes the cloud; the field is thresholded at the quantile that gives
  the tile's target cloud fraction; thickness rises from the edge to the core (thick, thin or
  thick-core-with-thin-margin clouds); thickness is band dependent (thin cloud scatters more at
  short wavelengths); the package's thickness-dependent local blur, cloud colouring, per-band cloud
  brightness and shadow mixing (``local_gaussian_blur``, ``mix``) render it. Thick clouds cast a
  shadow displaced along a per-tile sun direction.
* **Cloud mask** (float32 {0, 1}): the simulated cloud footprint (thickness > 0), so its fraction
  is the target fraction. Shadows are not in the mask (the real mask is a cloud detection).
* **Buckets**: tile ``i`` goes to bucket ``i mod 5``; its target cloud fraction is drawn uniformly
  from that bucket's range shrunk by 2 points on each side, so tiles spread evenly over buckets and
  each mask's fraction lies inside its bucket.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.io import atomic_path, atomic_write_json
from tdpcr_lib.datasets.layout import BUCKETS, modality_filename
from tdpcr_lib.datasets.manifest import write_manifest

#: The small twin the notebooks and ``tdpcr data synth`` make by default (about a minute on 2 cores).
DEFAULT_N_TILES = 250


DEFAULT_TILE_SIZE = 64


#: The one command that adds the cloud simulator without touching torch: its real imports (torch,
#: numpy, kornia, matplotlib) are tdpcr's own dependencies; it also declares torchvision, which it
#: never imports and which would make pip fetch a second (CUDA) torch build.
CLOUD_GENERATOR_INSTALL = "pip install --no-deps satellite-cloud-generator==0.4"


class CloudGeneratorMissing(ModuleNotFoundError):
    """``satellite-cloud-generator`` (needed to make the synthetic twin's clouds) is not installed."""


def require_cloud_generator() -> None:
    """Raise :class:`CloudGeneratorMissing` with the install command unless the package is present.

    Raises
    ------
    CloudGeneratorMissing
        Its message is one line naming :data:`CLOUD_GENERATOR_INSTALL`.
    """
    if importlib.util.find_spec("satellite_cloud_generator") is None:
        raise CloudGeneratorMissing(
            "the synthetic twin's clouds need satellite-cloud-generator, which is not installed; "
            f"install it with: {CLOUD_GENERATOR_INSTALL}", name="satellite_cloud_generator")


#: Smoke-test twin.
SMOKE_N_TILES = 50  # 10 per bucket: the smallest twin whose val split is not empty (int(0.1 n) >= 1)


SMOKE_TILE_SIZE = 32


#: Synthetic meaning of land-cover codes 0-6 (the twin's own; not claims about the real legend).
SYNTHETIC_CLASSES: dict[int, str] = {
    0: "road", 1: "water", 2: "built-up", 3: "cropland", 4: "bare soil",
    5: "grassland (less vegetated)", 6: "forest (densely vegetated)",
}


#: Band centre wavelengths (nm) in ``S2_BANDS`` order.
S2_WAVELENGTHS_NM = np.array([443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1375, 1610, 2190],
                             dtype=np.float32)


#: TOA reflectance signatures (rows: class codes 0-6; columns: ``S2_BANDS``).
CLASS_SPECTRA = np.array([
    # B01   B02   B03   B04   B05   B06   B07   B08   B8A   B09   B10     B11   B12
    [0.110, 0.100, 0.100, 0.110, 0.115, 0.120, 0.125, 0.130, 0.132, 0.050, 0.0008, 0.150, 0.140],  # road
    [0.100, 0.080, 0.060, 0.040, 0.032, 0.026, 0.022, 0.018, 0.016, 0.006, 0.0006, 0.008, 0.005],  # water
    [0.130, 0.120, 0.120, 0.130, 0.140, 0.150, 0.160, 0.170, 0.172, 0.070, 0.0010, 0.210, 0.190],  # built-up
    [0.100, 0.085, 0.095, 0.080, 0.130, 0.230, 0.280, 0.310, 0.320, 0.110, 0.0008, 0.230, 0.140],  # cropland
    [0.120, 0.110, 0.130, 0.160, 0.180, 0.200, 0.210, 0.220, 0.230, 0.090, 0.0010, 0.310, 0.260],  # bare soil
    [0.095, 0.075, 0.085, 0.065, 0.110, 0.190, 0.220, 0.240, 0.250, 0.090, 0.0008, 0.200, 0.110],  # grassland
    [0.085, 0.065, 0.060, 0.035, 0.075, 0.200, 0.255, 0.280, 0.290, 0.100, 0.0008, 0.140, 0.060],  # forest
], dtype=np.float32)


#: Mean backscatter in dB (rows: class codes; columns: VV, VH).
CLASS_S1_DB = np.array([
    [-17.0, -25.0],  # road: smooth surface, specular
    [-21.0, -28.0],  # water
    [-4.0, -11.0],   # built-up: double bounce
    [-10.0, -17.0],  # cropland
    [-13.0, -21.0],  # bare soil
    [-11.0, -18.0],  # grassland
    [-7.5, -13.0],   # forest: volume scattering (high VH)
], dtype=np.float32)


#: Per-class amplitude of fine optical texture (relative) and of smooth SAR variation (dB).
CLASS_TEXTURE = np.array([0.03, 0.02, 0.12, 0.04, 0.06, 0.05, 0.08], dtype=np.float32)


CLASS_S1_VARIATION_DB = np.array([0.5, 0.8, 2.0, 1.0, 1.0, 0.8, 1.0], dtype=np.float32)


#: Prior logits of the area classes 1-6 (codes 1..6); roads are drawn as lines.
AREA_CLASS_PRIOR = np.array([-0.9, -0.6, 0.0, -0.5, 0.4, 0.7], dtype=np.float32)


#: Reflectance of an opaque cloud per band (bright and flat in VNIR, darker in B09/SWIR, seen in B10).
CLOUD_SPECTRUM = np.array([0.80, 0.78, 0.76, 0.74, 0.74, 0.74, 0.73, 0.72, 0.72, 0.45, 0.30,
                           0.45, 0.28], dtype=np.float32)


S2_DN_OFFSET = 1000


SPECKLE_LOOKS = 4.4


#: ROI id → UTM EPSG code (ROI 01 is western Tasmania, UTM 55S, like the real sample tiles).
ROI_EPSG: dict[str, int] = {
    "01": 32755, "02": 32650, "03": 32633, "04": 32618, "05": 32744,
    "06": 32610, "07": 32636, "08": 32643, "09": 32721, "10": 32654,
}


PIXEL_SIZE_M = 10.0


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


def _perlin_field(size: int, seed: int, locality: int, decay: float) -> np.ndarray:
    """Product of ``locality`` normalised Perlin fields from satellite-cloud-generator, in [0, 1]."""
    # optional dependency, imported lazily (see require_cloud_generator)
    from satellite_cloud_generator.noise import generate_perlin

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        field = torch.ones(size, size)
        for _ in range(locality):
            noise = generate_perlin(shape=(size, size), batch=1, device="cpu", const_scale=True,
                                    decay_factor=decay)[0]
            noise = (noise - noise.min()) / (noise.max() - noise.min() + 1e-8)
            field *= noise
    return field.numpy().astype(np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift a 2-D array by whole pixels, filling with zeros (no wrap-around)."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def _local_blur(image: torch.Tensor, modulator: torch.Tensor, strip: int = 64) -> torch.Tensor:
    """The package's thickness-dependent Gaussian blur, in row strips to bound memory."""
    # optional dependency, imported lazily (see require_cloud_generator)
    from satellite_cloud_generator.LocalGaussianBlur import local_gaussian_blur

    height = image.shape[-2]
    if height <= 2 * strip:
        return local_gaussian_blur(image, modulator)
    halo = 5  # the package's 11×11 kernel reaches 5 pixels
    out = torch.empty_like(image)
    for r0 in range(0, height, strip):
        r1 = min(height, r0 + strip)
        a, b = max(0, r0 - halo), min(height, r1 + halo)
        part = local_gaussian_blur(image[..., a:b, :].contiguous(), modulator[..., a:b, :].contiguous())
        out[..., r0:r1, :] = part[..., r0 - a:r1 - a, :]
    return out


def simulate_clouds(clear: np.ndarray, cloud_fraction: float, rng: np.random.Generator,
                    kind: str | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Add clouds and shadows to a clear reflectance image.

    Parameters
    ----------
    clear : ndarray (13, H, W)
        Clear TOA reflectance.
    cloud_fraction : float
        Fraction of pixels the cloud footprint covers (the returned mask hits it to within ties).
    rng : numpy Generator
    kind : {"thick", "thin", "mixed"}, optional
        Cloud type; random (0.5 / 0.2 / 0.3) if omitted.

    Returns
    -------
    cloudy : ndarray (13, H, W) float32
        Cloudy reflectance.
    mask : ndarray (H, W) float32
        Cloud footprint in {0, 1}.
    info : dict
        The drawn cloud parameters.
    """
    require_cloud_generator()
    # optional dependency, imported lazily (see require_cloud_generator)
    from satellite_cloud_generator.CloudSimulator import mix

    bands, height, width = clear.shape
    size = max(height, width)
    kind = kind or str(rng.choice(["thick", "thin", "mixed"], p=[0.5, 0.2, 0.3]))
    field = _perlin_field(size, int(rng.integers(2**31)), int(rng.integers(1, 3)),
                          float(rng.uniform(0.8, 1.3)))[:height, :width]
    fraction = float(np.clip(cloud_fraction, 0.0, 1.0))
    if fraction <= 0:
        mask = np.zeros((height, width), dtype=bool)
        threshold = float(field.max())
    else:
        threshold = float(np.quantile(field, 1 - fraction)) if fraction < 1 else -1.0
        mask = field > threshold
    if kind == "thick":
        base, top, alpha = rng.uniform(0.15, 0.3), rng.uniform(0.85, 1.0), rng.uniform(0.0, 0.2)
        core = threshold
    elif kind == "thin":
        base, top, alpha = rng.uniform(0.08, 0.15), rng.uniform(0.3, 0.55), rng.uniform(0.5, 1.2)
        core = threshold
    elif kind == "mixed":
        base, top, alpha = rng.uniform(0.2, 0.4), rng.uniform(0.85, 1.0), rng.uniform(0.2, 0.6)
        share = rng.uniform(0.3, 0.7)
        core = float(np.quantile(field, 1 - fraction * share)) if fraction > 0 else threshold
    else:
        raise ValueError(f"kind must be 'thick', 'thin' or 'mixed', got {kind!r}")
    softness = rng.uniform(0.2, 0.5) * max(float(field.max()) - core, 1e-6)
    thickness = mask * (base + (top - base) * _smoothstep((field - core) / softness))

    # Thin cloud scatters more at short wavelengths: per-band weight (560 nm / λ)^alpha, jittered.
    weights = (560.0 / S2_WAVELENGTHS_NM) ** alpha * rng.uniform(0.95, 1.05, bands)
    per_band = np.clip(thickness[None] * weights[:, None, None], 0, 1).astype(np.float32)

    opaque = _smoothstep((thickness - 0.45) / 0.4)
    direction = rng.uniform(0, 2 * np.pi)
    offset = rng.uniform(0.05, 0.15) * size
    dy, dx = int(round(offset * np.sin(direction))), int(round(offset * np.cos(direction)))
    shadow = gaussian_filter(_shift(opaque.astype(np.float32), dy, dx), 1.0)
    shadow *= rng.uniform(0.35, 0.65)

    other_date = clear * rng.normal(1.0, 0.015, bands).astype(np.float32)[:, None, None]
    image = torch.from_numpy(other_date.astype(np.float32))[None]
    cloud = torch.from_numpy(per_band)[None]
    blurred = _local_blur(image, 2.0 * cloud.mean(1))
    brightness = torch.from_numpy(CLOUD_SPECTRUM * rng.uniform(0.85, 1.05))
    shadow_t = torch.from_numpy(shadow.astype(np.float32))[None, None].expand(1, bands, height, width)
    with torch.no_grad():
        cloudy = mix(blurred, cloud, shadow=shadow_t, channel_magnitude=brightness[None],
                     blur_scaling=0.0, cloud_color=True)
    info = {"kind": kind, "target_fraction": fraction, "top_thickness": float(top),
            "alpha": float(alpha), "shadow_offset_px": [dy, dx]}
    return cloudy[0].numpy().astype(np.float32), mask.astype(np.float32), info


def reflectance_to_dn(reflectance: np.ndarray) -> np.ndarray:
    """TOA reflectance → uint16 L1C DN with the +1000 offset of processing baseline ≥ 04.00."""
    return np.clip(np.rint(reflectance * 10000 + S2_DN_OFFSET), 0, 65535).astype(np.uint16)


def bucket_fraction_range(bucket: str, margin: float = 0.02) -> tuple[float, float]:
    """Cloud-fraction interval a bucket's tiles are drawn from (bucket range shrunk by ``margin``)."""
    index = BUCKETS.index(bucket)
    return 0.2 * index + margin, 0.2 * (index + 1) - margin


def generate_tile(size: int, seed: int | np.random.SeedSequence, cloud_fraction: float,
                  cloud_kind: str | None = None) -> dict[str, Any]:
    """All five modalities of one synthetic tile, in file units.

    Returns
    -------
    dict
        ``s2`` (13, H, W) uint16, ``s2_cloudy`` (13, H, W) uint16, ``s1`` (2, H, W) float32 dB,
        ``land_cover_maps`` (1, H, W) uint8, ``cloud_detection_results`` (1, H, W) float32, and
        ``info`` (cloud parameters).
    """
    rng = np.random.default_rng(seed)
    labels = make_land_cover(size, rng)
    clear = make_clear_reflectance(labels, rng)
    sar = make_sar_db(labels, rng)
    cloudy, mask, info = simulate_clouds(clear, cloud_fraction, rng, kind=cloud_kind)
    return {
        "s2": reflectance_to_dn(clear),
        "s2_cloudy": reflectance_to_dn(cloudy),
        "s1": sar,
        "land_cover_maps": labels[None],
        "cloud_detection_results": mask[None],
        "info": info,
    }


# --------------------------------------------------------------------------------------------
# Writing the tree
# --------------------------------------------------------------------------------------------
_DESCRIPTIONS = {
    "s2": S2_BANDS, "s2_cloudy": S2_BANDS, "s1": S1_BANDS,
    "land_cover_maps": ("land_cover",), "cloud_detection_results": ("cloud_mask",),
}


def write_geotiff(path: Path, array: np.ndarray, crs: Any, transform: Any,
                  descriptions: tuple[str, ...] | None = None, tags: dict[str, str] | None = None
                  ) -> None:
    """Write (bands, H, W) as an uncompressed, strip-organised GeoTIFF, atomically."""
    import rasterio

    profile = {"driver": "GTiff", "height": array.shape[1], "width": array.shape[2],
               "count": array.shape[0], "dtype": array.dtype.name, "transform": transform}
    if crs is not None:
        profile["crs"] = crs
    with atomic_path(path, suffix=".tif") as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(array)
            if descriptions:
                dst.descriptions = tuple(descriptions)
            if tags:
                dst.update_tags(**tags)


def _tile_names(index: int) -> tuple[str, str, str]:
    bucket = BUCKETS[index % len(BUCKETS)]
    roi = f"{1 + (index // len(BUCKETS)) % len(ROI_EPSG):02d}"
    return bucket, roi, f"p{index + 1}"


def _georeference(roi: str, index: int, size: int):
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    epsg = ROI_EPSG[roi]
    north = epsg < 32700
    column, row = index % 40, index // 40
    x0 = 300_000.0 + column * size * PIXEL_SIZE_M
    y0 = (4_500_000.0 if north else 5_300_000.0) - row * size * PIXEL_SIZE_M
    return CRS.from_epsg(epsg), Affine(PIXEL_SIZE_M, 0.0, x0, 0.0, -PIXEL_SIZE_M, y0)


def _write_tile(root: Path, index: int, size: int, seed: int, fractions: dict[str, list[float]],
                kinds: dict[str, int]) -> None:
    bucket, roi, patch = _tile_names(index)
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    lo, hi = bucket_fraction_range(bucket)
    tile = generate_tile(size, rng, float(rng.uniform(lo, hi)))
    crs, transform = _georeference(roi, index, size)
    for modality, descriptions in _DESCRIPTIONS.items():
        tile_crs = crs
        if modality == "land_cover_maps" and index % 3 == 0:
            tile_crs = None  # the real land-cover maps often carry no CRS
        write_geotiff(root / bucket / modality / modality_filename(roi, patch, modality),
                      tile[modality], tile_crs, transform, descriptions,
                      {"SOURCE": "tdpcr synthetic LuojiaSET-OSFCR twin"})
    fractions[bucket].append(float(tile["cloud_detection_results"].mean()))
    kinds[tile["info"]["kind"]] = kinds.get(tile["info"]["kind"], 0) + 1


def _generation_params(n_tiles: int, size: int, seed: int) -> dict[str, Any]:
    from tdpcr_lib import __version__

    return {"n_tiles": int(n_tiles), "size": int(size), "seed": int(seed),
            "tdpcr_version": __version__, "format": 1}


def make_synthetic_luojiaset(root: str | Path, n_tiles: int = DEFAULT_N_TILES,
                             size: int = DEFAULT_TILE_SIZE, seed: int = 0, overwrite: bool = False,
                             progress: Callable[[int, int], None] | None = None) -> Path:
    """Write a synthetic LuojiaSET-OSFCR twin with the real layout, names and headers.

    Parameters
    ----------
    root : path
        Output folder. If it already holds a twin made with the same parameters, it is reused.
    n_tiles : int
        Number of tiles, spread evenly over the five buckets (default 250: 50 per bucket).
    size : int
        Tile side in pixels (default 64; the real tiles are 256). Chosen so the default twin is
        generated in about a minute on 2 CPU cores and trains in minutes.
    seed : int
        Everything is a deterministic function of ``(seed, tile index)``.
    overwrite : bool
        Replace an existing twin made with other parameters (only the bucket folders, the
        ``manifest`` folder and ``synthetic.json`` are removed). A non-empty folder that is not a
        twin is never touched.
    progress : callable, optional
        Called as ``progress(done, total)`` after each tile.

    Returns
    -------
    Path
        ``root``; ``<root>/manifest/`` holds the split CSVs and checksums and
        ``<root>/synthetic.json`` the parameters, so ``LuojiaSETOSFCR(root, split)`` works at once.

    Notes
    -----
    Every third tile's land-cover file is written without a CRS, mimicking the real data. S2 files
    carry the band descriptions B01…B12 (with B8A), S1 files VV and VH.
    """
    if n_tiles < 1 or size < 8:
        raise ValueError(f"need n_tiles >= 1 and size >= 8, got n_tiles={n_tiles}, size={size}")
    root = Path(root).expanduser()
    info_path = root / "synthetic.json"
    params = _generation_params(n_tiles, size, seed)
    if info_path.is_file():
        previous = json.loads(info_path.read_text())
        if previous.get("parameters") == params and (root / "manifest" / "test.csv").is_file():
            return root
        if not overwrite:
            raise FileExistsError(f"{root} holds a synthetic twin made with other parameters "
                                  f"({previous.get('parameters')}); pass overwrite=True "
                                  "(--overwrite) to replace it")
    elif root.is_dir() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists, is not empty and is not a synthetic twin (no "
                              "synthetic.json); choose an empty or new folder (tdpcr never "
                              "deletes data it did not write, even with overwrite=True)")
    require_cloud_generator()  # before anything is removed or written
    for owned in (*BUCKETS, "manifest"):
        if (root / owned).is_dir():
            shutil.rmtree(root / owned)
    info_path.unlink(missing_ok=True)

    started = time.perf_counter()
    fractions: dict[str, list[float]] = {b: [] for b in BUCKETS}
    kinds: dict[str, int] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiles are small: one thread is ~3x faster than two (overhead)
    try:
        for index in range(n_tiles):
            _write_tile(root, index, size, seed, fractions, kinds)
            if progress is not None:
                progress(index + 1, n_tiles)
    finally:
        torch.set_num_threads(threads)
    generation_s = time.perf_counter() - started


    write_manifest(root, out=root / "manifest", extra_config={"source": "synthetic", **params})
    atomic_write_json(info_path, {
        "description": "Synthetic twin of LuojiaSET-OSFCR made by tdpcr_lib.datasets.synthetic.tiles",
        "parameters": params,
        "classes": {str(k): v for k, v in SYNTHETIC_CLASSES.items()},
        "cloud_kinds": kinds,
        "cloud_fraction_per_bucket": {b: {"n": len(v), "min": min(v, default=None),
                                          "max": max(v, default=None),
                                          "mean": float(np.mean(v)) if v else None}
                                      for b, v in fractions.items()},
        "generation_seconds": round(generation_s, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
    })
    return root


def read_synthetic_info(root: str | Path) -> dict[str, Any] | None:
    """``<root>/synthetic.json`` (None if ``root`` is not a synthetic twin)."""
    path = Path(root) / "synthetic.json"
    return json.loads(path.read_text()) if path.is_file() else None
