"""Hostile and careless split manifests (issue 26, items 1, 7, 8, 13): paths that escape the
dataset root, rows that mix patches or splits, SEN12MS-CR folder mistakes."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pytest

from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.sen12mscr.dataset import SEN12MSCR
from tdpcr_lib.datasets.sen12mscr.manifest import discover_patches, write_sen12mscr_manifest


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _escape(root: Path, column: int, how: str, rows: list[list[str]]) -> str:
    """Make row 1's file of ``column`` point outside ``root`` (a valid copy of the real file lies
    there, so only containment can refuse it); returns the new manifest path."""
    rel = rows[1][column]
    original = root / rel
    outside = root.parent / "OUTSIDE"
    outside.mkdir(exist_ok=True)
    target = outside / original.name
    shutil.copy(original, target)
    if how == "dotdot":
        return f"../OUTSIDE/{original.name}"
    if how == "absolute":
        return str(target)
    original.unlink()  # symlink: the manifest path is unchanged, the file is a link out
    original.symlink_to(target)
    return rel


def _add_checksum(manifest: Path, root: Path, rel: str) -> None:
    path = manifest / "checksums.sha256"
    text = path.read_text() + f"{_sha(root / rel if not Path(rel).is_absolute() else Path(rel))}  {rel}\n"
    path.write_text(text)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
@pytest.mark.parametrize("column", [0, 1, 2])  # s1, s2, s2_cloudy
@pytest.mark.parametrize("checksum", [False, True])
def test_sen12mscr_manifest_paths_outside_the_root_are_refused(fake_sen12mscr_copy, how, column, checksum):
    csv_path = fake_sen12mscr_copy / "manifest" / "train.csv"
    rows = _rows(csv_path)
    rows[1][column] = _escape(fake_sen12mscr_copy, column, how, rows)
    _write_rows(csv_path, rows)
    _add_checksum(fake_sen12mscr_copy / "manifest", fake_sen12mscr_copy, rows[1][column])
    with pytest.raises(DataIntegrityError, match="refused|outside"):
        ds = SEN12MSCR(fake_sen12mscr_copy, "train", checksum=checksum)
        ds[0]


def test_sen12mscr_land_cover_outside_its_root_is_refused(fake_sen12mscr_copy):
    csv_path = fake_sen12mscr_copy / "manifest" / "train.csv"
    rows = _rows(csv_path)
    lc = rows[1][3]
    assert lc
    outside = fake_sen12mscr_copy.parent / "OUTSIDE"
    outside.mkdir()
    shutil.copy(fake_sen12mscr_copy / lc, outside / Path(lc).name)
    rows[1][3] = f"../OUTSIDE/{Path(lc).name}"
    _write_rows(csv_path, rows)
    with pytest.raises(DataIntegrityError, match="outside"):
        SEN12MSCR(fake_sen12mscr_copy, "train")[0]


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
@pytest.mark.parametrize("checksum", [False, True])
def test_luojiaset_manifest_paths_outside_the_root_are_refused(fake_luojiaset_copy, how, checksum):
    root = fake_luojiaset_copy
    csv_path = root / "manifest" / "train.csv"
    rows = _rows(csv_path)
    rows = [["header"]] + rows  # _escape works on row 1
    rows[1][2] = _escape(root, 2, how, rows)  # s1: the column no other check looks at
    rows = rows[1:]
    _write_rows(csv_path, rows)
    _add_checksum(root / "manifest", root, rows[0][2])
    with pytest.raises(DataIntegrityError, match="refused|outside"):
        ds = LuojiaSETOSFCR(root, "train", checksum=checksum)
        ds[0]


# ---- item 7: split CSV content ---------------------------------------------------------------
@pytest.mark.parametrize("probe", ["repeated_row", "test_rows_in_train", "mixed_patch", "cover_vs_bucket"])
def test_sen12mscr_split_content_is_checked(fake_sen12mscr_copy, probe):
    manifest = fake_sen12mscr_copy / "manifest"
    rows = _rows(manifest / "train.csv")
    if probe == "repeated_row":
        rows.append(rows[1])
    elif probe == "test_rows_in_train":
        rows += _rows(manifest / "test.csv")[1:]
    elif probe == "mixed_patch":
        rows[1][1] = rows[2][1]  # s2 of another patch of the same scene
    else:
        rows[1][4], rows[1][5] = "0.950000", "0-20%"
    _write_rows(manifest / "train.csv", rows)
    with pytest.raises(DataIntegrityError, match="more than once|also listed|one patch|bucket"):
        SEN12MSCR(fake_sen12mscr_copy, "train", checksum=probe == "mixed_patch")


@pytest.mark.parametrize("probe", ["repeated_row", "test_rows_in_train", "mixed_patch"])
def test_luojiaset_split_content_is_checked(fake_luojiaset_copy, probe):
    manifest = fake_luojiaset_copy / "manifest"
    rows = _rows(manifest / "train.csv")
    if probe == "repeated_row":
        rows.append(rows[0])
    elif probe == "test_rows_in_train":
        rows += _rows(manifest / "test.csv")
    else:
        rows[0][2] = rows[1][2]  # s1 of another patch
    _write_rows(manifest / "train.csv", rows)
    with pytest.raises(DataIntegrityError, match="more than once|also listed|one patch"):
        LuojiaSETOSFCR(fake_luojiaset_copy, "train")


# ---- items 8 and 13: SEN12MS-CR folder mistakes ----------------------------------------------
def test_scene_in_an_archive_named_wrapper_folder_is_indexed(fake_sen12mscr_copy):
    before, _ = discover_patches(fake_sen12mscr_copy)
    season = fake_sen12mscr_copy / "ROIs1158_spring_s1"
    wrapper = season / "ROIs1158_spring_s1"
    wrapper.mkdir()
    (season / "s1_17").rename(wrapper / "s1_17")
    after, missing = discover_patches(fake_sen12mscr_copy)
    assert not missing
    assert len(after) == len(before)
    assert {p.id for p in after} == {p.id for p in before}


@pytest.mark.parametrize("stray", ["s1_1_backup", "s1_1.zip", "s1_17_old"])
def test_stray_entries_in_a_season_folder_are_not_scenes(fake_sen12mscr_copy, stray):
    before, _ = discover_patches(fake_sen12mscr_copy)
    path = fake_sen12mscr_copy / "ROIs1158_spring_s1" / stray
    if stray.endswith(".zip"):
        path.write_bytes(b"PK\x05\x06" + bytes(18))
    else:
        shutil.copytree(fake_sen12mscr_copy / "ROIs1158_spring_s1" / "s1_1", path)
    after, _ = discover_patches(fake_sen12mscr_copy)
    assert [p.id for p in after] == [p.id for p in before]


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_mistyped_land_cover_folder_is_an_error(fake_sen12mscr_copy, tmp_path, where):
    lc = tmp_path / "SEN12MS-typo"
    if where == "empty":
        lc.mkdir()
    with pytest.raises(DatasetNotFoundError, match="land-cover folder"):
        write_sen12mscr_manifest(fake_sen12mscr_copy, land_cover_root=lc, out=tmp_path / "m", checksums=False)
    assert not (tmp_path / "m" / "train.csv").exists()


def test_legitimate_land_cover_elsewhere_still_loads(fake_sen12mscr_apart):
    data, lc = fake_sen12mscr_apart
    write_sen12mscr_manifest(data, land_cover_root=lc)
    ds = SEN12MSCR(data, "val", checksum=True)
    assert (ds[0]["mask"] != 255).any()
