"""Has a run reached its plateau? Detection from the validation history, and plateau-based stopping.

A run is *at its plateau* when its validation metric moved less than ``tolerance`` over the last
``window`` fraction of its optimizer steps: the range (max − min) of the validation values whose
step lies in ``[step_end − window·step_end, step_end]`` — together with the last value before that
window, so that a window holding a single validation still measures a change — is below the
tolerance. The default rule is the one of the ablation protocol: validation PSNR moved < 0.1 dB
over the last 20 % of the steps (see ``docs/decisions.md`` § Ablation protocol).

:class:`PlateauStop` is the trainer's stopping hook (``Trainer(stop_rule=...)``): after each
validation it stops the run once the plateau is reached and at least ``min_fraction`` of the
step budget is spent; a run that never plateaus trains its whole budget and is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: Tolerance of each metric family: 0.1 dB for PSNR, 1 point for fractions (mIoU, OA, SSIM).
TOLERANCES: dict[str, float] = {"psnr": 0.1, "miou": 0.01, "oa": 0.01, "ssim": 0.01}


@dataclass(frozen=True)
class PlateauRule:
    """When a validation curve counts as flat.

    Attributes
    ----------
    metric
        A validation column name (``"psnr"``, ``"miou"``, ``"psnr_cloudy"``, ...): the run's
        checkpoint-selection metric (:func:`rule_for`).
    tolerance
        Largest change over the window that still counts as flat, in the metric's unit
        (dB for PSNR; a fraction for mIoU, e.g. 0.01 = 1 point).
    window
        Fraction of the run's steps at its end over which the change is measured.
    min_fraction
        :class:`PlateauStop` never stops before this fraction of the step budget.
    min_points
        Validations needed inside the run before a plateau can be declared.
    """

    metric: str = "psnr"
    tolerance: float = 0.1
    window: float = 0.2
    min_fraction: float = 0.5
    min_points: int = 3

    def __post_init__(self) -> None:
        if not self.tolerance > 0:
            raise ValueError(f"PlateauRule.tolerance must be > 0, got {self.tolerance!r}")
        if not 0 < self.window < 1:
            raise ValueError(f"PlateauRule.window must be in (0, 1), got {self.window!r}")
        if not 0 <= self.min_fraction <= 1:
            raise ValueError(f"PlateauRule.min_fraction must be in [0, 1], got {self.min_fraction!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def curve(history: Sequence[Mapping[str, Any]], metric: str) -> list[tuple[int, float]]:
    """``[(step, value)]`` of the finite validation values of ``metric`` in a run's history."""
    key = f"val_{metric}"
    points = []
    for row in history:
        value = row.get(key)
        if value is not None and math.isfinite(float(value)) and row.get("step") is not None:
            points.append((int(row["step"]), float(value)))
    return points


def rule_for(metric: str) -> PlateauRule:
    """The protocol's rule for a selection metric: PSNR within 0.1 dB, mIoU (and other
    fractions) within 1 point, over the last 20 % of the steps."""
    family = metric.split("_")[0]
    return PlateauRule(metric=metric, tolerance=TOLERANCES.get(family, 0.1))


def plateau_status(points: Sequence[tuple[int, float]], rule: PlateauRule = PlateauRule()) -> dict[str, Any]:
    """Whether the curve ``[(step, value)]`` ends on a plateau under ``rule``.

    Returns ``{"reached", "change", "window_start", "step", "n_points", "rule"}``: ``change``
    is the range of the values in the window (plus the last value before it), ``None`` when
    there are fewer than ``rule.min_points`` validations.
    """
    points = sorted(points)
    out: dict[str, Any] = {
        "reached": False,
        "change": None,
        "window_start": None,
        "step": points[-1][0] if points else 0,
        "n_points": len(points),
        "rule": rule.to_dict(),
    }
    if len(points) < rule.min_points:
        return out
    last_step = points[-1][0]
    start = last_step - rule.window * last_step
    inside = [k for k, (step, _) in enumerate(points) if step >= start]
    first = max(inside[0] - 1, 0)  # the anchor: the last validation before the window
    values = [value for _, value in points[first:]]
    change = max(values) - min(values)
    out.update(change=change, window_start=int(math.ceil(start)), reached=bool(change < rule.tolerance))
    return out


class PlateauStop:
    """The trainer's stopping hook: stop after a validation once the run is on its plateau.

    Called as ``stop_rule(trainer)`` after each validation (and once when a run resumes, so a
    finished run is not trained further); returns ``True`` to end the run at this step. The
    learning-rate schedule is the budget's (cosine over ``total_steps``), so stopping early
    leaves it unfinished; the stop is recorded in :attr:`stopped_at`.

    ``rule=None`` uses :func:`rule_for` of the trainer's checkpoint-selection metric
    (``trainer.best_metric``: PSNR for reconstruction, mIoU once a segmentation head trains).
    """

    def __init__(self, rule: PlateauRule | None = None) -> None:
        self.rule = rule
        self.stopped_at: int | None = None

    def __call__(self, trainer: Any) -> bool:
        rule = self.rule or rule_for(trainer.best_metric)
        if trainer.step < rule.min_fraction * trainer.total_steps:
            return False
        if plateau_status(curve(trainer.history, rule.metric), rule)["reached"]:
            self.stopped_at = int(trainer.step)
            return True
        return False
