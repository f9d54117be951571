"""What every data source shares about its samples: cloud-cover buckets, splits, the sample
record, finding a dataset folder and reading one raster against its expected header."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError

#: Cloud-cover buckets, in the order the split protocol visits them.
BUCKETS: tuple[str, ...] = ("0-20%", "20%-40%", "40%-60%", "60%-80%", "80%-100%")


def bucket_bounds(bucket: str) -> tuple[float, float]:
    """Lower and upper cloud cover (%) of a bucket name such as ``"20%-40%"``."""
    numbers = re.findall(r"\d+(?:\.\d+)?", bucket)
    if len(numbers) != 2:
        raise ValueError(f"{bucket!r} is not a cloud-cover bucket like '20%-40%'")
    return float(numbers[0]), float(numbers[1])


#: Each bucket with the cover (%) at its centre (x axes of per-bucket plots), in bucket order.
BUCKET_CENTRES: dict[str, float] = {b: sum(bucket_bounds(b)) / 2 for b in BUCKETS}


def bucket_of(cloud_fraction: float) -> str:
    """The :data:`BUCKETS` name of a cloud fraction in [0, 1]: 20 % bins, lower bound inclusive
    (0.2 → ``"20%-40%"``), the last bin closed (1.0 → ``"80%-100%"``)."""
    if not 0.0 <= cloud_fraction <= 1.0:
        raise ValueError(f"cloud fraction must lie in [0, 1], got {cloud_fraction}")
    return BUCKETS[min(int(cloud_fraction * len(BUCKETS)), len(BUCKETS) - 1)]


def bucket_sort_key(bucket: str) -> tuple[int, str]:
    """Sort key putting the :data:`BUCKETS` in their order and any other name after them."""
    return (BUCKETS.index(bucket) if bucket in BUCKETS else len(BUCKETS), bucket)


SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ModalitySpec:
    """What a file of one modality must look like."""

    folder: str
    bands: int
    dtypes: tuple[str, ...]
    description: str


def find_root(
    path: str | Path, holds_data: Callable[[Path], bool], missing: str, how_to: str, max_depth: int = 3
) -> Path:
    """``path`` or the first folder below it (breadth-first, ``max_depth`` levels) for which
    ``holds_data`` is true; else :class:`DatasetNotFoundError` saying ``missing`` and ``how_to``.

    Archives often wrap the data in a top folder; this finds it (shared by every dataset).
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(f"{path} does not exist or is not a folder. " + how_to)
    frontier = [path]
    for _ in range(max_depth + 1):
        for folder in frontier:
            if holds_data(folder):
                return folder
        frontier = sorted(p for f in frontier for p in f.iterdir() if p.is_dir() and not p.name.startswith("."))
    raise DatasetNotFoundError(f"{path} exists but {missing} (searched {max_depth} levels deep). " + how_to)


# Samples: one row of a split
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleRecord:
    """One row of a split CSV: the five relative paths plus the bucket and the id."""

    paths: Mapping[str, str]
    bucket: str
    id: str


def read_raster(path: str | Path, spec: ModalitySpec, label: str):
    """Read a GeoTIFF that must match ``spec``: ``(array (bands, H, W), crs or None)``.

    ``label`` names the modality in the "missing file" message. Shared by every dataset's loader.

    Raises
    ------
    DataIntegrityError
        Missing file, unreadable/corrupt TIFF, wrong band count or wrong dtype (message names the
        file and the problem).
    """
    import rasterio
    from rasterio.errors import RasterioError

    path = Path(path)
    if not path.is_file():
        raise DataIntegrityError(f"{path}: missing {spec.description} file ({label})")
    try:
        with rasterio.open(path) as src:
            if src.count != spec.bands:
                raise DataIntegrityError(
                    f"{path}: {spec.description} must have {spec.bands} band(s), found {src.count}"
                )
            dtype = src.dtypes[0]
            if dtype not in spec.dtypes:
                raise DataIntegrityError(
                    f"{path}: {spec.description} must be {' or '.join(spec.dtypes)}, found {dtype}"
                )
            return src.read(), src.crs
    except RasterioError as err:
        raise DataIntegrityError(f"{path}: unreadable or corrupt GeoTIFF ({err})") from err


def require_same_size(arrays: Mapping[str, np.ndarray], paths: Mapping[str, Path], sample_id: str) -> None:
    """All arrays of one sample must have the same height and width (message lists each file)."""
    shapes = {m: a.shape[-2:] for m, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        detail = ", ".join(f"{paths[m]}: {h}x{w}" for m, (h, w) in shapes.items())
        raise DataIntegrityError(f"sample {sample_id}: modalities differ in size ({detail})")


def require_finite(array: np.ndarray, path: Path, what: str) -> None:
    """Raise :class:`DataIntegrityError` naming ``path`` if a float ``array`` holds NaN or inf."""
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise DataIntegrityError(
                f"{path}: {bad} NaN/inf value(s) in the {what}; a {what} "
                "must be finite (it is compared against, not fed in)"
            )
