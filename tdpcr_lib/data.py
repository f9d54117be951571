"""LuojiaSET-OSFCR: on-disk layout, split manifests, the torch ``Dataset``, augmentation and plots.

The real dataset (and the synthetic twin of :mod:`tdpcr_lib.synthetic`) is a folder with five
cloud-cover buckets, each holding five modality folders::

    <root>/<bucket>/s1/ROIs_XX_s1_pN.tif                           Sentinel-1 VV, VH (float32 dB)
    <root>/<bucket>/s2/ROIs_XX_s2_pN.tif                           clear Sentinel-2 (uint16 DN)
    <root>/<bucket>/s2_cloudy/ROIs_XX_s2_cloudy_pN.tif             cloudy Sentinel-2 (uint16 DN)
    <root>/<bucket>/land_cover_maps/ROIs_XX_s2_pN.tif              land cover (uint8 codes)
    <root>/<bucket>/cloud_detection_results/ROIs_XX_s2_cloudy_pN.tif   cloud mask (float32 {0,1})

Land-cover maps are named like the clear ``s2`` file and cloud masks like the cloudy one (the real
data's quirk, followed by the first author's loaders).

Split manifests
---------------
A manifest folder holds ``train.csv``, ``val.csv``, ``test.csv`` in the first author's format (no
header; columns ``s2, s2_cloudy, s1, land_cover_maps, cloud_detection_results``; paths relative to
the dataset root), so the author's published CSVs can be dropped in unchanged. Beside them,
``checksums.sha256`` lists a sha256 for every file (``sha256sum -c`` format, run from the root) and
``split_config.json`` records the protocol. :func:`write_manifest` implements the author's
protocol: for each bucket in :data:`BUCKETS` order, the name-sorted ``s2`` files (``ROIs_*_s2_p*.tif``)
are shuffled by ONE ``random.Random(42)`` shared across buckets; the first ``int(0.8 n)`` go to
train, the next ``int(0.1 n)`` to val and the rest to test. Samples with a missing modality file are
left out (as the author's indexer does) and reported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import shutil
import tarfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .bands import RGB_INDICES, S1_BANDS, S2_BANDS
from .io_utils import atomic_write_json, atomic_write_text
from .legend import Legend, load_legend
from .normalisation import Normalisation, load_normalisation
from .paths import DATA_DIR, DEFAULT_SYNTHETIC_ROOT, MANIFEST_DIR

#: Cloud-cover buckets, in the order the split protocol visits them.
BUCKETS: tuple[str, ...] = ("0-20%", "20%-40%", "40%-60%", "60%-80%", "80%-100%")
#: Modality folders, in the column order of the split CSVs (the first author's order).
MODALITIES: tuple[str, ...] = ("s2", "s2_cloudy", "s1", "land_cover_maps", "cloud_detection_results")
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Default manifest of the real data inside the repository.
LUOJIASET_MANIFEST_DIR = MANIFEST_DIR / "luojiaset_osfcr"
#: Where notebook 00 looks for a user-placed copy of the real data by default.
DEFAULT_LUOJIASET_ROOT = DATA_DIR / "LuojiaSET-OSFCR"
CHECKSUM_FILE = "checksums.sha256"
LUOJIASET_URL = "https://github.com/RSIIPAC/LuojiaSET-OSFCR"

_S2_NAME = re.compile(r"^ROIs_(?P<roi>[^_]+)_s2_(?P<patch>p[^_.]+)\.tif$")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset (or its split manifest) is not where it was expected."""


class DataIntegrityError(ValueError):
    """A file of the dataset exists but is wrong (missing, corrupt, wrong shape/dtype/bands, NaN)."""


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


def find_dataset_root(path: str | Path, max_depth: int = 3) -> Path:
    """Return ``path`` or the first folder below it (breadth-first) that holds bucket folders.

    Archives often wrap the data in a top folder (``LuojiaSET-OSFCR/0-20%/...``); this finds it.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(f"{path} does not exist or is not a folder. "
                                   + how_to_get_luojiaset(path))
    frontier = [path]
    for _ in range(max_depth + 1):
        for folder in frontier:
            if any((folder / bucket).is_dir() for bucket in BUCKETS):
                return folder
        frontier = sorted(p for f in frontier for p in f.iterdir()
                          if p.is_dir() and not p.name.startswith("."))
    raise DatasetNotFoundError(
        f"{path} exists but contains none of the bucket folders {BUCKETS} (searched "
        f"{max_depth} levels deep). " + how_to_get_luojiaset(path))


_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def is_archive(path: str | Path) -> bool:
    """True for the archive types :func:`prepare_luojiaset` extracts."""
    return Path(path).name.lower().endswith(_ARCHIVE_SUFFIXES)


def extract_archive(archive: str | Path, destination: str | Path) -> Path:
    """Extract a zip or tar archive safely (no absolute paths, no ``..``, no links out).

    Extraction goes to a temporary sibling folder renamed onto ``destination`` at the end, so an
    interrupted extraction never looks complete.
    """
    archive, destination = Path(archive), Path(destination)
    if not archive.is_file():
        raise DatasetNotFoundError(f"archive {archive} does not exist. " + how_to_get_luojiaset())
    tmp = destination.with_name(f".{destination.name}.extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    target = (tmp / member).resolve()
                    if not target.is_relative_to(tmp.resolve()):
                        raise DataIntegrityError(f"{archive}: unsafe member path {member!r}")
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")  # refuses absolute paths, '..' and odd links
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataIntegrityError(f"{archive}: cannot extract the archive ({err})") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if destination.exists():
        shutil.rmtree(destination)
    tmp.rename(destination)
    return destination


def prepare_luojiaset(source: str | Path, extract_to: str | Path | None = None) -> Path:
    """Locate a user-provided LuojiaSET-OSFCR folder or extract an archive; return the dataset root.

    Parameters
    ----------
    source : path
        The unpacked folder (or a folder above it), or a ``.zip`` / ``.tar[.gz|.bz2|.xz]`` archive.
    extract_to : path, optional
        Where an archive is extracted (default: beside it, named after it). An existing extraction
        that already holds the bucket folders is reused.
    """
    source = Path(source).expanduser()
    if source.is_dir():
        return find_dataset_root(source)
    if not source.exists():
        raise DatasetNotFoundError(f"{source} does not exist. " + how_to_get_luojiaset(source))
    if not is_archive(source):
        raise DataIntegrityError(f"{source} is neither a folder nor a zip/tar archive")
    stem = source.name
    for suffix in _ARCHIVE_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    destination = Path(extract_to) if extract_to is not None else source.with_name(stem)
    if destination.is_dir():
        try:
            return find_dataset_root(destination)
        except DatasetNotFoundError:
            pass  # incomplete or unrelated folder: extract afresh
    extract_archive(source, destination)
    return find_dataset_root(destination)


# --------------------------------------------------------------------------------------------
# Split manifests
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


def split_samples(samples: Sequence[SampleRecord], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  seed: int = 42) -> dict[str, list[SampleRecord]]:
    """Stratified split: one ``random.Random(seed)`` shuffles each bucket's list in bucket order.

    Per bucket of ``n`` samples: train gets ``int(n * ratios[0])``, val ``int(n * ratios[1])``,
    test the rest. The input order within a bucket must be the name-sorted order of
    :func:`discover_samples` for the result to equal the author's split.
    """
    if abs(sum(ratios) - 1.0) > 1e-6 or min(ratios) < 0:
        raise ValueError(f"split ratios must be non-negative and sum to 1, got {ratios}")
    rng = random.Random(seed)
    by_bucket: dict[str, list[SampleRecord]] = {b: [] for b in BUCKETS}
    for sample in samples:
        by_bucket[sample.bucket].append(sample)
    splits: dict[str, list[SampleRecord]] = {s: [] for s in SPLITS}
    for bucket in BUCKETS:
        group = list(by_bucket[bucket])
        rng.shuffle(group)
        n_train = int(len(group) * ratios[0])
        n_val = int(len(group) * ratios[1])
        splits["train"] += group[:n_train]
        splits["val"] += group[n_train:n_train + n_val]
        splits["test"] += group[n_train + n_val:]
    return splits


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _csv_text(records: Iterable[SampleRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for record in records:
        writer.writerow([record.paths[m] for m in MODALITIES])
    return buffer.getvalue()


def write_manifest(root: str | Path, out: str | Path | None = None,
                   ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 42,
                   checksums: bool = True, workers: int = 4,
                   extra_config: Mapping[str, Any] | None = None) -> Path:
    """Write ``train/val/test.csv``, ``checksums.sha256`` and ``split_config.json`` for a dataset.

    Parameters
    ----------
    root : path
        Dataset root (a folder above it is searched for the bucket folders).
    out : path, optional
        Manifest folder; default ``data_manifests/luojiaset_osfcr/`` (the real data's home in
        the repository). The synthetic twin writes its own to ``<root>/manifest/``.
    ratios, seed
        Split protocol (the author's: 80/10/10, seed 42); see :func:`split_samples`.
    checksums : bool
        Hash every file (sha256, ``workers`` threads). Slow on the full 84 GB dataset.
    extra_config : mapping, optional
        Extra keys merged into ``split_config.json``.

    Returns
    -------
    Path
        The manifest folder.
    """
    root = find_dataset_root(root)
    out = Path(out) if out is not None else LUOJIASET_MANIFEST_DIR
    samples, missing = discover_samples(root)
    if not samples:
        raise DatasetNotFoundError(f"{root}: no complete samples found (looked for "
                                   f"<bucket>/s2/ROIs_*_s2_p*.tif). " + how_to_get_luojiaset(root))
    if missing:
        examples = [f for files in list(missing.values())[:3] for f in files]
        warnings.warn(f"{root}: left out {len(missing)} incomplete sample(s); missing files, e.g. "
                      f"{examples}", stacklevel=2)
    splits = split_samples(samples, ratios, seed)
    for split, records in splits.items():
        atomic_write_text(out / f"{split}.csv", _csv_text(records))
    if checksums:
        relpaths = sorted(p for s in samples for p in s.paths.values())
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            digests = list(pool.map(lambda rel: sha256_file(root / rel), relpaths))
        atomic_write_text(out / CHECKSUM_FILE,
                          "".join(f"{d}  {rel}\n" for d, rel in zip(digests, relpaths, strict=True)))
    else:
        (out / CHECKSUM_FILE).unlink(missing_ok=True)
    counts = {split: dict(Counter(r.bucket for r in records)) for split, records in splits.items()}
    extra = dict(extra_config) if extra_config else {}
    reference = {} if extra.get("source") == "synthetic" else author_reference()
    config = {
        "dataset": "LuojiaSET-OSFCR",
        "protocol": ("stratified by bucket; one random.Random(split_seed) shuffles each bucket's "
                     "name-sorted s2 list in bucket order; train=int(n*train_ratio), "
                     "val=int(n*val_ratio), test=rest (first author's CloudSeg harness)"),
        "train_ratio": ratios[0], "val_ratio": ratios[1], "test_ratio": ratios[2],
        "split_seed": seed,
        "cloud_coverage_ranges": list(BUCKETS),
        "csv_columns": list(MODALITIES),
        "indexed_samples": len(samples),
        "incomplete_samples_left_out": sorted(missing),
        "counts": {split: {b: counts[split].get(b, 0) for b in BUCKETS} for split in SPLITS},
        "checksums": CHECKSUM_FILE if checksums else None,
        "manifest_hash": manifest_hash(out),
        **extra,
    }
    if reference:
        config["author_reference"] = reference
        config["author_split_check"] = compare_with_author_split(splits, reference)
        if config["author_split_check"] == "mismatch":
            warnings.warn(f"{root}: the regenerated test split does not start with the rows of "
                          "the author's published test.csv; the file list differs from theirs",
                          stacklevel=2)
    atomic_write_json(out / "split_config.json", config)
    return out


def author_reference() -> dict[str, Any]:
    """What is known of the first author's published split (``author_reference`` in the
    repository's ``data_manifests/luojiaset_osfcr/split_config.json``)."""
    return dict(read_split_config(LUOJIASET_MANIFEST_DIR).get("author_reference", {}))


def compare_with_author_split(splits: Mapping[str, Sequence[SampleRecord]],
                              reference: Mapping[str, Any]) -> str:
    """``"match"`` / ``"mismatch"`` against the author's first test rows, or why not comparable.

    Only meaningful on the complete dataset (the author indexed ``indexed_samples`` samples): any
    other file list legitimately shuffles differently.
    """
    expected_n = reference.get("indexed_samples")
    n = sum(len(v) for v in splits.values())
    first = list(reference.get("test_first_s2", []))
    if not first or expected_n is None:
        return "no reference"
    if n != expected_n:
        return f"not comparable ({n} samples; the author indexed {expected_n})"
    got = [r.paths["s2"] for r in splits["test"][:len(first)]]
    return "match" if got == first else "mismatch"


def read_split_csv(path: str | Path) -> list[SampleRecord]:
    """Read a split CSV (author's format; an optional header row naming the columns is skipped)."""
    path = Path(path)
    records: list[SampleRecord] = []
    with open(path, newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if [c.strip() for c in row] == list(MODALITIES):
                continue
            if len(row) != len(MODALITIES):
                raise DataIntegrityError(f"{path}:{line_no}: expected {len(MODALITIES)} columns "
                                         f"({', '.join(MODALITIES)}), found {len(row)}")
            paths = dict(zip(MODALITIES, (c.strip() for c in row), strict=True))
            bucket = paths["s2"].split("/", 1)[0]
            if bucket not in BUCKETS:
                raise DataIntegrityError(f"{path}:{line_no}: {paths['s2']!r} does not start with "
                                         f"a bucket folder {BUCKETS}")
            try:
                sid = sample_id(paths["s2"])
            except ValueError as err:
                raise DataIntegrityError(f"{path}:{line_no}: {err}") from err
            records.append(SampleRecord(paths, bucket, sid))
    return records


def read_checksums(path: str | Path) -> dict[str, str]:
    """Read a ``sha256sum``-style file into ``{relative path: hex digest}``."""
    table: dict[str, str] = {}
    for line_no, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise DataIntegrityError(f"{path}:{line_no}: not a '<sha256>  <path>' line: {line!r}")
        table[rel.strip()] = digest
    return table


def manifest_hash(manifest_dir: str | Path) -> str:
    """sha256 over the split CSVs present (line endings normalised), identifying a split."""
    digest = hashlib.sha256()
    for split in SPLITS:
        path = Path(manifest_dir) / f"{split}.csv"
        if path.is_file():
            text = path.read_text().replace("\r\n", "\n")
            digest.update(f"{split}\n".encode() + text.encode())
    return digest.hexdigest()


def resolve_manifest_dir(root: str | Path, manifest: str | Path | None = None) -> Path:
    """``manifest`` if given; else ``<root>/manifest/`` if it exists; else the repository's."""
    if manifest is not None:
        return Path(manifest)
    local = Path(root) / "manifest"
    return local if local.is_dir() else LUOJIASET_MANIFEST_DIR


def verify_checksums(root: str | Path, manifest_dir: str | Path,
                     records: Iterable[SampleRecord], workers: int = 4) -> None:
    """Compare every file of ``records`` against ``checksums.sha256``; the first bad file raises."""
    root, manifest_dir = Path(root), Path(manifest_dir)
    table_path = manifest_dir / CHECKSUM_FILE
    if not table_path.is_file():
        raise DataIntegrityError(f"checksum=True but {table_path} does not exist; run "
                                 f"`tdpcr data manifest {root} --out {manifest_dir}` to create it")
    table = read_checksums(table_path)
    relpaths = [p for r in records for p in r.paths.values()]
    for rel in relpaths:
        if rel not in table:
            raise DataIntegrityError(f"{root / rel}: no checksum recorded in {table_path}")
        if not (root / rel).is_file():
            raise DataIntegrityError(f"{root / rel}: missing file (listed in {table_path})")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        digests = pool.map(lambda rel: sha256_file(root / rel), relpaths)
        for rel, digest in zip(relpaths, digests, strict=True):
            if digest != table[rel]:
                raise DataIntegrityError(f"{root / rel}: checksum mismatch (sha256 {digest}, "
                                         f"expected {table[rel]} from {table_path}); the file is "
                                         "corrupted or was changed")


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
    import rasterio
    from rasterio.errors import RasterioError

    spec = MODALITY_SPECS[modality]
    path = Path(path)
    if not path.is_file():
        raise DataIntegrityError(f"{path}: missing {spec.description} file ({modality})")
    try:
        with rasterio.open(path) as src:
            if src.count != spec.bands:
                raise DataIntegrityError(f"{path}: {spec.description} must have {spec.bands} "
                                         f"band(s), found {src.count}")
            dtype = src.dtypes[0]
            if dtype not in spec.dtypes:
                raise DataIntegrityError(f"{path}: {spec.description} must be "
                                         f"{' or '.join(spec.dtypes)}, found {dtype}")
            return src.read()
    except RasterioError as err:
        raise DataIntegrityError(f"{path}: unreadable or corrupt GeoTIFF ({err})") from err


def _require_finite(array: np.ndarray, path: Path, what: str) -> None:
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise DataIntegrityError(f"{path}: {bad} NaN/inf value(s) in the {what}; a {what} "
                                     "must be finite (it is compared against, not fed in)")


class LuojiaSETOSFCR(Dataset):
    """LuojiaSET-OSFCR (or its synthetic twin) as a torch ``Dataset`` in torchgeo's style.

    Parameters
    ----------
    root : path
        Dataset root holding the five bucket folders.
    split : {"train", "val", "test"}
    manifest : path, optional
        Folder with the split CSVs. Default: ``<root>/manifest/`` if it exists (the synthetic twin
        writes one there), else ``data_manifests/luojiaset_osfcr/``.
    transforms : callable, optional
        Applied to the sample dict (e.g. :class:`TrainAugment`).
    checksum : bool
        Verify the sha256 of every file of this split against the manifest first (slow).

    Notes
    -----
    A sample is a dict of tensors: ``optical`` (cloudy S2, float32 13×H×W in [0, 1]), ``sar``
    (float32 2×H×W in [0, 1]), ``target`` (clear S2, float32 13×H×W in [0, 1]), ``mask``
    (int64 H×W, codes 0–6, anything else 255 = ignore), ``cloud_mask`` (float32 H×W in {0, 1}),
    plus ``bucket`` and ``id`` strings. Values go through ``data_manifests/normalisation.json``.

    Non-finite values: in the *inputs* (cloudy S2 if stored as float, SAR) NaN/inf become 0 after
    normalisation, as in the first author's loader (S1 swaths carry NaN borders). In the *target*,
    the cloud mask (and labels, which must be integer) they raise :class:`DataIntegrityError`
    because they would silently corrupt losses and metrics. Cloud-mask values must lie in [0, 1];
    they are binarised at 0.5. Land-cover files without a CRS (a quirk of the real data) load.
    """

    def __init__(self, root: str | Path, split: str = "train", manifest: str | Path | None = None,
                 transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 checksum: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"dataset root {root} does not exist. "
                                       + how_to_get_luojiaset(root))
        if not any((root / bucket).is_dir() for bucket in BUCKETS):
            raise DatasetNotFoundError(f"{root} holds none of the bucket folders {BUCKETS}. "
                                       + how_to_get_luojiaset(root))
        self.root = root
        self.split = split
        self.manifest_dir = resolve_manifest_dir(root, manifest)
        csv_path = self.manifest_dir / f"{split}.csv"
        if not csv_path.is_file():
            raise DatasetNotFoundError(f"split file {csv_path} does not exist; create the split "
                                       f"manifest with `tdpcr data manifest {root} --out "
                                       f"{self.manifest_dir}`")
        self.records = read_split_csv(csv_path)
        self.transforms = transforms
        self.normalisation: Normalisation = load_normalisation()
        self.legend: Legend = load_legend()
        if checksum:
            verify_checksums(root, self.manifest_dir, self.records)

    @property
    def manifest_hash(self) -> str:
        """sha256 of the split CSVs in use (stored in checkpoints)."""
        return manifest_hash(self.manifest_dir)

    @property
    def buckets(self) -> list[str]:
        """Bucket of every sample, in index order (no file access)."""
        return [r.bucket for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return (f"LuojiaSETOSFCR(root={str(self.root)!r}, split={self.split!r}, "
                f"n={len(self)}, manifest={str(self.manifest_dir)!r})")

    def load_raw(self, index: int) -> dict[str, np.ndarray]:
        """The five arrays of a sample in file units (DN, dB, codes), validated, not normalised."""
        record = self.records[index]
        arrays: dict[str, np.ndarray] = {}
        for modality in MODALITIES:
            arrays[modality] = read_modality(self.root / record.paths[modality], modality)
        shapes = {m: a.shape[-2:] for m, a in arrays.items()}
        if len(set(shapes.values())) != 1:
            detail = ", ".join(f"{self.root / record.paths[m]}: {h}x{w}"
                               for m, (h, w) in shapes.items())
            raise DataIntegrityError(f"sample {record.id}: modalities differ in size ({detail})")
        _require_finite(arrays["s2"], self.root / record.paths["s2"], "target (clear Sentinel-2)")
        cloud_path = self.root / record.paths["cloud_detection_results"]
        _require_finite(arrays["cloud_detection_results"], cloud_path, "cloud mask")
        cloud = arrays["cloud_detection_results"]
        if cloud.size and (cloud.min() < 0 or cloud.max() > 1):
            raise DataIntegrityError(f"{cloud_path}: cloud mask values must lie in [0, 1], found "
                                     f"[{cloud.min()}, {cloud.max()}]")
        return arrays

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        raw = self.load_raw(index)
        norm = self.normalisation
        sample: dict[str, Any] = {
            "optical": torch.from_numpy(norm.s2_to_unit(raw["s2_cloudy"])),
            "sar": torch.from_numpy(norm.s1_to_unit(raw["s1"])),
            "target": torch.from_numpy(norm.s2_to_unit(raw["s2"])),
            "mask": torch.from_numpy(self.legend.sanitise(raw["land_cover_maps"][0])),
            "cloud_mask": torch.from_numpy(
                (raw["cloud_detection_results"][0] >= 0.5).astype(np.float32)),
            "bucket": record.bucket,
            "id": record.id,
        }
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def plot(self, sample: Mapping[str, Any], prediction: Any = None, show_titles: bool = True,
             suptitle: str | None = None):
        """Plot a sample (and optionally a prediction); see :func:`plot_sample`."""
        return plot_sample(sample, prediction, legend=self.legend, show_titles=show_titles,
                           suptitle=suptitle)


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------
class TrainAugment:
    """Random crop, flips and rot90 applied identically to every spatial tensor of a sample.

    Every tensor whose last two dimensions equal those of ``optical`` is transformed (``optical``,
    ``sar``, ``target``, ``mask``, ``cloud_mask`` and anything else of that size); strings pass
    through. Randomness comes from torch (``generator`` or the global RNG, which DataLoader workers
    seed), so runs are reproducible under :func:`tdpcr_lib.runtime.seed_everything`.

    Parameters
    ----------
    crop_size : int, optional
        Side of a random square crop (the author crops 128 or 160 of 256); ``None`` keeps size.
    flips : bool
        Horizontal and vertical flip, each with probability 0.5.
    rot90 : bool
        Rotation by k·90°, k uniform in {0, 1, 2, 3}.
    generator : torch.Generator, optional
    """

    def __init__(self, crop_size: int | None = None, flips: bool = True, rot90: bool = True,
                 generator: torch.Generator | None = None) -> None:
        if crop_size is not None and crop_size < 1:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        self.crop_size = crop_size
        self.flips = flips
        self.rot90 = rot90
        self.generator = generator

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator).item())

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        height, width = sample["optical"].shape[-2:]
        top = left = 0
        size_h, size_w = height, width
        if self.crop_size is not None:
            if self.crop_size > min(height, width):
                raise ValueError(f"crop_size {self.crop_size} is larger than the sample "
                                 f"({height}x{width})")
            size_h = size_w = self.crop_size
            top = self._randint(height - size_h + 1)
            left = self._randint(width - size_w + 1)
        hflip = self.flips and self._randint(2) == 1
        vflip = self.flips and self._randint(2) == 1
        k = self._randint(4) if self.rot90 else 0

        out = dict(sample)
        for key, value in sample.items():
            if not (torch.is_tensor(value) and value.ndim >= 2
                    and tuple(value.shape[-2:]) == (height, width)):
                continue
            value = value[..., top:top + size_h, left:left + size_w]
            if hflip:
                value = value.flip(-1)
            if vflip:
                value = value.flip(-2)
            if k:
                value = torch.rot90(value, k, dims=(-2, -1))
            out[key] = value.contiguous()
        return out

    def __repr__(self) -> str:
        return f"TrainAugment(crop_size={self.crop_size}, flips={self.flips}, rot90={self.rot90})"


# --------------------------------------------------------------------------------------------
# Plotting
# --------------------------------------------------------------------------------------------
def _numpy(x: Any) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu().float().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def percentile_stretch(image: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None,
                       percentiles: tuple[float, float] = (2.0, 98.0)) -> np.ndarray:
    """Per-channel linear stretch of (C, H, W) to [0, 1] → (H, W, C).

    ``lo``/``hi`` default to the channel percentiles of ``image``; pass the target's limits to
    show cloudy, clear and reconstructed images on the same scale.
    """
    image = np.nan_to_num(np.asarray(image, dtype=np.float32))
    if lo is None or hi is None:
        lo, hi = stretch_limits(image, percentiles)
    out = (image - lo[:, None, None]) / np.maximum(hi - lo, 1e-6)[:, None, None]
    return np.clip(out, 0, 1).transpose(1, 2, 0)


def stretch_limits(image: np.ndarray, percentiles: tuple[float, float] = (2.0, 98.0)
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel percentile limits of a (C, H, W) image."""
    flat = np.nan_to_num(np.asarray(image, dtype=np.float32)).reshape(image.shape[0], -1)
    lo, hi = np.percentile(flat, percentiles, axis=1)
    return lo, hi


def plot_sample(sample: Mapping[str, Any], prediction: Any = None, *, legend: Legend | None = None,
                show_titles: bool = True, suptitle: str | None = None):
    """Figure of a sample: cloudy RGB, SAR false colour, clear RGB, land cover, cloud mask.

    Parameters
    ----------
    sample : mapping
        A dataset sample (tensors or arrays; unbatched).
    prediction : tensor, array or mapping, optional
        A (13, H, W) reconstruction, or a dict with ``reconstruction`` and/or ``segmentation``
        ((K, H, W) logits or (H, W) codes). Adds a panel for each.
    legend : Legend, optional
        Class colours and names (default: ``data_manifests/legend.json``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    legend = legend or load_legend()
    rgb = list(RGB_INDICES)
    target = _numpy(sample["target"])[rgb]
    lo, hi = stretch_limits(target)
    sar = _numpy(sample["sar"])
    sar_rgb = np.stack([sar[0], sar[1], np.clip(sar[0] - sar[1] + 0.5, 0, 1)])
    labels = _numpy(sample["mask"]).astype(np.int64)

    panels: list[tuple[str, np.ndarray, dict[str, Any]]] = [
        ("cloudy S2 (B04/B03/B02)", percentile_stretch(_numpy(sample["optical"])[rgb], lo, hi), {}),
        ("S1 false colour (VV, VH, VV−VH)", percentile_stretch(sar_rgb), {}),
        ("clear S2 target", percentile_stretch(target, lo, hi), {}),
        ("land cover", legend.colorize(labels), {}),
        ("cloud mask", _numpy(sample["cloud_mask"]), {"cmap": "gray", "vmin": 0, "vmax": 1}),
    ]
    if prediction is not None:
        pred = prediction if isinstance(prediction, Mapping) else {"reconstruction": prediction}
        if pred.get("reconstruction") is not None:
            recon = _numpy(pred["reconstruction"])
            panels.append(("reconstruction", percentile_stretch(recon[rgb], lo, hi), {}))
        if pred.get("segmentation") is not None:
            seg = _numpy(pred["segmentation"])
            seg = seg.argmax(0) if seg.ndim == 3 else seg
            panels.append(("predicted land cover", legend.colorize(seg.astype(np.int64)), {}))

    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for ax, (title, image, kwargs) in zip(axes[0], panels, strict=True):
        ax.imshow(image, interpolation="nearest", **kwargs)
        ax.set_axis_off()
        if show_titles:
            ax.set_title(title, fontsize=8)
    present = sorted(set(np.unique(labels).tolist()) & set(legend.codes))
    handles = [Patch(facecolor=np.asarray(legend.colors[c]) / 255, edgecolor="k",
                     label=f"{c}: {legend.names[c]}") for c in present]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=7,
                   frameon=False)
    title = suptitle if suptitle is not None else (
        f"{sample.get('id', '')}  [{sample.get('bucket', '')}]" if show_titles else None)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.12 if handles else 0, 1, 1))
    return fig


# --------------------------------------------------------------------------------------------
# Summaries (for notebooks/00_get_data.ipynb)
# --------------------------------------------------------------------------------------------
def dataset_statistics(root: str | Path, manifest: str | Path | None = None,
                       max_tiles_per_split: int | None = None) -> dict[str, Any]:
    """Counts per split and bucket, land-cover histogram and cloud fraction per bucket.

    Only the land-cover and cloud-mask files are read. ``max_tiles_per_split`` caps how many tiles
    per split are read for the histograms (evenly spaced; counts always cover all samples).
    """
    legend = load_legend()
    root = Path(root)
    manifest_dir = resolve_manifest_dir(root, manifest)
    counts: dict[str, dict[str, int]] = {}
    histogram = np.zeros(256, dtype=np.int64)
    cloud_sum: dict[str, float] = dict.fromkeys(BUCKETS, 0.0)
    cloud_n: dict[str, int] = dict.fromkeys(BUCKETS, 0)
    tiles_read = 0
    for split in SPLITS:
        csv_path = manifest_dir / f"{split}.csv"
        records = read_split_csv(csv_path) if csv_path.is_file() else []
        counts[split] = {b: sum(r.bucket == b for r in records) for b in BUCKETS}
        if max_tiles_per_split is not None and len(records) > max_tiles_per_split:
            picks = np.linspace(0, len(records) - 1, max_tiles_per_split).round().astype(int)
            records = [records[i] for i in picks]
        for record in records:
            labels = read_modality(root / record.paths["land_cover_maps"], "land_cover_maps")
            histogram += np.bincount(np.clip(labels.ravel().astype(np.int64), 0, 255),
                                     minlength=256)
            cloud = read_modality(root / record.paths["cloud_detection_results"],
                                  "cloud_detection_results")
            cloud_sum[record.bucket] += float((cloud >= 0.5).mean())
            cloud_n[record.bucket] += 1
            tiles_read += 1
    known = {str(c): int(histogram[c]) for c in legend.codes}
    other = int(histogram.sum() - sum(known.values()))
    return {
        "manifest_dir": str(manifest_dir),
        "manifest_hash": manifest_hash(manifest_dir),
        "counts": counts,
        "n_samples": int(sum(sum(c.values()) for c in counts.values())),
        "class_histogram": {**known, "ignored": other},
        "class_fraction": {k: v / max(1, int(histogram.sum())) for k, v in {**known,
                                                                         "ignored": other}.items()},
        "mean_cloud_fraction": {b: (cloud_sum[b] / cloud_n[b] if cloud_n[b] else None)
                                for b in BUCKETS},
        "tiles_read": tiles_read,
    }


def verify_headers(root: str | Path, manifest: str | Path | None = None,
                   max_problems: int = 20) -> dict[str, Any]:
    """Open every file of every split and check band count, dtype and size (pixels not read).

    Cheap structural check of a freshly placed copy; problems are collected, not raised.

    Returns
    -------
    dict
        ``checked`` (files), ``problems`` (up to ``max_problems`` messages naming files) and
        ``n_problems``.
    """
    import rasterio
    from rasterio.errors import RasterioError

    root = Path(root)
    manifest_dir = resolve_manifest_dir(root, manifest)
    problems: list[str] = []
    n_problems = checked = 0

    def report(message: str) -> None:
        nonlocal n_problems
        n_problems += 1
        if len(problems) < max_problems:
            problems.append(message)

    for split in SPLITS:
        csv_path = manifest_dir / f"{split}.csv"
        if not csv_path.is_file():
            report(f"{csv_path}: missing split file")
            continue
        for record in read_split_csv(csv_path):
            sizes = set()
            for modality in MODALITIES:
                spec, path = MODALITY_SPECS[modality], root / record.paths[modality]
                checked += 1
                if not path.is_file():
                    report(f"{path}: missing {spec.description} file")
                    continue
                try:
                    with rasterio.open(path) as src:
                        if src.count != spec.bands:
                            report(f"{path}: {src.count} band(s), expected {spec.bands}")
                        if src.dtypes[0] not in spec.dtypes:
                            report(f"{path}: dtype {src.dtypes[0]}, expected "
                                   f"{' or '.join(spec.dtypes)}")
                        sizes.add((src.height, src.width))
                except RasterioError as err:
                    report(f"{path}: unreadable or corrupt GeoTIFF ({err})")
            if len(sizes) > 1:
                report(f"sample {record.id}: modalities differ in size {sorted(sizes)}")
    return {"checked": checked, "n_problems": n_problems, "problems": problems}


def measure_read_speed(dataset: Dataset, n: int = 32) -> float:
    """Mean milliseconds to load one sample (first ``n`` samples, single process)."""
    import time

    n = min(n, len(dataset))
    if n == 0:
        return float("nan")
    started = time.perf_counter()
    for index in range(n):
        dataset[index]
    return 1000 * (time.perf_counter() - started) / n


def plot_class_histogram(histogram: Mapping[str, int], legend: Legend | None = None,
                         title: str = "land-cover pixels per class"):
    """Bar chart of a :func:`dataset_statistics` class histogram in the legend's colours."""
    import matplotlib.pyplot as plt

    legend = legend or load_legend()
    keys = [str(c) for c in legend.codes] + ["ignored"]
    counts = np.array([histogram.get(k, 0) for k in keys], dtype=np.float64)
    fractions = counts / max(counts.sum(), 1)
    colors = [np.asarray(c) / 255 for c in legend.colors] + [np.asarray(legend.ignore_color) / 255]
    labels = [f"{c}: {n}" for c, n in zip(legend.codes, legend.names, strict=True)] + ["ignored"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(range(len(keys)), fractions, color=colors, edgecolor="k")
    ax.set_yticks(range(len(keys)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(float(fractions.max()), 0.01) * 1.2)  # room for the percentages
    ax.set_xlabel("fraction of labelled pixels")
    ax.set_title(title, fontsize=10)
    for y, f in enumerate(fractions):
        ax.text(f, y, f" {100 * f:.1f}%", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def read_split_config(manifest_dir: str | Path) -> dict[str, Any]:
    """``split_config.json`` of a manifest folder (empty dict if absent)."""
    path = Path(manifest_dir) / "split_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


__all__ = [
    "BUCKETS", "MODALITIES", "SPLITS", "MODALITY_SPECS", "LUOJIASET_MANIFEST_DIR", "LUOJIASET_URL",
    "DatasetNotFoundError", "DataIntegrityError", "SampleRecord", "LuojiaSETOSFCR", "TrainAugment",
    "modality_filename", "sample_relpaths", "parse_s2_name", "sample_id", "how_to_get_luojiaset",
    "find_dataset_root", "extract_archive", "prepare_luojiaset", "is_archive",
    "discover_samples", "split_samples", "write_manifest", "read_split_csv", "read_checksums",
    "manifest_hash", "resolve_manifest_dir", "verify_checksums", "sha256_file", "read_modality",
    "plot_sample", "percentile_stretch", "stretch_limits", "dataset_statistics",
    "read_split_config", "author_reference", "compare_with_author_split", "verify_headers",
    "measure_read_speed", "plot_class_histogram", "DEFAULT_LUOJIASET_ROOT",
]
