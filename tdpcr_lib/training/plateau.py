"""Has a run reached its plateau? A noise-aware rule, and plateau-based stopping.

**The rule** (``docs/verdicts.md`` § Plateau rule). A phase is *on its plateau* when the gain of a
straight line fitted (least squares) to its last validations, extrapolated over the last
``window`` fraction (20 %) of its steps, is within ``max(tolerance, 2σ)``:

* the window is 20 % of the phase's step budget (of its steps when no budget is given), ending at
  its last validation; the fit uses the validations in it, extended back to at least
  ``min_points`` (5) validations; with fewer than 5 validations in the whole curve no
  plateau is ever declared (two or three points cannot tell noise from progress);
* σ is the noise of one validation value, estimated from the curve itself: the scatter of its
  second differences over the last half of the run (at least its last 5 values). For a smooth
  curve the second difference
  ``y[i-1] − 2 y[i] + y[i+1]`` is close to zero and, for independent noise of standard deviation
  σ, has variance 6σ², so ``σ = sqrt(mean(d²) / 6)``. A linear trend cancels exactly, so a
  steadily rising curve is not mistaken for noise. It needs no extra evaluation;
* ``tolerance`` is 0.1 dB for PSNR and 1 point (0.01) for mIoU and the other fractions.

The noise estimate, the fitted gain and the threshold are returned with the decision so every
run records them. :class:`PlateauStop` (early stopping) and every report call
:func:`plateau_status`, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Tolerance of each metric family: 0.1 dB for PSNR, 1 point for fractions (mIoU, OA, SSIM).
TOLERANCES: dict[str, float] = {"psnr": 0.1, "miou": 0.01, "oa": 0.01, "ssim": 0.01}

#: Fewest validations a plateau is ever judged on (the issue's "at least five, never two").
MIN_POINTS = 5


@dataclass(frozen=True)
class PlateauRule:
    """When a validation curve counts as flat.

    Attributes
    ----------
    metric
        A validation column name (``"psnr"``, ``"miou"``, ``"psnr_cloudy"``, ...): the run's
        checkpoint-selection metric (:func:`rule_for`).
    tolerance
        Smallest threshold on the fitted gain, in the metric's unit (dB for PSNR; a fraction for
        mIoU, e.g. 0.01 = 1 point); the threshold is ``max(tolerance, noise_factor · σ)``.
    window
        Fraction of the run's steps at its end over which the gain is measured.
    min_fraction
        :class:`PlateauStop` never stops before this fraction of the step budget.
    min_points
        Validations the fit uses at least (and that the curve must have); at least 5.
    noise_factor
        Multiple of the noise σ a gain must exceed to count as progress (2).
    """

    metric: str = "psnr"
    tolerance: float = 0.1
    window: float = 0.2
    min_fraction: float = 0.5
    min_points: int = MIN_POINTS
    noise_factor: float = 2.0

    def __post_init__(self) -> None:
        if not self.tolerance > 0:
            raise ValueError(f"PlateauRule.tolerance must be > 0, got {self.tolerance!r}")
        if not 0 < self.window < 1:
            raise ValueError(f"PlateauRule.window must be in (0, 1), got {self.window!r}")
        if not 0 <= self.min_fraction <= 1:
            raise ValueError(f"PlateauRule.min_fraction must be in [0, 1], got {self.min_fraction!r}")
        if self.min_points < MIN_POINTS:
            raise ValueError(
                f"PlateauRule.min_points must be >= {MIN_POINTS} (a plateau is "
                f"never judged on fewer validations), got {self.min_points!r}"
            )
        if self.noise_factor < 0:
            raise ValueError(f"PlateauRule.noise_factor must be >= 0, got {self.noise_factor!r}")

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
    """The protocol's rule for a selection metric: PSNR gain within max(0.1 dB, 2σ), mIoU (and
    other fractions) within max(1 point, 2σ), over the last 20 % of the steps."""
    family = metric.split("_")[0]
    return PlateauRule(metric=metric, tolerance=TOLERANCES.get(family, 0.1))


def noise_sd(values: Sequence[float]) -> float | None:
    """σ of one validation value from the second differences of the curve (``None``: < 3 values).

    ``sqrt(mean(d²) / 6)`` with ``d = y[i-1] − 2 y[i] + y[i+1]``: unbiased for independent noise
    around a locally linear curve; curvature only makes it larger (a more cautious threshold).
    """
    y = np.asarray(values, dtype=float)
    if y.size < 3:
        return None
    second = y[:-2] - 2 * y[1:-1] + y[2:]
    return float(math.sqrt(float(np.mean(second**2)) / 6.0))


def fitted_gain(points: Sequence[tuple[int, float]], span: float) -> float:
    """Least-squares slope of ``points`` × ``span`` steps (the line's gain over the window)."""
    steps = np.array([s for s, _ in points], dtype=float)
    values = np.array([v for _, v in points], dtype=float)
    slope = np.polyfit(steps - steps.mean(), values, 1)[0]
    return float(slope * span)


def plateau_status(
    points: Sequence[tuple[int, float]], rule: PlateauRule = PlateauRule(), budget_steps: int | None = None
) -> dict[str, Any]:
    """Whether the curve ``[(step, value)]`` ends on a plateau under ``rule``.

    ``budget_steps``: the phase's step budget. The gain is measured over ``rule.window`` of
    ``max(last step, budget_steps)``, so a phase judged at half its budget (early stopping) must
    be flat over 20 % of its *budget*, not over 20 % of the few steps it has made — the same
    judgement whether it is made during training or in a report afterwards.

    Returns ``{"reached", "gain", "noise_sd", "threshold", "window_start", "step", "n_points",
    "n_fit", "rule"}``: ``gain`` is the fitted gain over the last ``rule.window`` of the steps,
    ``noise_sd`` the σ of one validation (over the last half of the curve), ``threshold``
    ``max(tolerance, noise_factor · σ)``; ``gain``/``threshold`` are ``None`` (and ``reached``
    ``False``) with fewer than ``rule.min_points`` validations.
    """
    points = sorted(points)
    out: dict[str, Any] = {
        "reached": False,
        "gain": None,
        "noise_sd": None,
        "threshold": None,
        "window_start": None,
        "step": points[-1][0] if points else 0,
        "n_points": len(points),
        "n_fit": 0,
        "rule": rule.to_dict(),
    }
    if len(points) < rule.min_points:
        return out
    last_step = points[-1][0]
    span = rule.window * max(last_step, int(budget_steps or 0))
    start = last_step - span
    inside = [k for k, (step, _) in enumerate(points) if step >= start]
    first = min(inside[0], len(points) - rule.min_points)  # at least min_points in the fit
    fit = points[first:]
    # σ from the last half of the curve, but from >= min_points values (>= 3 second differences):
    # from two differences one lucky jump could pass a still-rising curve as noise
    half = [v for s, v in points if s >= last_step / 2]
    if len(half) < rule.min_points:
        half = [v for _, v in points[-rule.min_points :]]
    sigma = noise_sd(half) or 0.0
    threshold = max(rule.tolerance, rule.noise_factor * sigma)
    gain = fitted_gain(fit, span)
    out.update(
        gain=gain,
        noise_sd=sigma,
        threshold=threshold,
        window_start=int(fit[0][0]),
        n_fit=len(fit),
        reached=bool(gain <= threshold),
    )
    return out


def describe(status: Mapping[str, Any] | None, scale: float = 1.0, unit: str = "") -> str:
    """One phrase for logs and tables: ``"plateau (gain +0.04 ≤ 0.10 dB)"``,
    ``"NO plateau (gain +0.82 > 0.12 dB)"``, ``"not judged (3 < 5 validations)"``."""
    if not status:
        return "not validated"
    if status.get("gain") is None:
        need = (status.get("rule") or {}).get("min_points", MIN_POINTS)
        return f"not judged ({status.get('n_points', 0)} < {need} validations)"
    word = "plateau" if status["reached"] else "NO plateau"
    sign = "≤" if status["reached"] else ">"
    unit = f" {unit}" if unit else ""
    return (
        f"{word} (gain {status['gain'] * scale:+.2f} {sign} "
        f"{status['threshold'] * scale:.2f}{unit}, σ {status['noise_sd'] * scale:.2f})"
    )


def describe_metric(status: Mapping[str, Any] | None) -> str:
    """:func:`describe` in the metric's reporting unit (dB for PSNR, points for fractions)."""
    metric = ((status or {}).get("rule") or {}).get("metric", "psnr")
    if metric.startswith("psnr"):
        return describe(status, 1.0, "dB")
    return describe(status, 100.0, "points")


def phase_plateau(result: Any, budget_steps: int | None = None) -> dict[str, Any] | None:
    """The plateau judgement of a finished phase (a ``TrainResult``) with step budget
    ``budget_steps``: :func:`plateau_status` of its checkpoint-selection metric's validation
    curve; ``None`` when it was never validated."""
    points = curve(result.history, result.best_metric)
    return plateau_status(points, rule_for(result.best_metric), budget_steps) if points else None


class PlateauStop:
    """The trainer's stopping hook: stop after a validation once the run is on its plateau.

    Called as ``stop_rule(trainer)`` after each validation (and once when a run resumes, so a
    finished run is not trained further); returns ``True`` to end the run at this step. The
    learning-rate schedule is the budget's (cosine over ``total_steps``), so stopping early
    leaves it unfinished; the stop is recorded in :attr:`stopped_at` and the judgement in
    :attr:`status`. The judgement is :func:`plateau_status`, the one every report uses.

    ``rule=None`` uses :func:`rule_for` of the trainer's checkpoint-selection metric
    (``trainer.best_metric``: PSNR for reconstruction, mIoU once a segmentation head trains).
    """

    def __init__(self, rule: PlateauRule | None = None) -> None:
        self.rule = rule
        self.stopped_at: int | None = None
        self.status: dict[str, Any] | None = None
        self.reason = ""  # why it stopped, in words (the trainer logs it)

    def __call__(self, trainer: Any) -> bool:
        rule = self.rule or rule_for(trainer.best_metric)
        if trainer.step < rule.min_fraction * trainer.total_steps:
            return False
        self.status = plateau_status(curve(trainer.history, rule.metric), rule, trainer.total_steps)
        if self.status["reached"]:
            self.stopped_at = int(trainer.step)
            self.reason = f"validation {rule.metric}: {describe_metric(self.status)}"
            return True
        return False
