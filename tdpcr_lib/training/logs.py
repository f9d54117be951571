"""The run folder's logs: ``history.json``, ``history.csv`` and ``steps.csv``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tdpcr_lib.core.io import atomic_write_json, atomic_write_text
from tdpcr_lib.training.result import LogCallback


def write_run_logs(
    out_dir: Path,
    summary: dict[str, Any],
    history: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    callbacks: Sequence[LogCallback] = (),
) -> None:
    """Rewrite the logs atomically (``summary`` + epochs + steps as JSON, both tables as CSV).

    Then call every ``callback(out_dir)`` (e.g. the loss-curve figure of the CLI).
    """
    atomic_write_json(out_dir / "history.json", {**summary, "epochs": history, "steps": steps})
    for name, rows in (("history.csv", history), ("steps.csv", steps)):
        if rows:
            atomic_write_text(out_dir / name, pd.DataFrame(rows).to_csv(index=False))
    for callback in callbacks:
        callback(out_dir)
