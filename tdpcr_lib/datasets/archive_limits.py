"""Decompression limits and member checks for the archives tdpcr extracts.

Every member is checked *before* a byte of it is written:

* its name: no absolute path (``/x``, ``C:\\x``), no ``..`` part, no link leading out (tar links
  are left to tarfile's ``"data"`` filter, which refuses them);
* its size: at most :data:`MAX_MEMBER_BYTES` (the largest file of LuojiaSET-OSFCR or SEN12MS-CR
  is a 13-band 256 × 256 float32 GeoTIFF, about 3.4 MB);
* the running total: at most :data:`MAX_RATIO` times the archive's own size (plus
  :data:`RATIO_ALLOWANCE_BYTES`, so small archives of small files always fit). Satellite rasters
  compress a few times, land cover a few dozen; a zip of zeros compresses a thousand times.
  For a zip each member's own ratio is checked too (sizes are in its central directory).
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from tdpcr_lib.datasets.errors import DataIntegrityError

#: Largest member accepted (bytes).
MAX_MEMBER_BYTES = 256 * 2**20
#: Largest accepted ratio of extracted bytes to archive bytes (total, and per zip member).
MAX_RATIO = 100
#: Extracted bytes always allowed whatever the ratio (small archives, tiny test files).
RATIO_ALLOWANCE_BYTES = 16 * 2**20


class ArchiveBombError(DataIntegrityError):
    """A member is larger, or the archive expands more, than the datasets can explain."""


def _check_name(archive: Path, name: str) -> None:
    unix = name.replace("\\", "/")
    if PurePosixPath(unix).is_absolute() or PureWindowsPath(name).drive or ".." in PurePosixPath(unix).parts:
        raise DataIntegrityError(
            f"{archive}: cannot extract the archive: unsafe member path "
            f"{name!r} (absolute or with "
            "'..') refused; nothing was extracted"
        )


class Budget:
    """The running total of extracted bytes against the limits of one archive."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.archive_bytes = archive.stat().st_size
        self.limit = self.archive_bytes * MAX_RATIO + RATIO_ALLOWANCE_BYTES
        self.total = 0

    def take(self, name: str, size: int, compressed: int | None = None) -> None:
        """Account for a member of ``size`` bytes before it is written; raise if over a limit."""
        if size > MAX_MEMBER_BYTES:
            raise ArchiveBombError(
                f"{self.archive}: member {name!r} would be {size} bytes, more "
                f"than the {MAX_MEMBER_BYTES} a dataset file can be; refused "
                "(not a LuojiaSET-OSFCR/SEN12MS-CR archive, or corrupt)"
            )
        if compressed is not None and size > RATIO_ALLOWANCE_BYTES and size > MAX_RATIO * max(compressed, 1):
            raise ArchiveBombError(
                f"{self.archive}: member {name!r} expands {size} bytes from "
                f"{compressed} (more than {MAX_RATIO}x); refused as a "
                "decompression bomb"
            )
        self.total += size
        if self.total > self.limit:
            raise ArchiveBombError(
                f"{self.archive}: would expand to more than {self.limit} bytes "
                f"({MAX_RATIO}x its {self.archive_bytes} bytes); refused as a "
                "decompression bomb before writing it"
            )


def check_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    """Check every member name and size of a zip (from its central directory) up front."""
    budget = Budget(archive)
    for info in zf.infolist():
        _check_name(archive, info.filename)
        budget.take(info.filename, info.file_size, info.compress_size)


def tar_members(archive: Path, tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a tar, each checked (name, size, running ratio) before it is extracted."""
    budget = Budget(archive)
    for member in tf:
        _check_name(archive, member.name)
        if member.isfile():
            budget.take(member.name, member.size)
        yield member
