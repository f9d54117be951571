"""The on-disk layout of LuojiaSET-OSFCR (and of its synthetic twin): modalities, file names,
finding the dataset folder, indexing its samples and reading one file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.legend import Legend, load_legend
from tdpcr_lib.core.paths import DATA_DIR, DEFAULT_SYNTHETIC_ROOT
from tdpcr_lib.datasets.samples import BUCKETS, ModalitySpec, SampleRecord, find_root, read_raster

#: Where notebook 00 looks for a user-placed copy of the real data by default.
DEFAULT_LUOJIASET_ROOT = DATA_DIR / "LuojiaSET-OSFCR"


#: The record the synthetic twin keeps beside its bucket folders (written by
#: :func:`tdpcr_lib.datasets.synthetic.tiles.make_synthetic_luojiaset`).
TWIN_INFO_FILE = "synthetic.json"


def luojiaset_legend(root: str | Path | None = None) -> Legend:
    """The land-cover legend of a folder in LuojiaSET-OSFCR's layout: the twin's own class names
    (``"synthetic"``, same codes) if it is the synthetic twin, else LuojiaSET-OSFCR's.

    The one place this choice is made: the dataset class, the notebooks, the plots, the model
    config and the scene products all take the legend from here (through ``dataset.legend``).
    """
    if root is not None and (Path(root) / TWIN_INFO_FILE).is_file():
        return load_legend(name="synthetic")
    return load_legend()


#: Modality folders, in the column order of the split CSVs (the first author's order).
MODALITIES: tuple[str, ...] = ("s2", "s2_cloudy", "s1", "land_cover_maps", "cloud_detection_results")


LUOJIASET_URL = "https://github.com/RSIIPAC/LuojiaSET-OSFCR"


_S2_NAME = re.compile(r"^ROIs_(?P<roi>[^_]+)_s2_(?P<patch>p[^_.]+)\.tif$")


#: Expected header of each modality. Float32 Sentinel-2 (DN scale) is accepted besides the real
#: uint16 so user-converted data load; integer land cover of any width is accepted.
MODALITY_SPECS: dict[str, ModalitySpec] = {
    "s2": ModalitySpec("s2", len(S2_BANDS), ("uint16", "float32"), "clear Sentinel-2 (target)"),
    "s2_cloudy": ModalitySpec("s2_cloudy", len(S2_BANDS), ("uint16", "float32"), "cloudy Sentinel-2 (input)"),
    "s1": ModalitySpec("s1", len(S1_BANDS), ("float32",), "Sentinel-1 VV/VH in dB"),
    "land_cover_maps": ModalitySpec(
        "land_cover_maps", 1, ("uint8", "int8", "uint16", "int16", "uint32", "int32"), "land-cover labels"
    ),
    "cloud_detection_results": ModalitySpec("cloud_detection_results", 1, ("float32", "uint8"), "cloud mask"),
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
    tag = {
        "s1": "s1",
        "s2": "s2",
        "s2_cloudy": "s2_cloudy",
        "land_cover_maps": "s2",
        "cloud_detection_results": "s2_cloudy",
    }
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


def find_dataset_root(path: str | Path, max_depth: int = 3) -> Path:
    """Return ``path`` or the first folder below it (breadth-first) that holds bucket folders.

    Archives often wrap the data in a top folder (``LuojiaSET-OSFCR/0-20%/...``); this finds it.
    """
    return find_root(
        path,
        lambda folder: any((folder / b).is_dir() for b in BUCKETS),
        f"contains none of the bucket folders {BUCKETS}",
        how_to_get_luojiaset(path),
        max_depth,
    )


# --------------------------------------------------------------------------------------------


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
