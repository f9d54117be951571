"""Archives that explode or escape (issue 26, item 2 and "absolute tar members"): decompression
limits checked before writing, nothing left behind by a failed extraction."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.luojiaset.acquire import prepare_luojiaset
from tdpcr_lib.datasets.sen12mscr.acquire import prepare_sen12mscr

BIG = 64 * 2**20  # 64 MiB of zeros: ~64 KB compressed, a 1000:1 bomb


def _zeros_zip(path: Path, size: int = BIG, name: str = "0-20%/s2/zeros.tif") -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(name, "w", force_zip64=True) as handle:
            block = bytes(2**20)
            for _ in range(size // len(block)):
                handle.write(block)
    return path


def _zeros_targz(path: Path, size: int = BIG, name: str = "ROIs1158_spring_s1/s1_1/x.tif") -> Path:
    class Zeros(io.RawIOBase):
        def __init__(self) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # noqa: ANN001
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(name)
        info.size = size
        tf.addfile(info, io.BufferedReader(Zeros()))
    return path


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("kind", ["zip", "targz"])
def test_a_decompression_bomb_is_refused_before_it_is_written(tmp_path, kind):
    if kind == "zip":
        archive = _zeros_zip(tmp_path / "LuojiaSET-OSFCR.zip")
        prepare = prepare_luojiaset
    else:
        archive = _zeros_targz(tmp_path / "ROIs1158_spring_s1.tar.gz")
        prepare = prepare_sen12mscr
    assert archive.stat().st_size < BIG // 200
    with pytest.raises(DataIntegrityError, match="decompression bomb|more than"):
        prepare(archive)
    assert _tree(tmp_path) == [archive.name]  # nothing written, nothing left


def test_a_member_larger_than_any_dataset_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("tdpcr_lib.datasets.archive_limits.MAX_MEMBER_BYTES", 2**20)
    archive = _zeros_zip(tmp_path / "data.zip", size=2 * 2**20)
    with pytest.raises(DataIntegrityError, match="a dataset file can be"):
        prepare_luojiaset(archive)
    assert _tree(tmp_path) == [archive.name]


@pytest.mark.parametrize("name", ["/abs/escape.txt", "/0-20%/s2/x.tif"])
def test_absolute_tar_members_are_refused_as_documented(tmp_path, name):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo(name)
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DataIntegrityError, match="unsafe member path"):
        prepare_luojiaset(archive)
    assert _tree(tmp_path) == [archive.name]


def test_an_archive_of_something_else_leaves_no_folder_behind(tmp_path):
    archive = tmp_path / "LuojiaSET-OSFCR.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("holiday/photo.txt", "not a dataset")
    with pytest.raises(DatasetNotFoundError):
        prepare_luojiaset(archive)
    assert _tree(tmp_path) == [archive.name]


def test_an_official_name_holding_no_patches_leaves_no_folder_behind(tmp_path):
    archive = tmp_path / "ROIs1158_spring_s1.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("ROIs1158_spring_s1/readme.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DatasetNotFoundError):
        prepare_sen12mscr(archive)
    assert _tree(tmp_path) == [archive.name]


def test_a_failed_extraction_into_a_new_folder_removes_the_folder(tmp_path):
    archive = _zeros_zip(tmp_path / "bomb.zip")
    with pytest.raises(DataIntegrityError):
        prepare_luojiaset(archive, extract_to=tmp_path / "new" / "deeper" / "data")
    assert not (tmp_path / "new").exists()


def test_ordinary_archives_still_extract(tmp_path, fake_luojiaset_root):
    import shutil

    archive = Path(
        shutil.make_archive(
            str(tmp_path / "LuojiaSET-OSFCR"), "zip", fake_luojiaset_root.parent, fake_luojiaset_root.name
        )
    )
    root = prepare_luojiaset(archive)
    assert (root / "0-20%" / "s2").is_dir()
