"""The on-disk layout of LuojiaSET-OSFCR: buckets, modalities, file names, reading one file."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.paths import DEFAULT_SYNTHETIC_ROOT
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


#: Modality folders, in the column order of the split CSVs (the first author's order).
MODALITIES: tuple[str, ...] = ("s2", "s2_cloudy", "s1", "land_cover_maps", "cloud_detection_results")


SPLITS: tuple[str, ...] = ("train", "val", "test")


LUOJIASET_URL = "https://github.com/RSIIPAC/LuojiaSET-OSFCR"


_S2_NAME = re.compile(r"^ROIs_(?P<roi>[^_]+)_s2_(?P<patch>p[^_.]+)\.tif$")


@dataclass(frozen=True)
class ModalitySpec:
    """What a file of one modality must look like."""

    folder: str
    bands: int
    dtypes: tuple[str, ...]
    description: str


#: Expected header of each modality. Float32 Sentinel-2 (DN scale) is accepted besides the real
#: uint16 so user-converted data load; integer land cover of any width is accepted.
MODALITY_SPECS: dict[str, ModalitySpec] = {
    "s2": ModalitySpec("s2", len(S2_BANDS), ("uint16", "float32"), "clear Sentinel-2 (target)"),
    "s2_cloudy": ModalitySpec("s2_cloudy", len(S2_BANDS), ("uint16", "float32"),
                              "cloudy Sentinel-2 (input)"),
    "s1": ModalitySpec("s1", len(S1_BANDS), ("float32",), "Sentinel-1 VV/VH in dB"),
    "land_cover_maps": ModalitySpec("land_cover_maps", 1,
                                    ("uint8", "int8", "uint16", "int16", "uint32", "int32"),
                                    "land-cover labels"),
    "cloud_detection_results": ModalitySpec("cloud_detection_results", 1, ("float32", "uint8"),
                                            "cloud mask"),
}


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------
def modality_filename(roi: str, patch: str, modality: str) -> str:
    """File name of one modality of patch ``ROIs_<roi>_..._<patch>.tif`` (real naming quirks).

    >>> modality_filename("04", "p321", "land_cover_maps")
    'ROIs_04_s2_p321.tif'
    >>> modality_filename("04", "p321", "cloud_detection_results")
    'ROIs_04_s2_cloudy_p321.tif'
    """
    tag = {"s1": "s1", "s2": "s2", "s2_cloudy": "s2_cloudy", "land_cover_maps": "s2",
           "cloud_detection_results": "s2_cloudy"}
    if modality not in tag:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    return f"ROIs_{roi}_{tag[modality]}_{patch}.tif"


def sample_relpaths(bucket: str, roi: str, patch: str) -> dict[str, str]:
    """Relative paths (POSIX) of the five files of one sample."""
    return {m: f"{bucket}/{m}/{modality_filename(roi, patch, m)}" for m in MODALITIES}


def parse_s2_name(name: str) -> tuple[str, str]:
    """``'ROIs_04_s2_p321.tif'`` → ``('04', 'p321')``; raises ``ValueError`` otherwise."""
    match = _S2_NAME.match(name)
    if match is None:
        raise ValueError(f"not a LuojiaSET-OSFCR s2 file name: {name!r} (expected ROIs_XX_s2_pN.tif)")
    return match["roi"], match["patch"]


def sample_id(s2_relpath: str) -> str:
    """Stable sample id from the clear-S2 path: ``'0-20%/s2/ROIs_04_s2_p321.tif'`` → ``'ROIs_04_p321'``."""
    roi, patch = parse_s2_name(Path(s2_relpath).name)
    return f"ROIs_{roi}_{patch}"


def how_to_get_luojiaset(root: str | Path | None = None) -> str:
    """Instructions for obtaining the gated dataset and where to put it."""
    where = Path(root) if root is not None else Path("<DATA_ROOT>")
    return (
        "LuojiaSET-OSFCR is gated and cannot be downloaded automatically: fill in the questionnaire "
        f"linked from the README of {LUOJIASET_URL} (contacts panjun1215@whu.edu.cn, "
        "dd_xjg@whu.edu.cn), then either unpack it so that the five bucket folders "
        f"({', '.join(BUCKETS)}) sit directly in {where} (e.g. {where / '0-20%' / 's2'}), or run "
        "notebooks/00_get_data.ipynb with SOURCE='luojiaset' and DATA_ROOT pointing at the folder "
        "or at the zip/tar archive you received (it is extracted and verified). To work without it, "
        f"generate the synthetic twin instead: `tdpcr data synth {DEFAULT_SYNTHETIC_ROOT}`."
    )


def find_root(path: str | Path, holds_data: Callable[[Path], bool], missing: str, how_to: str,
              max_depth: int = 3) -> Path:
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
        frontier = sorted(p for f in frontier for p in f.iterdir()
                          if p.is_dir() and not p.name.startswith("."))
    raise DatasetNotFoundError(f"{path} exists but {missing} (searched {max_depth} levels deep). "
                               + how_to)


def find_dataset_root(path: str | Path, max_depth: int = 3) -> Path:
    """Return ``path`` or the first folder below it (breadth-first) that holds bucket folders.

    Archives often wrap the data in a top folder (``LuojiaSET-OSFCR/0-20%/...``); this finds it.
    """
    return find_root(path, lambda folder: any((folder / b).is_dir() for b in BUCKETS),
                     f"contains none of the bucket folders {BUCKETS}", how_to_get_luojiaset(path),
                     max_depth)


# --------------------------------------------------------------------------------------------
# Samples: one row of a split
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleRecord:
    """One row of a split CSV: the five relative paths plus the bucket and the id."""

    paths: Mapping[str, str]
    bucket: str
    id: str


def discover_samples(root: str | Path) -> tuple[list[SampleRecord], dict[str, list[str]]]:
    """Index the dataset as the author's indexer does.

    Returns the complete samples (bucket order, then name-sorted ``s2`` files) and, for each
    incomplete sample (left out), the relative paths of its missing files.
    """
    root = find_dataset_root(root)
    samples: list[SampleRecord] = []
    missing: dict[str, list[str]] = {}
    for bucket in BUCKETS:
        s2_dir = root / bucket / "s2"
        if not s2_dir.is_dir():
            continue
        for s2_path in sorted(s2_dir.glob("ROIs_*_s2_p*.tif")):
            roi, patch = parse_s2_name(s2_path.name)
            rel = sample_relpaths(bucket, roi, patch)
            absent = [p for p in rel.values() if not (root / p).is_file()]
            if absent:
                missing[rel["s2"]] = absent
                continue
            samples.append(SampleRecord(rel, bucket, f"ROIs_{roi}_{patch}"))
    return samples, missing


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def read_modality(path: str | Path, modality: str) -> np.ndarray:
    """Read one GeoTIFF of ``modality`` as (bands, H, W), checking band count and dtype.

    Raises
    ------
    DataIntegrityError
        Missing file, unreadable/corrupt TIFF, wrong band count or wrong dtype (message names the
        file and the problem).
    """
    return read_raster(path, MODALITY_SPECS[modality], modality)[0]


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
                raise DataIntegrityError(f"{path}: {spec.description} must have {spec.bands} "
                                         f"band(s), found {src.count}")
            dtype = src.dtypes[0]
            if dtype not in spec.dtypes:
                raise DataIntegrityError(f"{path}: {spec.description} must be "
                                         f"{' or '.join(spec.dtypes)}, found {dtype}")
            return src.read(), src.crs
    except RasterioError as err:
        raise DataIntegrityError(f"{path}: unreadable or corrupt GeoTIFF ({err})") from err


def require_same_size(arrays: Mapping[str, np.ndarray], paths: Mapping[str, Path],
                      sample_id: str) -> None:
    """All arrays of one sample must have the same height and width (message lists each file)."""
    shapes = {m: a.shape[-2:] for m, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        detail = ", ".join(f"{paths[m]}: {h}x{w}" for m, (h, w) in shapes.items())
        raise DataIntegrityError(f"sample {sample_id}: modalities differ in size ({detail})")


def _require_finite(array: np.ndarray, path: Path, what: str) -> None:
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise DataIntegrityError(f"{path}: {bad} NaN/inf value(s) in the {what}; a {what} "
                                     "must be finite (it is compared against, not fed in)")
