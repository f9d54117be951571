"""Getting SEN12MS-CR ready: a user-placed folder, or the official per-season archives.

The archives are extracted one by one with :func:`tdpcr_lib.datasets.archives.extract_archive`
(safe paths, temporary folder renamed at the end, marker file), each into a folder named after
it; an archive already extracted (marker with the same name and size) is not extracted again.
The land-cover archives are checked against the MD5 torchgeo publishes before extraction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from tdpcr_lib.datasets.archives import extract_archive, written_by_extraction
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.sen12mscr.layout import (
    LAND_COVER_MD5,
    SEASONS,
    find_sen12mscr_root,
    has_sen12mscr_layout,
    how_to_get_sen12mscr,
)

log = logging.getLogger(__name__)

_SUFFIX = ".tar.gz"

#: Archive names of the SEN12MS-CR / SEN12MS per-season archives.
OFFICIAL_ARCHIVE_NAMES: frozenset[str] = frozenset(
    f"{season}_{modality}{_SUFFIX}" for season in SEASONS for modality in ("s1", "s2", "s2_cloudy", "lc")
)


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 of a file (what torchgeo publishes for the SEN12MS archives)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_archive(archive: str | Path) -> None:
    """Compare an archive with its published MD5 (when one is known); mismatch raises."""
    archive = Path(archive)
    expected = LAND_COVER_MD5.get(archive.name)
    if expected is not None:
        found = md5_file(archive)
        if found != expected:
            raise DataIntegrityError(
                f"{archive}: MD5 {found} differs from the published "
                f"{expected}; the download is incomplete or corrupt, "
                "download it again"
            )


def find_archives(folder: str | Path) -> list[Path]:
    """The official per-season archives lying directly in ``folder``, name-sorted."""
    return sorted(p for p in Path(folder).glob(f"*{_SUFFIX}") if p.name in OFFICIAL_ARCHIVE_NAMES)


def extract_archives(
    archives: Iterable[str | Path], extract_to: str | Path, overwrite: bool = False, verify: bool = True
) -> Path:
    """Extract each archive into ``extract_to/<archive name without .tar.gz>``; returns
    ``extract_to``. Already extracted archives (same name and size) are skipped."""
    extract_to = Path(extract_to)
    for archive in archives:
        archive = Path(archive)
        destination = extract_to / archive.name[: -len(_SUFFIX)]
        record = written_by_extraction(destination)
        if (
            record is not None
            and record.get("archive") == archive.name
            and record.get("size") == archive.stat().st_size
        ):
            continue
        if verify:
            verify_archive(archive)
        log.info("extracting %s into %s", archive.name, destination)
        extract_archive(archive, destination, overwrite=overwrite)
    return extract_to


def prepare_sen12mscr(source: str | Path, extract_to: str | Path | None = None, overwrite: bool = False) -> Path:
    """Locate a SEN12MS-CR folder, or extract the per-season archives; return the dataset root.

    Parameters
    ----------
    source : path
        The folder holding the season folders (or a folder above it); or a folder holding the
        official archives (``ROIs1158_spring_s1.tar.gz`` ..., land cover ``..._lc.tar.gz``
        included); or one such archive.
    extract_to : path, optional
        Where archives are extracted (default ``<folder of the archives>/SEN12MS-CR``).
    overwrite : bool
        Replace extraction folders tdpcr did not write (deletes their files).
    """
    source = Path(source).expanduser()
    if source.is_file():
        if source.name not in OFFICIAL_ARCHIVE_NAMES:
            raise DataIntegrityError(
                f"{source} is not one of the official SEN12MS-CR/SEN12MS archives (e.g. ROIs1158_spring_s1{_SUFFIX})"
            )
        archives, folder = [source], source.parent
    elif source.is_dir():
        if has_sen12mscr_layout(source):
            return source
        archives, folder = find_archives(source), source
        if not archives:
            return find_sen12mscr_root(source)
    else:
        raise DatasetNotFoundError(f"{source} does not exist. " + how_to_get_sen12mscr(source))
    target = Path(extract_to) if extract_to is not None else folder / "SEN12MS-CR"
    extract_archives(archives, target, overwrite=overwrite)
    return find_sen12mscr_root(target)
