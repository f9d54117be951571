"""LuojiaSET-OSFCR's split manifest: the first author's 80/10/10 protocol, its CSVs and the
comparison with the author's published split (checksums: :mod:`tdpcr_lib.datasets.manifests`)."""

from __future__ import annotations

import csv
import io
import json
import random
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from tdpcr_lib.core.io import atomic_write_json, atomic_write_text
from tdpcr_lib.core.paths import MANIFEST_DIR
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.luojiaset.layout import (
    MODALITIES,
    discover_samples,
    find_dataset_root,
    how_to_get_luojiaset,
    sample_id,
)
from tdpcr_lib.datasets.manifests import (
    CHECKSUM_FILE,
    LOCAL_MANIFEST,
    manifest_hash,
    write_checksums,
)
from tdpcr_lib.datasets.samples import BUCKETS, SPLITS, SampleRecord

#: The split-protocol notes of the real data (``data_manifests/luojiaset_osfcr/`` of a checkout).
#: The split CSVs are not shipped; :func:`resolve_manifest_dir` falls back to this folder only when
#: ``<root>/manifest/`` does not exist, e.g. if you drop the author's published CSVs here.
LUOJIASET_MANIFEST_DIR = MANIFEST_DIR / "luojiaset_osfcr"


def split_samples(
    samples: Sequence[SampleRecord], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 42
) -> dict[str, list[SampleRecord]]:
    """Stratified split: one ``random.Random(seed)`` shuffles each bucket's list in bucket order.

    Per bucket of ``n`` samples: train gets ``int(n * ratios[0])``, val ``int(n * ratios[1])``,
    test the rest. The input order within a bucket must be the name-sorted order of
    :func:`discover_samples` for the result to equal the author's split.
    """
    if abs(sum(ratios) - 1.0) > 1e-6 or min(ratios) < 0:
        raise ValueError(f"split ratios must be non-negative and sum to 1, got {ratios}")
    rng = random.Random(seed)
    by_bucket: dict[str, list[SampleRecord]] = {b: [] for b in BUCKETS}
    for sample in samples:
        by_bucket[sample.bucket].append(sample)
    splits: dict[str, list[SampleRecord]] = {s: [] for s in SPLITS}
    for bucket in BUCKETS:
        group = list(by_bucket[bucket])
        rng.shuffle(group)
        n_train = int(len(group) * ratios[0])
        n_val = int(len(group) * ratios[1])
        splits["train"] += group[:n_train]
        splits["val"] += group[n_train : n_train + n_val]
        splits["test"] += group[n_train + n_val :]
    return splits


def _csv_text(records: Iterable[SampleRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for record in records:
        writer.writerow([record.paths[m] for m in MODALITIES])
    return buffer.getvalue()


def write_manifest(
    root: str | Path,
    out: str | Path | None = None,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 42,
    checksums: bool = True,
    workers: int = 4,
    extra_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``train/val/test.csv``, ``checksums.sha256`` and ``split_config.json`` for a dataset.

    Parameters
    ----------
    root : path
        Dataset root (a folder above it is searched for the bucket folders).
    out : path, optional
        Manifest folder; default ``<root>/manifest/`` beside the data (where
        ``LuojiaSETOSFCR(root)`` looks first, as for the synthetic twin). Pass another folder when
        the dataset is read-only, and give it to ``LuojiaSETOSFCR(root, manifest=...)``.
    ratios, seed
        Split protocol (the author's: 80/10/10, seed 42); see :func:`split_samples`.
    checksums : bool
        Hash every file (sha256, ``workers`` threads). Slow on the full 84 GB dataset.
    extra_config : mapping, optional
        Extra keys merged into ``split_config.json``.

    Returns
    -------
    Path
        The manifest folder.
    """
    root = find_dataset_root(root)
    out = Path(out) if out is not None else root / LOCAL_MANIFEST
    samples, missing = discover_samples(root)
    if not samples:
        raise DatasetNotFoundError(
            f"{root}: no complete samples found (looked for "
            f"<bucket>/s2/ROIs_*_s2_p*.tif). " + how_to_get_luojiaset(root)
        )
    if missing:
        examples = [f for files in list(missing.values())[:3] for f in files]
        warnings.warn(
            f"{root}: left out {len(missing)} incomplete sample(s); missing files, e.g. {examples}", stacklevel=2
        )
    splits = split_samples(samples, ratios, seed)
    for split, records in splits.items():
        atomic_write_text(out / f"{split}.csv", _csv_text(records))
    write_checksums(root, [p for s in samples for p in s.paths.values()], out, enabled=checksums, workers=workers)
    counts = {split: dict(Counter(r.bucket for r in records)) for split, records in splits.items()}
    extra = dict(extra_config) if extra_config else {}
    reference = {} if extra.get("source") == "synthetic" else author_reference()
    config = {
        "dataset": "LuojiaSET-OSFCR",
        "protocol": (
            "stratified by bucket; one random.Random(split_seed) shuffles each bucket's "
            "name-sorted s2 list in bucket order; train=int(n*train_ratio), "
            "val=int(n*val_ratio), test=rest (first author's CloudSeg harness)"
        ),
        "train_ratio": ratios[0],
        "val_ratio": ratios[1],
        "test_ratio": ratios[2],
        "split_seed": seed,
        "cloud_coverage_ranges": list(BUCKETS),
        "csv_columns": list(MODALITIES),
        "indexed_samples": len(samples),
        "incomplete_samples_left_out": sorted(missing),
        "counts": {split: {b: counts[split].get(b, 0) for b in BUCKETS} for split in SPLITS},
        "checksums": CHECKSUM_FILE if checksums else None,
        "manifest_hash": manifest_hash(out),
        **extra,
    }
    if reference:
        config["author_reference"] = reference
        config["author_split_check"] = compare_with_author_split(splits, reference)
        if config["author_split_check"] == "mismatch":
            warnings.warn(
                f"{root}: the regenerated test split does not start with the rows of "
                "the author's published test.csv; the file list differs from theirs",
                stacklevel=2,
            )
    atomic_write_json(out / "split_config.json", config)
    return out


def author_reference() -> dict[str, Any]:
    """What is known of the first author's published split (number of indexed samples, first
    rows of their ``test.csv``): the packaged ``tdpcr_lib/resources/luojiaset_author_split.json``."""
    text = (files("tdpcr_lib.resources") / "luojiaset_author_split.json").read_text()
    reference = json.loads(text)
    reference.pop("description", None)
    return reference


def compare_with_author_split(splits: Mapping[str, Sequence[SampleRecord]], reference: Mapping[str, Any]) -> str:
    """``"match"`` / ``"mismatch"`` against the author's first test rows, or why not comparable.

    Only meaningful on the complete dataset (the author indexed ``indexed_samples`` samples): any
    other file list legitimately shuffles differently.
    """
    expected_n = reference.get("indexed_samples")
    n = sum(len(v) for v in splits.values())
    first = list(reference.get("test_first_s2", []))
    if not first or expected_n is None:
        return "no reference"
    if n != expected_n:
        return f"not comparable ({n} samples; the author indexed {expected_n})"
    got = [r.paths["s2"] for r in splits["test"][: len(first)]]
    return "match" if got == first else "mismatch"


def read_split_csv(path: str | Path) -> list[SampleRecord]:
    """Read a split CSV (author's format; an optional header row naming the columns is skipped)."""
    path = Path(path)
    records: list[SampleRecord] = []
    with open(path, newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if [c.strip() for c in row] == list(MODALITIES):
                continue
            if len(row) != len(MODALITIES):
                raise DataIntegrityError(
                    f"{path}:{line_no}: expected {len(MODALITIES)} columns ({', '.join(MODALITIES)}), found {len(row)}"
                )
            paths = dict(zip(MODALITIES, (c.strip() for c in row), strict=True))
            bucket = paths["s2"].split("/", 1)[0]
            if bucket not in BUCKETS:
                raise DataIntegrityError(
                    f"{path}:{line_no}: {paths['s2']!r} does not start with a bucket folder {BUCKETS}"
                )
            try:
                sid = sample_id(paths["s2"])
            except ValueError as err:
                raise DataIntegrityError(f"{path}:{line_no}: {err}") from err
            records.append(SampleRecord(paths, bucket, sid))
    return records


def resolve_manifest_dir(root: str | Path, manifest: str | Path | None = None) -> Path:
    """``manifest`` if given; else ``<root>/manifest/`` if it exists; else
    :data:`LUOJIASET_MANIFEST_DIR` (where the author's published CSVs may be dropped)."""
    if manifest is not None:
        return Path(manifest)
    local = Path(root) / LOCAL_MANIFEST
    return local if local.is_dir() else LUOJIASET_MANIFEST_DIR
