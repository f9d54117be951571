"""The synthetic twin's clouds and shadows, rendered with ``satellite-cloud-generator``.

See :mod:`tdpcr_lib.datasets.synthetic.tiles` for the design. ``satellite-cloud-generator`` is
imported inside the functions that use it: it is an optional dependency (the ``synth`` extra, or
:data:`CLOUD_GENERATOR_INSTALL`), needed only to *generate* a twin, never to load one.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from tdpcr_lib.datasets.synthetic.calibration import cloud_spectrum, load_calibration
from tdpcr_lib.datasets.synthetic.landscape import S2_WAVELENGTHS_NM, _smooth_noise

#: Reflectance of an opaque low cloud per band (bright and nearly flat in VNIR and B11, B09 absorbed
#: above it, invisible in B10); from ``twin_calibration.json``.
CLOUD_SPECTRUM = cloud_spectrum()


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
            f"install it with: {CLOUD_GENERATOR_INSTALL}",
            name="satellite_cloud_generator",
        )


def _perlin_field(size: int, seed: int, locality: int, decay: float) -> np.ndarray:
    """Product of ``locality`` normalised Perlin fields from satellite-cloud-generator, in [0, 1]."""
    # lazy: optional dependency, see the module docstring
    from satellite_cloud_generator.noise import generate_perlin

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        field = torch.ones(size, size)
        for _ in range(locality):
            noise = generate_perlin(shape=(size, size), batch=1, device="cpu", const_scale=True, decay_factor=decay)[0]
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
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def _local_blur(image: torch.Tensor, modulator: torch.Tensor, strip: int = 64) -> torch.Tensor:
    """The package's thickness-dependent Gaussian blur, in row strips to bound memory."""
    # lazy: optional dependency, see the module docstring
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
        out[..., r0:r1, :] = part[..., r0 - a : r1 - a, :]
    return out


def add_atmosphere(image: np.ndarray, conditions: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Haze (aerosol path reflectance and transmission, falling with wavelength) and thin cirrus
    (seen in B10, faintly elsewhere) over a (13, H, W) reflectance image, as smooth fields."""
    out = image
    height, width = image.shape[1:]
    if conditions.get("haze_aod", 0.0) > 0:
        field = np.clip(1 + 0.4 * _smooth_noise(rng, (height, width), max(3.0, height / 4)), 0.2, 2)
        tau = conditions["haze_aod"] * (S2_WAVELENGTHS_NM / 550.0) ** -conditions["haze_angstrom"]
        tau = tau[:, None, None] * field[None]
        tau[10] = 0.0  # B10's own signal is the cirrus band's: water vapour absorbs the rest
        out = out * np.exp(-tau) + 0.3 * (1 - np.exp(-tau))  # single-scattering path term
    if conditions.get("cirrus_b10", 0.0) > 0:
        ratio = load_calibration()["atmosphere"]["cirrus_visible_ratio"]
        field = np.clip(0.5 + 0.5 * _smooth_noise(rng, (height, width), max(3.0, height / 5)), 0, 2)
        cirrus = conditions["cirrus_b10"] * field
        out = out + ratio * cirrus[None] * (np.arange(13) != 10)[:, None, None]
        out[10] = out[10] + cirrus
    return out.astype(np.float32)


def simulate_clouds(
    clear: np.ndarray,
    cloud_fraction: float,
    rng: np.random.Generator,
    kind: str | None = None,
    ground: np.ndarray | None = None,
    conditions: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
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
    ground : ndarray (13, H, W), optional
        The ground on the cloudy date (:func:`~tdpcr_lib.datasets.synthetic.landscape.change_ground`);
        default: ``clear`` with a small per-band change.
    conditions : dict, optional
        Haze and cirrus of the cloudy date (:func:`add_atmosphere`); none if omitted.

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
    # lazy: optional dependency, see the module docstring
    from satellite_cloud_generator.CloudSimulator import mix

    bands, height, width = clear.shape
    size = max(height, width)
    kind = kind or str(rng.choice(["thick", "thin", "mixed"], p=[0.5, 0.2, 0.3]))
    field = _perlin_field(size, int(rng.integers(2**31)), int(rng.integers(1, 3)), float(rng.uniform(0.8, 1.3)))[
        :height, :width
    ]
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
    shadow *= rng.uniform(*load_calibration()["atmosphere"]["shadow_darkening"])

    if ground is None:
        ground = clear * rng.normal(1.0, 0.015, bands).astype(np.float32)[:, None, None]
    other_date = add_atmosphere(ground, conditions or {}, rng)
    image = torch.from_numpy(other_date.astype(np.float32))[None]
    cloud = torch.from_numpy(per_band)[None]
    blurred = _local_blur(image, 2.0 * cloud.mean(1))
    spectrum = CLOUD_SPECTRUM * rng.uniform(0.85, 1.05)
    atmosphere = load_calibration()["atmosphere"]
    # Most clouds are low: B09 is absorbed above them and B10 does not see them. A few high tops
    # are bright in both; a model that saw only those would take B10 for its cloud detector.
    high_top = bool(rng.random() < atmosphere["high_top_probability"])
    if high_top:
        (b09_lo, b09_hi), (b10_lo, b10_hi) = atmosphere["high_top_b09_b10"]
        spectrum[9], spectrum[10] = rng.uniform(b09_lo, b09_hi), rng.uniform(b10_lo, b10_hi)
    brightness = torch.from_numpy(spectrum.astype(np.float32))
    shadow_t = torch.from_numpy(shadow.astype(np.float32))[None, None].expand(1, bands, height, width)
    with torch.no_grad():
        cloudy = mix(
            blurred, cloud, shadow=shadow_t, channel_magnitude=brightness[None], blur_scaling=0.0, cloud_color=True
        )
    info = {
        "kind": kind,
        "target_fraction": fraction,
        "top_thickness": float(top),
        "alpha": float(alpha),
        "high_top": high_top,
        "shadow_offset_px": [dy, dx],
    }
    return cloudy[0].numpy().astype(np.float32), mask.astype(np.float32), info
