"""Tests of the LuojiaSET-OSFCR data layer (tdpcr_lib.datasets.luojiaset) on fake data with the real headers."""

from __future__ import annotations

import csv
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.luojiaset.acquire import prepare_luojiaset
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.luojiaset.layout import (
    MODALITIES,
    discover_samples,
    modality_filename,
    parse_s2_name,
    sample_relpaths,
)
from tdpcr_lib.datasets.luojiaset.manifest import (
    LUOJIASET_MANIFEST_DIR,
    read_split_csv,
    resolve_manifest_dir,
    split_samples,
    write_manifest,
)
from tdpcr_lib.datasets.luojiaset.summary import dataset_statistics
from tdpcr_lib.datasets.manifests import manifest_hash
from tdpcr_lib.datasets.samples import BUCKET_CENTRES, BUCKETS, SampleRecord, bucket_sort_key
from tdpcr_lib.transforms import TrainAugment

N_PER_BUCKET = 10  # tests/data/luojiaset/make_fake.py default
SIZE = 32


# ------------------------------------------------------------------------------------ helpers
def _record(ds: LuojiaSETOSFCR, sample_id: str) -> tuple[int, SampleRecord]:
    for index, record in enumerate(ds.records):
        if record.id == sample_id:
            return index, record
    raise KeyError(sample_id)


def _any_split_with(root: Path, sample_id: str) -> tuple[LuojiaSETOSFCR, int]:
    for split in ("train", "val", "test"):
        ds = LuojiaSETOSFCR(root, split)
        if any(r.id == sample_id for r in ds.records):
            return ds, _record(ds, sample_id)[0]
    raise KeyError(sample_id)


def _rewrite(path: Path, array: np.ndarray) -> None:
    """Replace a GeoTIFF's pixels (and with them its band count/dtype/shape), keeping the georef."""
    with rasterio.open(path) as src:
        crs, transform = src.crs, src.transform
    profile = {
        "driver": "GTiff",
        "height": array.shape[1],
        "width": array.shape[2],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "transform": transform,
    }
    if crs is not None:
        profile["crs"] = crs
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


# ------------------------------------------------------------------------------------ layout
@pytest.mark.parametrize(
    ("modality", "expected"),
    [
        ("s1", "ROIs_04_s1_p321.tif"),
        ("s2", "ROIs_04_s2_p321.tif"),
        ("s2_cloudy", "ROIs_04_s2_cloudy_p321.tif"),
        ("land_cover_maps", "ROIs_04_s2_p321.tif"),
        ("cloud_detection_results", "ROIs_04_s2_cloudy_p321.tif"),
    ],
)
def test_modality_filenames_follow_the_real_quirks(modality, expected):
    assert modality_filename("04", "p321", modality) == expected
    assert sample_relpaths("0-20%", "04", "p321")[modality] == f"0-20%/{modality}/{expected}"


def test_bucket_centres_and_order_derive_from_buckets():
    assert list(BUCKET_CENTRES) == list(BUCKETS)
    assert BUCKET_CENTRES == {"0-20%": 10.0, "20%-40%": 30.0, "40%-60%": 50.0, "60%-80%": 70.0, "80%-100%": 90.0}
    shuffled = ["other", *reversed(BUCKETS)]
    assert sorted(shuffled, key=bucket_sort_key) == [*BUCKETS, "other"]


@pytest.mark.parametrize("name", ["ROIs_04_s1_p321.tif", "roi_04_s2_p1.tif", "ROIs_04_s2_p1.png"])
def test_parse_s2_name_rejects_other_names(name):
    with pytest.raises(ValueError, match="ROIs_XX_s2_pN"):
        parse_s2_name(name)


# ------------------------------------------------------------------------------------ samples
@pytest.mark.parametrize(("split", "n"), [("train", 40), ("val", 5), ("test", 5)])
def test_sample_contract(fake_luojiaset_root, split, n):
    ds = LuojiaSETOSFCR(fake_luojiaset_root, split=split)
    assert len(ds) == n
    sample = ds[0]
    assert sample["optical"].dtype == sample["target"].dtype == torch.float32
    assert sample["optical"].shape == sample["target"].shape == (13, SIZE, SIZE)
    assert sample["sar"].shape == (2, SIZE, SIZE) and sample["sar"].dtype == torch.float32
    assert sample["mask"].shape == (SIZE, SIZE) and sample["mask"].dtype == torch.int64
    assert sample["cloud_mask"].shape == (SIZE, SIZE) and sample["cloud_mask"].dtype == torch.float32
    for key in ("optical", "target", "sar"):
        assert 0.0 <= float(sample[key].min()) and float(sample[key].max()) <= 1.0
    assert set(sample["mask"].unique().tolist()) <= {0, 1, 2, 3, 4, 5, 6, 255}
    assert set(sample["cloud_mask"].unique().tolist()) <= {0.0, 1.0}
    assert sample["bucket"] in BUCKETS
    assert sample["id"] == ds.records[0].id and sample["id"].startswith("ROIs_")


def test_every_bucket_is_in_every_split(fake_luojiaset_root):
    for split in ("train", "val", "test"):
        assert set(LuojiaSETOSFCR(fake_luojiaset_root, split).buckets) == set(BUCKETS)


def test_cloud_mask_fraction_matches_the_file(fake_luojiaset_root):
    ds = LuojiaSETOSFCR(fake_luojiaset_root, "test")
    for index in range(len(ds)):
        sample = ds[index]
        expected = 0.2 * BUCKETS.index(sample["bucket"]) + 0.1  # fake data: mid-bucket fraction
        assert float(sample["cloud_mask"].mean()) == pytest.approx(expected, abs=1 / SIZE**2)


def test_index_out_of_range_raises(fake_luojiaset_root):
    ds = LuojiaSETOSFCR(fake_luojiaset_root, "val")
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_codes_outside_the_legend_become_ignore_index(fake_luojiaset_root):
    ds, index = _any_split_with(fake_luojiaset_root, "ROIs_02_p2")  # fake tile with codes 7, 255
    raw = _read(fake_luojiaset_root / ds.records[index].paths["land_cover_maps"])
    assert raw[0, 0, 0] == 7 and raw[0, 0, 1] == 255
    mask = ds[index]["mask"]
    assert mask[0, 0] == 255 and mask[0, 1] == 255
    assert torch.equal(mask[1:], torch.from_numpy(raw[0, 1:].astype(np.int64)))


def test_nan_in_sar_input_becomes_zero(fake_luojiaset_root):
    ds, index = _any_split_with(fake_luojiaset_root, "ROIs_01_p1")  # fake tile with NaN border
    raw = _read(fake_luojiaset_root / ds.records[index].paths["s1"])
    assert np.isnan(raw[:, 0, :3]).all()
    sar = ds[index]["sar"]
    assert torch.isfinite(sar).all()
    assert torch.equal(sar[:, 0, :3], torch.zeros(2, 3))


def test_land_cover_without_crs_loads(fake_luojiaset_root):
    ds = LuojiaSETOSFCR(fake_luojiaset_root, "train")
    without_crs = []
    for index, record in enumerate(ds.records):
        with rasterio.open(fake_luojiaset_root / record.paths["land_cover_maps"]) as src:
            if src.crs is None:
                without_crs.append(index)
    assert without_crs, "the fake data must contain land-cover maps without a CRS"
    assert ds[without_crs[0]]["mask"].shape == (SIZE, SIZE)


def test_normalisation_round_trip_through_the_loader(fake_luojiaset_root):
    norm = load_normalisation()
    ds = LuojiaSETOSFCR(fake_luojiaset_root, "val")
    raw, sample = ds.load_raw(0), ds[0]
    # DN → unit → DN is exact inside the clip range (fake DN lie in [1000, 8000]).
    np.testing.assert_array_equal(norm.s2_to_dn(sample["target"].numpy()), raw["s2"])
    np.testing.assert_array_equal(norm.s2_to_dn(sample["optical"].numpy()), raw["s2_cloudy"])
    # dB → unit → dB recovers the values inside [-25, 0] (VV) / [-32.5, 0] (VH); clipped outside.
    db = norm.s1_to_db(sample["sar"].numpy())
    lo = np.array([-25.0, -32.5])[:, None, None]
    expected = np.clip(np.nan_to_num(raw["s1"], nan=-999), lo, 0)
    finite = np.isfinite(raw["s1"])
    np.testing.assert_allclose(db[finite], expected[finite], atol=1e-4)


def test_default_collate_batches_samples(fake_luojiaset_root):
    batch = next(iter(DataLoader(LuojiaSETOSFCR(fake_luojiaset_root, "train"), batch_size=4)))
    assert batch["optical"].shape == (4, 13, SIZE, SIZE)
    assert batch["mask"].shape == (4, SIZE, SIZE)
    assert isinstance(batch["id"], list) and len(batch["id"]) == 4
    assert isinstance(batch["bucket"], list)


def test_transforms_are_applied(fake_luojiaset_root):
    ds = LuojiaSETOSFCR(fake_luojiaset_root, "train", transforms=TrainAugment(crop_size=16))
    sample = ds[0]
    assert sample["optical"].shape == (13, 16, 16) and sample["mask"].shape == (16, 16)


# ------------------------------------------------------------------------------------ errors
def test_missing_root_explains_how_to_get_the_data(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as err:
        LuojiaSETOSFCR(missing)
    message = str(err.value)
    assert str(missing) in message
    assert "RSIIPAC/LuojiaSET-OSFCR" in message and "questionnaire" in message
    assert "0-20%" in message and "tdpcr data synth" in message


def test_root_without_bucket_folders_is_not_found(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetNotFoundError, match="none of the bucket folders"):
        LuojiaSETOSFCR(tmp_path)


def test_missing_split_file_says_how_to_make_it(fake_luojiaset_copy):
    (fake_luojiaset_copy / "manifest" / "val.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="tdpcr data manifest"):
        LuojiaSETOSFCR(fake_luojiaset_copy, "val")


@pytest.mark.parametrize("split", ["training", "validation", "TEST", ""])
def test_wrong_split_name(fake_luojiaset_root, split):
    with pytest.raises(ValueError, match="split must be one of"):
        LuojiaSETOSFCR(fake_luojiaset_root, split=split)


def test_checksum_passes_on_intact_data(fake_luojiaset_root):
    assert len(LuojiaSETOSFCR(fake_luojiaset_root, "test", checksum=True)) == 5


def test_checksum_mismatch_names_the_file(fake_luojiaset_copy):
    ds = LuojiaSETOSFCR(fake_luojiaset_copy, "test")
    victim = fake_luojiaset_copy / ds.records[2].paths["s1"]
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF  # flip one pixel byte; the TIFF stays readable
    victim.write_bytes(bytes(data))
    with pytest.raises(DataIntegrityError, match="checksum mismatch") as err:
        LuojiaSETOSFCR(fake_luojiaset_copy, "test", checksum=True)
    assert victim.name in str(err.value)
    LuojiaSETOSFCR(fake_luojiaset_copy, "train", checksum=True)  # other splits are untouched


def test_checksum_requires_a_checksum_file(fake_luojiaset_copy):
    (fake_luojiaset_copy / "manifest" / "checksums.sha256").unlink()
    with pytest.raises(DataIntegrityError, match="checksums.sha256 does not exist"):
        LuojiaSETOSFCR(fake_luojiaset_copy, "test", checksum=True)


def _corrupt(root: Path, modality: str, how: str) -> Path:
    """Damage one file of the first test sample; return the damaged path."""
    record = LuojiaSETOSFCR(root, "test").records[0]
    path = root / record.paths[modality]
    array = _read(path)
    if how == "delete":
        path.unlink()
    elif how == "drop_band":
        _rewrite(path, array[:-1])
    elif how == "dtype_int16":
        _rewrite(path, array.astype(np.int16))
    elif how == "dtype_float32":
        _rewrite(path, array.astype(np.float32))
    elif how == "dtype_uint8":
        _rewrite(path, np.clip(array, 0, 255).astype(np.uint8))
    elif how == "shrink":
        _rewrite(path, array[:, :16, :16].copy())
    elif how == "nan":
        damaged = array.astype(np.float32)
        damaged[0, 3, 3] = np.nan
        _rewrite(path, damaged)
    elif how == "value_2":
        damaged = array.copy()
        damaged[0, 0, 0] = 2.0
        _rewrite(path, damaged)
    elif how == "garbage":
        path.write_bytes(b"II*\x00" + b"\x00garbage" * 10)
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[:300])
    else:  # pragma: no cover - test bug
        raise ValueError(how)
    return path


@pytest.mark.parametrize(
    ("modality", "how", "message"),
    [
        ("cloud_detection_results", "delete", "missing cloud mask file"),
        ("s1", "delete", "missing Sentinel-1"),
        ("s2", "drop_band", "must have 13 band"),
        ("s2_cloudy", "drop_band", "must have 13 band"),
        ("s1", "drop_band", "must have 2 band"),
        ("s1", "dtype_int16", "must be float32, found int16"),
        ("s2", "dtype_uint8", "must be uint16 or float32, found uint8"),
        ("land_cover_maps", "dtype_float32", "found float32"),
        ("s1", "shrink", "modalities differ in size"),
        ("land_cover_maps", "shrink", "modalities differ in size"),
        ("s2", "nan", "NaN/inf value"),
        ("cloud_detection_results", "nan", "NaN/inf value"),
        ("cloud_detection_results", "value_2", "must lie in \\[0, 1\\]"),
        ("s2", "garbage", "unreadable or corrupt GeoTIFF"),
        ("land_cover_maps", "truncate", "unreadable or corrupt GeoTIFF"),
    ],
)
def test_bad_files_raise_a_clear_error_naming_the_file(fake_luojiaset_copy, modality, how, message):
    path = _corrupt(fake_luojiaset_copy, modality, how)
    ds = LuojiaSETOSFCR(fake_luojiaset_copy, "test")
    with pytest.raises(DataIntegrityError, match=message) as err:
        ds[0]
    assert path.name in str(err.value)
    ds[1]  # the other samples still load


def test_nan_in_float_cloudy_input_becomes_zero(fake_luojiaset_copy):
    path = _corrupt(fake_luojiaset_copy, "s2_cloudy", "nan")
    assert np.isnan(_read(path)[0, 3, 3])
    sample = LuojiaSETOSFCR(fake_luojiaset_copy, "test")[0]
    assert sample["optical"][0, 3, 3] == 0 and torch.isfinite(sample["optical"]).all()


def test_split_csv_with_wrong_columns(fake_luojiaset_copy):
    csv_path = fake_luojiaset_copy / "manifest" / "val.csv"
    csv_path.write_text(csv_path.read_text() + "0-20%/s2/ROIs_01_s2_p1.tif,only-two\n")
    with pytest.raises(DataIntegrityError, match=r"val.csv:6: expected 5 columns"):
        LuojiaSETOSFCR(fake_luojiaset_copy, "val")


def test_split_csv_outside_a_bucket(fake_luojiaset_copy):
    csv_path = fake_luojiaset_copy / "manifest" / "val.csv"
    csv_path.write_text("x/s2/ROIs_01_s2_p1.tif,b,c,d,e\n")
    with pytest.raises(DataIntegrityError, match="bucket folder"):
        LuojiaSETOSFCR(fake_luojiaset_copy, "val")


# ------------------------------------------------------------------------------------ splits
def test_discovery_sorts_names_as_strings(fake_luojiaset_root):
    samples, missing = discover_samples(fake_luojiaset_root)
    assert not missing and len(samples) == 5 * N_PER_BUCKET
    first_bucket = [Path(s.paths["s2"]).name for s in samples if s.bucket == "0-20%"]
    assert first_bucket == sorted(first_bucket)
    assert first_bucket.index("ROIs_01_s2_p1000.tif") < first_bucket.index("ROIs_01_s2_p7.tif")
    assert [s.bucket for s in samples] == sorted((s.bucket for s in samples), key=BUCKETS.index)


def test_split_is_the_authors_protocol(fake_luojiaset_root):
    """Pinned result of one Random(42) over the buckets in order (regression of the protocol)."""
    splits = split_samples(discover_samples(fake_luojiaset_root)[0])
    first = {split: [r.id for r in records if r.bucket == "0-20%"] for split, records in splits.items()}
    assert first["val"] == ["ROIs_01_p1"]
    assert first["test"] == ["ROIs_01_p1000"]
    assert first["train"] == [
        "ROIs_03_p10",
        "ROIs_01_p7",
        "ROIs_01_p11",
        "ROIs_03_p100",
        "ROIs_02_p20",
        "ROIs_02_p55",
        "ROIs_03_p3",
        "ROIs_02_p2",
    ]


@pytest.mark.parametrize(
    ("n", "expected"), [(10, (8, 1, 1)), (7, (5, 0, 2)), (4000, (3200, 400, 400)), (1, (0, 0, 1)), (0, (0, 0, 0))]
)
def test_split_sizes_per_bucket(n, expected):
    records = [SampleRecord(sample_relpaths(b, "01", f"p{i}"), b, f"ROIs_01_p{i}") for b in BUCKETS for i in range(n)]
    splits = split_samples(records)
    for bucket in BUCKETS:
        got = tuple(sum(r.bucket == bucket for r in splits[s]) for s in ("train", "val", "test"))
        assert got == expected
    ids = [r.paths["s2"] for s in splits.values() for r in s]
    assert sorted(ids) == sorted(r.paths["s2"] for r in records)  # a partition


def test_split_shares_one_rng_across_buckets():
    """Bucket 2's order depends on bucket 1: one RNG is shared (as in the author's code)."""

    def second_bucket_order(n_first: int) -> list[str]:
        records = [SampleRecord(sample_relpaths("0-20%", "01", f"p{i}"), "0-20%", str(i)) for i in range(n_first)] + [
            SampleRecord(sample_relpaths("20%-40%", "01", f"p{i}"), "20%-40%", str(i)) for i in range(20)
        ]
        return [r.id for s in split_samples(records).values() for r in s if r.bucket == "20%-40%"]

    assert second_bucket_order(0) != second_bucket_order(10)


def test_split_ratios_are_validated():
    with pytest.raises(ValueError, match="sum to 1"):
        split_samples([], ratios=(0.8, 0.1, 0.2))


def test_manifest_is_deterministic_and_seed_dependent(fake_luojiaset_root, tmp_path):
    a = write_manifest(fake_luojiaset_root, out=tmp_path / "a")
    b = write_manifest(fake_luojiaset_root, out=tmp_path / "b", checksums=False)
    c = write_manifest(fake_luojiaset_root, out=tmp_path / "c", seed=7, checksums=False)
    for split in ("train", "val", "test"):
        assert (a / f"{split}.csv").read_bytes() == (b / f"{split}.csv").read_bytes()
        assert (a / f"{split}.csv").read_bytes() == (fake_luojiaset_root / "manifest" / f"{split}.csv").read_bytes()
    assert (a / "test.csv").read_bytes() != (c / "test.csv").read_bytes()
    assert manifest_hash(a) == manifest_hash(b) != manifest_hash(c)
    assert not (b / "checksums.sha256").exists()


def test_manifest_files_and_format(fake_luojiaset_root):
    manifest = fake_luojiaset_root / "manifest"
    with open(manifest / "train.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 40 and all(len(row) == 5 for row in rows)
    bucket, _, name = rows[0][0].split("/")
    roi, patch = parse_s2_name(name)
    assert rows[0] == [sample_relpaths(bucket, roi, patch)[m] for m in MODALITIES]
    lines = (manifest / "checksums.sha256").read_text().splitlines()
    assert len(lines) == 5 * 5 * N_PER_BUCKET
    digest, rel = lines[0].split("  ")
    assert len(digest) == 64 and (fake_luojiaset_root / rel).is_file()
    import json

    config = json.loads((manifest / "split_config.json").read_text())
    assert config["split_seed"] == 42 and config["train_ratio"] == 0.8
    assert config["counts"]["val"] == dict.fromkeys(BUCKETS, 1)
    assert config["manifest_hash"] == manifest_hash(manifest)
    assert config["author_split_check"].startswith("not comparable")


def test_incomplete_samples_are_left_out_with_a_warning(fake_luojiaset_copy, tmp_path):
    victim = next((fake_luojiaset_copy / "40%-60%" / "s1").glob("*.tif"))
    victim.unlink()
    with pytest.warns(UserWarning, match="left out 1 incomplete sample"):
        out = write_manifest(fake_luojiaset_copy, out=tmp_path / "m", checksums=False)
    total = sum(len(read_split_csv(out / f"{s}.csv")) for s in ("train", "val", "test"))
    assert total == 5 * N_PER_BUCKET - 1


def test_manifest_of_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="questionnaire"):
        write_manifest(tmp_path / "missing", out=tmp_path / "m")


def test_manifest_hash_ignores_line_endings_but_not_content(fake_luojiaset_copy):
    manifest = fake_luojiaset_copy / "manifest"
    before = manifest_hash(manifest)
    val = manifest / "val.csv"
    val.write_bytes(val.read_bytes().replace(b"\n", b"\r\n"))  # the author's csv.writer output
    assert manifest_hash(manifest) == before
    assert len(LuojiaSETOSFCR(fake_luojiaset_copy, "val")) == 5
    val.write_text("\n".join(val.read_text().splitlines()[:-1]) + "\n")
    assert manifest_hash(manifest) != before


def test_header_row_is_accepted(fake_luojiaset_copy):
    val = fake_luojiaset_copy / "manifest" / "val.csv"
    val.write_text(",".join(MODALITIES) + "\n" + val.read_text())
    assert len(LuojiaSETOSFCR(fake_luojiaset_copy, "val")) == 5


def test_manifest_location_default(fake_luojiaset_copy, tmp_path):
    assert resolve_manifest_dir(fake_luojiaset_copy) == fake_luojiaset_copy / "manifest"
    assert resolve_manifest_dir(tmp_path) == LUOJIASET_MANIFEST_DIR
    assert resolve_manifest_dir(tmp_path, tmp_path / "x") == tmp_path / "x"
    moved = tmp_path / "elsewhere"
    shutil.move(fake_luojiaset_copy / "manifest", moved)
    ds = LuojiaSETOSFCR(fake_luojiaset_copy, "test", manifest=moved)
    assert len(ds) == 5 and ds.manifest_dir == moved


# ------------------------------------------------------------------------------------ augmentation
def _position_sample(size: int = 8) -> dict:
    """Every modality encodes the pixel position, so any mismatch between them is visible."""
    grid = torch.arange(size * size, dtype=torch.float32).reshape(size, size)
    return {
        "optical": grid.expand(13, size, size) + 0,
        "sar": grid.expand(2, size, size) + 0,
        "target": grid.expand(13, size, size) + 0,
        "mask": grid.long(),
        "cloud_mask": grid.clone(),
        "bucket": "0-20%",
        "id": "ROIs_01_p1",
    }


@pytest.mark.parametrize("crop_size", [None, 5, 8])
@pytest.mark.parametrize("seed", range(6))
def test_augmentation_is_identical_for_all_modalities(crop_size, seed):
    augment = TrainAugment(crop_size=crop_size, generator=torch.Generator().manual_seed(seed))
    out = augment(_position_sample())
    reference = out["optical"][0]
    side = crop_size or 8
    assert reference.shape == (side, side)
    for key in ("optical", "target"):
        assert torch.equal(out[key], reference.expand(13, side, side))
    assert torch.equal(out["sar"], reference.expand(2, side, side))
    assert torch.equal(out["mask"], reference.long()) and out["mask"].dtype == torch.int64
    assert torch.equal(out["cloud_mask"], reference)
    assert out["bucket"] == "0-20%" and out["id"] == "ROIs_01_p1"
    # the result is a rigid motion of a window: neighbours stay neighbours
    diffs = {abs(int(v)) for v in (reference[0, 1] - reference[0, 0], reference[1, 0] - reference[0, 0])}
    assert diffs == {1, 8}


def test_augmentation_reaches_all_eight_orientations():
    augment = TrainAugment(generator=torch.Generator().manual_seed(0))
    corners = {tuple(augment(_position_sample())["optical"][0, 0, [0, -1]].tolist()) for _ in range(200)}
    assert len(corners) == 8


def test_augmentation_without_ops_is_identity():
    sample = _position_sample()
    out = TrainAugment(crop_size=None, flips=False, rot90=False)(sample)
    for key in ("optical", "sar", "target", "mask", "cloud_mask"):
        assert torch.equal(out[key], sample[key])


def test_augmentation_is_reproducible_with_a_generator():
    def run(seed):
        augment = TrainAugment(crop_size=4, generator=torch.Generator().manual_seed(seed))
        return [augment(_position_sample())["optical"] for _ in range(5)]

    assert all(torch.equal(a, b) for a, b in zip(run(3), run(3), strict=True))


def test_crop_larger_than_sample_raises():
    with pytest.raises(ValueError, match="larger than the sample"):
        TrainAugment(crop_size=9)(_position_sample(8))


# ------------------------------------------------------------------------------------ plot
def test_plot_returns_a_figure(fake_luojiaset_root):
    import matplotlib.pyplot as plt

    ds = LuojiaSETOSFCR(fake_luojiaset_root, "val")
    sample = ds[0]
    fig = ds.plot(sample)
    assert isinstance(fig, Figure) and len(fig.axes) == 5
    logits = torch.randn(7, SIZE, SIZE)
    fig2 = ds.plot(sample, prediction={"reconstruction": sample["target"], "segmentation": logits})
    assert isinstance(fig2, Figure) and len(fig2.axes) == 7
    assert [ax.get_title() for ax in fig2.axes][-2:] == ["reconstruction", "predicted land cover"]
    plt.close("all")


# ------------------------------------------------------------------------------------ user copies
def _archive_source(fake_luojiaset_root: Path, tmp_path: Path) -> Path:
    """A copy of the fake data (no manifest) wrapped in a top folder, like a downloaded archive."""
    wrapped = tmp_path / "download" / "LuojiaSET-OSFCR"
    shutil.copytree(fake_luojiaset_root, wrapped, ignore=shutil.ignore_patterns("manifest"))
    return wrapped


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_prepare_extracts_an_archive(fake_luojiaset_root, tmp_path, kind):
    wrapped = _archive_source(fake_luojiaset_root, tmp_path)
    archive = tmp_path / f"LuojiaSET-OSFCR.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for path in wrapped.rglob("*.tif"):
                zf.write(path, path.relative_to(wrapped.parent).as_posix())
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(wrapped, arcname="LuojiaSET-OSFCR")
    root = prepare_luojiaset(archive, extract_to=tmp_path / "extracted")
    assert root == tmp_path / "extracted" / "LuojiaSET-OSFCR"
    assert len(discover_samples(root)[0]) == 5 * N_PER_BUCKET
    assert prepare_luojiaset(archive, extract_to=tmp_path / "extracted") == root  # reused


def test_prepare_finds_the_root_below_a_folder(fake_luojiaset_root, tmp_path):
    wrapped = _archive_source(fake_luojiaset_root, tmp_path)
    assert prepare_luojiaset(wrapped.parent) == wrapped
    assert prepare_luojiaset(wrapped) == wrapped


def test_prepare_rejects_unsafe_archives(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataIntegrityError, match="unsafe member path"):
        prepare_luojiaset(archive)
    assert not (tmp_path.parent / "escape.txt").exists()


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [(None, DatasetNotFoundError, "questionnaire"), (b"not an archive", DataIntegrityError, "neither a folder nor")],
)
def test_prepare_bad_sources(tmp_path, content, error, message):
    source = tmp_path / "LuojiaSET.txt"
    if content is not None:
        source.write_bytes(content)
    with pytest.raises(error, match=message):
        prepare_luojiaset(source)


def test_prepare_corrupt_archive(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataIntegrityError, match="cannot extract"):
        prepare_luojiaset(archive)


def test_prepare_folder_without_data(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="none of the bucket folders"):
        prepare_luojiaset(tmp_path)


# ------------------------------------------------------------------------------------ summary
def test_dataset_statistics(fake_luojiaset_root):
    stats = dataset_statistics(fake_luojiaset_root)
    assert stats["counts"]["train"] == dict.fromkeys(BUCKETS, 8)
    assert stats["n_samples"] == 50 and stats["tiles_read"] == 50
    hist = stats["class_histogram"]
    assert sum(hist.values()) == 50 * SIZE * SIZE
    assert hist["ignored"] == 2 * 5 and hist["0"] == hist["1"] == 0  # codes 7, 255: 1 tile/bucket
    for index, bucket in enumerate(BUCKETS):
        assert stats["mean_cloud_fraction"][bucket] == pytest.approx(0.2 * index + 0.1, abs=1e-3)
    capped = dataset_statistics(fake_luojiaset_root, max_tiles_per_split=2)
    assert capped["tiles_read"] == 6 and capped["counts"] == stats["counts"]


def test_dataloader_workers_can_load_and_augment(fake_luojiaset_root):
    ds = LuojiaSETOSFCR(fake_luojiaset_root, "train", transforms=TrainAugment(crop_size=16))
    loader = DataLoader(ds, batch_size=8, num_workers=2, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert sum(len(b["id"]) for b in batches) == len(ds) == 40
    assert batches[0]["optical"].shape == (8, 13, 16, 16)
