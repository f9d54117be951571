"""The memory-mapped split cache serves exactly the GeoTIFF dataset's samples and guards itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tdpcr_lib.datasets.cache import (
    INDEX_FILE,
    CachedLuojiaSETOSFCR,
    build_cache,
    ensure_cache,
    read_index,
    verify_cache,
)
from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.luojiaset.layout import MODALITIES
from tdpcr_lib.transforms import TrainAugment


@pytest.fixture(scope="module")
def train_cache(tiny_luojiaset_root, tmp_path_factory):
    """A cache of the tiny twin's training split (read-only by convention)."""
    return build_cache(tiny_luojiaset_root, "train", cache_dir=tmp_path_factory.mktemp("cache") / "train")


def _assert_same_sample(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key, value in a.items():
        if torch.is_tensor(value):
            assert value.dtype == b[key].dtype, key
            assert torch.equal(value, b[key]), key
        else:
            assert value == b[key], key


def test_cached_samples_equal_geotiff_samples(tiny_luojiaset_root, train_cache):
    geotiff = LuojiaSETOSFCR(tiny_luojiaset_root, split="train")
    cached = CachedLuojiaSETOSFCR(train_cache)
    assert len(cached) == len(geotiff) == 40
    assert cached.manifest_hash == geotiff.manifest_hash
    assert cached.buckets == geotiff.buckets
    for index in range(len(geotiff)):
        _assert_same_sample(cached[index], geotiff[index])
    with pytest.raises(IndexError):
        cached.load_raw(len(cached))


def test_cache_index_records_shapes_dtypes_and_checksums(train_cache):
    index = read_index(train_cache)
    assert index["n"] == 40 and (index["height"], index["width"]) == (32, 32)
    assert index["shapes"]["s2"] == [40, 13, 32, 32]
    assert index["shapes"]["land_cover_maps"] == [40, 32, 32]
    assert index["dtypes"]["s2"] == "uint16"  # stored in file units, not as float32
    assert set(index["sha256"]) == set(MODALITIES)
    verify_cache(train_cache)  # freshly built: no error
    assert np.load(train_cache / "s1.npy", mmap_mode="r").dtype == np.float32


def test_corrupted_cache_is_reported_with_the_file(train_cache, tmp_path):
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(train_cache, copy)
    path = copy / "s1.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataIntegrityError, match="s1.npy: checksum mismatch"):
        verify_cache(copy)
    with pytest.raises(DataIntegrityError, match="s1.npy"):
        CachedLuojiaSETOSFCR(copy, verify=True)


def test_unfinished_cache_is_not_opened(tmp_path):
    with pytest.raises(FileNotFoundError, match=INDEX_FILE):
        CachedLuojiaSETOSFCR(tmp_path)


def test_ensure_cache_rebuilds_when_the_split_changed(tiny_luojiaset_root, tmp_path):
    cache_dir = tmp_path / "val"
    first = ensure_cache(tiny_luojiaset_root, "val", cache_dir=cache_dir)
    built = (cache_dir / "s2.npy").stat().st_mtime_ns
    again = ensure_cache(tiny_luojiaset_root, "val", cache_dir=cache_dir)
    assert (cache_dir / "s2.npy").stat().st_mtime_ns == built  # reused, not rebuilt
    index = json.loads((cache_dir / INDEX_FILE).read_text())
    index["manifest_hash"] = "from another split"
    (cache_dir / INDEX_FILE).write_text(json.dumps(index))
    rebuilt = ensure_cache(tiny_luojiaset_root, "val", cache_dir=cache_dir)
    assert rebuilt.manifest_hash == first.manifest_hash == again.manifest_hash
    assert (cache_dir / "s2.npy").stat().st_mtime_ns != built


def test_cache_works_in_worker_processes_with_augmentation(train_cache):
    dataset = CachedLuojiaSETOSFCR(train_cache, transforms=TrainAugment(crop_size=16))
    dataset[0]  # maps opened in the parent must keep working in the worker
    loader = DataLoader(dataset, batch_size=4, num_workers=1)
    batch = next(iter(loader))
    assert batch["optical"].shape == (4, 13, 16, 16) and batch["mask"].dtype == torch.int64
    assert float(batch["optical"].min()) >= 0 and float(batch["optical"].max()) <= 1
