"""The one rule for replacing files: nothing the user wrote is overwritten without a flag.

Every command that writes into a place the user names (``tdpcr data manifest --out``,
``tdpcr evaluate --out``, ``tdpcr report verdicts --out``) calls :func:`refuse_existing` with its
outputs *before any work*. An existing output is replaced only when ``overwrite`` is set
(``--overwrite``) or when ``replaceable(path)`` says tdpcr itself wrote it and nobody changed it
since (each caller knows how to recognise its own files). Otherwise the command stops with
:class:`OutputExistsError` (a :class:`FileExistsError`: exit code 2, "an existing output that
needs --overwrite") naming the file, and nothing is changed. Writes themselves stay atomic
(:mod:`tdpcr_lib.core.io`); a symlinked output is written through to its target.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from pathlib import Path


class OutputExistsError(FileExistsError):
    """An output exists and may not be replaced without ``--overwrite``; nothing was changed."""


def refuse_existing(
    paths: Iterable[str | Path],
    overwrite: bool,
    flag: str = "--overwrite",
    replaceable: Callable[[Path], bool] | None = None,
    what: str = "output",
) -> None:
    """Raise :class:`OutputExistsError` for the first existing path that may not be replaced.

    Parameters
    ----------
    paths
        The files the command is about to write or delete.
    overwrite
        The user's explicit permission (``--overwrite``).
    replaceable
        True for a file tdpcr wrote and that is unchanged (replaced without the flag).
    """
    if overwrite:
        return
    for path in map(Path, paths):
        if not (path.exists() or path.is_symlink()):
            continue
        if replaceable is not None and path.is_file() and replaceable(path):
            continue
        raise OutputExistsError(
            errno.EEXIST,
            f"exists and would be replaced by this {what}; "
            f"nothing was changed. Pass {flag} to replace it, or choose "
            "another location",
            str(path),
        )


def write_target(path: str | Path) -> Path:
    """Where to write ``path`` atomically: the target of a symlink (so the link is kept)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path
