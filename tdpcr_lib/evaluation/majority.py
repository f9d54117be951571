"""The majority-class segmentation baseline and label histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from tdpcr_lib.evaluation.evaluate import accumulate_metrics
from tdpcr_lib.evaluation.tables import REGIONS, SEG_COLUMNS, _region_block


# --------------------------------------------------------------------------------------------
# Reference baseline and the results page
# --------------------------------------------------------------------------------------------
def label_histogram(dataset: Dataset, num_classes: int, ignore_index: int = 255,
                    max_samples: int | None = None) -> np.ndarray:
    """Pixel counts per class over the label maps of ``dataset`` (ignored pixels skipped).

    For :class:`tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR` only the land-cover files are read (not the
    other four modalities), which matters on the real data's 16 000 training tiles.
    """
    from tdpcr_lib.core.legend import load_legend
    from tdpcr_lib.datasets.layout import read_modality

    counts = np.zeros(num_classes, dtype=np.int64)
    records = getattr(dataset, "records", None)
    root = getattr(dataset, "root", None)
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    legend = load_legend()
    for index in range(n):
        if records is not None and root is not None:
            raw = read_modality(Path(root) / records[index].paths["land_cover_maps"],
                                "land_cover_maps")
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

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = torch.full((optical.shape[0], self.num_classes, *optical.shape[-2:]), -10.0,
                            device=optical.device)
        logits[:, self.class_index] = 10.0
        return {"reconstruction": optical.float(), "segmentation": logits}


def majority_class_baseline(train_dataset: Dataset, eval_dataset: Dataset,
                            num_classes: int | None = None, batch_size: int = 8,
                            max_batches: int | None = None) -> dict[str, Any]:
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
    dict
        ``{"class": int, "class_name": str, "train_fraction": float, "seg": {...},
        "per_bucket": {bucket: seg block}}``.
    """
    from tdpcr_lib.core.legend import load_legend

    legend = load_legend()
    num_classes = num_classes or legend.num_classes
    counts = label_histogram(train_dataset, num_classes, legend.ignore_index,
                             max_samples=None if max_batches is None else max_batches * batch_size)
    if counts.sum() == 0:
        raise ValueError("the training split has no valid labels; cannot pick a majority class")
    majority = int(np.argmax(counts))
    accumulator = accumulate_metrics(_ConstantClassModel(majority, num_classes), eval_dataset,
                                     device="cpu", batch_size=batch_size, max_batches=max_batches)
    metrics = accumulator.compute()
    return {"class": majority, "class_name": legend.names[majority],
            "train_fraction": float(counts[majority] / counts.sum()), "seg": metrics["seg"],
            "per_bucket": {b: v.get("seg") for b, v in metrics.get("per_bucket", {}).items()}}


def majority_table(majority: dict[str, Any]):
    """The majority-class baseline as a table (rows: all/cloudy/clear and buckets)."""
    import pandas as pd

    rows = {region: {c: (majority["seg"].get(region) or {}).get(c) for c in SEG_COLUMNS}
            for region in REGIONS if isinstance(majority["seg"].get(region), dict)}
    for bucket, block in (majority.get("per_bucket") or {}).items():
        flat = _region_block(block)
        if flat is not None:
            rows[f"bucket {bucket}"] = {c: flat.get(c) for c in SEG_COLUMNS}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(SEG_COLUMNS)).astype(float)
    frame.index.name = f"majority class {majority['class']} ({majority['class_name']})"
    return frame
