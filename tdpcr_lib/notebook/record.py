"""Per-notebook metrics records: ``reports/metrics/<notebook>.json``."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from tdpcr_lib.core.io import atomic_write_json
from tdpcr_lib.core.paths import METRICS_DIR
from tdpcr_lib.core.runtime import device_description, git_sha, resolve_device


class RunRecord:
    """Collects what a notebook run must record and writes it atomically at the end.

    Examples
    --------
    >>> record = RunRecord("00_get_data", parameters={"SEED": 0}, seed=0, device="cpu")
    >>> record.write({"n_tiles": 10})  # doctest: +SKIP
    """

    def __init__(self, notebook: str, parameters: dict[str, Any], seed: int,
                 device: str = "auto", metrics_dir: str | Path | None = None) -> None:
        self.notebook = notebook
        self.parameters = dict(parameters)
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.metrics_dir = Path(metrics_dir) if metrics_dir else METRICS_DIR
        self.started = time.time()

    @property
    def path(self) -> Path:
        return self.metrics_dir / f"{self.notebook}.json"

    def write(self, metrics: dict[str, Any], **extra: Any) -> Path:
        """Write metrics plus provenance (parameters, git SHA, seed, device, wall time)."""
        record = {
            "notebook": self.notebook,
            "metrics": metrics,
            "parameters": self.parameters,
            "git_sha": git_sha(),
            "seed": self.seed,
            "device": device_description(self.device),
            "python": platform.python_version(),
            "wall_time_s": round(time.time() - self.started, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **extra,
        }
        return atomic_write_json(self.path, record)


def read_metrics(notebook: str, metrics_dir: str | Path | None = None) -> dict[str, Any]:
    """Read a notebook's metrics record back (used by tests and later notebooks)."""
    path = Path(metrics_dir or METRICS_DIR) / f"{notebook}.json"
    return json.loads(path.read_text())
