"""The run folder's housekeeping: repairing it after a crash and clearing it for a fresh start.

Nothing here trains. A run folder holds tdpcr's own files (:data:`RUN_FILES`: ``last/``,
``best/``, the logs and the loss curve) and possibly the user's; only tdpcr's own files and the
leftovers of its interrupted writes are ever removed. One training per folder is enforced by
``tdpcr train`` with :func:`tdpcr_lib.core.locking.exclusive` (``.tdpcr.lock``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tdpcr_lib.models.checkpoint_files import recover_checkpoint, staging_dirs

#: What a run writes into its folder (all of it is replaced by a fresh start).
RUN_FILES = ("last", "best", ".last.old", ".best.old", "history.json", "history.csv", "steps.csv", "loss_curve.png")


def clear_run(out_dir: str | Path) -> None:
    """Remove a previous run's checkpoints and logs from ``out_dir`` (only tdpcr's own files).

    Also removes what interrupted saves left: checkpoint staging folders (``.last.tmp-*``,
    ``.best.tmp-*``) and the hidden temporaries of atomic log writes (``.history.json.*.tmp``).
    Any other file in ``out_dir`` stays.
    """
    out_dir = Path(out_dir)
    for name in RUN_FILES:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in _leftovers(out_dir):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _leftovers(out_dir: Path) -> list[Path]:
    """Staging folders and atomic-write temporaries of this run's own files."""
    found = [*staging_dirs(out_dir / "last"), *staging_dirs(out_dir / "best")]
    if out_dir.is_dir():
        for name in RUN_FILES:
            # core.io.atomic_path names its temporaries ".<name>.<random><suffix>"
            found += [p for p in out_dir.glob(f".{name}.*") if p.is_file() and p.name.endswith((".tmp", ".png"))]
    return found


def recover_run(out_dir: str | Path) -> list[str]:
    """Bring ``out_dir`` back to a consistent state after a crash; returns what was done.

    For ``last/`` and ``best/``: a complete, verified staging folder left in the swap window is
    promoted, incomplete staging folders are removed
    (:func:`tdpcr_lib.models.checkpoint_files.recover_checkpoint`); hidden temporaries of the
    logs are removed. Nothing the run did not write is touched.
    """
    out_dir = Path(out_dir)
    actions = [*recover_checkpoint(out_dir / "last"), *recover_checkpoint(out_dir / "best")]
    for path in _leftovers(out_dir):
        if path.is_file():
            path.unlink(missing_ok=True)
            actions.append(f"removed the temporary {path.name}")
    return actions
