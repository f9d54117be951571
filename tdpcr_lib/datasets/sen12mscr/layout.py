"""The on-disk layout of SEN12MS-CR and of SEN12MS land cover: seasons, scenes, names, archives.

SEN12MS-CR (Ebel et al. 2021, mediaTUM record 1554803) extracts to one folder per season and
modality, one sub-folder per scene::

    <root>/ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p407.tif                 S1 VV, VH (float32 dB)
    <root>/ROIs1158_spring_s2/s2_1/ROIs1158_spring_s2_1_p407.tif                 clear S2 (uint16 DN)
    <root>/ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p407.tif   cloudy S2

SEN12MS (Schmitt et al. 2019, record 1474000) holds land cover for the same season/scene/patch
ids; its ``ROIs1158_spring_lc.tar.gz`` extracts to ``ROIs1158_spring/lc_1/ROIs1158_spring_lc_1_p407.tif``
(4 bands: IGBP, LCCS land cover, LCCS land use, LCCS surface hydrology). A ``ROIs1158_spring_lc/``
season folder (the same naming as the SEN12MS-CR folders) is accepted too, as is one extra folder
level named like the archive (what extracting ``X.tar.gz`` into a folder ``X`` gives).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.legend import packaged_resource
from tdpcr_lib.core.paths import DATA_DIR
from tdpcr_lib.datasets.samples import ModalitySpec, find_root

#: The four seasons (ROI set and meteorological season), in the order of the archives.
SEASONS: tuple[str, ...] = ("ROIs1158_spring", "ROIs1868_summer", "ROIs1970_fall", "ROIs2017_winter")

#: The three SEN12MS-CR modalities, then SEN12MS land cover (optional).
MODALITIES: tuple[str, ...] = ("s1", "s2", "s2_cloudy")
LAND_COVER = "lc"

#: Columns of a SEN12MS-CR split CSV (with a header row): the file paths relative to the dataset
#: root (land cover may be empty: none found), the cloud cover of the computed mask and its bucket.
CSV_COLUMNS: tuple[str, ...] = ("s1", "s2", "s2_cloudy", "land_cover", "cloud_cover", "bucket")

SEN12MSCR_URL = "https://mediatum.ub.tum.de/1554803"
SEN12MS_URL = "https://mediatum.ub.tum.de/1474000"
DEFAULT_SEN12MSCR_ROOT = DATA_DIR / "SEN12MS-CR"

_ARCHIVE_URL = "https://dataserv.ub.tum.de/s/{record}/download?path=/&files={name}"

#: MD5 of the SEN12MS land-cover archives as published by torchgeo (``SEN12MS.md5s``); none are
#: published for the SEN12MS-CR archives (their size is checked against the server's instead).
LAND_COVER_MD5: dict[str, str] = {
    "ROIs1158_spring_lc.tar.gz": "6e2e8fa8b8cba77ddab49fd20ff5c37b",
    "ROIs1868_summer_lc.tar.gz": "2c5bd80244440b6f9d54957c6b1f23d4",
    "ROIs1970_fall_lc.tar.gz": "9b126a68b0e3af260071b3139cb57cee",
    "ROIs2017_winter_lc.tar.gz": "0fa0420ef7bcfe4387c7e6fe226dc728",
}


@dataclass(frozen=True)
class Archive:
    """One official archive: file name, URL and (when published) its MD5."""

    name: str
    url: str
    md5: str | None = None


def official_archives(seasons: tuple[str, ...] = SEASONS, land_cover: bool = True) -> list[Archive]:
    """The official per-season archives: SEN12MS-CR s1, s2, s2_cloudy (record m1554803) and, with
    ``land_cover``, SEN12MS lc (record m1474000), as listed by SEN12MS-CR-TS ``util/dl_data.sh``
    and torchgeo's ``SEN12MS``."""
    unknown = sorted(set(seasons) - set(SEASONS))
    if unknown:
        raise ValueError(f"unknown season(s) {unknown}; choose from {SEASONS}")
    archives = []
    for season in seasons:
        for modality in MODALITIES:
            name = f"{season}_{modality}.tar.gz"
            archives.append(Archive(name, _ARCHIVE_URL.format(record="m1554803", name=name)))
        if land_cover:
            name = f"{season}_lc.tar.gz"
            archives.append(Archive(name, _ARCHIVE_URL.format(record="m1474000", name=name), LAND_COVER_MD5[name]))
    return archives


#: Expected header of each file. Float32 S2 (DN scale) is accepted besides the real uint16 so
#: user-converted data load; SEN12MS land cover is 16-bit, 8-bit copies load too.
SPECS: dict[str, ModalitySpec] = {
    "s1": ModalitySpec("s1", len(S1_BANDS), ("float32",), "Sentinel-1 VV/VH in dB"),
    "s2": ModalitySpec("s2", len(S2_BANDS), ("uint16", "float32"), "clear Sentinel-2 (target)"),
    "s2_cloudy": ModalitySpec("s2_cloudy", len(S2_BANDS), ("uint16", "float32"), "cloudy Sentinel-2 (input)"),
    LAND_COVER: ModalitySpec(
        LAND_COVER, 4, ("uint16", "uint8", "int16", "int32"), "SEN12MS land cover (IGBP, LCCS LC, LCCS LU, LCCS SH)"
    ),
}

S1_NAME = re.compile(r"^(?P<season>ROIs\d{4}_[a-z]+)_s1_(?P<scene>\d+)_p(?P<patch>\d+)\.tif$")


def patch_filename(season: str, scene: str | int, patch: str | int, modality: str) -> str:
    """``patch_filename("ROIs1158_spring", 1, 407, "s2_cloudy")`` → ``'ROIs1158_spring_s2_cloudy_1_p407.tif'``."""
    return f"{season}_{modality}_{scene}_p{patch}.tif"


def parse_s1_name(name: str) -> tuple[str, str, str]:
    """``'ROIs1158_spring_s1_1_p407.tif'`` → ``('ROIs1158_spring', '1', '407')``."""
    match = S1_NAME.match(name)
    if match is None:
        raise ValueError(
            f"not a SEN12MS-CR s1 file name: {name!r} (expected ROIsNNNN_<season>_s1_<scene>_p<patch>.tif)"
        )
    return match["season"], match["scene"], match["patch"]


def patch_id(season: str, scene: str | int, patch: str | int) -> str:
    """Stable sample id: ``'ROIs1158_spring_1_p407'``."""
    return f"{season}_{scene}_p{patch}"


def scene_key(season: str, scene: str | int) -> str:
    """The scene id of the split lists: ``'ROIs1158_spring/1'``."""
    return f"{season}/{int(scene)}"


def modality_dir(root: Path, season: str, modality: str) -> Path | None:
    """The folder holding the ``<modality>_<scene>`` scene folders of one season, or None.

    Tries ``<season>_<modality>/`` (SEN12MS-CR), ``<season>/`` (SEN12MS), and either one below a
    folder named like the archive.
    """
    wrapped = root / f"{season}_{modality}"
    for candidate in (wrapped, wrapped / f"{season}_{modality}", root / season, wrapped / season):
        if candidate.is_dir() and any(candidate.glob(f"{modality}_[0-9]*")):
            return candidate
    return None


def scene_split() -> dict[str, str]:
    """``{scene id: split}`` of the packaged UnCRtainTS split (``resources/sen12mscr_split.json``)."""
    spec = packaged_resource("sen12mscr_split.json")
    return {scene: split for split in ("train", "val", "test") for scene in spec[split]}


def how_to_get_sen12mscr(root: str | Path | None = None) -> str:
    """Instructions for obtaining SEN12MS-CR (+ SEN12MS land cover) and where to put it."""
    where = Path(root) if root is not None else Path("<DATA_ROOT>")
    return (
        f"SEN12MS-CR is open data (CC-BY 4.0) on mediaTUM ({SEN12MSCR_URL}; land cover from "
        f"SEN12MS, {SEN12MS_URL}). Download the per-season archives with `tdpcr data download "
        f"{where}` (resumable; about 470 GB once extracted) or by hand, then either extract them "
        f"so that the season folders (e.g. {where / 'ROIs1158_spring_s1'}) sit in {where}, or run "
        "notebooks/00_get_data.ipynb with SOURCE='sen12mscr' and DATA_ROOT pointing at the "
        "folder or at the folder holding the .tar.gz archives (they are extracted and verified)."
    )


def has_sen12mscr_layout(path: str | Path) -> bool:
    """True when ``path`` holds at least one SEN12MS-CR season/modality folder."""
    path = Path(path)
    return any(modality_dir(path, season, modality) is not None for season in SEASONS for modality in MODALITIES)


def find_sen12mscr_root(path: str | Path, max_depth: int = 3) -> Path:
    """``path`` or the first folder below it (breadth-first) holding SEN12MS-CR season folders."""
    return find_root(
        path,
        has_sen12mscr_layout,
        "holds no SEN12MS-CR season folder such as ROIs1158_spring_s1/s1_<scene>/",
        how_to_get_sen12mscr(path),
        max_depth,
    )
