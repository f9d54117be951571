"""Training curves and per-bucket metric plots."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from tdpcr_lib.core.arrays import nan_if_none
from tdpcr_lib.datasets.samples import BUCKET_CENTRES
from tdpcr_lib.evaluation.ablations.report import per_bucket_for_plot
from tdpcr_lib.metrics.results import VAL_PREFIX, column_name
from tdpcr_lib.plot.composites import save_figure


def plot_training_curves(run_dir_or_history: str | Path | dict[str, Any]):
    """Loss per logged step and the headline validation metrics per epoch.

    Parameters
    ----------
    run_dir_or_history
        A run folder (reads ``history.json``) or the loaded ``history.json`` dict.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(run_dir_or_history, dict):
        history = run_dir_or_history
    else:
        path = Path(run_dir_or_history) / "history.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no training history (has the run started?)")
        history = json.loads(path.read_text())
    figure = Figure(figsize=(11, 3.6), layout="constrained")
    ax_loss, ax_val = figure.subplots(1, 2)
    steps = history.get("steps", [])
    for key in ("loss", "ce", "rec", "charbonnier"):
        points = [(row["step"], row[key]) for row in steps if row.get(key) is not None]
        if points:
            ax_loss.plot(*zip(*points, strict=True), label=key, lw=1)
    epochs = history.get("epochs", [])
    if epochs and "train_loss" in epochs[0]:
        ax_loss.plot([r["step"] for r in epochs], [r["train_loss"] for r in epochs], "o-", label="epoch mean", lw=1.5)
    ax_loss.set(
        xlabel="optimizer step",
        ylabel="training loss",
        yscale="log",
        title=f"{history.get('phase', '')} training loss ({history.get('objective', '')})",
    )
    ax_loss.legend(fontsize=8)
    plotted = False
    for metric, region, label in (
        ("psnr", "all", "PSNR all (dB)"),
        ("psnr", "cloudy", "PSNR cloudy (dB)"),
        ("input_psnr", "cloudy", "cloudy input PSNR (dB)"),
    ):
        key = VAL_PREFIX + column_name(metric, region)
        values = [(r["epoch"], r[key]) for r in epochs if r.get(key) is not None]
        if values:
            ax_val.plot(*zip(*values, strict=True), "o-", label=label)
            plotted = True
    ax_val.set(xlabel="epoch", ylabel="dB", title="validation")
    miou = VAL_PREFIX + column_name("miou")
    if any(r.get(miou) is not None for r in epochs):
        ax_seg = ax_val.twinx()
        ax_seg.plot([r["epoch"] for r in epochs], [r.get(miou) for r in epochs], "s--", color="tab:red", label="mIoU")
        ax_seg.set_ylabel("mIoU", color="tab:red")
        plotted = True
    if plotted:
        ax_val.legend(fontsize=8, loc="lower right")
    return figure


def write_loss_curve(run_dir: str | Path) -> Path | None:
    """Redraw ``run_dir/loss_curve.png`` from the run's history (a ``train`` log callback).

    Returns the PNG's path, or ``None`` while the run has no epoch logged yet.
    """
    run_dir = Path(run_dir)
    history = json.loads((run_dir / "history.json").read_text())
    if not history.get("epochs"):
        return None
    return save_figure(plot_training_curves(history), run_dir / "loss_curve.png", dpi=110)


def plot_per_bucket(aggregated: Mapping[str, Mapping[str, Any]]):
    """PSNR and mIoU vs cloud cover, one line per model (error bars: std over seeds)."""
    return plot_bucket_metrics(
        per_bucket_for_plot(aggregated),
        metrics=(("psnr", "PSNR (dB)"), ("miou", "mIoU (%)")),
        title="Ablations: metrics by cloud cover (mean ± std over seeds)",
    )


def _mean_std(value: Any) -> tuple[float, float]:
    if isinstance(value, Mapping):
        mean, std = value.get("mean"), value.get("std")
        return nan_if_none(mean), (0.0 if std is None else float(std))
    if isinstance(value, list | tuple):
        return nan_if_none(value[0]), float(value[1]) if len(value) > 1 else 0.0
    return nan_if_none(value), 0.0


def plot_bucket_metrics(
    per_bucket: Mapping[str, Mapping[str, Mapping[str, Any]]],
    metrics: Sequence[tuple[str, str]] = (("psnr", "PSNR (dB)"), ("miou", "mIoU")),
    title: str = "",
) -> Figure:
    """Metric vs cloud cover, one line per model, one panel per metric.

    Parameters
    ----------
    per_bucket : dict
        ``{model: {bucket: {metric: value}}}`` where a value is a float, ``(mean, std)`` or
        ``{"mean": m, "std": s}`` (std drawn as error bars). Buckets are placed at their
        cloud-cover centre (:data:`BUCKET_CENTRES`); missing or NaN values leave a gap.
    metrics : sequence of (key, axis label)
        Which metrics to plot. A model that lacks a metric (e.g. no segmentation) is skipped in
        that panel.
    """
    if not per_bucket:
        raise ValueError("per_bucket is empty: nothing to plot")
    fig = Figure(figsize=(4.2 * len(metrics), 3.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    buckets = [b for b in BUCKET_CENTRES if any(b in v for v in per_bucket.values())]
    extra = sorted({b for v in per_bucket.values() for b in v} - set(BUCKET_CENTRES))
    if extra:
        raise ValueError(f"unknown cloud-cover bucket(s) {extra}; expected {list(BUCKET_CENTRES)}")
    for ax, (key, label) in zip(axes, metrics, strict=True):
        drawn = 0
        for model, by_bucket in per_bucket.items():
            xs, ys, es = [], [], []
            for b in buckets:
                if b in by_bucket and key in by_bucket[b]:
                    mean, std = _mean_std(by_bucket[b][key])
                    xs.append(BUCKET_CENTRES[b])
                    ys.append(mean)
                    es.append(std)
            if not xs or not np.isfinite(ys).any():
                continue
            k = list(per_bucket).index(model)  # same colour/marker for a model in every panel
            ax.errorbar(
                xs,
                ys,
                yerr=es if any(es) else None,
                color=f"C{k % 10}",
                marker="osD^v<>ph*"[k % 10],
                ms=4,
                capsize=3,
                label=model,
                linestyle="-" if k < 10 else "--",
            )
            drawn += 1
        ax.set_xlabel("cloud cover (%)")
        ax.set_ylabel(label)
        ax.set_xticks([BUCKET_CENTRES[b] for b in buckets], buckets, fontsize=7)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=6)
        else:
            ax.text(
                0.5, 0.5, "no model reports this metric", ha="center", va="center", transform=ax.transAxes, fontsize=8
            )
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_validation_vs_compute(runs: Sequence[Mapping[str, Any]]) -> Figure:
    """Every run's validation curve against its training FLOPs, on one figure.

    ``runs`` are the ``runs`` records of ``04_ablations.json`` (each phase's ``curve`` holds
    ``{"train_flops", "value"}`` points of its selection metric). Left: validation PSNR of the
    reconstruction phases; right: validation mIoU of the phases that train segmentation. One
    colour per model, one line per seed; runs that were not validated (equal-compute DSen2-CR)
    are named in the legend of the left panel at their training FLOPs.
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    models = list(dict.fromkeys(r["model"] for r in runs))
    colours = {m: f"C{k % 10}" for k, m in enumerate(models)}
    labelled: set[tuple[int, str]] = set()
    for run in runs:
        for phase in run.get("phases", []):
            if phase.get("shared_from") and run["model"] != "tdpcr_full":
                continue  # TDP-CR's own phase 1 (drawn once, under TDP-CR)
            points = phase.get("curve") or []
            panel = 1 if phase.get("metric", "").startswith("miou") else 0
            if not points:
                continue
            scale = 100.0 if panel else 1.0
            key = (panel, run["model"])
            axes[panel].plot(
                [p["train_flops"] for p in points],
                [p["value"] * scale for p in points],
                color=colours[run["model"]],
                lw=1,
                marker=".",
                alpha=0.8,
                label=None if key in labelled else run.get("label", run["model"]),
            )
            labelled.add(key)
        if (
            not any(p.get("curve") for p in run.get("phases", []))
            and (0, run["model"]) not in labelled
            and run.get("train_flops")
        ):
            axes[0].axvline(
                run["train_flops"],
                color=colours[run["model"]],
                ls=":",
                label=f"{run.get('label', run['model'])}: not validated (its training FLOPs)",
            )
            labelled.add((0, run["model"]))
    for ax, ylabel in zip(axes, ("validation PSNR (dB)", "validation mIoU (%)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("training FLOPs (3 × forward per sample)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6, loc="lower right")
    axes[1].legend(fontsize=6, loc="lower right")
    fig.suptitle("Validation curves against training compute (every run, every seed)")
    return fig
