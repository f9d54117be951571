"""Paired differences over seeds, their 95 % confidence intervals, and the verdicts.

Every comparison is *paired by seed*: seed ``k`` of every variant trains on the same data order
and augmentation stream and starts from the same initialisation seed, and all are scored on the
same test tiles. For each seed present on both sides the difference ``reference − other`` of the
test-set metric is taken; the claim is the mean of those differences with a two-sided Student-t
95 % interval over seeds (``scipy.stats.t``, ``n − 1`` degrees of freedom).

Why a t interval over seeds, not a bootstrap over test tiles × seeds (see ``docs/decisions.md``
§ Ablation statistics): the test tiles are shared by both sides, so most tile-to-tile variation
cancels in a paired difference, and what a reader's rerun would change is the training run (the
seed). With 3 seeds a bootstrap over seeds has only 10 distinct resamples and understates the
spread; the t interval is the exact small-sample interval for normally distributed differences
and is wide when it should be (t₀.₉₇₅ with 2 degrees of freedom is 4.30).

Each claim has a *direction at this budget* and a *status* (``docs/verdicts.md``):

* direction: TDP-CR *ahead* when the whole interval is above zero and |Δ| is at least the
  metric's resolution (0.1 dB, 1 mIoU point: the plateau tolerance), *behind* when the interval
  is below zero likewise, otherwise *within noise* (also with fewer than 2 paired seeds);
* status: ``not comparable`` when a side is untrained (fewer than 10 % of the reference's
  optimiser steps) or never validated (no direction is given); ``settled`` when every run of
  both sides is on its plateau and the direction on the validation tiles is the same at 50, 75
  and 100 % of the budget and on the test tiles; ``budget-dependent`` otherwise.

Only a settled claim is worded as supporting or contradicting the paper's direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from tdpcr_lib.evaluation.ablations import budget
from tdpcr_lib.training.plateau import TOLERANCES

AHEAD, BEHIND, WITHIN_NOISE = "ahead", "behind", "within noise"
DIRECTIONS: tuple[str, ...] = (AHEAD, BEHIND, WITHIN_NOISE)

SETTLED, BUDGET_DEPENDENT, NOT_COMPARABLE = "settled", "budget-dependent", "not comparable"
STATUSES: tuple[str, ...] = (SETTLED, BUDGET_DEPENDENT, NOT_COMPARABLE)

SUPPORTS = "supports the paper's direction (settled)"
CONTRADICTS = "contradicts the paper's direction (settled)"
NOT_COMPARABLE_TEXT = "not comparable at this budget: run `--full`"


@dataclass(frozen=True)
class Comparison:
    """One claim: ``reference`` beats ``other`` on ``metric`` (higher is better).

    ``scale`` converts the metric to its reporting unit (100 for mIoU points); ``equal_compute``
    labels rows where the two sides were trained to the same FLOPs rather than the same samples.
    """

    name: str
    label: str
    reference: str
    other: str
    metric: str
    unit: str
    scale: float = 1.0
    equal_compute: bool = False
    paper: str = ""
    caveat: str = ""


_EQUAL_SAMPLES = (
    "an equal-sample comparison of two schedules at this budget (TDP-CR's phase 2 "
    "sees labels for its phase-2 steps with the encoders frozen, joint training for "
    "all its steps), not a test of the paper's design at convergence"
)

#: The comparisons of notebook 04, in report order.
COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "prompt_psnr",
        "PGF with vs without its prompt: ΔPSNR",
        "tdpcr_full",
        "pgf_no_prompt",
        "psnr",
        "dB",
        paper="the degradation prompt guides fusion",
    ),
    Comparison(
        "prompt_miou",
        "PGF with vs without its prompt: ΔmIoU",
        "tdpcr_full",
        "pgf_no_prompt",
        "miou",
        "points",
        100.0,
        paper="the prompt also helps land cover",
    ),
    Comparison(
        "pgf_vs_concat_psnr",
        "PGF vs concat fusion: ΔPSNR",
        "tdpcr_full",
        "concat_fusion",
        "psnr",
        "dB",
        paper="gated fusion beats plain concatenation",
    ),
    Comparison(
        "sar_psnr_cloudy",
        "SAR + optical vs optical only: ΔPSNR cloudy",
        "tdpcr_full",
        "optical_only",
        "psnr_cloudy",
        "dB",
        paper="SAR fills in what clouds hide",
    ),
    Comparison(
        "two_phase_psnr",
        "two-phase vs single-phase joint: ΔPSNR",
        "tdpcr_full",
        "joint_single_phase",
        "psnr",
        "dB",
        paper="two-phase training",
        caveat=_EQUAL_SAMPLES,
    ),
    Comparison(
        "two_phase_miou",
        "two-phase vs single-phase joint: ΔmIoU",
        "tdpcr_full",
        "joint_single_phase",
        "miou",
        "points",
        100.0,
        paper="two-phase training",
        caveat=_EQUAL_SAMPLES,
    ),
    Comparison(
        "phase2_prompt_pgf_miou",
        "phase 2 prompt + PGF + seg vs seg decoder only: ΔmIoU",
        "tdpcr_full",
        "seg_decoder_only",
        "miou",
        "points",
        100.0,
        paper="phase 2 tunes the prompt and PGF for segmentation",
    ),
    Comparison(
        "delta_psnr_vs_dsen2cr",
        "TDP-CR vs DSen2-CR: ΔPSNR",
        "tdpcr_full",
        "dsen2cr",
        "psnr",
        "dB",
        equal_compute=True,
        paper="+0.18 dB at 15 % of the parameters",
    ),
    Comparison(
        "delta_miou_vs_multitask",
        "TDP-CR vs multi-task U-Net: ΔmIoU",
        "tdpcr_full",
        "multitask",
        "miou",
        "points",
        100.0,
        paper="+1.4 mIoU",
    ),
)


def paired_difference(
    reference: Mapping[int, float], other: Mapping[int, float], confidence: float = 0.95
) -> dict[str, Any]:
    """Mean of ``reference[k] − other[k]`` over the seeds ``k`` both have, with a t interval.

    Non-finite values are dropped. Returns ``delta_mean``, ``ci95_low``, ``ci95_high`` (NaN with
    fewer than 2 pairs), ``sd`` (ddof 1), ``n_seeds`` and ``deltas`` (seed → difference).
    """
    deltas = {
        int(seed): float(reference[seed]) - float(other[seed])
        for seed in sorted(set(reference) & set(other))
        if _finite(reference[seed]) and _finite(other[seed])
    }
    values = np.array(list(deltas.values()), dtype=float)
    n = len(values)
    out: dict[str, Any] = {
        "delta_mean": float(values.mean()) if n else float("nan"),
        "ci95_low": float("nan"),
        "ci95_high": float("nan"),
        "sd": float("nan"),
        "n_seeds": n,
        "deltas": deltas,
    }
    if n >= 2:
        sd = float(values.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * sd / math.sqrt(n)
        out.update(sd=sd, ci95_low=out["delta_mean"] - half, ci95_high=out["delta_mean"] + half)
    return out


def direction(ci_low: float, ci_high: float, delta: float | None = None, resolution: float = 0.0) -> str:
    """:data:`AHEAD` when the interval is above zero, :data:`BEHIND` when below, and
    :data:`WITHIN_NOISE` when it contains zero, is undefined (NaN) or ``|delta|`` is smaller than
    ``resolution`` (a difference the protocol cannot resolve; keeps near-zero claims stable)."""
    if not (_finite(ci_low) and _finite(ci_high)):
        return WITHIN_NOISE
    if delta is not None and _finite(delta) and abs(float(delta)) < resolution:
        return WITHIN_NOISE
    if ci_low > 0:
        return AHEAD
    if ci_high < 0:
        return BEHIND
    return WITHIN_NOISE


def status_of(comparable: bool, on_plateau: bool, directions: Sequence[str | None]) -> str:
    """:data:`NOT_COMPARABLE`, :data:`SETTLED` (both sides on their plateau and one direction
    throughout ``directions``) or :data:`BUDGET_DEPENDENT`."""
    if not comparable:
        return NOT_COMPARABLE
    if on_plateau and directions and None not in directions and len(set(directions)) == 1:
        return SETTLED
    return BUDGET_DEPENDENT


def verdict_text(status: str, direction_word: str | None) -> str:
    """The words a report may use: only a settled claim supports or contradicts the paper."""
    if status == NOT_COMPARABLE or direction_word is None:
        return NOT_COMPARABLE_TEXT
    if status == SETTLED:
        return {AHEAD: SUPPORTS, BEHIND: CONTRADICTS}.get(direction_word, "within noise (settled)")
    if direction_word == WITHIN_NOISE:
        return "within noise at this budget (not settled)"
    return f"{direction_word} at this budget (not settled)"


def seed_values(runs: Sequence[Mapping[str, Any]], name: str, metric: str) -> dict[int, float]:
    """``{seed: metric}`` of one model's runs (``runs`` records of ``04_ablations.json``)."""
    return {
        int(r["seed"]): float(r["metrics"][metric])
        for r in runs
        if r["model"] == name and _finite(r["metrics"].get(metric))
    }


def _scaled(diff: Mapping[str, Any], scale: float) -> dict[str, float | None]:
    out = {k: diff[k] * scale for k in ("delta_mean", "ci95_low", "ci95_high")}
    return {k: v if _finite(v) else None for k, v in out.items()}  # strict JSON


def claims(runs: Sequence[Mapping[str, Any]], comparisons: Sequence[Comparison] = COMPARISONS) -> list[dict[str, Any]]:
    """One record per comparison whose two models both ran: the ``claims`` of the JSON.

    ``delta_mean`` and the interval (test tiles, best checkpoints) are in the comparison's
    reporting unit (dB, mIoU points); ``None`` where undefined (fewer than 2 paired seeds).
    ``direction`` (``None`` when not comparable), ``status``, ``verdict`` (the wording reports
    use), ``status_reason`` and ``by_budget`` (validation Δ at :data:`budget.FRACTIONS`; empty
    when not comparable) follow the module's rules.
    """
    present = {r["model"] for r in runs}
    out = []
    for comparison in comparisons:
        if comparison.reference not in present or comparison.other not in present:
            continue
        diff = paired_difference(
            seed_values(runs, comparison.reference, comparison.metric),
            seed_values(runs, comparison.other, comparison.metric),
        )
        scaled = _scaled(diff, comparison.scale)
        if not same_test_tiles(runs, comparison.reference, comparison.other):
            scaled = dict.fromkeys(scaled)  # not a paired difference: no Δ
        resolution = TOLERANCES.get(comparison.metric.split("_")[0], 0.1) * comparison.scale
        sides = [[r for r in runs if r["model"] == name] for name in (comparison.reference, comparison.other)]
        why_not = budget.comparability(*sides, labels=(comparison.reference, comparison.other))
        by_budget, directions = [], []
        if why_not is None:
            for fraction in budget.FRACTIONS:
                step_diff = paired_difference(
                    budget.seed_values_at(runs, comparison.reference, comparison.metric, fraction),
                    budget.seed_values_at(runs, comparison.other, comparison.metric, fraction),
                )
                point = _scaled(step_diff, comparison.scale)
                by_budget.append({"fraction": fraction, **point, "n_seeds": step_diff["n_seeds"]})
                if fraction in budget.SETTLE_FRACTIONS:
                    directions.append(
                        None
                        if point["ci95_low"] is None
                        else direction(point["ci95_low"], point["ci95_high"], point["delta_mean"], resolution)
                    )
        word = (
            None
            if why_not
            else direction(_nan(scaled["ci95_low"]), _nan(scaled["ci95_high"]), scaled["delta_mean"], resolution)
        )
        on_plateau = all(r.get("plateau") is True for side in sides for r in side)
        status = status_of(why_not is None, on_plateau, [*directions, word])
        reason = why_not or _reason(status, on_plateau, sides, directions, word)
        out.append(
            {
                "name": comparison.name,
                "label": comparison.label,
                "reference": comparison.reference,
                "other": comparison.other,
                "metric": comparison.metric,
                "unit": comparison.unit,
                **scaled,
                "n_seeds": diff["n_seeds"],
                "direction": word,
                "status": status,
                "verdict": verdict_text(status, word),
                "status_reason": reason,
                "by_budget": by_budget,
                "resolution": resolution,
                "equal_compute": comparison.equal_compute,
                "paper": comparison.paper,
                "caveat": comparison.caveat,
            }
        )
    return out


def same_test_tiles(runs: Sequence[Mapping[str, Any]], reference: str, other: str) -> bool:
    """Were both models scored on the same number of test tiles (``n_eval_images``; unknown
    counts as the same)? DSen2-CR's equal-compute runs are scored on a subset on a CPU."""
    counts = {r.get("n_eval_images") for r in runs if r["model"] in (reference, other)}
    return len(counts - {None}) <= 1


def _reason(
    status: str,
    on_plateau: bool,
    sides: Sequence[Sequence[Mapping[str, Any]]],
    directions: Sequence[str | None],
    word: str | None,
) -> str:
    if status == SETTLED:
        return "both sides on their plateau; the same direction at 50/75/100 % and on test"
    parts = []
    if not on_plateau:
        flat = sum(r.get("plateau") is True for side in sides for r in side)
        parts.append(f"{flat}/{sum(len(s) for s in sides)} runs on their plateau")
    shown = ", ".join(d or "n/a" for d in directions)
    parts.append(f"validation direction at 50/75/100 %: {shown}; on test: {word}")
    return "; ".join(parts)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))
