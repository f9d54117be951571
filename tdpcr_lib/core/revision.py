"""The checkout's git revision, apart from the runtime helpers (which import torch), so that
``tdpcr reproduce`` and the HTML report can name it without loading torch."""

from __future__ import annotations

import subprocess

from tdpcr_lib.core.paths import REPO_ROOT


def git_sha(short: bool = False) -> str:
    """The checkout's commit (``"unknown"`` outside git); ``+dirty`` when there are changes."""
    if REPO_ROOT is None:  # installed from a wheel: no checkout (never report the cwd's repository)
        return "unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        # `cat` instead of the notebooks' nbstripout clean filter: the filter starts a Python
        # process per notebook whose timestamps changed (12-18 s on 2 cores, past the timeout).
        # Unfiltered, a notebook counts as changed when its file differs from the commit.
        dirty = subprocess.run(
            ["git", "-c", "filter.nbstripout.clean=cat", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = sha[:10] if short else sha
    return sha + ("+dirty" if dirty.strip() else "")
