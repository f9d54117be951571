"""Synthetic Sentinel-2/Sentinel-1 *scenes* of any size (scene-prediction tests, notebook 06, benchmarks).

:func:`make_synthetic_scene` writes a georeferenced scene pair the way a user would bring it:
a cloudy 13-band L1C S2 GeoTIFF and an S1 (VV, VH dB) GeoTIFF, the latter optionally on a shifted
and/or coarser grid, plus the clear S2, the land-cover truth and the cloud mask for scoring.

Everything is a deterministic function of *map coordinates* (metres) and the seed: land cover,
texture, clouds and speckle come from hashed lattice value noise evaluated at each pixel centre.
So the scene is generated strip by strip with bounded memory (any size, e.g. a full 10980 × 10980
tile), the S1 grid samples the *same* landscape as S2 wherever its pixels fall, and a window of
the scene does not depend on how it was generated.

The class spectra, backscatter, texture amplitudes, cloud colour and DN conversion are reused from
the synthetic LuojiaSET twin (:mod:`tdpcr_lib.datasets.synthetic.tiles`), so class codes mean the same
(``SYNTHETIC_CLASSES``: 0 road, 1 water, 2 built-up, 3 cropland, 4 bare soil, 5 grassland,
6 forest) and a model trained on the twin applies. The *spatial* fields are our own: the twin draws
whole tiles (Gaussian-filtered noise, ``satellite-cloud-generator`` clouds), which cannot be
evaluated window by window, so scenes use coordinate-based value noise with similar feature sizes
(patches of a few hundred metres, clouds of about a kilometre, 4-look speckle).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.io import atomic_path
from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.datasets.synthetic.clouds import CLOUD_SPECTRUM
from tdpcr_lib.datasets.synthetic.landscape import (
    CLASS_S1_DB,
    CLASS_S1_VARIATION_DB,
    CLASS_SPECTRA,
    CLASS_TEXTURE,
    SYNTHETIC_CLASSES,
    reflectance_to_dn,
)

#: Spectra, backscatter and cloud colour are the synthetic twin's own tables, so a model trained on
#: the twin (notebooks 00-04) sees the same classes here. Codes: see ``SYNTHETIC_CLASSES``.
CLASS_REFLECTANCE = CLASS_SPECTRA


CLASS_BACKSCATTER_DB = CLASS_S1_DB


CLOUD_REFLECTANCE = CLOUD_SPECTRUM


_ROWS_PER_STRIP = 256


@dataclass(frozen=True)
class SyntheticScene:
    """Paths and grid of a scene written by :func:`make_synthetic_scene`."""

    s2_cloudy: Path
    s1: Path
    s2_clear: Path
    land_cover: Path
    cloud_mask: Path
    height: int
    width: int
    crs: str
    transform: Affine


# --------------------------------------------------------------------------------------------
# Coordinate-deterministic noise
# --------------------------------------------------------------------------------------------
def _hash_uniform(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) from integer lattice coordinates (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        h = (
            ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            ^ iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
            ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x165667B19E3779F9)
        )
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def value_noise(x: np.ndarray, y: np.ndarray, cell: float, salt: int) -> np.ndarray:
    """Smooth noise in [0, 1] at map coordinates ``x, y`` with feature size ``cell`` metres."""
    gx, gy = x / cell, y / cell
    ix, iy = np.floor(gx), np.floor(gy)
    fx, fy = gx - ix, gy - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)  # smoothstep: C1 across cells
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)
    v00 = _hash_uniform(ix, iy, salt)
    v10 = _hash_uniform(ix + 1, iy, salt)
    v01 = _hash_uniform(ix, iy + 1, salt)
    v11 = _hash_uniform(ix + 1, iy + 1, salt)
    return (v00 * (1 - fx) + v10 * fx) * (1 - fy) + (v01 * (1 - fx) + v11 * fx) * fy


def fractal_noise(x: np.ndarray, y: np.ndarray, cell: float, salt: int, octaves: int = 4) -> np.ndarray:
    """Sum of ``octaves`` value-noise layers (halving size and amplitude), in [0, 1]."""
    total = np.zeros(np.broadcast(x, y).shape)
    norm = 0.0
    for o in range(octaves):
        amp = 0.5**o
        total += amp * value_noise(x, y, cell / 2**o, salt * 131 + o)
        norm += amp
    return total / norm


# --------------------------------------------------------------------------------------------
# The landscape as functions of map coordinates
# --------------------------------------------------------------------------------------------
def land_cover_at(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Class codes (uint8, ``SYNTHETIC_CLASSES``) at map coordinates: patches, a water body, roads."""
    # One smooth field per area class 2..6; the largest wins (like the twin's argmax of logits).
    fields = np.stack([fractal_noise(x, y, 450.0, seed * 7 + k, octaves=3) for k in range(5)])
    fields += np.asarray([0.0, -0.02, 0.0, 0.04, 0.06]).reshape(-1, 1, 1)
    classes = (np.argmax(fields, axis=0) + 2).astype(np.uint8)
    water = fractal_noise(x, y, 1500.0, seed * 7 + 5, octaves=3) < 0.3
    # Two families of straight roads, ~15 m wide, every 1.3 / 1.9 km.
    road_a = np.abs(np.mod(0.8 * x + 0.6 * y + seed * 311.0, 1300.0) - 650.0) < 7.5
    road_b = np.abs(np.mod(-0.5 * x + 0.866 * y + seed * 173.0, 1900.0) - 950.0) < 7.5
    classes[road_a | road_b] = 0
    classes[water] = 1
    return classes


def _lookup(classes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per-class rows of ``table`` (classes × values) → values-first array (values, ...)."""
    return np.moveaxis(np.asarray(table, dtype=np.float64)[classes], -1, 0)


def clear_reflectance_at(x: np.ndarray, y: np.ndarray, classes: np.ndarray, seed: int) -> np.ndarray:
    """Clear-sky reflectance (13, ...) from class signatures, smooth texture and pixel noise."""
    refl = _lookup(classes, CLASS_REFLECTANCE)
    smooth = 1.0 + 0.3 * (fractal_noise(x, y, 200.0, seed * 11 + 5, octaves=3) - 0.5)
    grain = _hash_uniform(np.floor(x).astype(np.int64), np.floor(y).astype(np.int64), seed * 11 + 6) - 0.5
    refl = refl * smooth * (1.0 + 2.0 * CLASS_TEXTURE[classes] * grain)
    return np.clip(refl, 0.0, 1.0)


def clouds_at(
    x: np.ndarray, y: np.ndarray, seed: int, cloud_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thick-cloud opacity, thin-haze opacity and shadow strength, each in [0, 1]."""
    field = fractal_noise(x, y, 1500.0, seed * 13 + 7, octaves=5)
    thick = np.clip((field - cloud_threshold) / 0.08, 0.0, 1.0)
    haze = 0.35 * np.clip((fractal_noise(x, y, 3000.0, seed * 13 + 8, octaves=3) - 0.45) / 0.2, 0.0, 1.0)
    # Shadows: the cloud field displaced by a fixed sun-geometry offset, darkening the ground.
    shifted = fractal_noise(x + 200.0, y - 150.0, 1500.0, seed * 13 + 7, octaves=5)
    shadow = 0.6 * np.clip((shifted - cloud_threshold) / 0.08, 0.0, 1.0)
    return thick, haze, shadow


def backscatter_db_at(x: np.ndarray, y: np.ndarray, classes: np.ndarray, seed: int, looks: int = 4) -> np.ndarray:
    """(VV, VH) in dB: class means plus ``looks``-look gamma speckle (hashed per metre cell)."""
    db = _lookup(classes, CLASS_BACKSCATTER_DB)
    db += CLASS_S1_VARIATION_DB[classes] * 2.0 * (fractal_noise(x, y, 250.0, seed * 17 + 3, octaves=2) - 0.5)
    ix, iy = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    for b in range(2):
        gamma = np.zeros(classes.shape)
        for k in range(looks):
            u = _hash_uniform(ix, iy, seed * 17 + 10 * b + k + 9)
            gamma -= np.log(np.clip(u, 1e-12, 1.0))
        db[b] += 10.0 * np.log10(gamma / looks)
    return db


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _profile(
    width: int, height: int, count: int, dtype: str, crs: str, transform: Affine, nodata: float | None
) -> dict:
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype=dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        compress="deflate",
        bigtiff="if_safer",
    )
    if width >= 256 and height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def _pixel_centres(transform: Affine, row0: int, n_rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    cols = np.arange(width) + 0.5
    rows = np.arange(row0, row0 + n_rows) + 0.5
    c, r = np.meshgrid(cols, rows)
    x = transform.c + c * transform.a + r * transform.b
    y = transform.f + c * transform.d + r * transform.e
    return x, y


def make_synthetic_scene(
    out_dir: str | Path,
    height: int = 600,
    width: int = 700,
    *,
    seed: int = 0,
    crs: str = "EPSG:32755",
    resolution: float = 10.0,
    origin: tuple[float, float] = (399960.0, 5300020.0),
    s1_offset: tuple[float, float] = (0.0, 0.0),
    s1_resolution: float | None = None,
    s1_margin: float = 40.0,
    cloud_threshold: float = 0.5,
    nodata_corner: int = 0,
    declare_s2_nodata: bool = True,
) -> SyntheticScene:
    """Write a synthetic cloudy S2 + S1 scene pair (and truth) as GeoTIFFs into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Folder for ``s2_cloudy.tif``, ``s1.tif``, ``s2_clear.tif``, ``land_cover.tif`` and
        ``cloud_mask.tif`` (written atomically).
    height, width : int
        S2 size in pixels (any size; generated in 256-row strips).
    seed : int
        Everything is deterministic for a seed.
    crs, resolution, origin
        S2 grid: CRS (default UTM 55S, like the LuojiaSET samples), pixel size (m) and the
        upper-left corner (x, y) in metres.
    s1_offset : (dx, dy) metres
        Shift of the S1 grid relative to the S2 grid (not a multiple of the pixel size gives a
        genuinely misaligned grid that must be resampled).
    s1_resolution : float, optional
        S1 pixel size in metres (default: same as S2).
    s1_margin : float
        S1 extends this many metres beyond the S2 footprint on every side (before the offset),
        so a small offset still covers the whole S2 scene.
    cloud_threshold : float
        Level of the cloud field above which clouds form (0.5 gives roughly a third to a half of
        the scene under cloud; larger means fewer clouds).
    nodata_corner : int
        If > 0, S2 pixels with ``row + col < nodata_corner`` are set to 0 in all bands (like the
        edge of a swath), to exercise nodata handling.
    declare_s2_nodata : bool
        Declare nodata = 0 in the S2 files' headers (L1C convention); if False the zeros are
        left undeclared.

    Returns
    -------
    SyntheticScene
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if height < 1 or width < 1:
        raise ValueError(f"scene size must be positive, got {height}x{width}")
    s2_transform = Affine(resolution, 0.0, origin[0], 0.0, -resolution, origin[1])
    s1_res = float(s1_resolution or resolution)
    s1_left = origin[0] - s1_margin + s1_offset[0]
    s1_top = origin[1] + s1_margin + s1_offset[1]
    s1_width = int(np.ceil((width * resolution + 2 * s1_margin) / s1_res))
    s1_height = int(np.ceil((height * resolution + 2 * s1_margin) / s1_res))
    s1_transform = Affine(s1_res, 0.0, s1_left, 0.0, -s1_res, s1_top)
    cloud_lut = np.asarray(CLOUD_REFLECTANCE, dtype=np.float64).reshape(-1, 1, 1)
    s2_nodata = 0 if declare_s2_nodata else None
    names = ("s2_cloudy", "s2_clear", "land_cover", "cloud_mask", "s1")
    paths = {n: out_dir / f"{n}.tif" for n in names}

    with contextlib.ExitStack() as stack:
        tmp = {n: stack.enter_context(atomic_path(p, suffix=".tif")) for n, p in paths.items()}
        specs = {
            "s2_cloudy": (width, height, 13, "uint16", s2_transform, s2_nodata),
            "s2_clear": (width, height, 13, "uint16", s2_transform, s2_nodata),
            "land_cover": (width, height, 1, "uint8", s2_transform, 255),
            "cloud_mask": (width, height, 1, "float32", s2_transform, None),
            "s1": (s1_width, s1_height, 2, "float32", s1_transform, None),
        }
        dst = {}
        for n, (w, h, count, dtype, transform, nodata) in specs.items():
            dst[n] = stack.enter_context(
                rasterio.open(tmp[n], "w", **_profile(w, h, count, dtype, crs, transform, nodata))
            )
        for n in ("s2_cloudy", "s2_clear"):
            for i, band in enumerate(S2_BANDS, start=1):
                dst[n].set_band_description(i, band)
        for i, band in enumerate(S1_BANDS, start=1):
            dst["s1"].set_band_description(i, band)
        dst["land_cover"].write_colormap(1, load_legend().rasterio_colormap())
        dst["land_cover"].set_band_description(1, "land_cover")
        dst["land_cover"].update_tags(**{f"CLASS_{c}": n for c, n in SYNTHETIC_CLASSES.items()})
        dst["cloud_mask"].set_band_description(1, "cloud_mask")
        for d in dst.values():
            d.update_tags(GENERATOR="tdpcr_lib.datasets.synthetic.scenes.make_synthetic_scene", SEED=str(seed))

        for row0 in range(0, height, _ROWS_PER_STRIP):
            n = min(_ROWS_PER_STRIP, height - row0)
            window = Window(0, row0, width, n)
            x, y = _pixel_centres(s2_transform, row0, n, width)
            classes = land_cover_at(x, y, seed)
            clear = clear_reflectance_at(x, y, classes, seed)
            thick, haze, shadow = clouds_at(x, y, seed, cloud_threshold)
            ground = clear * (1.0 - shadow * (1.0 - thick))
            opacity = np.clip(thick + haze * (1.0 - thick), 0.0, 1.0)
            cloudy = ground * (1.0 - opacity) + cloud_lut * opacity
            to_dn = [np.maximum(reflectance_to_dn(a), 1) for a in (clear, cloudy)]
            if nodata_corner > 0:
                rr, cc = np.meshgrid(np.arange(row0, row0 + n), np.arange(width), indexing="ij")
                empty = (rr + cc) < nodata_corner
                for dn in to_dn:
                    dn[:, empty] = 0
            dst["s2_clear"].write(to_dn[0], window=window)
            dst["s2_cloudy"].write(to_dn[1], window=window)
            dst["land_cover"].write(classes[None], window=window)
            dst["cloud_mask"].write((thick > 0.5).astype(np.float32)[None], window=window)
        for row0 in range(0, s1_height, _ROWS_PER_STRIP):
            n = min(_ROWS_PER_STRIP, s1_height - row0)
            x, y = _pixel_centres(s1_transform, row0, n, s1_width)
            classes = land_cover_at(x, y, seed)
            db = backscatter_db_at(x, y, classes, seed).astype(np.float32)
            dst["s1"].write(db, window=Window(0, row0, s1_width, n))
    return SyntheticScene(
        s2_cloudy=paths["s2_cloudy"],
        s1=paths["s1"],
        s2_clear=paths["s2_clear"],
        land_cover=paths["land_cover"],
        cloud_mask=paths["cloud_mask"],
        height=height,
        width=width,
        crs=crs,
        transform=s2_transform,
    )
