"""Paths in stored records (checkpoint ``config.json``, run logs) relative to the project.

A checkpoint travels: its ``config.json`` must not name the training machine's directories
(``/home/alice/tdpcr/runs/phase1/best``). Path fields are stored relative to the project folder
(:data:`tdpcr_lib.core.paths.HOME`: ``runs/phase1/best``, ``data/synthetic``), or as ``None``
when they lie outside it. Comparisons between a stored config and a running one (resume) use
the same form on both sides (:func:`portable_fields`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tdpcr_lib.core import paths

#: Fields of a training config / run record that hold paths.
PATH_FIELDS: tuple[str, ...] = ("init_from", "data_root")


def project_path(value: Any, home: str | Path | None = None) -> str | None:
    """``value`` relative to the project folder; ``None`` outside it (or for ``None``).

    A relative path is taken as already relative to the project and kept.
    """
    if value is None:
        return None
    text = str(value)
    if not os.path.isabs(text):
        return Path(text).as_posix()
    base = Path(home) if home is not None else paths.HOME
    try:
        return Path(text).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return None


def resolve_project_path(value: str | Path | None, home: str | Path | None = None) -> Path | None:
    """The inverse of :func:`project_path`: a stored relative path under the project folder."""
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else (Path(home) if home is not None else paths.HOME) / path


def portable_fields(record: Mapping[str, Any], home: str | Path | None = None) -> dict[str, Any]:
    """``record`` with each :data:`PATH_FIELDS` entry made :func:`project_path`."""
    return {k: project_path(v, home) if k in PATH_FIELDS else v for k, v in record.items()}
