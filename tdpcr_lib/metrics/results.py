"""The one metrics result: a tidy pandas frame, its vocabulary and its accessors.

Every evaluation (validation during training, ``tdpcr evaluate``, ablations, per-tile figures)
produces the same long ("tidy") table, one row per measured number:

====== =========================================================================================
column meaning
====== =========================================================================================
model  what was scored (a run or checkpoint name; ``None`` when the caller did not say)
seed   the training seed (``None`` when not applicable)
split  the dataset split (``"val"``, ``"test"``; ``None`` when not said)
region pixels scored: one of :data:`REGIONS` (``all``, ``cloudy``, ``clear``)
bucket a cloud-cover bucket name (``"0-20%"`` …) or :data:`ALL` for the whole split
metric a name from :data:`METRICS` or ``iou_class_<k>`` (:func:`iou_class`)
value  the number (NaN when undefined, e.g. no cloudy pixel in a bucket)
====== =========================================================================================

The vocabulary is defined here once and imported everywhere else. ``input_<metric>`` is the
cloud-removal metric of the cloudy *input* scored against the clear target (the baseline any
reconstruction must beat); ``n_images`` counts the images of a bucket (region ``all`` only).

Consumers read it through :func:`value` (one number), :func:`headline` (a few numbers as a flat
dict with readable :func:`column_name` keys, e.g. for training logs) and :func:`wide` (a pivoted
table for display); :func:`to_records` / :func:`from_records` round-trip it through JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

#: Columns of the result frame, in order.
COLUMNS: tuple[str, ...] = ("model", "seed", "split", "region", "bucket", "metric", "value")

#: Pixel regions: every pixel, pixels under the cloud mask, pixels outside it.
REGIONS: tuple[str, ...] = ("all", "cloudy", "clear")

#: The ``bucket`` of rows over the whole split (and the ``region`` of all pixels).
ALL = "all"

#: Cloud-removal metrics (per image, then averaged over images).
CR_METRICS: tuple[str, ...] = ("psnr", "ssim", "sam", "mae", "rmse")

#: Segmentation metrics (from one confusion matrix); per-class IoU is :func:`iou_class`.
SEG_METRICS: tuple[str, ...] = ("oa", "macc", "fwiou", "miou")

#: Prefix of the cloud-removal metrics of the cloudy input itself.
INPUT_PREFIX = "input_"

#: Images per bucket (region ``all`` only).
COUNT_METRIC = "n_images"


@dataclass(frozen=True)
class MetricSpec:
    """What a metric name means: a label for humans, its unit and which direction is better."""

    name: str
    label: str
    unit: str
    higher_is_better: bool | None
    task: str  # "cr", "cr_input", "seg" or "count"


_CR_SPECS = {
    "psnr": ("PSNR", "dB", True),
    "ssim": ("SSIM", "", True),
    "sam": ("SAM", "°", False),
    "mae": ("MAE", "reflectance", False),
    "rmse": ("RMSE", "reflectance", False),
}
_SEG_SPECS = {
    "oa": ("OA", "fraction", True),
    "macc": ("mAcc", "fraction", True),
    "fwiou": ("FWIoU", "fraction", True),
    "miou": ("mIoU", "fraction", True),
}

#: The metric vocabulary: name → :class:`MetricSpec` (per-class IoU: :func:`metric_spec`).
METRICS: dict[str, MetricSpec] = {
    **{k: MetricSpec(k, label, unit, hib, "cr") for k, (label, unit, hib) in _CR_SPECS.items()},
    **{
        INPUT_PREFIX + k: MetricSpec(INPUT_PREFIX + k, f"{label} of the cloudy input", unit, hib, "cr_input")
        for k, (label, unit, hib) in _CR_SPECS.items()
    },
    **{k: MetricSpec(k, label, unit, hib, "seg") for k, (label, unit, hib) in _SEG_SPECS.items()},
    COUNT_METRIC: MetricSpec(COUNT_METRIC, "images", "count", None, "count"),
}

_IOU_CLASS = re.compile(r"^iou_class_(\d+)$")


def iou_class(k: int) -> str:
    """The metric name of class ``k``'s IoU, e.g. ``iou_class_3``."""
    return f"iou_class_{int(k)}"


def metric_spec(name: str) -> MetricSpec:
    """The :class:`MetricSpec` of a metric name (including ``iou_class_<k>``)."""
    if name in METRICS:
        return METRICS[name]
    match = _IOU_CLASS.match(name)
    if match:
        return MetricSpec(name, f"IoU of class {match.group(1)}", "fraction", True, "seg")
    raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)} and iou_class_<k>")


# ----------------------------------------------------------------------------------------------
# building and (de)serialising
# ----------------------------------------------------------------------------------------------
def make_frame(
    rows: Iterable[tuple[str, str, str, float]],
    *,
    model: str | None = None,
    seed: int | None = None,
    split: str | None = None,
) -> pd.DataFrame:
    """A result frame from ``(region, bucket, metric, value)`` tuples and the run labels."""
    frame = pd.DataFrame(list(rows), columns=["region", "bucket", "metric", "value"])
    return label(frame, model=model, seed=seed, split=split)


def label(
    frame: pd.DataFrame, *, model: str | None = None, seed: int | None = None, split: str | None = None
) -> pd.DataFrame:
    """A copy of ``frame`` with ``model``/``seed``/``split`` set (columns in :data:`COLUMNS` order)."""
    out = frame.copy()
    for column, given in (("model", model), ("seed", seed), ("split", split)):
        out[column] = pd.Series([given] * len(out), index=out.index, dtype=object)
    out["value"] = out["value"].astype(float)
    return out[list(COLUMNS)].reset_index(drop=True)


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame as JSON-ready rows (NaN → ``None``, seeds as int)."""
    records = []
    for row in frame[list(COLUMNS)].itertuples(index=False):
        record = dict(zip(COLUMNS, row, strict=True))
        number = float(record["value"])
        record["value"] = number if math.isfinite(number) else None
        if record["seed"] is not None and not pd.isna(record["seed"]):
            record["seed"] = int(record["seed"])
        else:
            record["seed"] = None
        records.append(record)
    return records


def from_records(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Inverse of :func:`to_records` (``None`` values → NaN)."""
    frame = pd.DataFrame(list(records), columns=list(COLUMNS))
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    for column in ("model", "seed", "split"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def select(
    frame: pd.DataFrame, metric: str | None = None, region: str | None = ALL, bucket: str | None = ALL, **labels: Any
) -> pd.DataFrame:
    """Rows matching every given criterion (``None`` = any value of that column)."""
    keep = pd.Series(True, index=frame.index)
    for column, wanted in (("metric", metric), ("region", region), ("bucket", bucket), *labels.items()):
        if column not in COLUMNS:
            raise KeyError(f"unknown result column {column!r}; columns: {COLUMNS}")
        if wanted is not None:
            keep &= frame[column] == wanted
    return frame[keep]


def has(frame: pd.DataFrame, metric: str, region: str = ALL, bucket: str = ALL, **labels: Any) -> bool:
    """Whether ``frame`` has a row for this metric/region/bucket (its value may be NaN)."""
    return not select(frame, metric, region, bucket, **labels).empty


def value(frame: pd.DataFrame, metric: str, region: str = ALL, bucket: str = ALL, **labels: Any) -> float:
    """One number of a result frame.

    Parameters
    ----------
    frame
        A result frame (:data:`COLUMNS`).
    metric, region, bucket
        Which number: a :data:`METRICS` name (or ``iou_class_<k>``), a :data:`REGIONS` name, a
        bucket name or :data:`ALL`.
    **labels
        ``model=``, ``seed=``, ``split=`` when the frame holds several runs.

    Returns
    -------
    float
        The value (NaN when undefined).

    Raises
    ------
    KeyError
        No such row (e.g. segmentation metrics of a model without a segmentation head).
    ValueError
        Several rows match (say which ``model``/``seed``/``split``).
    """
    rows = select(frame, metric, region, bucket, **labels)
    if rows.empty:
        raise KeyError(
            f"no {metric!r} (region {region!r}, bucket {bucket!r}, {labels or 'any run'})"
            f" in the results; metrics present: {sorted(set(frame['metric']))}"
        )
    if len(rows) > 1:
        runs = rows[["model", "seed", "split"]].drop_duplicates().to_dict("records")
        raise ValueError(
            f"{len(rows)} rows hold {metric!r} (region {region!r}, bucket {bucket!r});"
            f" pass model=/seed=/split= to choose among {runs}"
        )
    return float(rows["value"].iloc[0])


def buckets(frame: pd.DataFrame) -> list[str]:
    """The bucket names in the frame (in order of appearance), without :data:`ALL`."""
    return [b for b in pd.unique(frame["bucket"]) if b != ALL]


def column_name(metric: str, region: str = ALL, bucket: str = ALL) -> str:
    """A readable flat key: ``psnr``, ``psnr_cloudy``, ``input_psnr_cloudy``, ``miou@0-20%``.

    Region ``all`` and bucket ``all`` are left out; :func:`parse_column_name` inverts it.
    """
    name = metric if region == ALL else f"{metric}_{region}"
    return name if bucket == ALL else f"{name}@{bucket}"


def parse_column_name(name: str) -> tuple[str, str, str]:
    """``(metric, region, bucket)`` of a :func:`column_name` key (the metric is checked)."""
    name, _, bucket = name.partition("@")
    region = ALL
    for candidate in REGIONS[1:]:
        if name.endswith("_" + candidate):
            name, region = name[: -len(candidate) - 1], candidate
            break
    metric_spec(name)  # raises KeyError for a name outside the vocabulary
    return name, region, bucket or ALL


#: Prefix of the validation columns of training logs (``val_psnr``, ``val_miou_cloudy``, …).
VAL_PREFIX = "val_"

#: What training logs, run summaries and ablation tables show first: ``(metric, region)``.
HEADLINE: tuple[tuple[str, str], ...] = (
    ("psnr", "all"),
    ("ssim", "all"),
    ("sam", "all"),
    ("mae", "all"),
    ("psnr", "cloudy"),
    ("input_psnr", "cloudy"),
    ("miou", "all"),
    ("oa", "all"),
    ("miou", "cloudy"),
)


def headline(
    frame: pd.DataFrame, pairs: Sequence[tuple[str, str]] = HEADLINE, prefix: str = "", bucket: str = ALL
) -> dict[str, float]:
    """``{prefix + column_name(metric, region): value}`` for the ``pairs`` the frame has.

    Absent metrics (segmentation of a model without a head) are left out, not NaN.
    """
    out = {}
    for metric, region in pairs:
        if has(frame, metric, region, bucket):
            out[prefix + column_name(metric, region)] = value(frame, metric, region, bucket)
    return out


def wide(
    frame: pd.DataFrame,
    index: str | Sequence[str] = ("bucket", "region"),
    columns: str = "metric",
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The frame pivoted for display (rows and columns in order of first appearance).

    Parameters
    ----------
    frame
        A result frame.
    index
        Column(s) naming the rows, e.g. ``"region"``, ``("bucket", "region")`` or
        ``("model", "seed")``.
    columns
        The column naming the table's columns (default ``"metric"``).
    metrics
        Keep only these metrics (in this order when ``columns == "metric"``).

    Returns
    -------
    pandas.DataFrame
        One value per cell; rows that share index and column (e.g. several seeds when
        ``index`` leaves ``seed`` out) are averaged.
    """
    index = [index] if isinstance(index, str) else list(index)
    if metrics is not None:
        frame = frame[frame["metric"].isin(list(metrics))]
    keys = index + [columns]
    if frame.empty:
        return pd.DataFrame(columns=list(metrics or []), dtype=float)
    # None labels (model/seed/split not given) must still form groups
    grouped = frame.astype({k: object for k in keys}).fillna({k: "" for k in keys})
    means = grouped.groupby(keys, sort=False, dropna=False)["value"].mean()
    table = means.unstack(columns)
    order = list(metrics) if metrics is not None and columns == "metric" else list(pd.unique(grouped[columns]))
    table = table.reindex(columns=[c for c in order if c in table.columns])
    rows = grouped[index].drop_duplicates()
    table = table.reindex(pd.MultiIndex.from_frame(rows) if len(index) > 1 else rows[index[0]])
    table.columns.name = None
    return table
