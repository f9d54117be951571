"""Claims against budget: where each run's validation curve stood at a fraction of its budget.

Every run validates on the same validation tiles after every epoch and records, per phase, the
curves of the claim metrics (``phases[k]["curves"][metric] = [[step, value], ...]``) and the
phase's step budget (``budget_steps``). The value of a run at *budget fraction* ``f`` is read
from those curves:

* the budget of a claim metric is the steps of the phases that validate it: PSNR is validated in
  both phases of a two-phase run (phase 2 keeps the reconstruction loss), mIoU only once a
  segmentation head trains (phase 2 of a two-phase run; the whole of a joint or multi-task run);
* position ``f × budget`` falls in one phase; the value is that phase's last validation at or
  before the position. A phase that stopped early on its plateau keeps its last value for the
  rest of its budget (the run stayed where it was).

Paired over seeds (:func:`tdpcr_lib.evaluation.ablations.stats.claims`), these give each claim's
Δ and t interval at 25/50/75/100 % of the budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tdpcr_lib.models.checkpoint import read_meta

#: Budget fractions of ``by_budget`` (the issue's 25/50/75/100 %).
FRACTIONS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)

#: A settled claim keeps its direction at these fractions.
SETTLE_FRACTIONS: tuple[float, ...] = (0.5, 0.75, 1.0)

#: A side with fewer optimiser steps than this fraction of the reference's is untrained.
MIN_STEP_FRACTION = 0.1


def phase_curve(phase: Mapping[str, Any], metric: str) -> list[tuple[float, float]]:
    """``[(step, value)]`` of ``metric`` in one phase record (older records: its ``curve``)."""
    curves = phase.get("curves") or {}
    if metric in curves:
        rows = curves[metric]
    elif phase.get("metric") == metric:
        rows = [(p["step"], p["value"]) for p in phase.get("curve", [])]
    else:
        rows = []
    return [(float(s), float(v)) for s, v in rows if v is not None and math.isfinite(float(v))]


def value_at_fraction(run: Mapping[str, Any], metric: str, fraction: float) -> float | None:
    """The run's validation ``metric`` at ``fraction`` of its budget (``None``: not measured)."""
    spans = [(phase, phase_curve(phase, metric)) for phase in run.get("phases") or []]
    spans = [(phase, points) for phase, points in spans if points]
    if not spans:
        return None
    budgets = [float(phase.get("budget_steps") or phase.get("steps") or 0) for phase, _ in spans]
    target = fraction * sum(budgets)
    offset = 0.0
    for (_, points), budget in zip(spans, budgets, strict=True):
        if target <= offset + budget + 1e-9:
            before = [value for step, value in points if step <= target - offset + 1e-9]
            return before[-1] if before else None
        offset += budget
    return spans[-1][1][-1][1]


def seed_values_at(runs: Sequence[Mapping[str, Any]], name: str, metric: str, fraction: float) -> dict[int, float]:
    """``{seed: validation metric at fraction}`` of one model's runs."""
    out = {}
    for run in runs:
        if run["model"] != name:
            continue
        value = value_at_fraction(run, metric, fraction)
        if value is not None:
            out[int(run["seed"])] = value
    return out


def validated(run: Mapping[str, Any]) -> bool:
    """Did the run validate at all (any phase with a validation curve)?"""
    return (
        any(phase.get("curve") or phase.get("curves") for phase in run.get("phases") or [])
        or run.get("plateau") is not None
    )


def comparability(
    reference: Sequence[Mapping[str, Any]],
    other: Sequence[Mapping[str, Any]],
    labels: tuple[str, str] = ("reference", "other"),
) -> str | None:
    """Why two models' runs are *not comparable* (``None``: they are).

    A side is untrained when it made fewer than :data:`MIN_STEP_FRACTION` of the reference's
    optimiser steps (median over seeds), or never validated (no curve: nothing to say where it
    stood on its way).
    """

    def median_steps(runs: Sequence[Mapping[str, Any]]) -> float:
        steps = sorted(float(r.get("steps") or 0) for r in runs)
        return steps[len(steps) // 2] if steps else 0.0

    ref_steps, other_steps = median_steps(reference), median_steps(other)
    for runs, steps, label in ((reference, ref_steps, labels[0]), (other, other_steps, labels[1])):
        if not runs:
            return f"{label} did not run"
        if steps < MIN_STEP_FRACTION * max(ref_steps, other_steps):
            return (
                f"untrained: {label} made {steps:.0f} optimiser step{'' if steps == 1 else 's'} "
                f"(< {MIN_STEP_FRACTION:.0%} of {max(ref_steps, other_steps):.0f})"
            )
        if not any(validated(r) for r in runs):
            return f"{label} was never validated"
    return None


def untrained_checkpoints(
    checkpoints: Mapping[str, str | Path], min_fraction: float = MIN_STEP_FRACTION
) -> dict[str, int]:
    """Display name → optimiser steps of the checkpoints that are *untrained* beside the others:
    fewer than ``min_fraction`` of the most-trained checkpoint's steps (each checkpoint's own
    phase, from its ``config.json``). E.g. DSen2-CR after its 1 equal-FLOPs step on a CPU."""
    steps = {name: int(read_meta(path).get("step") or 0) for name, path in checkpoints.items()}
    most = max(steps.values(), default=0)
    return {name: n for name, n in steps.items() if n < min_fraction * most}
