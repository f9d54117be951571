"""The majority-class segmentation baseline and label histograms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.datasets.luojiaset.layout import read_modality
from tdpcr_lib.evaluation.evaluate import accumulate_metrics
from tdpcr_lib.evaluation.tables import subset_table
from tdpcr_lib.metrics.results import SEG_METRICS, metric_spec, to_records

#: The ``model`` label of the majority-class rows.
MAJORITY_MODEL = "majority class"


# --------------------------------------------------------------------------------------------
# The majority-class reference
# --------------------------------------------------------------------------------------------
def label_histogram(
    dataset: Dataset, num_classes: int, ignore_index: int = 255, max_samples: int | None = None
) -> np.ndarray:
    """Pixel counts per class over the label maps of ``dataset`` (ignored pixels skipped).

    For :class:`tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR` only the land-cover files are read (not the
    other four modalities), which matters on the real data's 16 000 training tiles.
    """
    counts = np.zeros(num_classes, dtype=np.int64)
    records = getattr(dataset, "records", None)
    root = getattr(dataset, "root", None)
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    legend = getattr(dataset, "legend", None) or load_legend()
    for index in range(n):
        if records is not None and root is not None and "land_cover_maps" in records[index].paths:
            raw = read_modality(Path(root) / records[index].paths["land_cover_maps"], "land_cover_maps")
            labels = legend.sanitise(raw[0]).ravel()
        else:
            labels = np.asarray(dataset[index]["mask"]).ravel()
        labels = labels[(labels != ignore_index) & (labels >= 0) & (labels < num_classes)]
        counts += np.bincount(labels, minlength=num_classes)[:num_classes]
    return counts


class _ConstantClassModel(nn.Module):
    """Predicts one class everywhere and returns the cloudy input as its reconstruction."""

    def __init__(self, class_index: int, num_classes: int) -> None:
        super().__init__()
        self.class_index, self.num_classes = class_index, num_classes

    def forward(
        self,
        optical: torch.Tensor,
        sar: torch.Tensor,  # noqa: ARG002 - a model's inputs
    ) -> dict[str, torch.Tensor]:
        logits = torch.full((optical.shape[0], self.num_classes, *optical.shape[-2:]), -10.0, device=optical.device)
        logits[:, self.class_index] = 10.0
        return {"reconstruction": optical.float(), "segmentation": logits}


@dataclass
class MajorityBaseline:
    """The majority-class baseline: which class, how frequent, and its segmentation scores."""

    class_index: int
    class_name: str
    train_fraction: float
    frame: pd.DataFrame  # segmentation rows of the result frame, model = MAJORITY_MODEL

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the frame as :func:`tdpcr_lib.metrics.results.to_records` rows)."""
        return {
            "class": self.class_index,
            "class_name": self.class_name,
            "train_fraction": self.train_fraction,
            "metrics": to_records(self.frame),
        }


def majority_class_baseline(
    train_dataset: Dataset,
    eval_dataset: Dataset,
    num_classes: int | None = None,
    batch_size: int = 8,
    max_batches: int | None = None,
) -> MajorityBaseline:
    """Score "the most frequent training class everywhere" on ``eval_dataset``.

    Parameters
    ----------
    train_dataset
        Where the class frequencies come from.
    eval_dataset
        Where the constant prediction is scored (same accumulator as the models).
    max_batches
        Limit both the label count (``max_batches·batch_size`` training tiles) and the scoring
        (smoke runs).

    Returns
    -------
    MajorityBaseline
        Its ``frame`` holds only segmentation metrics (the reconstruction is the cloudy input).
    """
    legend = getattr(train_dataset, "legend", None) or load_legend()
    num_classes = num_classes or legend.num_classes
    counts = label_histogram(
        train_dataset,
        num_classes,
        legend.ignore_index,
        max_samples=None if max_batches is None else max_batches * batch_size,
    )
    if counts.sum() == 0:
        raise ValueError("the training split has no valid labels; cannot pick a majority class")
    majority = int(np.argmax(counts))
    accumulator = accumulate_metrics(
        _ConstantClassModel(majority, num_classes),
        eval_dataset,
        device="cpu",
        batch_size=batch_size,
        max_batches=max_batches,
    )
    frame = accumulator.to_frame(model=MAJORITY_MODEL, split=getattr(eval_dataset, "split", None))
    # its reconstruction is the cloudy input: only the segmentation rows say anything
    frame = frame[frame["metric"].map(lambda m: metric_spec(m).task == "seg")]
    return MajorityBaseline(
        class_index=majority,
        class_name=legend.names[majority],
        train_fraction=float(counts[majority] / counts.sum()),
        frame=frame.reset_index(drop=True),
    )


def majority_table(majority: MajorityBaseline) -> pd.DataFrame:
    """The majority-class baseline as a table (rows: all/cloudy/clear and buckets)."""
    frame = subset_table(majority.frame, SEG_METRICS)
    frame.index.name = f"majority class {majority.class_index} ({majority.class_name})"
    return frame
