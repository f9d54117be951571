"""Resumable downloads of the open datasets (SEN12MS-CR and SEN12MS land cover) over HTTPS.

A file is downloaded to ``<name>.part`` and renamed only once complete and verified:

* **Size** against the server's (``Content-Length`` / ``Content-Range``). When the server sends
  neither, a ``.tar.gz`` must be a complete gzip stream (a connection cut in the middle is not
  mistaken for the end), and every file must not be an HTML page.
* **MD5** when one is published (SEN12MS land cover).
* **Not an error page**: a reply of type ``text/html`` is refused (servers answer a bad link with
  a page, not an archive).

An interrupted download resumes where it stopped, with ``Range`` *and* ``If-Range`` (the ETag or
Last-Modified of the first reply, kept in ``<name>.part.json``): if the file changed on the server
meanwhile, the server sends it whole and the download restarts. A ``.part`` without that record
(another tool's, or stale) is not trusted and is restarted from zero. A past-the-end ``Range``
(``416`` with ``Content-Range: bytes */N``) is recovered: a ``.part`` of exactly ``N`` bytes is
completed, a longer one restarted. An existing archive is re-checked: its MD5 when published, its
size against the server's otherwise. One download per archive at a time: ``<name>.lock`` (an
``flock``) makes a second process stop with a clear message instead of writing into the same
``.part``. Failures raise :class:`DownloadError` naming the archive and the URL; an empty
``.part`` is removed. Never run by the tests against the internet (they use a local server).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import re
import socket
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tdpcr_lib.datasets.errors import DataIntegrityError, DownloadError
from tdpcr_lib.datasets.sen12mscr.acquire import md5_file
from tdpcr_lib.datasets.sen12mscr.layout import SEASONS, official_archives

Opener = Callable[..., Any]


def _total_size(headers: Any, offset: int) -> int | None:
    content_range = headers.get("Content-Range")
    if content_range:
        match = re.search(r"/(\d+)\s*$", content_range)
        if match:
            return int(match.group(1))
    length = headers.get("Content-Length")
    return None if length is None else int(length) + offset


def _validator(headers: Any) -> str | None:
    return headers.get("ETag") or headers.get("Last-Modified")


@contextlib.contextmanager
def _lock(destination: Path, url: str) -> Iterator[None]:
    """One download per archive: an exclusive, non-blocking ``flock`` on ``<name>.lock``."""
    path = destination.with_name(destination.name + ".lock")
    handle = open(path, "a+")  # noqa: SIM115 (held for the whole download)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(
                f"{destination.name}: another download of {url} into "
                f"{destination.parent} is running (lock {path.name}); wait for "
                "it to finish, or stop it"
            ) from None
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        handle.close()


def _fail(destination: Path, url: str, err: BaseException) -> DownloadError:
    if isinstance(err, urllib.error.HTTPError):
        why = f"the server answered HTTP {err.code} {err.reason}"
    elif isinstance(err, TimeoutError | socket.timeout):
        why = "the server stopped sending (timed out)"
    elif isinstance(err, urllib.error.URLError):
        why = f"cannot connect ({err.reason})"
    else:
        why = " ".join(str(err).split()) or type(err).__name__
    return DownloadError(f"{destination.name}: download from {url} failed: {why}; rerun the same command to resume")


def _check_gzip(path: Path, destination: Path, url: str) -> None:
    """A ``.tar.gz`` whose size the server did not announce must be one complete gzip stream."""
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    except (EOFError, OSError, zlib.error) as err:
        path.unlink(missing_ok=True)
        raise DataIntegrityError(
            f"{destination}: the download from {url} is not a complete "
            f"gzip archive ({err}; the server announced no size, so the "
            "transfer was probably cut); the .part file was removed, "
            "download again"
        ) from None


def _request(url: str, offset: int, validator: str | None, method: str = "GET") -> urllib.request.Request:
    headers = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    return urllib.request.Request(url, headers=headers, method=method)


def _server_size(url: str, timeout: float, opener: Opener) -> int | None:
    try:
        with opener(_request(url, 0, None, "HEAD"), timeout=timeout) as response:
            return _total_size(response.headers, 0)
    except (OSError, ValueError):
        return None  # cannot ask: the existing file is kept as it is


def _check_existing(destination: Path, url: str, md5: str | None, timeout: float, opener: Opener) -> None:
    if md5 is not None:
        if md5_file(destination) != md5:
            raise DataIntegrityError(
                f"{destination}: MD5 differs from the published {md5}; delete it and download again"
            )
        return
    size = _server_size(url, timeout, opener)
    if size is not None and size != destination.stat().st_size:
        raise DataIntegrityError(
            f"{destination}: {destination.stat().st_size} bytes, but {url} "
            f"has {size}; the archive is incomplete or corrupt, delete it "
            "and download again"
        )


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

    An existing ``destination`` is checked (MD5 when given, else size against the server's).

    Raises
    ------
    DataIntegrityError
        The size, MD5 or type of the finished file is wrong (the ``.part`` file is removed so
        the next call starts afresh), or an existing archive fails its check.
    DownloadError
        The transfer failed (HTTP error, no connection, stall, another download running).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with _lock(destination, url):
        if destination.is_file():
            _check_existing(destination, url, md5, timeout, opener)
            return destination
        part = destination.with_name(destination.name + ".part")
        if part.exists() and not part.is_file():
            raise DownloadError(f"{destination.name}: {part} exists and is not a file; remove it and rerun")
        try:
            _transfer(url, destination, part, progress, chunk, timeout, opener)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            if part.is_file() and part.stat().st_size == 0:
                part.unlink()
            raise _fail(destination, url, err) from err
        if md5 is not None and (found := md5_file(part)) != md5:
            part.unlink()
            raise DataIntegrityError(
                f"{destination}: MD5 {found} differs from the published "
                f"{md5}; the .part file was removed, download again"
            )
        part.replace(destination)
        part.with_name(part.name + ".json").unlink(missing_ok=True)
    return destination


def _transfer(
    url: str, destination: Path, part: Path, progress: bool, chunk: int, timeout: float, opener: Opener
) -> None:
    from tqdm.auto import tqdm

    record = part.with_name(part.name + ".json")
    try:
        saved = json.loads(record.read_text()) if record.is_file() else {}
    except (OSError, ValueError):
        saved = {}
    validator = saved.get("validator") if saved.get("url") == url else None
    if part.is_file() and not validator:
        part.unlink()  # bytes of unknown origin: never resumed into
    offset = part.stat().st_size if part.is_file() else 0
    for _attempt in range(2):  # a 416 for a longer .part restarts once from zero
        try:
            response = opener(_request(url, offset, validator), timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not offset:
                raise
            total = _total_size(err.headers, 0)
            if total == offset:
                return  # the .part is already complete
            part.unlink()
            offset, validator = 0, None
            continue
        with response:
            headers = response.headers
            status = getattr(response, "status", 200)
            if "text/html" in (headers.get("Content-Type") or "").lower():
                raise DataIntegrityError(
                    f"{destination}: {url} sent an HTML page, not the archive (a login or error page?); check the URL"
                )
            if offset and status != 206:  # the file changed (If-Range) or no Range support
                offset = 0
            total = _total_size(headers, offset)
            record.write_text(json.dumps({"url": url, "validator": _validator(headers), "total": total}))
            with (
                open(part, "ab" if offset else "wb") as handle,
                tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=destination.name, disable=not progress
                ) as bar,
            ):
                # read1: what has arrived, so a stall keeps the bytes received before it
                read = getattr(response, "read1", response.read)
                while block := read(chunk):
                    handle.write(block)
                    bar.update(len(block))
        break
    size = part.stat().st_size
    if total is not None and size != total:
        part.unlink()
        raise DataIntegrityError(
            f"{destination}: downloaded {size} bytes, the server announced "
            f"{total}; the .part file was removed, download again"
        )
    if total is None and destination.name.endswith((".gz", ".tgz")):
        _check_gzip(part, destination, url)


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
