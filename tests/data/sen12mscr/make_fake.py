#!/usr/bin/env python3
"""Write fake SEN12MS-CR data (with SEN12MS land cover) in the real layout with the real headers.

torchgeo-style test data: values are random (fixed seed), but the layout and headers follow the
real data (see docs/dataset.md, "SEN12MS-CR"): one folder per season and modality, one folder per
scene, files ``<season>_<modality>_<scene>_p<patch>.tif``; S1 2-band float32 dB (VV, VH); clear
and cloudy S2 13-band uint16 DN with band descriptions B01…B12 (B8A after B08); SEN12MS land cover
4-band uint16 (IGBP, LCCS LC, LCCS LU, LCCS SH) under ``<season>/lc_<scene>/`` as SEN12MS
extracts; each scene in its own UTM zone; 10 m pixels. Patches are small (``SIZE``) so the
pipeline runs in seconds; the loader accepts any size as long as a patch's files agree.

Quirks reproduced on purpose: scenes of all three splits and one scene in no split list; clouds
of five sizes (so all five buckets occur); NaN at an S1 swath border; IGBP 0 (no data) and one
code outside IGBP; one patch whose land-cover file is missing. Nothing binary is committed: the
tests build the tree in a temporary folder. Run by hand with::

    python tests/data/sen12mscr/make_fake.py /tmp/fake_sen12mscr
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
LC_BANDS = ("IGBP", "LCCS_LC", "LCCS_LU", "LCCS_SH")
SIZE = 32
PATCHES_PER_SCENE = 5
#: (season, scene, UTM EPSG, split of the UnCRtainTS lists or None).
SCENES = (
    ("ROIs1158_spring", 1, 32633, "train"),
    ("ROIs1158_spring", 17, 32617, "val"),
    ("ROIs1158_spring", 106, 32611, "test"),
    ("ROIs1158_spring", 2, 32636, None),
    ("ROIs1868_summer", 90, 32750, "train"),
    ("ROIs1970_fall", 3, 32644, "train"),
    ("ROIs1970_fall", 139, 32651, "test"),
    ("ROIs2017_winter", 68, 32735, "train"),
    ("ROIs2017_winter", 22, 32736, "val"),
)
#: Cloud fraction drawn for the i-th patch of a scene (one per bucket).
CLOUD_FRACTIONS = (0.05, 0.3, 0.5, 0.7, 0.95)
#: (low, high) DN of the clear image per band.
_CLEAR_DN = (
    (200, 900),
    (200, 950),
    (200, 950),
    (200, 950),
    (500, 2500),
    (900, 3000),
    (900, 3500),
    (900, 3500),
    (900, 3500),
    (300, 900),
    (5, 30),
    (800, 2500),
    (400, 1800),
)
#: The patch whose land-cover file is not written.
NO_LAND_COVER = ("ROIs2017_winter", 68, 1)


def _write(
    path: Path, array: np.ndarray, crs: CRS, transform: Affine, descriptions: tuple[str, ...] | None = None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": array.shape[1],
        "width": array.shape[2],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": transform,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        if descriptions:
            dst.descriptions = descriptions


def patch_path(root: Path, season: str, scene: int, patch: int, modality: str) -> Path:
    """Where the real data keep a file (``lc`` as SEN12MS extracts it: ``<season>/lc_<scene>/``)."""
    folder = season if modality == "lc" else f"{season}_{modality}"
    return root / folder / f"{modality}_{scene}" / f"{season}_{modality}_{scene}_p{patch}.tif"


def write_fake_sen12mscr(
    root: str | Path, size: int = SIZE, patches_per_scene: int = PATCHES_PER_SCENE, seed: int = 0
) -> Path:
    """Write the fake tree (SEN12MS-CR + land cover in the same root) and return ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for s, (season, scene, epsg, _) in enumerate(SCENES):
        crs = CRS.from_epsg(epsg)
        for i in range(patches_per_scene):
            patch = 100 * s + 7 * i + 1  # patch numbers whose name order differs from numeric
            transform = Affine(10.0, 0.0, 300000.0 + 2560 * i, 0.0, -10.0, 5000000.0 + 2560 * s)
            # land-like DN: dark in the visible (B01-B04 < 0.1 reflectance), brighter red edge,
            # NIR and SWIR, a dark cirrus band (B10)
            low, high = np.array(_CLEAR_DN).T
            clear = rng.integers(low[:, None, None], high[:, None, None], (13, size, size), dtype=np.uint16)
            cloudy = clear.copy()
            rows = int(round(CLOUD_FRACTIONS[i % len(CLOUD_FRACTIONS)] * size))
            cloud = rng.integers(6000, 8000, (13, rows, size), dtype=np.uint16)
            cloud[10] = 300
            cloud[11:] = rng.integers(4000, 5000, (2, rows, size), dtype=np.uint16)
            cloudy[:, :rows] = cloud
            sar = np.stack([rng.uniform(-27, -1, (size, size)), rng.uniform(-35, -6, (size, size))]).astype(np.float32)
            if i == 0:
                sar[:, 0, :3] = np.nan  # swath border
            igbp = rng.choice(np.arange(1, 18, dtype=np.uint16), (size, size))
            igbp[0, 0] = 0  # no data → ignored
            if i == 2:
                igbp[0, 1] = 20  # not an IGBP code → reported and ignored
            land_cover = np.stack(
                [
                    igbp,
                    rng.integers(1, 44, (size, size)),
                    rng.integers(1, 41, (size, size)),
                    rng.integers(1, 4, (size, size)),
                ]
            ).astype(np.uint16)
            _write(patch_path(root, season, scene, patch, "s1"), sar, crs, transform, ("VV", "VH"))
            _write(patch_path(root, season, scene, patch, "s2"), clear, crs, transform, S2_BANDS)
            _write(patch_path(root, season, scene, patch, "s2_cloudy"), cloudy, crs, transform, S2_BANDS)
            if (season, scene, i) != NO_LAND_COVER:
                _write(patch_path(root, season, scene, patch, "lc"), land_cover, crs, transform, LC_BANDS)
    return root


def write_fake_archives(root: str | Path, out: str | Path) -> list[Path]:
    """Pack a fake tree as the official per-season archives (``ROIs1158_spring_s1.tar.gz`` holding
    ``ROIs1158_spring_s1/s1_<scene>/...``; ``ROIs1158_spring_lc.tar.gz`` holding
    ``ROIs1158_spring/lc_<scene>/...``)."""
    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for season in sorted({s for s, *_ in SCENES}):
        for modality in ("s1", "s2", "s2_cloudy", "lc"):
            folder = season if modality == "lc" else f"{season}_{modality}"
            archive = out / f"{season}_{modality}.tar.gz"
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(root / folder, arcname=folder)
            written.append(archive)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("fake_sen12mscr")
    print(write_fake_sen12mscr(target))
