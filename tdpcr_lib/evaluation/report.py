"""Evaluation tables, headline numbers and the results markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn
from torch.utils.data import Dataset

from tdpcr_lib.core import paths
from tdpcr_lib.core.io import atomic_write_text
from tdpcr_lib.core.legend import class_scheme
from tdpcr_lib.evaluation.evaluate import EvaluationResult
from tdpcr_lib.evaluation.intervals import intervals_markdown
from tdpcr_lib.evaluation.majority import MajorityBaseline, majority_table
from tdpcr_lib.evaluation.protocols import protocol_markdown, split_warning
from tdpcr_lib.evaluation.tables import dataframe_to_markdown, normalised_confusion, per_class_iou_table, readable
from tdpcr_lib.inference.metadata import portable_path
from tdpcr_lib.metrics.results import (
    ALL,
    COUNT_METRIC,
    CR_METRICS,
    INPUT_PREFIX,
    REGIONS,
    buckets,
    has,
    headline,
    value,
)
from tdpcr_lib.models.checkpoint import read_meta


def bucket_curves(
    result: EvaluationResult, majority: MajorityBaseline | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    """``{series: {bucket: {"psnr": dB, "miou": %}}}`` for :func:`tdpcr_lib.plot.curves.plot_bucket_metrics`.

    Series: ``"TDP-CR"`` (our model), ``"cloudy input"`` (PSNR of doing nothing) and
    ``"majority class"`` (mIoU of the constant prediction).
    """
    series = [
        ("TDP-CR", result.frame, (("psnr", "psnr"), ("miou", "miou"))),
        ("cloudy input", result.frame, (("psnr", INPUT_PREFIX + "psnr"),)),
    ]
    if majority is not None:
        series.append(("majority class", majority.frame, (("miou", "miou"),)))
    curves: dict[str, dict[str, dict[str, float]]] = {}
    for name, frame, wanted in series:
        for bucket in buckets(frame):
            # mIoU in percent, as in every table (evaluation.tables.PERCENT_METRICS)
            point = {
                key: value(frame, metric, ALL, bucket) * (100 if key == "miou" else 1)
                for key, metric in wanted
                if has(frame, metric, ALL, bucket)
            }
            if point:
                curves.setdefault(name, {})[bucket] = point
    return curves


def cloudiest_index(dataset: Dataset, limit: int = 8) -> int:
    """Index of the sample with the largest cloud fraction among the first ``limit``."""
    fractions = [float(dataset[i]["cloud_mask"].float().mean()) for i in range(min(limit, len(dataset)))]
    if not fractions:
        raise ValueError("the dataset is empty")
    return int(np.argmax(fractions))


def headline_metrics(result: EvaluationResult, majority: MajorityBaseline | None = None) -> dict[str, Any]:
    """The few numbers a reader checks first (flat dict, JSON-able; keys are
    :func:`tdpcr_lib.metrics.results.column_name` s such as ``psnr_cloudy``).

    ``psnr_gain_cloudy`` = our PSNR − the cloudy input's PSNR inside clouds;
    ``miou_gain_over_majority`` = our mIoU − the majority-class mIoU (all pixels).
    """
    pairs = [(m, r) for r in REGIONS for m in (*CR_METRICS, INPUT_PREFIX + "psnr", "miou", "oa")]
    out: dict[str, Any] = {COUNT_METRIC: result.n_images, **headline(result.frame, pairs)}
    if {"psnr_cloudy", "input_psnr_cloudy"} <= set(out):
        out["psnr_gain_cloudy"] = out["psnr_cloudy"] - out["input_psnr_cloudy"]
    if majority is not None:
        out["majority_class"] = majority.class_index
        for metric in ("miou", "oa"):
            out[f"majority_{metric}"] = value(majority.frame, metric)
            if metric in out:
                out[f"{metric}_gain_over_majority"] = out[metric] - out[f"majority_{metric}"]
    return out


#: The paper's claims (abstract of arXiv 2601.12052); relative numbers only were published.
PAPER_CLAIMS: tuple[tuple[str, str, str], ...] = (
    ("PSNR vs heavy SOTA cloud-removal baselines", "+0.18 dB", "baseline not named in the retrievable text"),
    ("Parameters vs those baselines", "15 %", "same baselines"),
    ("mIoU vs multi-task competitors", "+1.4 (points)", "'consistently'"),
    ("Absolute PSNR / SSIM / SAM / mIoU / OA, per bucket", "not retrievable", "no table of the paper could be read"),
)


def write_results(
    result: EvaluationResult,
    majority: MajorityBaseline | None,
    path: str | Path,
    checkpoint: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    intervals: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``reports/results.md`` (see :func:`results_markdown`) atomically; ``intervals``
    (:func:`tdpcr_lib.evaluation.intervals.headline_intervals`) adds the 95 % intervals."""
    parameters = None
    if checkpoint is not None and not isinstance(checkpoint, nn.Module):
        parameters = read_meta(checkpoint).get("parameters")
    return atomic_write_text(
        path, results_markdown(result, majority, parameters=parameters, class_names=class_names, intervals=intervals)
    )


def results_markdown(
    result: EvaluationResult,
    majority: MajorityBaseline | None = None,
    parameters: dict[str, Any] | None = None,
    title: str = "TDP-CR results",
    notes: Sequence[str] = (),
    class_names: Sequence[str] | None = None,
    intervals: Mapping[str, Any] | None = None,
) -> str:
    """The ``reports/results.md`` page: our numbers, then the paper's claims, kept apart.

    Our tables (overall, cloudy/clear, per bucket; the cloudy input and the majority-class
    baseline as references we computed) never contain a paper number; the paper's claims are in
    their own table with a "Paper (reference, not ours)" column. OA, mIoU and per-class IoU are
    in percent (as in ``ablations.md``); ``class_names`` (default: the legend's) label classes.
    """
    tables = result.tables
    # a report is shared: name the checkpoint relative to the project, never a home directory
    checkpoint = portable_path(result.meta.get("checkpoint"), base=paths.REPO_ROOT)
    lines = [
        f"# {title}",
        "",
        "All numbers in the first sections are **ours**, measured by `03_evaluate` on the "
        f"`{result.meta.get('split')}` split ({result.n_images} images) from "
        f"checkpoint `{checkpoint}`. The paper's claims are listed "
        "separately at the end for reference and are not our results.",
        "",
    ]
    warning = split_warning(result.meta.get("split_protocol"))
    if warning:
        lines += [warning, ""]
    lines += [f"- {note}" for note in notes]
    if notes:
        lines.append("")
    summary = tables.get("summary")
    if summary is not None:
        lines += [
            "## Cloud removal (ours)",
            "",
            "PSNR/SSIM/SAM/MAE of our reconstruction over all 13 bands (reflectance in "
            "[0, 1]) under protocol "
            f'`{result.meta.get("protocol", "tdpcr")}` (docs/metrics.md); "input PSNR" is '
            'the cloudy input scored the same way and "PSNR gain" our improvement over it.',
            "",
            dataframe_to_markdown(
                readable(
                    summary[[c for c in ("psnr", "input_psnr", "psnr_gain", "ssim", "sam", "mae") if c in summary]]
                )
            ),
            "",
        ]
    lines += protocol_markdown(result.meta.get("protocols"))
    if intervals:
        lines += intervals_markdown(headline_metrics(result), intervals)
    seg = tables.get("seg")
    if seg is not None:
        frame = seg.copy()
        if majority is not None:
            baseline = majority_table(majority)
            for metric in ("miou", "oa"):
                frame[f"majority_{metric}"] = baseline[metric].reindex(frame.index)
        lines += ["## Land-cover segmentation (ours)", "", "OA and mIoU in percent.", ""]
        if majority is not None:
            name = class_names[majority.class_index] if class_names is not None else majority.class_name
            lines += [
                f'"majority": predicting the most frequent training class '
                f"({majority.class_index} = {name}, "
                f"{100 * majority.train_fraction:.1f} % of training pixels) everywhere.",
                "",
            ]
        lines += [dataframe_to_markdown(readable(frame)), ""]
        per_class = per_class_iou_table(result.frame, class_names)
        if len(per_class):
            lines += ["### Per-class IoU (ours, all pixels, %)", "", dataframe_to_markdown(readable(per_class)), ""]
        confusion = result.meta.get("confusion")
        if confusion is not None:
            lines += [
                "### Normalised confusion matrix (ours, all pixels)",
                "",
                "Rows: true class; columns: predicted class; each row is the share (%) of "
                "that class's pixels given each label (rows sum to 100).",
                "",
                dataframe_to_markdown(normalised_confusion(confusion, class_names), digits=1),
                "",
            ]
    if parameters:
        lines += [
            "## Model size (ours)",
            "",
            f"- total parameters: {parameters.get('total'):,}",
            f"- trainable in phase 2: {parameters.get('trainable'):,} "
            f"({100 * parameters.get('trainable_fraction', 0):.1f} %)",
            "",
        ]
    claims = pd.DataFrame(PAPER_CLAIMS, columns=["claim", "Paper (reference, not ours)", "note"]).set_index("claim")
    lines += [
        "## The paper's claims (reference only)",
        "",
        "From the abstract of Zhang et al., *Task-Driven Prompt Learning* (arXiv "
        "2601.12052, IGARSS 2026). These are **not** our measurements; the comparisons "
        "they refer to are reproduced by the ablation/baseline notebooks.",
        "",
    ]
    legend = (result.meta.get("model_config") or {}).get("legend") or "luojiaset"
    if class_scheme(legend) != "luojiaset":
        lines += [
            f"**Not comparable with this evaluation:** the paper measured on "
            f"LuojiaSET-OSFCR (7 classes); this model follows the `{legend}` legend of "
            "another dataset, so neither the absolute numbers nor the class-wise figures "
            "carry over (see `docs/dataset.md`, which results compare with which papers).",
            "",
        ]
    lines += [dataframe_to_markdown(claims), ""]
    return "\n".join(lines)
