"""Optional preprocessed cache of a LuojiaSET-OSFCR split: one memory-mapped ``.npy`` per modality.

Decoding five GeoTIFFs per sample is most of what the training loader spends (see
``reports/benchmarks.md``, "Data pipeline"). :func:`build_cache` reads a split once through
:class:`tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR` (so every file is validated exactly as usual), stores each
modality of all samples in one ``.npy`` array in file units (DN, dB, codes: uint16 S2 stays half
the size of float32), checksums them, and :class:`CachedLuojiaSETOSFCR` serves samples from
memory maps: the same dict, bit for bit, as the GeoTIFF dataset (it reuses its normalisation code),
without opening a file per sample.

Layout of a cache folder::

    s2.npy  s2_cloudy.npy  s1.npy  land_cover_maps.npy  cloud_detection_results.npy
    index.json   # ids, buckets, shapes, dtypes, split, manifest hash, sha256 of every .npy

Every array is written to a temporary name and renamed (``io_utils.atomic_path``); ``index.json``
is written last, so a folder without it is an unfinished cache and is rebuilt. A cache remembers
the split's ``manifest_hash``; :func:`ensure_cache` rebuilds it when the split changed.
All tiles of a split must share one size (they do in LuojiaSET-OSFCR: 256 px).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from tdpcr_lib.core.io import atomic_path, atomic_write_json, sha256_file
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.luojiaset.layout import MODALITIES, luojiaset_legend
from tdpcr_lib.datasets.samples import SampleRecord

INDEX_FILE = "index.json"


CACHE_FORMAT = 1


#: Modalities stored as (N, H, W) instead of (N, 1, H, W).
_SINGLE_BAND = ("land_cover_maps", "cloud_detection_results")


def default_cache_dir(root: str | Path, split: str) -> Path:
    """``<root>/.tdpcr_cache/<split>`` (pass another folder when the data root is read-only)."""
    return Path(root).expanduser() / ".tdpcr_cache" / split


def build_cache(
    root: str | Path, split: str = "train", cache_dir: str | Path | None = None, manifest: str | Path | None = None
) -> Path:
    """Read a split once and write its memory-mappable cache.

    Parameters
    ----------
    root, split, manifest
        As for :class:`tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR`.
    cache_dir
        Output folder (default :func:`default_cache_dir`). An existing cache there is replaced.

    Returns
    -------
    Path
        The cache folder.

    Raises
    ------
    DataIntegrityError
        A sample fails the dataset's checks, tiles differ in size, or a modality's dtype changes
        between samples in a way that cannot be stored losslessly (the message names the file).
    ValueError
        The split is empty.
    """
    dataset = LuojiaSETOSFCR(root, split=split, manifest=manifest)
    if len(dataset) == 0:
        raise ValueError(f"{dataset.manifest_dir / (split + '.csv')}: the {split!r} split is empty; nothing to cache")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(root, split)
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / INDEX_FILE).unlink(missing_ok=True)  # the folder is unfinished until the end
    first = dataset.load_raw(0)
    height, width = first["s2"].shape[-2:]
    n = len(dataset)
    shapes = {m: (n, *first[m].shape[-2:]) if m in _SINGLE_BAND else (n, *first[m].shape) for m in MODALITIES}
    dtypes = {m: first[m].dtype for m in MODALITIES}
    with contextlib.ExitStack() as stack:
        arrays = {}
        for modality in MODALITIES:
            tmp = stack.enter_context(atomic_path(cache_dir / f"{modality}.npy", suffix=".npy"))
            arrays[modality] = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtypes[modality], shape=shapes[modality])
        for index in range(n):
            raw = first if index == 0 else dataset.load_raw(index)
            record = dataset.records[index]
            for modality in MODALITIES:
                array = raw[modality]
                path = dataset.root / record.paths[modality]
                if array.shape[-2:] != (height, width):
                    raise DataIntegrityError(
                        f"{path}: {array.shape[-2]}x{array.shape[-1]} px, but the cache needs "
                        f"every tile of the split at {height}x{width} (like the first sample)"
                    )
                if not np.can_cast(array.dtype, dtypes[modality], casting="safe"):
                    raise DataIntegrityError(
                        f"{path}: dtype {array.dtype} cannot be stored losslessly as "
                        f"{dtypes[modality]} (the dtype of the split's first sample)"
                    )
                arrays[modality][index] = array[0] if modality in _SINGLE_BAND else array
        for array in arrays.values():
            array.flush()
        arrays.clear()  # close the memory maps before the files are renamed
    checksums = {m: sha256_file(cache_dir / f"{m}.npy") for m in MODALITIES}
    atomic_write_json(
        cache_dir / INDEX_FILE,
        {
            "format": CACHE_FORMAT,
            "split": split,
            "n": n,
            "height": int(height),
            "width": int(width),
            "manifest_hash": dataset.manifest_hash,
            "source_root": str(dataset.root),
            "shapes": {m: list(s) for m, s in shapes.items()},
            "dtypes": {m: str(d) for m, d in dtypes.items()},
            "sha256": checksums,
            "records": [{"id": r.id, "bucket": r.bucket, "paths": dict(r.paths)} for r in dataset.records],
        },
    )
    return cache_dir


def read_index(cache_dir: str | Path) -> dict[str, Any]:
    """The cache's ``index.json``; :class:`FileNotFoundError` when the cache is missing or
    unfinished."""
    path = Path(cache_dir) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: no finished cache in {cache_dir} "
            "(build one with tdpcr_lib.datasets.cache.build_cache)"
        )
    return json.loads(path.read_text())


def verify_cache(cache_dir: str | Path) -> None:
    """Recompute the sha256 of every array; :class:`DataIntegrityError` names a mismatch."""
    cache_dir = Path(cache_dir)
    index = read_index(cache_dir)
    for modality, expected in index["sha256"].items():
        path = cache_dir / f"{modality}.npy"
        if not path.is_file():
            raise DataIntegrityError(f"{path}: missing array of the cache")
        if sha256_file(path) != expected:
            raise DataIntegrityError(
                f"{path}: checksum mismatch (the cache was modified or is corrupt); rebuild it with build_cache"
            )


class CachedLuojiaSETOSFCR(LuojiaSETOSFCR):
    """A split served from a cache made by :func:`build_cache`; samples equal the GeoTIFF ones.

    Parameters
    ----------
    cache_dir
        The cache folder.
    transforms
        Applied to every sample dict (e.g. :class:`tdpcr_lib.transforms.TrainAugment`).
    verify
        Check the arrays' sha256 first (reads the whole cache once).

    Notes
    -----
    Arrays are opened as read-only memory maps, lazily in each process (DataLoader workers
    included), so a split larger than RAM works and workers share the page cache.
    """

    def __init__(self, cache_dir: str | Path, transforms=None, verify: bool = False) -> None:
        # Deliberately not calling LuojiaSETOSFCR.__init__: there are no files to look up.
        self.cache_dir = Path(cache_dir)
        self.index = read_index(self.cache_dir)
        if self.index.get("format") != CACHE_FORMAT:
            raise DataIntegrityError(
                f"{self.cache_dir / INDEX_FILE}: cache format {self.index.get('format')} is not {CACHE_FORMAT}; rebuild"
            )
        if verify:
            verify_cache(self.cache_dir)
        self.root = Path(self.index["source_root"])
        self.split = self.index["split"]
        self.manifest_dir = self.cache_dir
        self.records = [SampleRecord(paths=r["paths"], bucket=r["bucket"], id=r["id"]) for r in self.index["records"]]
        self.transforms = transforms
        self.normalisation = load_normalisation()
        self.legend = luojiaset_legend(self.root)
        self._arrays: dict[str, np.ndarray] | None = None

    @property
    def manifest_hash(self) -> str:
        """The manifest hash of the split the cache was built from."""
        return self.index["manifest_hash"]

    def __repr__(self) -> str:
        return f"CachedLuojiaSETOSFCR(cache_dir={str(self.cache_dir)!r}, split={self.split!r}, n={len(self)})"

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in each process
        state = dict(self.__dict__)
        state["_arrays"] = None
        return state

    def _maps(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {}
            for modality in MODALITIES:
                path = self.cache_dir / f"{modality}.npy"
                try:
                    array = np.load(path, mmap_mode="r")
                except (OSError, ValueError) as err:
                    raise DataIntegrityError(f"{path}: unreadable cache array ({err})") from err
                if list(array.shape) != self.index["shapes"][modality]:
                    raise DataIntegrityError(
                        f"{path}: shape {array.shape}, index says {self.index['shapes'][modality]}; rebuild"
                    )
                self._arrays[modality] = array
        return self._arrays

    def load_raw(self, index: int) -> dict[str, np.ndarray]:
        """The five arrays of a sample in file units, as :meth:`LuojiaSETOSFCR.load_raw`."""
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} out of range for {len(self.records)} samples")
        maps = self._maps()
        return {
            m: np.asarray(maps[m][index])[None] if m in _SINGLE_BAND else np.asarray(maps[m][index]) for m in MODALITIES
        }


def ensure_cache(
    root: str | Path,
    split: str = "train",
    cache_dir: str | Path | None = None,
    manifest: str | Path | None = None,
    transforms=None,
    verify: bool = False,
) -> CachedLuojiaSETOSFCR:
    """Open the split's cache, building (or rebuilding) it when missing or made from another
    split manifest."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(root, split)
    current = LuojiaSETOSFCR(root, split=split, manifest=manifest).manifest_hash
    try:
        index = read_index(cache_dir)
        stale = index.get("manifest_hash") != current or index.get("format") != CACHE_FORMAT
    except FileNotFoundError:
        stale = True
    if stale:
        build_cache(root, split, cache_dir=cache_dir, manifest=manifest)
    return CachedLuojiaSETOSFCR(cache_dir, transforms=transforms, verify=verify)
