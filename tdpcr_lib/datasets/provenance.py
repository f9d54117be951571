"""What a model was trained on: dataset, source, twin version and per-band input statistics.

Stored in every checkpoint (``config.json`` → ``training_data``) so that prediction can say when
a model meets data unlike its training data (:mod:`tdpcr_lib.inference.domain`): a model trained
on the synthetic twin applied to real files, or inputs whose bands lie far outside the training
inputs' range (e.g. Sentinel-2 without the +1000 DN offset the training tiles carried).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.portable import project_path

#: Training samples read for the input statistics (spread evenly over the training set).
STATS_SAMPLES = 32

#: Data source of each dataset class when the folder is not a twin.
_SOURCE_OF_CLASS = {"LuojiaSETOSFCR": "luojiaset", "SEN12MSCR": "sen12mscr"}

#: Quantiles stored per band (network-input units, i.e. after normalisation).
STAT_QUANTILES = (0.01, 0.5, 0.99)


def band_statistics(array: np.ndarray, bands: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per-band mean, std and 1/50/99 % quantiles of a (bands, N) array, ignoring non-finite."""
    out = {}
    for name, values in zip(bands, array, strict=True):
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        q = np.quantile(values, STAT_QUANTILES)
        out[name] = {
            "mean": round(float(values.mean()), 6),
            "std": round(float(values.std()), 6),
            "p01": round(float(q[0]), 6),
            "p50": round(float(q[1]), 6),
            "p99": round(float(q[2]), 6),
        }
    return out


def _root_of(dataset: Dataset) -> Path | None:
    while not hasattr(dataset, "root") and (hasattr(dataset, "base") or hasattr(dataset, "dataset")):
        dataset = getattr(dataset, "base", None) or dataset.dataset
    root = getattr(dataset, "root", None)
    return Path(root) if root is not None else None


def describe_training_data(
    dataset: Dataset, source: str | None = None, n_samples: int = STATS_SAMPLES
) -> dict[str, Any]:
    """Provenance and input statistics of a training set, for the checkpoint.

    Parameters
    ----------
    dataset
        The training dataset (or a subset/wrapper of one); samples carry ``optical`` (13, H, W)
        and ``sar`` (2, H, W) network inputs.
    source
        ``"luojiaset"`` or ``"sen12mscr"`` (a label given to the run). A data root holding a
        twin's ``synthetic.json`` is always ``"synthetic"``; without a label, real data is named
        after its dataset class.
    n_samples
        Samples read for the statistics (evenly spaced).

    Returns
    -------
    dict
        ``dataset`` (class name), ``source``, ``twin_version`` (None for real data),
        ``data_root``, ``n_train``, ``input_statistics`` ``{"optical": {band: stats}, "sar": ...}``
        in network-input units, and ``statistics_samples``.
    """
    root = _root_of(dataset)
    twin_info = None
    if root is not None and (root / "synthetic.json").is_file():
        twin_info = json.loads((root / "synthetic.json").read_text())
    base = dataset
    while hasattr(base, "base") or (hasattr(base, "dataset") and not hasattr(base, "root")):
        base = getattr(base, "base", None) or base.dataset
    # the folder decides, not a label: a twin is "synthetic" whatever the run was told
    if twin_info is not None:
        source = "synthetic"
    elif source in (None, "synthetic"):
        source = _SOURCE_OF_CLASS.get(type(base).__name__, type(base).__name__.lower())
    n = len(dataset)
    picks = np.unique(np.linspace(0, n - 1, min(n, n_samples)).astype(int)) if n else []
    optical, sar = [], []
    for index in picks:
        sample = dataset[int(index)]
        optical.append(np.asarray(sample["optical"], dtype=np.float32).reshape(13, -1))
        sar.append(np.asarray(sample["sar"], dtype=np.float32).reshape(2, -1))
    stats = {}
    if optical:
        stats = {
            "optical": band_statistics(np.concatenate(optical, axis=1), S2_BANDS),
            "sar": band_statistics(np.concatenate(sar, axis=1), S1_BANDS),
        }
    twin_version = None
    if twin_info is not None:
        twin_version = twin_info.get("twin_version") or twin_info.get("parameters", {}).get("twin_version") or "1.x"
    return {
        "dataset": type(base).__name__,
        "source": source,
        "twin_version": twin_version,
        "data_root": project_path(root),  # relative to the project: no machine paths in checkpoints
        "n_train": n,
        "input_statistics": stats,
        "statistics_samples": len(optical),
    }
