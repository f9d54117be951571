#!/usr/bin/env python3
"""Write fake LuojiaSET-OSFCR data with the real layout, file names and GeoTIFF headers.

torchgeo-style test data: values are random (fixed seed), not learnable, but every header fact of
the real tiles is reproduced (see docs/dataset.md, "File headers"): five bucket
folders × five modality folders; S2 13-band uint16 DN with the +1000 offset (B10 ≈ 1006–1013);
S1 2-band float32 dB; land cover uint8 (some files without CRS, a few out-of-legend codes);
cloud mask float32 {0, 1} with a fraction inside the bucket; UTM CRS and a 10 m transform;
uncompressed, strip-organised. Some S1 pixels are NaN, as at real swath borders.

Nothing binary is committed: the tests build the tree in a temporary folder. Run by hand with::

    python tests/data/luojiaset/make_fake.py /tmp/fake_luojiaset
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

BUCKETS = ("0-20%", "20%-40%", "40%-60%", "60%-80%", "80%-100%")
S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
SIZE = 32
N_PER_BUCKET = 10
#: Patch numbers chosen so that name order differs from numeric order (p10 < p2 as strings).
PATCHES = (1, 2, 10, 11, 20, 100, 7, 55, 3, 1000)


def _write(path: Path, array: np.ndarray, crs: CRS | None, transform, descriptions=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": array.shape[1],
        "width": array.shape[2],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "transform": transform,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        if descriptions:
            dst.descriptions = descriptions


def tile_names(bucket_index: int, i: int) -> tuple[str, str]:
    """ROI id and patch id of the i-th fake tile of a bucket."""
    return f"{1 + i % 3:02d}", f"p{PATCHES[i] + 2000 * bucket_index}"


def write_fake_luojiaset(root: str | Path, n_per_bucket: int = N_PER_BUCKET, size: int = SIZE, seed: int = 0) -> Path:
    """Write the fake tree under ``root`` and return it."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    crs = CRS.from_epsg(32755)
    for b, bucket in enumerate(BUCKETS):
        for i in range(n_per_bucket):
            roi, patch = tile_names(b, i)
            transform = Affine(10.0, 0.0, 399960.0 + 320 * i, 0.0, -10.0, 5300020.0 - 320 * b)
            clear = rng.integers(1000, 4500, (13, size, size), dtype=np.uint16)
            clear[10] = rng.integers(1006, 1014, (size, size), dtype=np.uint16)
            cloud = np.zeros((1, size, size), dtype=np.float32)
            n_cloud = int(round((0.2 * b + 0.1) * size * size))
            cloud.reshape(-1)[rng.permutation(size * size)[:n_cloud]] = 1.0
            cloudy = np.where(cloud.astype(bool), np.uint16(8000), clear).astype(np.uint16)
            sar = np.stack([rng.uniform(-27, -1, (size, size)), rng.uniform(-35, -6, (size, size))]).astype(np.float32)
            if i == 0:
                sar[:, 0, :3] = np.nan  # swath border
            labels = rng.choice(
                np.array([2, 3, 4, 5, 6], dtype=np.uint8), (1, size, size), p=[0.05, 0.05, 0.1, 0.3, 0.5]
            )
            if i == 1:
                labels[0, 0, 0], labels[0, 0, 1] = 7, 255  # outside the legend → ignored
            _write(root / bucket / "s2" / f"ROIs_{roi}_s2_{patch}.tif", clear, crs, transform, S2_BANDS)
            _write(root / bucket / "s2_cloudy" / f"ROIs_{roi}_s2_cloudy_{patch}.tif", cloudy, crs, transform, S2_BANDS)
            _write(root / bucket / "s1" / f"ROIs_{roi}_s1_{patch}.tif", sar, crs, transform, ("VV", "VH"))
            _write(
                root / bucket / "land_cover_maps" / f"ROIs_{roi}_s2_{patch}.tif",
                labels,
                None if i % 2 == 0 else crs,
                transform,
            )  # the real maps often lack a CRS
            _write(
                root / bucket / "cloud_detection_results" / f"ROIs_{roi}_s2_cloudy_{patch}.tif", cloud, crs, transform
            )
    return root


if __name__ == "__main__":
    out = write_fake_luojiaset(sys.argv[1] if len(sys.argv) > 1 else "fake_luojiaset")
    print(f"wrote fake LuojiaSET-OSFCR to {out}")
