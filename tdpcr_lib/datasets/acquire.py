"""Getting LuojiaSET-OSFCR ready: where to download it, safe archive extraction."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

from tdpcr_lib.core.paths import DATA_DIR
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.layout import find_dataset_root, how_to_get_luojiaset

#: Where notebook 00 looks for a user-placed copy of the real data by default.
DEFAULT_LUOJIASET_ROOT = DATA_DIR / "LuojiaSET-OSFCR"


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
