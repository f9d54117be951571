"""SEN12MS-CR summaries for notebook 00: counts, class histogram, cloud cover, header checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tdpcr_lib.datasets.base import HeaderReport
from tdpcr_lib.datasets.manifests import LOCAL_MANIFEST, manifest_hash
from tdpcr_lib.datasets.samples import BUCKETS, SPLITS
from tdpcr_lib.datasets.sen12mscr.dataset import SEN12MSCR
from tdpcr_lib.datasets.sen12mscr.layout import LAND_COVER, MODALITIES, SPECS
from tdpcr_lib.datasets.sen12mscr.manifest import read_sen12mscr_csv


def sen12mscr_statistics(
    root: str | Path, manifest: str | Path | None = None, max_tiles_per_split: int | None = None
) -> dict[str, Any]:
    """Counts per split and bucket, simplified-IGBP histogram and mean cloud cover per bucket.

    The same keys as :func:`tdpcr_lib.datasets.luojiaset.summary.dataset_statistics`. Cloud cover comes from
    the manifest; only land-cover files are read (``max_tiles_per_split`` caps them, evenly
    spaced). ``patches_without_land_cover`` counts patches whose mask is all ignore.
    """
    root = Path(root)
    manifest_dir = Path(manifest) if manifest is not None else root / LOCAL_MANIFEST
    counts: dict[str, dict[str, int]] = {}
    cloud: dict[str, list[float]] = {b: [] for b in BUCKETS}
    histogram = None
    legend = None
    without_lc = tiles_read = 0
    for split in SPLITS:
        dataset = SEN12MSCR(root, split, manifest=manifest_dir)
        legend = dataset.legend
        histogram = np.zeros(legend.num_classes + 1, dtype=np.int64) if histogram is None else histogram
        counts[split] = {b: dataset.buckets.count(b) for b in BUCKETS}
        for bucket, cover in zip(dataset.buckets, dataset.cloud_cover, strict=True):
            cloud[bucket].append(cover)
        without_lc += sum("land_cover" not in r.paths for r in dataset.records)
        picks = range(len(dataset))
        if max_tiles_per_split is not None and len(dataset) > max_tiles_per_split:
            picks = np.linspace(0, len(dataset) - 1, max_tiles_per_split).round().astype(int)
        for index in picks:
            raw = dataset.load_raw(int(index))
            labels = dataset.labels(raw, int(index)).ravel()
            known = labels[labels != legend.ignore_index]
            histogram[:-1] += np.bincount(known, minlength=legend.num_classes)[: legend.num_classes]
            histogram[-1] += labels.size - known.size
            tiles_read += 1
    assert legend is not None and histogram is not None
    table = {**{str(c): int(histogram[c]) for c in legend.codes}, "ignored": int(histogram[-1])}
    total = max(1, int(histogram.sum()))
    return {
        "manifest_dir": str(manifest_dir),
        "manifest_hash": manifest_hash(manifest_dir),
        "counts": counts,
        "n_samples": int(sum(sum(c.values()) for c in counts.values())),
        "class_histogram": table,
        "class_fraction": {k: v / total for k, v in table.items()},
        "mean_cloud_fraction": {b: (float(np.mean(v)) if v else None) for b, v in cloud.items()},
        "patches_without_land_cover": without_lc,
        "tiles_read": tiles_read,
    }


def verify_sen12mscr_headers(
    root: str | Path, manifest: str | Path | None = None, max_problems: int = 20
) -> dict[str, Any]:
    """Open every file of every split (band count, dtype, size; pixels not read)."""
    root = Path(root)
    manifest_dir = Path(manifest) if manifest is not None else root / LOCAL_MANIFEST
    headers = HeaderReport(max_problems)
    for split in SPLITS:
        csv_path = manifest_dir / f"{split}.csv"
        if not csv_path.is_file():
            headers.report(f"{csv_path}: missing split file")
            continue
        records, _ = read_sen12mscr_csv(csv_path)
        for record in records:
            files = [(root / record.paths[m], SPECS[m]) for m in MODALITIES]
            if "land_cover" in record.paths:
                files.append((root / record.paths["land_cover"], SPECS[LAND_COVER]))
            headers.check_sample(record.id, files)
    return headers.result()
