"""LuojiaSET-OSFCR summaries (notebook 00): per-split statistics and header checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.datasets.base import HeaderReport
from tdpcr_lib.datasets.luojiaset.layout import MODALITIES, MODALITY_SPECS, read_modality
from tdpcr_lib.datasets.luojiaset.manifest import read_split_csv, resolve_manifest_dir
from tdpcr_lib.datasets.manifests import manifest_hash
from tdpcr_lib.datasets.samples import BUCKETS, SPLITS


# --------------------------------------------------------------------------------------------
# Summaries (for notebooks/00_get_data.ipynb)
# --------------------------------------------------------------------------------------------
def dataset_statistics(
    root: str | Path, manifest: str | Path | None = None, max_tiles_per_split: int | None = None
) -> dict[str, Any]:
    """Counts per split and bucket, land-cover histogram and cloud fraction per bucket.

    Only the land-cover and cloud-mask files are read. ``max_tiles_per_split`` caps how many tiles
    per split are read for the histograms (evenly spaced; counts always cover all samples).
    """
    legend = load_legend()
    root = Path(root)
    manifest_dir = resolve_manifest_dir(root, manifest)
    counts: dict[str, dict[str, int]] = {}
    histogram = np.zeros(256, dtype=np.int64)
    cloud_sum: dict[str, float] = dict.fromkeys(BUCKETS, 0.0)
    cloud_n: dict[str, int] = dict.fromkeys(BUCKETS, 0)
    tiles_read = 0
    for split in SPLITS:
        csv_path = manifest_dir / f"{split}.csv"
        records = read_split_csv(csv_path) if csv_path.is_file() else []
        counts[split] = {b: sum(r.bucket == b for r in records) for b in BUCKETS}
        if max_tiles_per_split is not None and len(records) > max_tiles_per_split:
            picks = np.linspace(0, len(records) - 1, max_tiles_per_split).round().astype(int)
            records = [records[i] for i in picks]
        for record in records:
            labels = read_modality(root / record.paths["land_cover_maps"], "land_cover_maps")
            histogram += np.bincount(np.clip(labels.ravel().astype(np.int64), 0, 255), minlength=256)
            cloud = read_modality(root / record.paths["cloud_detection_results"], "cloud_detection_results")
            cloud_sum[record.bucket] += float((cloud >= 0.5).mean())
            cloud_n[record.bucket] += 1
            tiles_read += 1
    known = {str(c): int(histogram[c]) for c in legend.codes}
    other = int(histogram.sum() - sum(known.values()))
    return {
        "manifest_dir": str(manifest_dir),
        "manifest_hash": manifest_hash(manifest_dir),
        "counts": counts,
        "n_samples": int(sum(sum(c.values()) for c in counts.values())),
        "class_histogram": {**known, "ignored": other},
        "class_fraction": {k: v / max(1, int(histogram.sum())) for k, v in {**known, "ignored": other}.items()},
        "mean_cloud_fraction": {b: (cloud_sum[b] / cloud_n[b] if cloud_n[b] else None) for b in BUCKETS},
        "tiles_read": tiles_read,
    }


def verify_headers(root: str | Path, manifest: str | Path | None = None, max_problems: int = 20) -> dict[str, Any]:
    """Open every file of every split and check band count, dtype and size (pixels not read).

    Cheap structural check of a freshly placed copy; problems are collected, not raised.

    Returns
    -------
    dict
        ``checked`` (files), ``problems`` (up to ``max_problems`` messages naming files) and
        ``n_problems``.
    """
    root = Path(root)
    manifest_dir = resolve_manifest_dir(root, manifest)
    headers = HeaderReport(max_problems)
    for split in SPLITS:
        csv_path = manifest_dir / f"{split}.csv"
        if not csv_path.is_file():
            headers.report(f"{csv_path}: missing split file")
            continue
        for record in read_split_csv(csv_path):
            headers.check_sample(record.id, [(root / record.paths[m], MODALITY_SPECS[m]) for m in MODALITIES])
    return headers.result()
