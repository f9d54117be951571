"""The one place a data source is chosen: a :class:`DataSource` record per source.

``SOURCE`` in the notebooks is ``"synthetic"`` (the LuojiaSET-OSFCR twin), ``"luojiaset"`` or
``"sen12mscr"``. :func:`data_source` gives its record: how to prepare the data, write and read
its split manifest, check its headers, summarise it, which ``Dataset`` class opens it and which
legend names its classes. Notebook 00 and ``tdpcr data`` call the record and never branch on the
name. Downstream code opens a split with :func:`open_dataset`, which recognises the folder
(:func:`detect_source`), so training, evaluation, ablations and the viewer run unchanged on each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tdpcr_lib.core.legend import Legend, load_legend
from tdpcr_lib.core.paths import DEFAULT_SYNTHETIC_ROOT
from tdpcr_lib.datasets.archives import is_archive
from tdpcr_lib.datasets.base import ManifestDataset
from tdpcr_lib.datasets.luojiaset.acquire import prepare_luojiaset
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.luojiaset.layout import DEFAULT_LUOJIASET_ROOT, TWIN_INFO_FILE, luojiaset_legend
from tdpcr_lib.datasets.luojiaset.manifest import write_manifest
from tdpcr_lib.datasets.luojiaset.summary import dataset_statistics, verify_headers
from tdpcr_lib.datasets.manifests import LOCAL_MANIFEST, read_split_config
from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.datasets.sen12mscr.acquire import OFFICIAL_ARCHIVE_NAMES, prepare_sen12mscr
from tdpcr_lib.datasets.sen12mscr.dataset import LEGEND_NAME as SEN12MSCR_LEGEND
from tdpcr_lib.datasets.sen12mscr.dataset import SEN12MSCR
from tdpcr_lib.datasets.sen12mscr.layout import DEFAULT_SEN12MSCR_ROOT, has_sen12mscr_layout
from tdpcr_lib.datasets.sen12mscr.manifest import write_sen12mscr_manifest
from tdpcr_lib.datasets.sen12mscr.summary import sen12mscr_statistics, verify_sen12mscr_headers
from tdpcr_lib.datasets.synthetic.tiles import (
    DEFAULT_N_TILES,
    DEFAULT_TILE_SIZE,
    make_synthetic_luojiaset,
    read_synthetic_info,
)

log = logging.getLogger(__name__)

#: The values of ``SOURCE`` the notebooks and ``tdpcr reproduce --source`` accept.
SOURCES: tuple[str, ...] = ("synthetic", "luojiaset", "sen12mscr")


@dataclass(frozen=True)
class DataOptions:
    """What notebook 00 and ``tdpcr data`` let a user choose; each source reads its own fields.

    ``n_tiles``, ``tile_size``, ``seed``, ``overwrite``: the synthetic twin. ``split_seed``:
    LuojiaSET-OSFCR's split protocol (the author's 42). ``land_cover_root``: SEN12MS-CR's land
    cover when it is not inside the data folder. ``manifest_dir``: where the split CSVs go (None:
    ``<root>/manifest/``). ``checksums``: hash every file into the manifest. ``workers``: hashing
    threads. ``cloud_mask`` and ``split_protocol``: SEN12MS-CR's cloud detector
    (``"s2cloudless"``, the default, or ``"rule-based"``) and split (``"scene-exact"``, the default,
    or the peers' leaky ``"legacy-substring"``); None takes the default.
    ``overwrite_manifest``: replace manifest files tdpcr did not write (``--overwrite``).
    """

    n_tiles: int = DEFAULT_N_TILES
    tile_size: int = DEFAULT_TILE_SIZE
    seed: int = 0
    overwrite: bool = False
    split_seed: int = 42
    land_cover_root: str | Path | None = None
    manifest_dir: str | Path | None = None
    checksums: bool = True
    workers: int = 4
    cloud_mask: str | None = None
    split_protocol: str | None = None
    overwrite_manifest: bool = False


@dataclass(frozen=True)
class DataSource:
    """Everything that differs between data sources, in one record (see :data:`DATA_SOURCES`).

    Attributes
    ----------
    name, title
        The ``SOURCE`` value and the dataset's name for people.
    default_root
        Where the data go (or are looked for) when ``DATA_ROOT`` is None.
    prepare
        ``prepare(data_root, options) -> root``: make the twin, or locate / extract the real data.
    write_manifest
        ``write_manifest(root, options) -> manifest folder``: the split CSVs (+ checksums).
    verify_headers
        ``verify_headers(root, manifest=...) -> {"checked", "n_problems", "problems"}``.
    statistics
        ``statistics(root, manifest=..., max_tiles_per_split=...)``: counts, class histogram,
        cloud fraction per bucket, manifest hash.
    dataset
        The ``Dataset`` class opening one split.
    legend
        ``legend(root) -> Legend``: the land-cover legend of the data in ``root``.
    statistics_tiles
        Tiles per split read for the statistics (None: all; the real data are large).
    """

    name: str
    title: str
    default_root: Path
    prepare: Callable[[str | Path | None, DataOptions], Path]
    write_manifest: Callable[[Path, DataOptions], Path]
    verify_headers: Callable[..., dict[str, Any]]
    statistics: Callable[..., dict[str, Any]]
    dataset: type[ManifestDataset]
    legend: Callable[[str | Path | None], Legend]
    statistics_tiles: int | None = 400

    def facts(self, root: Path, manifest_dir: Path) -> dict[str, Any]:
        """What notebook 00 reports about the prepared data: ``split_config.json`` and, for the
        twin, how it was generated (``generation_seconds`` is None for real data)."""
        facts = dict(read_split_config(manifest_dir))
        twin = read_synthetic_info(root) or {}
        facts["generation_seconds"] = twin.get("generation_seconds")
        facts["cloud_kinds"] = twin.get("cloud_kinds")
        return facts


def _make_twin(data_root: str | Path | None, options: DataOptions) -> Path:
    return make_synthetic_luojiaset(
        data_root or DEFAULT_SYNTHETIC_ROOT,
        n_tiles=options.n_tiles,
        size=options.tile_size,
        seed=options.seed,
        overwrite=options.overwrite,
    )


def _twin_manifest(root: Path, options: DataOptions) -> Path:
    # the twin writes its manifest while it is generated; another folder gets a fresh one
    if options.manifest_dir is None:
        return root / LOCAL_MANIFEST
    return _luojiaset_manifest(root, options)


def _luojiaset_manifest(root: Path, options: DataOptions) -> Path:
    return write_manifest(
        root,
        out=options.manifest_dir,
        seed=options.split_seed,
        checksums=options.checksums,
        workers=options.workers,
        overwrite=options.overwrite_manifest,
    )


def _sen12mscr_manifest(root: Path, options: DataOptions) -> Path:
    extra = {}
    if options.cloud_mask is not None:
        extra["cloud_mask"] = options.cloud_mask
    if options.split_protocol is not None:
        extra["split"] = options.split_protocol
    return write_sen12mscr_manifest(
        root,
        land_cover_root=options.land_cover_root,
        out=options.manifest_dir,
        checksums=options.checksums,
        workers=options.workers,
        overwrite=options.overwrite_manifest,
        **extra,
    )


def _sen12mscr_legend(_root: str | Path | None = None) -> Legend:
    return load_legend(name=SEN12MSCR_LEGEND)


#: The record of each ``SOURCE``.
DATA_SOURCES: dict[str, DataSource] = {
    "synthetic": DataSource(
        "synthetic",
        "the synthetic LuojiaSET-OSFCR twin",
        DEFAULT_SYNTHETIC_ROOT,
        _make_twin,
        _twin_manifest,
        verify_headers,
        dataset_statistics,
        LuojiaSETOSFCR,
        luojiaset_legend,
        statistics_tiles=None,
    ),
    "luojiaset": DataSource(
        "luojiaset",
        "LuojiaSET-OSFCR",
        DEFAULT_LUOJIASET_ROOT,
        lambda data_root, _options: prepare_luojiaset(data_root or DEFAULT_LUOJIASET_ROOT),
        _luojiaset_manifest,
        verify_headers,
        dataset_statistics,
        LuojiaSETOSFCR,
        luojiaset_legend,
    ),
    "sen12mscr": DataSource(
        "sen12mscr",
        "SEN12MS-CR",
        DEFAULT_SEN12MSCR_ROOT,
        lambda data_root, _options: prepare_sen12mscr(data_root or DEFAULT_SEN12MSCR_ROOT),
        _sen12mscr_manifest,
        verify_sen12mscr_headers,
        sen12mscr_statistics,
        SEN12MSCR,
        _sen12mscr_legend,
    ),
}


def check_source(source: str | None) -> str:
    """``source`` if known (None → ``"synthetic"``), else a ValueError listing the choices."""
    source = source or "synthetic"
    if source not in SOURCES:
        raise ValueError(f"SOURCE must be one of {SOURCES}, got {source!r}")
    return source


def data_source(source: str | None) -> DataSource:
    """The :class:`DataSource` of ``SOURCE`` (None → the synthetic twin)."""
    return DATA_SOURCES[check_source(source)]


def detect_source(root: str | Path) -> str:
    """The source whose data are in ``root``: ``"sen12mscr"`` for SEN12MS-CR season folders,
    ``"synthetic"`` for the twin (its ``synthetic.json``), else ``"luojiaset"``."""
    root = Path(root)
    if not any((root / bucket).is_dir() for bucket in BUCKETS) and has_sen12mscr_layout(root):
        return "sen12mscr"
    return "synthetic" if (root / TWIN_INFO_FILE).is_file() else "luojiaset"


def legend_of_data(root: str | Path | None) -> Legend:
    """The land-cover legend of the dataset in ``root`` (without opening a split; None: the
    LuojiaSET-OSFCR legend)."""
    if root is None:
        return load_legend()
    return data_source(detect_source(root)).legend(root)


def open_dataset(
    root: str | Path,
    split: str = "train",
    manifest: str | Path | None = None,
    transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    checksum: bool = False,
) -> ManifestDataset:
    """The ``split`` of the dataset in ``root``, whichever layout it has (see :func:`detect_source`).

    ``root`` may be an archive (``.zip``, ``.tar[.gz]``, or an official SEN12MS-CR archive): it is
    extracted beside itself first (safely, see :mod:`tdpcr_lib.datasets.archives`).

    Both classes deliver the same sample dict and carry ``legend``, ``buckets``, ``records`` and
    ``manifest_hash``.
    """
    root = Path(root).expanduser()
    if root.is_file() and is_archive(root):
        # `--data-root X.zip`: extracted beside it (once; reused afterwards), as documented
        root = prepare_sen12mscr(root) if root.name in OFFICIAL_ARCHIVE_NAMES else prepare_luojiaset(root)
    cls = data_source(detect_source(root)).dataset
    return cls(root, split=split, manifest=manifest, transforms=transforms, checksum=checksum)


def ensure_dataset(data_root: str | Path, source: str | None = "synthetic") -> Path:
    """The dataset folder to train or evaluate on, made ready for :func:`open_dataset`.

    ``source="synthetic"``: generate the default synthetic twin at ``data_root`` if it is not
    there yet (what notebook 00 does), or finish an interrupted generation with its own
    parameters. ``"luojiaset"`` / ``"sen12mscr"``: the real data; an archive is extracted and the
    dataset root is located. A missing split manifest raises later, with the command that writes
    one.
    """
    data_root = Path(data_root).expanduser()
    source = check_source(source)
    if source != "synthetic":
        return data_source(source).prepare(data_root, DataOptions())
    info = read_synthetic_info(data_root)
    if info is not None and info.get("status") == "generating":
        # a generation was killed: finish it with its own parameters (resumable)
        params = info.get("parameters", {})
        make_synthetic_luojiaset(data_root, n_tiles=params["n_tiles"], size=params["size"], seed=params["seed"])
    elif not any((data_root / bucket).is_dir() for bucket in BUCKETS):
        log.warning("no dataset at %s: generating the synthetic twin there", data_root)
        make_synthetic_luojiaset(data_root)
    return data_root
