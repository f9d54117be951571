"""Resumable downloads of the open datasets (SEN12MS-CR and SEN12MS land cover) over HTTPS.

A file is downloaded to ``<name>.part`` and renamed only once complete and verified: its size
against the server's (``Content-Length`` / ``Content-Range``) and, when one is known, its MD5. An
interrupted download resumes where it stopped (HTTP ``Range``); a server that ignores ``Range``
restarts it from zero. Never run by the tests (they use a local server).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.sen12mscr.acquire import md5_file
from tdpcr_lib.datasets.sen12mscr.layout import SEASONS, official_archives

Opener = Callable[..., Any]


def _total_size(response: Any, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range:
        match = re.search(r"/(\d+)\s*$", content_range)
        if match:
            return int(match.group(1))
    length = response.headers.get("Content-Length")
    return None if length is None else int(length) + offset


def download_file(
    url: str,
    destination: str | Path,
    md5: str | None = None,
    progress: bool = True,
    chunk: int = 1 << 20,
    timeout: float = 60.0,
    opener: Opener = urllib.request.urlopen,
) -> Path:
    """Download ``url`` to ``destination`` (resumable, verified); returns ``destination``.

    An existing ``destination`` is kept as it is (checked against ``md5`` when given).

    Raises
    ------
    DataIntegrityError
        The size or MD5 of the finished file does not match (the ``.part`` file is removed so
        the next call starts afresh).
    """
    from tqdm.auto import tqdm

    destination = Path(destination)
    if destination.is_file():
        if md5 is not None and md5_file(destination) != md5:
            raise DataIntegrityError(
                f"{destination}: MD5 differs from the published {md5}; delete it and download again"
            )
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    with opener(request, timeout=timeout) as response:
        status = getattr(response, "status", 200)
        if offset and status != 206:  # the server ignored Range: start again
            offset = 0
        total = _total_size(response, offset)
        with (
            open(part, "ab" if offset else "wb") as handle,
            tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=destination.name, disable=not progress
            ) as bar,
        ):
            while block := response.read(chunk):
                handle.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size != total:
        part.unlink()
        raise DataIntegrityError(
            f"{destination}: downloaded {size} bytes, the server announced "
            f"{total}; the .part file was removed, download again"
        )
    if md5 is not None and (found := md5_file(part)) != md5:
        part.unlink()
        raise DataIntegrityError(
            f"{destination}: MD5 {found} differs from the published {md5}; the .part file was removed, download again"
        )
    part.replace(destination)
    return destination


def download_sen12mscr(
    destination: str | Path,
    seasons: Sequence[str] = SEASONS,
    land_cover: bool = True,
    progress: bool = True,
    opener: Opener = urllib.request.urlopen,
) -> list[Path]:
    """Download the official SEN12MS-CR archives (+ SEN12MS land cover) into ``destination``.

    Then run notebook 00 with ``SOURCE="sen12mscr"`` and ``DATA_ROOT=destination`` (or
    :func:`tdpcr_lib.datasets.sen12mscr.acquire.prepare_sen12mscr`) to extract and index them.
    """
    return [
        download_file(a.url, Path(destination) / a.name, md5=a.md5, progress=progress, opener=opener)
        for a in official_archives(tuple(seasons), land_cover=land_cover)
    ]
