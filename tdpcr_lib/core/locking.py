"""Advisory locks: one writer per output folder (``flock``, released by the kernel on exit).

Two ``tdpcr train`` processes writing checkpoints into the same ``--out`` would interleave their
``last``/``best`` folders and history. :func:`exclusive` takes a non-blocking exclusive ``flock``
on ``<folder>/.tdpcr.lock``; a second process stops at once with :class:`FolderLockedError`
(exit code 2) naming the folder. A killed process holds no lock (the kernel drops it), so there
is never a stale lock to remove by hand; the lock file itself is empty and harmless.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".tdpcr.lock"


class FolderLockedError(FileExistsError):
    """Another tdpcr process is writing into the folder."""


@contextlib.contextmanager
def exclusive(folder: str | Path, what: str = "training") -> Iterator[Path]:
    """Hold ``<folder>/.tdpcr.lock`` for the block (the folder is created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderLockedError(
                errno.EEXIST,
                f"another {what} is writing into this folder "
                f"(it holds {LOCK_NAME}); wait for it to finish or choose "
                "another --out",
                str(folder),
            ) from None
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
