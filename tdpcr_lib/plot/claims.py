"""Claims against budget: one small panel per claim, paired Δ ± 95 % CI against budget fraction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

#: Marker colour of each status (settled claims stand out; not comparable ones are grey).
STATUS_COLOURS: dict[str, str] = {"settled": "tab:green", "budget-dependent": "tab:orange", "not comparable": "0.6"}


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def plot_claims_vs_budget(
    claims: Sequence[Mapping[str, Any]],
    budgets: Mapping[str, tuple[Sequence[Mapping[str, Any]], float]] | None = None,
    ncols: int = 3,
) -> Figure:
    """One panel per claim: Δ (TDP-CR − other) with its 95 % t interval at each budget fraction.

    Parameters
    ----------
    claims
        The ``claims`` of ``04_ablations.json`` (each with ``by_budget``, ``status``, ``unit``).
    budgets
        Further budgets' claims with their size relative to ``claims``' budget, keyed by a
        label (``{"long (4×)": (long_claims, 4.0)}``): drawn in the same panels against the
        budget of ``claims`` (the long budget's 25 % is this budget's 100 %), on a log axis.
    ncols
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        A zero line in every panel; a not-comparable claim's panel says so instead of a curve.
    """
    series = {"this budget": (list(claims), 1.0), **{k: (list(v), float(m)) for k, (v, m) in (budgets or {}).items()}}
    widest = max(m for _, m in series.values())
    narrowest = min(m for _, m in series.values())
    names = [c["name"] for c in claims]
    n = max(len(names), 1)
    nrows = -(-n // ncols)
    figure = Figure(figsize=(3.6 * min(ncols, n), 2.6 * nrows), layout="constrained")
    axes = figure.subplots(nrows, min(ncols, n), squeeze=False).ravel()
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    markers = ("o", "s", "^", "D")
    statuses_seen: set[str] = set()
    for ax, name in zip(axes, names, strict=False):
        base = next(c for c in claims if c["name"] == name)
        ax.axhline(0.0, color="black", linewidth=0.8)
        drawn = False
        statuses: list[str] = []
        for k, (label, (records, multiple)) in enumerate(series.items()):
            claim = next((c for c in records if c["name"] == name), None)
            points = [p for p in (claim or {}).get("by_budget", []) if _finite(p["delta_mean"])]
            if not points:
                continue
            x = [100 * p["fraction"] * multiple * (1 + 0.03 * k) for p in points]
            y = [p["delta_mean"] for p in points]
            low = [p["delta_mean"] - p["ci95_low"] if _finite(p["ci95_low"]) else 0 for p in points]
            high = [p["ci95_high"] - p["delta_mean"] if _finite(p["ci95_high"]) else 0 for p in points]
            colour = STATUS_COLOURS.get(claim.get("status", ""), "tab:blue")
            ax.errorbar(x, y, yerr=[low, high], marker=markers[k % len(markers)], color=colour, capsize=3, linewidth=1)
            drawn = True
            statuses.append(f"{label}: {claim.get('status', '?')}" if len(series) > 1 else claim.get("status", "?"))
            statuses_seen.add(claim.get("status", ""))
        if not drawn:
            ax.text(
                0.5,
                0.5,
                "not comparable\n(no curve on both sides)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="0.4",
                fontsize=8,
            )
        # The status goes under the title, not into a per-panel legend: a legend inside the
        # axes sat on the error bars wherever the curve filled the panel.
        subtitle = "\n".join(statuses) if statuses else "not comparable"
        ax.set_title(f"{base.get('label', name)}\n{subtitle}", fontsize=8)
        several = widest > narrowest
        ticks = (
            [t for t in (6.25, 12.5, 25, 50, 100, 200, 400, 800) if 25 * narrowest <= t <= 100 * widest]
            if several
            else [25, 50, 75, 100]
        )
        if several:
            ax.set_xscale("log")
            ax.minorticks_off()  # the log axis's minor labels (2×10¹, 3×10¹, ...) ran into each other
        ax.set_xlim(20 * narrowest, 115 * widest)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("% of this budget", fontsize=7)
        ax.set_ylabel(f"Δ ({base.get('unit', '')})", fontsize=7)
        ax.tick_params(labelsize=7)
    handles = [
        Line2D([], [], color="0.3", marker=markers[k % len(markers)], linestyle="-", label=label)
        for k, label in enumerate(series)
    ] + [
        Line2D([], [], color=colour, marker="s", linestyle="none", label=status)
        for status, colour in STATUS_COLOURS.items()
        if status in statuses_seen
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7, frameon=False)
    figure.suptitle(
        "Claims against budget: paired Δ (TDP-CR − other) on the validation tiles, 95 % t interval over seeds",
        fontsize=9,
    )
    return figure
