"""The run folder's logs (``history.json``, ``history.csv``, ``steps.csv``) and the one line
a validation prints."""

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


#: Headline columns of a validation line: (history key, label, scale, unit, decimals).
_LINE_FIELDS: tuple[tuple[str, str, float, str, int], ...] = (
    ("val_psnr", "PSNR", 1.0, " dB", 2),
    ("val_psnr_cloudy", "cloudy", 1.0, " dB", 2),
    ("val_ssim", "SSIM", 1.0, "", 3),
    ("val_miou", "mIoU", 100.0, " %", 1),
    ("val_oa", "OA", 100.0, " %", 1),
)


def validation_line(phase: str, row: dict[str, Any], total_steps: int, best: bool) -> str:
    """One concise line per validation, e.g.
    ``phase2 step 150/300 · loss 0.412 · val PSNR 24.31 dB, mIoU 38.2 % (best)``."""
    losses = [f"loss {row[k]:.4g}" for k in ("train_loss",) if isinstance(row.get(k), float)]
    shown = [
        f"{label} {row[key] * scale:.{digits}f}{unit}"
        for key, label, scale, unit, digits in _LINE_FIELDS
        if isinstance(row.get(key), int | float)
    ]
    parts = [f"{phase} step {row.get('step')}/{total_steps}", *losses]
    if shown:
        parts.append("val " + ", ".join(shown) + (" (best)" if best else ""))
    return " · ".join(parts)
