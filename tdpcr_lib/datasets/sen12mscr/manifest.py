"""SEN12MS-CR split manifests: indexing the patches, the scene-level split, cloud cover, CSVs.

A manifest folder (default ``<root>/manifest/``) holds ``train.csv``, ``val.csv``, ``test.csv``
(header row :data:`~tdpcr_lib.datasets.sen12mscr.layout.CSV_COLUMNS`; paths relative to the
dataset root, land cover possibly through ``../`` when it lives elsewhere, empty when a patch has
none), ``checksums.sha256`` and ``split_config.json``. The split is the scene-level split of
UnCRtainTS (``tdpcr_lib/resources/sen12mscr_split.json``); the cloud cover of every patch is the
fraction of its computed cloud mask (:mod:`tdpcr_lib.datasets.sen12mscr.cloudmask`), and its bucket the
five 20 % bins of LuojiaSET-OSFCR.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tdpcr_lib.core.io import atomic_write_json, atomic_write_text
from tdpcr_lib.core.legend import packaged_resource
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.manifests import (
    CHECKSUM_FILE,
    LOCAL_MANIFEST,
    manifest_hash,
    write_checksums,
)
from tdpcr_lib.datasets.samples import BUCKETS, SPLITS, SampleRecord, bucket_of, read_raster
from tdpcr_lib.datasets.sen12mscr.cloudmask import CLOUD_THRESHOLD, cloud_mask
from tdpcr_lib.datasets.sen12mscr.layout import (
    CSV_COLUMNS,
    LAND_COVER,
    MODALITIES,
    S1_NAME,
    SEASONS,
    SPECS,
    find_sen12mscr_root,
    how_to_get_sen12mscr,
    modality_dir,
    parse_s1_name,
    patch_filename,
    patch_id,
    scene_key,
    scene_split,
)

DATASET_NAME = "SEN12MS-CR"


@dataclass(frozen=True)
class Patch:
    """One indexed patch: its relative paths (``land_cover`` only when found) and scene id."""

    id: str
    scene: str
    paths: Mapping[str, str]


def _natural(path: Path) -> int:
    return int(path.name.rsplit("_", 1)[-1].removeprefix("p").removesuffix(".tif"))


def discover_patches(
    root: str | Path, land_cover_root: str | Path | None = None
) -> tuple[list[Patch], dict[str, list[str]]]:
    """Index the patches as UnCRtainTS does: every ``s1`` file, paired by name with ``s2`` and
    ``s2_cloudy`` (seasons in :data:`SEASONS` order, scenes and patches in numeric order).

    Returns the complete patches and, for each incomplete one (left out), its missing files.
    Land cover is looked up in ``land_cover_root`` (default ``root``); a patch without it is kept.
    """
    root = Path(root)
    lc_root = Path(land_cover_root) if land_cover_root is not None else root
    patches: list[Patch] = []
    missing: dict[str, list[str]] = {}
    for season in SEASONS:
        s1_dir = modality_dir(root, season, "s1")
        if s1_dir is None:
            continue
        dirs = {m: modality_dir(root, season, m) for m in MODALITIES[1:]}
        lc_dir = modality_dir(lc_root, season, LAND_COVER)
        for scene_dir in sorted(s1_dir.glob("s1_[0-9]*"), key=_natural):
            scene = scene_dir.name.split("_", 1)[1]
            names = [
                p for p in scene_dir.glob(f"{season}_s1_{scene}_p*.tif") if S1_NAME.match(p.name)
            ]  # other files in the folder are not patches
            for s1_path in sorted(names, key=_natural):
                _, _, patch = parse_s1_name(s1_path.name)
                files = {"s1": s1_path}
                for modality, folder in dirs.items():
                    base = folder if folder is not None else root / f"{season}_{modality}"
                    files[modality] = base / f"{modality}_{scene}" / patch_filename(season, scene, patch, modality)
                absent = [str(p.relative_to(root)) for p in files.values() if not p.is_file()]
                pid = patch_id(season, scene, patch)
                if absent:
                    missing[pid] = absent
                    continue
                paths = {m: p.relative_to(root).as_posix() for m, p in files.items()}
                if lc_dir is not None:
                    lc_path = lc_dir / f"lc_{scene}" / patch_filename(season, scene, patch, LAND_COVER)
                    if lc_path.is_file():
                        paths["land_cover"] = Path(os.path.relpath(lc_path, root)).as_posix()
                patches.append(Patch(pid, scene_key(season, scene), paths))
    return patches, missing


def patch_cloud_cover(path: str | Path) -> float:
    """Fraction of the computed cloud mask of a cloudy S2 file (validated on read)."""
    array, _ = read_raster(path, SPECS["s2_cloudy"], "s2_cloudy")
    return float(cloud_mask(array).mean())


def _csv_text(rows: list[tuple[Patch, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for patch, cover in rows:
        writer.writerow(
            [
                patch.paths["s1"],
                patch.paths["s2"],
                patch.paths["s2_cloudy"],
                patch.paths.get("land_cover", ""),
                f"{cover:.6f}",
                bucket_of(cover),
            ]
        )
    return buffer.getvalue()


def write_sen12mscr_manifest(
    root: str | Path,
    land_cover_root: str | Path | None = None,
    out: str | Path | None = None,
    checksums: bool = True,
    workers: int = 4,
    extra_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write the split CSVs, ``checksums.sha256`` and ``split_config.json`` of a SEN12MS-CR copy.

    Parameters
    ----------
    root : path
        The SEN12MS-CR folder (or a folder above it).
    land_cover_root : path, optional
        The SEN12MS land-cover folder (default: ``root`` itself). Patches without land cover are
        kept (their ``mask`` is all ignore) and counted in ``split_config.json``.
    out : path, optional
        Manifest folder (default ``<root>/manifest/``, where ``SEN12MSCR(root)`` looks).
    checksums : bool
        sha256 of every file (slow on the full dataset, about 470 GB).
    workers : int
        Threads for the cloud masks and the hashes.
    """
    root = find_sen12mscr_root(root)
    out = Path(out) if out is not None else root / LOCAL_MANIFEST
    patches, missing = discover_patches(root, land_cover_root)
    if not patches:
        raise DatasetNotFoundError(
            f"{root}: no complete SEN12MS-CR patches found (s1, s2 and "
            "s2_cloudy of the same name). " + how_to_get_sen12mscr(root)
        )
    if missing:
        examples = [f for files in list(missing.values())[:3] for f in files]
        warnings.warn(
            f"{root}: left out {len(missing)} incomplete patch(es); missing files, e.g. {examples}", stacklevel=2
        )
    assignment = scene_split()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        covers = list(pool.map(lambda p: patch_cloud_cover(root / p.paths["s2_cloudy"]), patches))
    rows: dict[str, list[tuple[Patch, float]]] = {s: [] for s in SPLITS}
    unassigned: Counter[str] = Counter()
    for patch, cover in zip(patches, covers, strict=True):
        split = assignment.get(patch.scene)
        if split is None:
            unassigned[patch.scene] += 1
        else:
            rows[split].append((patch, cover))
    for split in SPLITS:
        atomic_write_text(out / f"{split}.csv", _csv_text(rows[split]))
    kept = [p for split in SPLITS for p, _ in rows[split]]
    write_checksums(root, [rel for p in kept for rel in p.paths.values()], out, enabled=checksums, workers=workers)
    without_lc = [p.id for p in kept if "land_cover" not in p.paths]
    split_spec = packaged_resource("sen12mscr_split.json")
    config = {
        "dataset": DATASET_NAME,
        "protocol": "scene-level split of UnCRtainTS (exact scene match): every patch of a "
        "scene goes to the scene's split; scenes in no list are left out",
        "split_source": split_spec["source"],
        "land_cover_root": None if land_cover_root is None else str(Path(land_cover_root)),
        "cloud_mask": f"rule-based cloud score of DSen2-CR/UnCRtainTS, threshold "
        f"{CLOUD_THRESHOLD} (tdpcr_lib.datasets.sen12mscr.cloudmask)",
        "cloud_coverage_ranges": list(BUCKETS),
        "csv_columns": list(CSV_COLUMNS),
        "indexed_samples": len(patches),
        "incomplete_samples_left_out": sorted(missing),
        "unassigned_scenes_left_out": dict(sorted(unassigned.items())),
        "patches_without_land_cover": len(without_lc),
        "patches_without_land_cover_examples": without_lc[:20],
        "counts": {s: {b: sum(bucket_of(c) == b for _, c in rows[s]) for b in BUCKETS} for s in SPLITS},
        "checksums": CHECKSUM_FILE if checksums else None,
        "manifest_hash": manifest_hash(out),
        **(dict(extra_config) if extra_config else {}),
    }
    atomic_write_json(out / "split_config.json", config)
    return out


def read_sen12mscr_csv(path: str | Path) -> tuple[list[SampleRecord], list[float]]:
    """Read a SEN12MS-CR split CSV: the records (paths, bucket, id) and the cloud covers."""
    path = Path(path)
    records: list[SampleRecord] = []
    covers: list[float] = []
    with open(path, newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header is None or [c.strip() for c in header] != list(CSV_COLUMNS):
            raise DataIntegrityError(
                f"{path}:1: not a SEN12MS-CR split file (the header must "
                f"be {','.join(CSV_COLUMNS)}); write it with "
                "`tdpcr data manifest ROOT --source sen12mscr`"
            )
        for line_no, row in enumerate(rows, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(CSV_COLUMNS):
                raise DataIntegrityError(
                    f"{path}:{line_no}: expected {len(CSV_COLUMNS)} columns "
                    f"({', '.join(CSV_COLUMNS)}), found {len(row)}"
                )
            cells = dict(zip(CSV_COLUMNS, (c.strip() for c in row), strict=True))
            try:
                season, scene, patch = parse_s1_name(Path(cells["s1"]).name)
                cover = float(cells["cloud_cover"])
            except ValueError as err:
                raise DataIntegrityError(f"{path}:{line_no}: {err}") from err
            if not 0.0 <= cover <= 1.0 or cells["bucket"] not in BUCKETS:
                raise DataIntegrityError(
                    f"{path}:{line_no}: cloud_cover {cells['cloud_cover']!r}"
                    f" / bucket {cells['bucket']!r} are not a fraction in "
                    f"[0, 1] and one of {BUCKETS}"
                )
            paths = {m: cells[m] for m in MODALITIES}
            if cells["land_cover"]:
                paths["land_cover"] = cells["land_cover"]
            records.append(SampleRecord(paths, cells["bucket"], patch_id(season, scene, patch)))
            covers.append(cover)
    return records, covers
