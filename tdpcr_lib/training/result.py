"""What a training run hands back (:class:`TrainResult`) and the callback types it accepts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    out_dir: Path
    best_dir: Path | None
    last_dir: Path
    best_metric: str
    best_value: float | None
    best_epoch: int | None
    history: list[dict[str, Any]]
    parameters: dict[str, Any]
    steps: int
    wall_time_s: float
    final_metrics: pd.DataFrame | None = None  # the last validation's result frame

    def history_frame(self):
        """The per-epoch log as a pandas DataFrame."""
        return pd.DataFrame(self.history)

    def compact_history(self):
        """The per-epoch log in a few columns with units and rounding (what a notebook shows;
        :meth:`history_frame` has every column)."""
        columns = {
            "step": ("step", 1, 0),
            "train_loss": ("training loss", 1, 4),
            "val_psnr": ("val PSNR (dB)", 1, 2),
            "val_psnr_cloudy": ("val PSNR cloudy (dB)", 1, 2),
            "val_miou": ("val mIoU (%)", 100, 1),
            "val_oa": ("val OA (%)", 100, 1),
        }
        frame = self.history_frame()
        out = pd.DataFrame(index=frame.get("epoch", pd.Series(range(1, len(frame) + 1))))
        out.index.name = "epoch"
        for key, (label, scale, digits) in columns.items():
            if key in frame:
                out[label] = (frame[key].to_numpy(dtype=float) * scale).round(digits)
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able summary for metrics records."""
        return {
            "best_metric": self.best_metric,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "steps": self.steps,
            "epochs_run": len(self.history),
            "wall_time_s": round(self.wall_time_s, 2),
            "parameters": self.parameters,
            "best_dir": str(self.best_dir) if self.best_dir else None,
            "last_dir": str(self.last_dir),
        }


#: Called as ``callback(trainer, step)`` after every optimizer step.
StepCallback = Callable[[Any, int], None]
#: Called with the run folder each time the logs are rewritten (e.g. to redraw a loss curve).
LogCallback = Callable[[Path], None]
#: Called as ``stop_rule(trainer)`` after each validation and on resume; ``True`` ends the run
#: (:class:`tdpcr_lib.training.plateau.PlateauStop`).
StopRule = Callable[[Any], bool]
