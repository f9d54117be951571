"""Well-known locations inside a tdpcr checkout.

tdpcr is installed editable (``pip install -e .``), so the repository root is the parent of this
package. ``TDPCR_REPO_ROOT`` overrides it (e.g. when the notebooks run from a copy).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("TDPCR_REPO_ROOT", Path(__file__).resolve().parents[2]))


MANIFEST_DIR = REPO_ROOT / "data_manifests"


REPORTS_DIR = REPO_ROOT / "reports"


METRICS_DIR = REPORTS_DIR / "metrics"


FIGURES_DIR = REPORTS_DIR / "figures"


NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


#: Default location of generated data (git-ignored).
DATA_DIR = REPO_ROOT / "data"


#: Default synthetic twin written by ``00_get_data`` and read by the later notebooks.
DEFAULT_SYNTHETIC_ROOT = DATA_DIR / "synthetic_luojiaset"


#: Default folder for training runs and checkpoints (git-ignored).
RUNS_DIR = REPO_ROOT / "runs"
