"""What notebooks 01 and 02 record about a training run."""

from __future__ import annotations

from typing import Any

from tdpcr_lib.metrics.results import VAL_PREFIX, from_records, headline
from tdpcr_lib.models.checkpoint import read_meta
from tdpcr_lib.training.result import TrainResult


def run_summary(result: TrainResult) -> dict[str, Any]:
    """Run facts (:meth:`TrainResult.summary`), the per-epoch history and the best checkpoint's
    headline validation metrics (``{}`` when the run kept no best checkpoint or never validated).
    """
    summary = result.summary()
    best_metrics: Any = None
    if result.best_dir is not None:
        best_metrics = read_meta(result.best_dir).get("metrics")
    # a checkpoint stores its validation result frame as rows (older ones: a nested dict)
    summary["validation"] = (
        headline(from_records(best_metrics), prefix=VAL_PREFIX)
        if isinstance(best_metrics, list) and best_metrics
        else {}
    )
    summary["history"] = result.history
    return summary
