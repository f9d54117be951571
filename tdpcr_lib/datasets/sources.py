"""One entry point for every data source: recognise a dataset folder and open its splits.

``SOURCE`` in the notebooks is ``"synthetic"`` (the LuojiaSET-OSFCR twin), ``"luojiaset"`` or
``"sen12mscr"``. Downstream code opens a split with :func:`open_dataset`, which looks at the
folder (bucket folders → LuojiaSET-OSFCR layout; season folders → SEN12MS-CR), so training,
evaluation, ablations and the viewer run unchanged on either.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from tdpcr_lib.core.legend import Legend, load_legend
from tdpcr_lib.datasets.acquire import is_archive, prepare_luojiaset
from tdpcr_lib.datasets.errors import DatasetNotFoundError
from tdpcr_lib.datasets.layout import BUCKETS
from tdpcr_lib.datasets.luojiaset import LuojiaSETOSFCR
from tdpcr_lib.datasets.sen12mscr import LEGEND_NAME as SEN12MSCR_LEGEND
from tdpcr_lib.datasets.sen12mscr import SEN12MSCR
from tdpcr_lib.datasets.sen12mscr_acquire import OFFICIAL_ARCHIVE_NAMES, prepare_sen12mscr
from tdpcr_lib.datasets.sen12mscr_layout import has_sen12mscr_layout

#: The values of ``SOURCE`` the notebooks and ``tdpcr reproduce --source`` accept.
SOURCES: tuple[str, ...] = ("synthetic", "luojiaset", "sen12mscr")


def check_source(source: str | None) -> str:
    """``source`` if known (None → ``"synthetic"``), else a ValueError listing the choices."""
    source = source or "synthetic"
    if source not in SOURCES:
        raise ValueError(f"SOURCE must be one of {SOURCES}, got {source!r}")
    return source


def detect_source(root: str | Path) -> str:
    """``"sen12mscr"`` for a folder with SEN12MS-CR season folders, else ``"luojiaset"`` (the
    layout of LuojiaSET-OSFCR and of its synthetic twin)."""
    root = Path(root)
    if not any((root / bucket).is_dir() for bucket in BUCKETS) and has_sen12mscr_layout(root):
        return "sen12mscr"
    return "luojiaset"


def legend_of_data(root: str | Path) -> Legend:
    """The land-cover legend of the dataset in ``root`` (without opening a split)."""
    if detect_source(root) == "sen12mscr":
        return load_legend(name=SEN12MSCR_LEGEND)
    return load_legend()


def open_dataset(root: str | Path, split: str = "train", manifest: str | Path | None = None,
                 transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 checksum: bool = False) -> Dataset:
    """The ``split`` of the dataset in ``root``, whichever layout it has (see :func:`detect_source`).

    ``root`` may be an archive (``.zip``, ``.tar[.gz]``, or an official SEN12MS-CR archive): it is
    extracted beside itself first (safely, see :mod:`tdpcr_lib.datasets.acquire`).

    Both classes deliver the same sample dict and carry ``legend``, ``buckets``, ``records`` and
    ``manifest_hash``.
    """
    root = Path(root).expanduser()
    if root.is_file() and is_archive(root):
        # `--data-root X.zip`: extracted beside it (once; reused afterwards), as documented
        root = (prepare_sen12mscr(root) if root.name in OFFICIAL_ARCHIVE_NAMES
                else prepare_luojiaset(root))
    cls = SEN12MSCR if detect_source(root) == "sen12mscr" else LuojiaSETOSFCR
    return cls(root, split=split, manifest=manifest, transforms=transforms, checksum=checksum)


def prepare_real_data(source: str, data_root: str | Path) -> Path:
    """Locate (or extract) the real data of ``source``: the dataset root."""
    if source == "sen12mscr":
        return prepare_sen12mscr(data_root)
    if source == "luojiaset":
        return prepare_luojiaset(data_root)
    raise DatasetNotFoundError(f"no real data for SOURCE={source!r}; choose one of {SOURCES[1:]}")
