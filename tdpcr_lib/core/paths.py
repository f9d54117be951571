"""Where tdpcr reads and writes by default: data, runs, reports, notebooks.

Every default folder lives under one *home* folder, chosen once, when this module is imported:

1. ``TDPCR_HOME`` if set: data, runs and reports go under it;
2. else ``TDPCR_REPO_ROOT`` if set (kept for notebooks run from a copy of the repository);
3. else the checkout this package was imported from, when it is one (``tdpcr_lib/`` sits beside
   ``pyproject.toml``, as with ``pip install -e .`` or ``PYTHONPATH=.``): ``make reproduce`` and the
   notebooks write ``data/``, ``runs/`` and ``reports/`` inside the repository, as always;
4. else (installed from a wheel, ``pip install .``) the current working directory.

=================  ====================================  ===========================================
name               folder                                what goes there
=================  ====================================  ===========================================
``HOME``           see above                             everything below
``DATA_DIR``       ``HOME/data``                         generated data (twin, scenes, predictions)
``RUNS_DIR``       ``HOME/runs``                         training runs and checkpoints
``REPORTS_DIR``    ``HOME/reports``                      ``metrics/``, ``figures/``, tables
``MANIFEST_DIR``   ``HOME/data_manifests``               the repository's split-protocol notes
``NOTEBOOKS_DIR``  ``HOME/notebooks``                    the numbered notebooks (a checkout only)
=================  ====================================  ===========================================

A wheel ships no notebooks: ``tdpcr reproduce --notebooks DIR`` points at a folder holding them.
``REPO_ROOT`` is the checkout (``None`` when installed from a wheel); ``IN_CHECKOUT`` says which.
"""

from __future__ import annotations

import os
from pathlib import Path


def _checkout_root() -> Path | None:
    """The repository this package was imported from, or ``None`` for an installed wheel."""
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "pyproject.toml").is_file() and (candidate / "tdpcr_lib").is_dir():
        return candidate
    return None


def _home() -> Path:
    for variable in ("TDPCR_HOME", "TDPCR_REPO_ROOT"):
        value = os.environ.get(variable)
        if value:
            return Path(value).expanduser().resolve()
    return _checkout_root() or Path.cwd()


#: The checkout (``TDPCR_REPO_ROOT`` if set), or ``None`` when installed from a wheel.
REPO_ROOT: Path | None = (
    Path(os.environ["TDPCR_REPO_ROOT"]).expanduser().resolve()
    if os.environ.get("TDPCR_REPO_ROOT")
    else _checkout_root()
)


#: True when running from a checkout (editable install or ``PYTHONPATH``), False from a wheel.
IN_CHECKOUT: bool = REPO_ROOT is not None


#: The folder every default below lives in (see the module docstring).
HOME: Path = _home()


MANIFEST_DIR = HOME / "data_manifests"


REPORTS_DIR = HOME / "reports"


METRICS_DIR = REPORTS_DIR / "metrics"


FIGURES_DIR = REPORTS_DIR / "figures"


#: The numbered notebooks; only a checkout has them (``tdpcr reproduce --notebooks DIR``).
NOTEBOOKS_DIR = (REPO_ROOT or HOME) / "notebooks"


#: Default location of generated data (git-ignored in a checkout).
DATA_DIR = HOME / "data"


#: Default synthetic twin written by ``00_get_data`` and read by the later notebooks.
DEFAULT_SYNTHETIC_ROOT = DATA_DIR / "synthetic_luojiaset"


#: Default folder for training runs and checkpoints (git-ignored in a checkout).
RUNS_DIR = HOME / "runs"


#: Sub-folder of ``REPORTS_DIR`` that smoke runs write to, so they never overwrite the default run's.
SMOKE_REPORTS = "smoke"
