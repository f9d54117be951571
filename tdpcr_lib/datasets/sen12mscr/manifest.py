"""SEN12MS-CR split manifests: indexing the patches, the scene-level split, cloud cover, CSVs.

A manifest folder (default ``<root>/manifest/``) holds ``train.csv``, ``val.csv``, ``test.csv``
(header row :data:`~tdpcr_lib.datasets.sen12mscr.layout.CSV_COLUMNS`; paths relative to the
dataset root, land cover possibly through ``../`` when it lives elsewhere, empty when a patch has
none), ``checksums.sha256`` and ``split_config.json``. The split is the scene-level split of
UnCRtainTS (``tdpcr_lib/resources/sen12mscr_split.json``) matched exactly, or on request the
peers' leaky substring match (:mod:`tdpcr_lib.datasets.sen12mscr.splits`); the cloud cover of
every patch is the fraction of its cloud mask (s2cloudless by default, or the rule-based one:
:mod:`tdpcr_lib.datasets.sen12mscr.cloudmask`), and its bucket the five 20 % bins of LuojiaSET-OSFCR.
s2cloudless masks are kept in ``cloud_masks/`` beside the CSVs (the detector takes seconds per
patch on a CPU, so the dataset reads them instead of recomputing).
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdpcr_lib.core.io import atomic_write_json, atomic_write_text
from tdpcr_lib.core.legend import packaged_resource
from tdpcr_lib.datasets.containment import check_relative
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.manifests import (
    CHECKSUM_FILE,
    LOCAL_MANIFEST,
    check_manifest_out,
    manifest_hash,
    write_checksums,
)
from tdpcr_lib.datasets.samples import BUCKETS, SPLITS, SampleRecord, bucket_of, read_raster
from tdpcr_lib.datasets.sen12mscr.cloudmask import (
    CLOUD_MASK_DESCRIPTIONS,
    CLOUD_MASKS,
    DEFAULT_CLOUD_MASK,
    compute_cloud_mask,
)
from tdpcr_lib.datasets.sen12mscr.layout import (
    CSV_COLUMNS,
    LAND_COVER,
    MODALITIES,
    S1_NAME,
    SEASONS,
    SPECS,
    find_sen12mscr_root,
    how_to_get_sen12mscr,
    modality_dirs,
    parse_s1_name,
    patch_filename,
    patch_id,
    scene_dirs,
    scene_file,
    scene_key,
)
from tdpcr_lib.datasets.sen12mscr.splits import DEFAULT_SPLIT_PROTOCOL, SPLIT_PROTOCOLS, assign, leak_report

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
    if land_cover_root is not None and not lc_root.is_dir():
        raise DatasetNotFoundError(
            f"land-cover folder {lc_root} does not exist; give the "
            "SEN12MS land-cover folder (holding ROIs1158_spring/lc_1/...) "
            "or leave --land-cover out"
        )
    for season in SEASONS:
        s1_dirs = modality_dirs(root, season, "s1")
        dirs = {m: modality_dirs(root, season, m) for m in MODALITIES[1:]}
        lc_dirs = modality_dirs(lc_root, season, LAND_COVER)
        scenes = {int(d.name.split("_", 1)[1]): d for f in reversed(s1_dirs) for d in scene_dirs(f, "s1")}
        for number in sorted(scenes):
            scene_dir, scene = scenes[number], scenes[number].name.split("_", 1)[1]
            names = [
                p for p in scene_dir.glob(f"{season}_s1_{scene}_p*.tif") if S1_NAME.match(p.name)
            ]  # other files in the folder are not patches
            for s1_path in sorted(names, key=_natural):
                _, _, patch = parse_s1_name(s1_path.name)
                files = {"s1": s1_path}
                for modality, folders in dirs.items():
                    files[modality] = scene_file(
                        folders, root, season, modality, scene, patch_filename(season, scene, patch, modality)
                    )
                absent = [str(p.relative_to(root)) for p in files.values() if not p.is_file()]
                pid = patch_id(season, scene, patch)
                if absent:
                    missing[pid] = absent
                    continue
                paths = {m: p.relative_to(root).as_posix() for m, p in files.items()}
                if lc_dirs:
                    lc_path = scene_file(
                        lc_dirs, lc_root, season, LAND_COVER, scene, patch_filename(season, scene, patch, LAND_COVER)
                    )
                    if lc_path.is_file():
                        paths["land_cover"] = Path(os.path.relpath(lc_path, root)).as_posix()
                patches.append(Patch(pid, scene_key(season, scene), paths))
    return patches, missing


#: Folder of the manifest holding cached s2cloudless masks (``<patch id>.npz``).
MASK_DIR = "cloud_masks"


def mask_cache_path(manifest_dir: str | Path, sample_id: str) -> Path:
    """Where a patch's cached cloud mask lives."""
    return Path(manifest_dir) / MASK_DIR / f"{sample_id}.npz"


def read_cached_mask(path: Path) -> np.ndarray | None:
    """A cached mask (float32 H×W) or None when absent or unreadable."""
    try:
        with np.load(path) as saved:
            shape = tuple(int(v) for v in saved["shape"])
            bits = np.unpackbits(saved["bits"])[: shape[0] * shape[1]]
    except (OSError, KeyError, ValueError):
        return None
    return bits.reshape(shape).astype(np.float32)


def _write_cached_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(partial, bits=np.packbits(mask.astype(bool).ravel()), shape=np.array(mask.shape))
    os.replace(partial, path)


def patch_cloud_cover(path: str | Path, method: str = DEFAULT_CLOUD_MASK, cache: Path | None = None) -> float:
    """Fraction of the cloud mask (``method``) of a cloudy S2 file (validated on read); the
    mask is written to ``cache`` when given."""
    array, _ = read_raster(path, SPECS["s2_cloudy"], "s2_cloudy")
    mask = compute_cloud_mask(array, method)
    if cache is not None:
        _write_cached_mask(cache, mask)
    return float(mask.mean())


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
    cloud_mask: str = DEFAULT_CLOUD_MASK,
    split: str = DEFAULT_SPLIT_PROTOCOL,
    overwrite: bool = False,
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
    cloud_mask : {"s2cloudless", "rule-based"}
        The cloud mask behind the cloud cover and buckets (recorded in ``split_config.json``).
    split : {"scene-exact", "legacy-substring"}
        The split protocol (:mod:`tdpcr_lib.datasets.sen12mscr.splits`); ``legacy-substring``
        is the peers' leaky split, labelled as such in the manifest and in every report.
    overwrite : bool
        Replace manifest files tdpcr did not write (see
        :func:`~tdpcr_lib.datasets.manifests.check_manifest_out`).
    """
    if cloud_mask not in CLOUD_MASKS:
        raise ValueError(f"unknown cloud mask {cloud_mask!r}; choose from {', '.join(CLOUD_MASKS)}")
    if split not in SPLIT_PROTOCOLS:
        raise ValueError(f"unknown split protocol {split!r}; choose from {', '.join(SPLIT_PROTOCOLS)}")
    root = find_sen12mscr_root(root)
    out = Path(out) if out is not None else root / LOCAL_MANIFEST
    check_manifest_out(out, checksums, overwrite)
    patches, missing = discover_patches(root, land_cover_root)
    if not patches:
        raise DatasetNotFoundError(
            f"{root}: no complete SEN12MS-CR patches found (s1, s2 and "
            "s2_cloudy of the same name). " + how_to_get_sen12mscr(root)
        )
    if land_cover_root is not None and not any("land_cover" in p.paths for p in patches):
        # a mistyped --land-cover would otherwise train segmentation on all-ignore labels
        raise DatasetNotFoundError(
            f"land-cover folder {land_cover_root} holds no land cover for "
            f"any of the {len(patches)} patches (looked for "
            "<season>/lc_<scene>/<season>_lc_<scene>_p<patch>.tif); check "
            "the path, or leave --land-cover out"
        )
    if missing:
        examples = [f for files in list(missing.values())[:3] for f in files]
        warnings.warn(
            f"{root}: left out {len(missing)} incomplete patch(es); missing files, e.g. {examples}", stacklevel=2
        )
    assigned, unassigned = assign(patches, split)
    wanted = list({p.id: p for name in SPLITS for p in assigned[name]}.values())

    def cover_of(patch: Patch) -> float:
        cache = mask_cache_path(out, patch.id) if cloud_mask == "s2cloudless" else None
        return patch_cloud_cover(root / patch.paths["s2_cloudy"], cloud_mask, cache)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        covers = dict(zip((p.id for p in wanted), pool.map(cover_of, wanted), strict=True))
    rows = {name: [(p, covers[p.id]) for p in assigned[name]] for name in SPLITS}
    for name in SPLITS:
        atomic_write_text(out / f"{name}.csv", _csv_text(rows[name]))
    kept = wanted
    write_checksums(root, [rel for p in kept for rel in p.paths.values()], out, enabled=checksums, workers=workers)
    without_lc = [p.id for p in kept if "land_cover" not in p.paths]
    split_spec = packaged_resource("sen12mscr_split.json")
    config = {
        "dataset": DATASET_NAME,
        "split_protocol": split,
        "protocol": (
            "scene-level split of UnCRtainTS (exact scene match): every patch of a "
            "scene goes to the scene's split; scenes in no list are left out"
            if split == "scene-exact"
            else "LEAKY legacy-substring split: UnCRtainTS's `split_roi in path` substring "
            "match, which also puts patches of 6 test and 3 validation scenes into "
            "training; for measuring the leak only, not a clean test"
        ),
        "leak": leak_report({name: [p for p, _ in rows[name]] for name in SPLITS}),
        "split_source": split_spec["source"],
        "land_cover_root": (None if land_cover_root is None else str(Path(land_cover_root).expanduser().resolve())),
        "cloud_mask_method": cloud_mask,
        "cloud_mask": CLOUD_MASK_DESCRIPTIONS[cloud_mask],
        "cloud_mask_cache": MASK_DIR if cloud_mask == "s2cloudless" else None,
        "cloud_coverage_ranges": list(BUCKETS),
        "csv_columns": list(CSV_COLUMNS),
        "indexed_samples": len(patches),
        "incomplete_samples_left_out": sorted(missing),
        "unassigned_scenes_left_out": dict(sorted(unassigned.items())),
        "patches_without_land_cover": len(without_lc),
        "patches_without_land_cover_examples": without_lc[:20],
        "counts": {name: {b: sum(bucket_of(c) == b for _, c in rows[name]) for b in BUCKETS} for name in SPLITS},
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
            where = f"{path}:{line_no}"
            for column in (*MODALITIES, "land_cover"):
                # land cover may live beside the dataset (../SEN12MS/...): the dataset checks
                # that it resolves inside its land-cover root
                check_relative(cells[column], where, allow_parent=column == "land_cover")
            try:
                season, scene, patch = parse_s1_name(Path(cells["s1"]).name)
                cover = float(cells["cloud_cover"])
            except ValueError as err:
                raise DataIntegrityError(f"{where}: {err}") from err
            if not 0.0 <= cover <= 1.0 or cells["bucket"] not in BUCKETS:
                raise DataIntegrityError(
                    f"{where}: cloud_cover {cells['cloud_cover']!r}"
                    f" / bucket {cells['bucket']!r} are not a fraction in "
                    f"[0, 1] and one of {BUCKETS}"
                )
            # the written cover is rounded to 6 decimals: either side of a bin edge is accepted
            if cells["bucket"] not in {bucket_of(max(0.0, cover - 1e-6)), bucket_of(min(1.0, cover + 1e-6))}:
                raise DataIntegrityError(
                    f"{where}: cloud_cover {cover} belongs to bucket {bucket_of(cover)!r}, not {cells['bucket']!r}"
                )
            for column, modality in (("s2", "s2"), ("s2_cloudy", "s2_cloudy"), ("land_cover", LAND_COVER)):
                expected = patch_filename(season, scene, patch, modality)
                if cells[column] and Path(cells[column]).name != expected:
                    raise DataIntegrityError(
                        f"{where}: {column} {cells[column]!r} is not a file of patch "
                        f"{patch_id(season, scene, patch)} (expected {expected}); a row must "
                        "name the files of one patch"
                    )
            paths = {m: cells[m] for m in MODALITIES}
            if cells["land_cover"]:
                paths["land_cover"] = cells["land_cover"]
            records.append(SampleRecord(paths, cells["bucket"], patch_id(season, scene, patch)))
            covers.append(cover)
    return records, covers
