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

Verdicts: the paper's direction (TDP-CR better than the other model) is *supported* on the twin
when the whole interval is on that side of zero, *contradicted* when the whole interval is on the
other side, and *within noise* when it contains zero (or fewer than 2 seeds are paired).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

SUPPORTS = "supports the paper's direction on the twin"
CONTRADICTS = "contradicts it"
WITHIN_NOISE = "within noise"
VERDICTS: tuple[str, ...] = (SUPPORTS, CONTRADICTS, WITHIN_NOISE)


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


def verdict(ci_low: float, ci_high: float) -> str:
    """:data:`SUPPORTS` when the interval is above zero, :data:`CONTRADICTS` when below,
    :data:`WITHIN_NOISE` when it contains zero or is undefined (NaN)."""
    if not (_finite(ci_low) and _finite(ci_high)):
        return WITHIN_NOISE
    if ci_low > 0:
        return SUPPORTS
    if ci_high < 0:
        return CONTRADICTS
    return WITHIN_NOISE


def seed_values(runs: Sequence[Mapping[str, Any]], name: str, metric: str) -> dict[int, float]:
    """``{seed: metric}`` of one model's runs (``runs`` records of ``04_ablations.json``)."""
    return {
        int(r["seed"]): float(r["metrics"][metric])
        for r in runs
        if r["model"] == name and _finite(r["metrics"].get(metric))
    }


def claims(runs: Sequence[Mapping[str, Any]], comparisons: Sequence[Comparison] = COMPARISONS) -> list[dict[str, Any]]:
    """One record per comparison whose two models both ran: the ``claims`` of the JSON.

    ``delta_mean`` and the interval are in the comparison's reporting unit (dB, mIoU points);
    ``None`` where undefined (fewer than 2 paired seeds).
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
        scaled = {k: diff[k] * comparison.scale for k in ("delta_mean", "ci95_low", "ci95_high")}
        decided = verdict(scaled["ci95_low"], scaled["ci95_high"])
        scaled = {k: v if _finite(v) else None for k, v in scaled.items()}  # strict JSON
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
                "verdict": decided,
                "equal_compute": comparison.equal_compute,
                "paper": comparison.paper,
            }
        )
    return out


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))
