"""Getting LuojiaSET-OSFCR ready: locate the user's copy, or extract the archive they received."""

from __future__ import annotations

from pathlib import Path

from tdpcr_lib.datasets.archives import archive_stem, discard_extraction, extract_archive, is_archive
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.luojiaset.layout import find_dataset_root, how_to_get_luojiaset


def prepare_luojiaset(source: str | Path, extract_to: str | Path | None = None, overwrite: bool = False) -> Path:
    """Locate a user-provided LuojiaSET-OSFCR folder or extract an archive; return the dataset root.

    Parameters
    ----------
    source : path
        The unpacked folder (or a folder above it), or a ``.zip`` / ``.tar[.gz|.bz2|.xz]`` archive.
    extract_to : path, optional
        Where an archive is extracted (default: beside it, named after it). An existing folder
        that already holds the bucket folders is reused as it is. An existing folder that does
        not is replaced only if tdpcr extracted it (or it is empty); a folder with other files
        raises :class:`ExtractionRefused` and is left untouched.
    overwrite : bool
        Replace an existing ``extract_to`` folder even though tdpcr did not write it (deletes
        its files).
    """
    source = Path(source).expanduser()
    if source.is_dir():
        return find_dataset_root(source)
    if not source.exists():
        raise DatasetNotFoundError(f"{source} does not exist. " + how_to_get_luojiaset(source))
    if not is_archive(source):
        raise DataIntegrityError(f"{source} is neither a folder nor a zip/tar archive")
    destination = Path(extract_to) if extract_to is not None else source.with_name(archive_stem(source))
    if destination.is_dir():
        try:
            return find_dataset_root(destination)
        except DatasetNotFoundError:
            pass  # incomplete or unrelated: extract_archive decides whether it may replace it
    extract_archive(source, destination, overwrite=overwrite)
    try:
        return find_dataset_root(destination)
    except DatasetNotFoundError:
        discard_extraction(destination)  # an archive of something else: leave nothing behind
        raise
