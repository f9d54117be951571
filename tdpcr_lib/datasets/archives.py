"""Safe archive extraction shared by every source: zip/tar archives into a folder marked as ours,
never replacing a folder tdpcr did not write."""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

from tdpcr_lib import __version__
from tdpcr_lib.core.io import atomic_write_json, sha256_file
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def is_archive(path: str | Path) -> bool:
    """True for the archive types :func:`extract_archive` extracts."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: str | Path) -> str:
    """The archive's name without its suffix (``"data.tar.gz"`` → ``"data"``)."""
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


#: Written into every folder :func:`extract_archive` makes: which archive it came from. Only a
#: folder holding this marker is ever replaced without ``overwrite=True``.
EXTRACTION_MARKER = ".tdpcr-extracted.json"


class ExtractionRefused(DataIntegrityError):
    """The extraction target exists and holds data tdpcr did not write; nothing was changed."""


def _archive_record(archive: Path) -> dict[str, Any]:
    stat = archive.stat()
    return {
        "archive": archive.name,
        "path": str(archive.resolve()),
        "size": stat.st_size,
        "sha256": sha256_file(archive),
        "tdpcr_version": __version__,
    }


def written_by_extraction(folder: str | Path) -> dict[str, Any] | None:
    """The marker of a folder :func:`extract_archive` made (None: tdpcr did not make it)."""
    try:
        record = json.loads((Path(folder) / EXTRACTION_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "archive" in record else None


def _remove_leftovers(destination: Path) -> None:
    """Remove temporary folders of interrupted extractions into ``destination`` (ours only)."""
    for tmp in destination.parent.glob(f".{destination.name}.extracting-*"):
        if tmp.is_dir() and (tmp / EXTRACTION_MARKER).is_file():
            shutil.rmtree(tmp, ignore_errors=True)


def extract_archive(archive: str | Path, destination: str | Path, overwrite: bool = False) -> Path:
    """Extract a zip or tar archive safely (no absolute paths, no ``..``, no links out).

    Extraction goes to a temporary sibling folder renamed onto ``destination`` at the end, so an
    interrupted extraction never looks complete; the temporary folders of interrupted
    extractions are removed by the next call. The result holds a marker file
    (:data:`EXTRACTION_MARKER`: the archive's name, size and sha256).

    Parameters
    ----------
    archive : path
        The ``.zip`` / ``.tar[.gz|.bz2|.xz]`` file.
    destination : path
        The folder to create. If it exists it is replaced only when it is empty or was made by
        this function (it holds the marker); otherwise :class:`ExtractionRefused` is raised
        before anything is written, unless ``overwrite=True``. A message says what is replaced.
    overwrite : bool
        Also replace an existing non-empty folder that tdpcr did not write (its files are
        deleted).
    """
    archive, destination = Path(archive), Path(destination)
    if not archive.is_file():
        raise DatasetNotFoundError(f"archive {archive} does not exist")
    replacing = None
    if destination.exists() or destination.is_symlink():
        if not destination.is_dir() or destination.is_symlink():
            raise ExtractionRefused(
                f"{destination} exists and is not a folder; remove it or extract elsewhere (extract_to=...)"
            )
        if written_by_extraction(destination) is not None:
            replacing = "the earlier extraction tdpcr made there"
        elif any(destination.iterdir()):
            if not overwrite:
                raise ExtractionRefused(
                    f"{destination} exists, holds files and was not written by tdpcr; nothing was "
                    f"changed. Extract {archive.name} elsewhere (extract_to=...), move the folder "
                    "away, or pass overwrite=True to delete it and extract there"
                )
            replacing = "a folder tdpcr did not write (overwrite=True)"
    if replacing is not None:  # said before anything is written
        log.info("%s: extracting into %s; it will replace %s", archive.name, destination, replacing)
    _remove_leftovers(destination)
    tmp = destination.with_name(f".{destination.name}.extracting-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        # the marker goes in first, so a temporary folder left by a kill is recognised as ours
        atomic_write_json(tmp / EXTRACTION_MARKER, {"archive": archive.name, "complete": False})
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
        atomic_write_json(tmp / EXTRACTION_MARKER, _archive_record(archive))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataIntegrityError(f"{archive}: cannot extract the archive ({err})") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if destination.is_dir():
        aside = destination.with_name(f".{destination.name}.replaced-{uuid.uuid4().hex[:8]}")
        destination.rename(aside)  # renamed aside, not deleted, until the new one is in place
        tmp.rename(destination)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        tmp.rename(destination)
    return destination
