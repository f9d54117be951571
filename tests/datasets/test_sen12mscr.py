"""Tests of the SEN12MS-CR data layer on fake data in the real layout with the real headers."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from matplotlib.figure import Figure
from rasterio.crs import CRS

from tdpcr_lib.core import legend as legend_module
from tdpcr_lib.core.legend import legend_of, load_legend
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.manifests import read_split_config
from tdpcr_lib.datasets.samples import BUCKETS, bucket_of
from tdpcr_lib.datasets.sen12mscr.acquire import prepare_sen12mscr
from tdpcr_lib.datasets.sen12mscr.cloudmask import cloud_mask, cloud_score
from tdpcr_lib.datasets.sen12mscr.dataset import SEN12MSCR, igbp_lookup
from tdpcr_lib.datasets.sen12mscr.layout import official_archives, parse_s1_name, patch_filename, scene_key, scene_split
from tdpcr_lib.datasets.sen12mscr.manifest import write_sen12mscr_manifest
from tdpcr_lib.datasets.sources import detect_source, legend_of_data, open_dataset


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _rewrite(path: Path, array: np.ndarray, crs: CRS | None = None) -> None:
    with rasterio.open(path) as src:
        profile = {
            "driver": "GTiff",
            "height": array.shape[1],
            "width": array.shape[2],
            "count": array.shape[0],
            "dtype": array.dtype.name,
            "transform": src.transform,
            "crs": crs or src.crs,
        }
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


# ------------------------------------------------------------------------------------ layout
def test_names_follow_the_official_layout():
    assert patch_filename("ROIs1158_spring", 1, 407, "s2_cloudy") == "ROIs1158_spring_s2_cloudy_1_p407.tif"
    assert parse_s1_name("ROIs2017_winter_s1_146_p30.tif") == ("ROIs2017_winter", "146", "30")
    with pytest.raises(ValueError, match="not a SEN12MS-CR s1 file name"):
        parse_s1_name("ROIs1158_spring_s2_1_p407.tif")
    assert scene_key("ROIs1158_spring", "017") == "ROIs1158_spring/17"


def test_official_archives_and_urls():
    archives = official_archives()
    assert len(archives) == 16
    cr = [a for a in archives if not a.name.endswith("_lc.tar.gz")]
    lc = [a for a in archives if a.name.endswith("_lc.tar.gz")]
    assert all("dataserv.ub.tum.de/s/m1554803/" in a.url and a.url.endswith(a.name) for a in cr)
    assert all("dataserv.ub.tum.de/s/m1474000/" in a.url and len(a.md5) == 32 for a in lc)
    assert [a.name for a in official_archives(("ROIs2017_winter",), land_cover=False)] == [
        "ROIs2017_winter_s1.tar.gz",
        "ROIs2017_winter_s2.tar.gz",
        "ROIs2017_winter_s2_cloudy.tar.gz",
    ]
    with pytest.raises(ValueError, match="unknown season"):
        official_archives(("ROIs9999_monsoon",))


def test_split_lists_are_disjoint_and_match_uncrtaints():
    assignment = scene_split()
    assert len(assignment) == 175  # 155 train + 10 val + 10 test scenes, none in two lists
    assert sum(v == "test" for v in assignment.values()) == 10
    assert assignment["ROIs1158_spring/106"] == "test"
    assert assignment["ROIs2017_winter/22"] == "val"
    assert assignment["ROIs1158_spring/1"] == "train"


@pytest.mark.parametrize(
    ("fraction", "bucket"),
    [(0.0, "0-20%"), (0.1999, "0-20%"), (0.2, "20%-40%"), (0.6, "60%-80%"), (0.8, "80%-100%"), (1.0, "80%-100%")],
)
def test_bucket_of_uses_the_five_luojiaset_bins(fraction, bucket):
    assert bucket_of(fraction) == bucket and bucket in BUCKETS


def test_bucket_of_rejects_values_outside_0_1():
    with pytest.raises(ValueError, match="cloud fraction"):
        bucket_of(1.2)


# ------------------------------------------------------------------------ cloud mask, legend
def _image(value_per_band, size=40) -> np.ndarray:
    return np.broadcast_to(np.asarray(value_per_band, dtype=np.uint16)[:, None, None], (13, size, size)).copy()


LAND = (500, 600, 700, 800, 1500, 2500, 3000, 3000, 3200, 600, 10, 1800, 1000)
CLOUD = (7000, 7500, 7400, 7300, 7200, 7100, 7000, 7000, 6900, 3000, 300, 4500, 3500)
SNOW = (7000, 7500, 7400, 7300, 7200, 7100, 7000, 7000, 6900, 3000, 300, 300, 200)


def test_cloud_mask_finds_bright_clouds_and_not_land_or_snow():
    assert cloud_mask(_image(LAND)).sum() == 0
    assert cloud_mask(_image(SNOW)).sum() == 0  # bright, but NDSI says snow
    scene = _image(LAND)
    scene[:, :20] = _image(CLOUD)[:, :20]
    mask = cloud_mask(scene)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    assert mask[:16].all() and not mask[24:].any()  # the 7×7 mean blurs a few rows at the edge
    assert 0.4 <= mask.mean() <= 0.6
    score = cloud_score(scene)
    assert score.min() >= 1e-5 and score.max() <= 1.0


def test_cloud_mask_checks_its_input():
    with pytest.raises(ValueError, match="13, H, W"):
        cloud_mask(np.zeros((4, 8, 8), dtype=np.uint16))
    nan_image = _image(LAND).astype(np.float32)
    nan_image[:, 0, 0] = np.nan
    assert np.isfinite(cloud_score(nan_image)).all()


def test_igbp_is_mapped_to_the_dfc2020_simplified_classes():
    legend = load_legend(name="igbp_simplified")
    assert legend.num_classes == 10 and legend.name == "igbp_simplified"
    lut = igbp_lookup()
    names = {igbp: legend.names[lut[igbp]] for igbp in range(1, 18)}
    assert names[1] == names[5] == "Forest" and names[6] == names[7] == "Shrubland"
    assert names[8] == names[9] == "Savanna" and names[10] == "Grassland"
    assert names[11] == "Wetlands" and names[12] == names[14] == "Croplands"
    assert names[13] == "Urban/Built-up" and names[15] == "Snow/Ice"
    assert names[16] == "Barren" and names[17] == "Water"
    assert lut[0] == legend.ignore_index == 255


def test_sen12mscr_normalisation_is_the_community_convention():
    norm = load_normalisation(name="sen12mscr")
    assert norm.s2_clip == (0.0, 10000.0) and norm.s2_scale == 10000.0
    assert norm.s1_min_db == (-25.0, -32.5) and norm.s1_max_db == (0.0, 0.0)
    with pytest.raises(ValueError, match="unknown normalisation"):
        load_normalisation(name="nope")


# ------------------------------------------------------------------------------ the dataset
@pytest.mark.parametrize(("split", "n"), [("train", 20), ("val", 10), ("test", 10)])
def test_sample_contract(fake_sen12mscr_root, fake_sen12mscr_module, split, n):
    fake = fake_sen12mscr_module
    ds = SEN12MSCR(fake_sen12mscr_root, split)
    assert len(ds) == n
    sample = ds[0]
    assert sample["optical"].shape == sample["target"].shape == (13, fake.SIZE, fake.SIZE)
    assert sample["sar"].shape == (2, fake.SIZE, fake.SIZE)
    for key in ("optical", "sar", "target", "cloud_mask"):
        assert sample[key].dtype == torch.float32 and torch.isfinite(sample[key]).all()
        assert 0 <= sample[key].min() and sample[key].max() <= 1
    assert sample["mask"].dtype == torch.int64
    codes = set(sample["mask"].unique().tolist())
    assert codes <= set(range(10)) | {255} and len(codes) > 5
    assert set(sample["cloud_mask"].unique().tolist()) <= {0.0, 1.0}
    assert sample["bucket"] == bucket_of(float(sample["cloud_mask"].mean())) == ds.buckets[0]
    assert sample["id"] == ds.records[0].id


def test_splits_follow_the_scene_lists(fake_sen12mscr_root):
    assignment = scene_split()
    seen = {}
    for split in ("train", "val", "test"):
        for record in SEN12MSCR(fake_sen12mscr_root, split).records:
            scene = record.id.rsplit("_p", 1)[0].rsplit("_", 1)
            key = scene_key(*scene)
            assert assignment[key] == split
            assert seen.setdefault(record.id, split) == split
    config = read_split_config(fake_sen12mscr_root / "manifest")
    assert config["dataset"] == "SEN12MS-CR"
    assert config["unassigned_scenes_left_out"] == {"ROIs1158_spring/2": 5}
    assert config["indexed_samples"] == 45 and len(seen) == 40
    buckets = {b for split in ("train", "val", "test") for b in SEN12MSCR(fake_sen12mscr_root, split).buckets}
    assert buckets == set(BUCKETS)  # the fake clouds cover every bucket


def test_patch_without_land_cover_is_all_ignore(fake_sen12mscr_root, fake_sen12mscr_module):
    ds = SEN12MSCR(fake_sen12mscr_root, "train")
    season, scene, i = fake_sen12mscr_module.NO_LAND_COVER
    index = next(
        k for k, r in enumerate(ds.records) if r.id.startswith(f"{season}_{scene}_p") and "land_cover" not in r.paths
    )
    assert ds.land_cover_path(index) is None
    assert (ds[index]["mask"] == 255).all()
    assert read_split_config(fake_sen12mscr_root / "manifest")["patches_without_land_cover"] == 1
    others = [k for k in range(len(ds)) if k != index]
    assert all(ds.land_cover_path(k) is not None for k in others)


def test_land_cover_deleted_after_the_manifest_raises(fake_sen12mscr_copy):
    ds = SEN12MSCR(fake_sen12mscr_copy, "test")
    path = ds.land_cover_path(0)
    path.unlink()
    with pytest.raises(DataIntegrityError, match="missing SEN12MS land cover") as err:
        ds[0]
    assert path.name in str(err.value)


def test_land_cover_in_another_folder(fake_sen12mscr_apart):
    data, lc = fake_sen12mscr_apart
    write_sen12mscr_manifest(data, land_cover_root=lc, checksums=False)
    ds = SEN12MSCR(data, "val")
    assert ds.records[0].paths["land_cover"].startswith("../SEN12MS/")
    assert (ds[0]["mask"] != 255).any()
    direct = SEN12MSCR(data, "val", land_cover_root=lc)
    assert torch.equal(direct[0]["mask"], ds[0]["mask"])


def test_unknown_igbp_codes_are_reported_and_ignored(fake_sen12mscr_root, monkeypatch):
    monkeypatch.setattr(legend_module, "_REPORTED_SOURCES", set())  # report this file afresh
    ds = SEN12MSCR(fake_sen12mscr_root, "train")
    index = next(k for k, r in enumerate(ds.records) if r.id == "ROIs1158_spring_1_p15")
    raw = ds.load_raw(index)
    assert raw["lc"][0, 0, 1] == 20
    with pytest.warns(UserWarning, match=r"code\(s\) outside the legend 0..9 \(20\)"):
        labels = ds.labels(raw, index)
    assert labels[0, 1] == 255 and labels[0, 0] == 255  # 20: unknown; 0: IGBP no data


def test_nan_in_sar_becomes_zero(fake_sen12mscr_root):
    ds = SEN12MSCR(fake_sen12mscr_root, "train")
    raw = ds.load_raw(0)
    assert np.isnan(raw["s1"][0, 0, 0])
    assert ds[0]["sar"][:, 0, :3].eq(0).all()


def _damage(root: Path, modality: str, how: str) -> Path:
    ds = SEN12MSCR(root, "test")
    record = ds.records[0]
    path = ds.land_cover_path(0) if modality == "lc" else root / record.paths[modality]
    array = _read(path)
    if how == "delete":
        path.unlink()
    elif how == "drop_band":
        _rewrite(path, array[:-1])
    elif how == "int16":
        _rewrite(path, np.nan_to_num(array).astype(np.int16))
    elif how == "uint8":
        _rewrite(path, np.clip(array, 0, 255).astype(np.uint8))
    elif how == "float64":
        _rewrite(path, array.astype(np.float64))
    elif how == "shrink":
        _rewrite(path, array[:, :16, :16].copy())
    elif how == "nan":
        damaged = array.astype(np.float32)
        damaged[0, 3, 3] = np.nan
        _rewrite(path, damaged)
    elif how == "crs":
        _rewrite(path, array, crs=CRS.from_epsg(32601))
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
        ("s1", "delete", "missing Sentinel-1"),
        ("s2", "delete", "missing clear Sentinel-2"),
        ("s2_cloudy", "delete", "missing cloudy Sentinel-2"),
        ("s2", "drop_band", "must have 13 band"),
        ("s2_cloudy", "drop_band", "must have 13 band"),
        ("s1", "drop_band", "must have 2 band"),
        ("lc", "drop_band", "must have 4 band"),
        ("s1", "int16", "must be float32, found int16"),
        ("s2", "uint8", "must be uint16 or float32, found uint8"),
        ("lc", "float64", "found float64"),
        ("s1", "shrink", "modalities differ in size"),
        ("lc", "shrink", "modalities differ in size"),
        ("s2", "nan", "NaN/inf value"),
        ("s1", "crs", "CRS EPSG:32601 differs"),
        ("s2_cloudy", "crs", "CRS EPSG:32601 differs"),
        ("s2", "garbage", "unreadable or corrupt GeoTIFF"),
        ("lc", "truncate", "unreadable or corrupt GeoTIFF"),
    ],
)
def test_bad_files_raise_a_clear_error_naming_the_file(fake_sen12mscr_copy, modality, how, message):
    path = _damage(fake_sen12mscr_copy, modality, how)
    ds = SEN12MSCR(fake_sen12mscr_copy, "test")
    with pytest.raises(DataIntegrityError, match=message) as err:
        ds[0]
    assert path.name in str(err.value)
    ds[1]  # the other samples still load


def test_nan_in_float_cloudy_input_becomes_zero(fake_sen12mscr_copy):
    _damage(fake_sen12mscr_copy, "s2_cloudy", "nan")
    sample = SEN12MSCR(fake_sen12mscr_copy, "test")[0]
    assert sample["optical"][0, 3, 3] == 0 and torch.isfinite(sample["optical"]).all()


def test_missing_root_and_layout_explain_how_to_get_the_data(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="mediatum.ub.tum.de/1554803"):
        SEN12MSCR(tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="no SEN12MS-CR season folder"):
        SEN12MSCR(tmp_path)


def test_missing_manifest_says_how_to_make_it(fake_sen12mscr_copy):
    shutil.rmtree(fake_sen12mscr_copy / "manifest")
    with pytest.raises(DatasetNotFoundError, match="--source sen12mscr"):
        SEN12MSCR(fake_sen12mscr_copy, "train")


def test_wrong_split_name(fake_sen12mscr_root):
    with pytest.raises(ValueError, match="split must be one of"):
        SEN12MSCR(fake_sen12mscr_root, "training")


def test_split_csv_without_the_header_is_refused(fake_sen12mscr_copy):
    path = fake_sen12mscr_copy / "manifest" / "train.csv"
    path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(DataIntegrityError, match="train.csv:1: not a SEN12MS-CR split file"):
        SEN12MSCR(fake_sen12mscr_copy, "train")


def test_split_csv_with_a_bad_row(fake_sen12mscr_copy):
    path = fake_sen12mscr_copy / "manifest" / "val.csv"
    rows = list(csv.reader(path.open()))
    rows[2][4] = "1.7"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(DataIntegrityError, match="val.csv:3: cloud_cover '1.7'"):
        SEN12MSCR(fake_sen12mscr_copy, "val")


def test_checksums(fake_sen12mscr_copy):
    assert len(SEN12MSCR(fake_sen12mscr_copy, "val", checksum=True)) == 10
    ds = SEN12MSCR(fake_sen12mscr_copy, "val")
    path = fake_sen12mscr_copy / ds.records[3].paths["s2"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataIntegrityError, match="checksum mismatch") as err:
        SEN12MSCR(fake_sen12mscr_copy, "val", checksum=True)
    assert path.name in str(err.value)


def test_incomplete_patches_are_left_out_with_a_warning(fake_sen12mscr_copy, tmp_path):
    victim = next((fake_sen12mscr_copy / "ROIs1970_fall_s2" / "s2_3").glob("*.tif"))
    victim.unlink()
    with pytest.warns(UserWarning, match="left out 1 incomplete patch"):
        out = write_sen12mscr_manifest(fake_sen12mscr_copy, out=tmp_path / "m", checksums=False)
    assert len(read_split_config(out)["incomplete_samples_left_out"]) == 1


def test_plot_returns_a_figure(fake_sen12mscr_root):
    ds = SEN12MSCR(fake_sen12mscr_root, "test")
    figure = ds.plot(ds[1], suptitle="test")
    assert isinstance(figure, Figure)


def test_open_dataset_recognises_the_layout(fake_sen12mscr_root, fake_luojiaset_root):
    assert detect_source(fake_sen12mscr_root) == "sen12mscr"
    assert detect_source(fake_luojiaset_root) == "luojiaset"
    assert isinstance(open_dataset(fake_sen12mscr_root, "val"), SEN12MSCR)
    assert isinstance(open_dataset(fake_luojiaset_root, "val"), LuojiaSETOSFCR)
    assert legend_of_data(fake_sen12mscr_root).num_classes == 10
    assert legend_of_data(fake_luojiaset_root).num_classes == 7


# ------------------------------------------------------------------- archives (notebook 00)
@pytest.fixture(scope="module")
def archives(fake_sen12mscr_tree, fake_sen12mscr_module, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("archives")
    fake_sen12mscr_module.write_fake_archives(fake_sen12mscr_tree, folder)  # the tree has no manifest
    return folder


def test_prepare_extracts_the_per_season_archives(archives, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="tdpcr_lib")
    folder = Path(shutil.copytree(archives, tmp_path / "downloads"))
    # the fake land-cover archives are not the published ones: skip only their MD5 check
    monkeypatch.setattr("tdpcr_lib.datasets.sen12mscr.acquire.LAND_COVER_MD5", {})
    root = prepare_sen12mscr(folder)
    assert root == folder / "SEN12MS-CR"
    assert (root / "ROIs1158_spring_s1" / "ROIs1158_spring_s1" / "s1_1").is_dir()
    assert "extracting ROIs1158_spring_s1.tar.gz" in caplog.text
    caplog.clear()
    write_sen12mscr_manifest(root, checksums=False)
    ds = SEN12MSCR(root, "test")
    assert len(ds) == 10 and (ds[0]["mask"] != 255).any()
    assert prepare_sen12mscr(folder) == root  # already extracted: nothing extracted again
    assert "extracting" not in caplog.text


def test_prepare_checks_the_published_md5(archives, tmp_path):
    folder = Path(shutil.copytree(archives, tmp_path / "downloads"))
    with pytest.raises(DataIntegrityError, match="differs from the published"):
        prepare_sen12mscr(folder)


def test_prepare_refuses_unsafe_archives(tmp_path):
    evil = tmp_path / "ROIs1158_spring_s1.tar.gz"
    payload = tmp_path / "x.tif"
    payload.write_bytes(b"x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../../escape.tif")
    with pytest.raises(DataIntegrityError, match="cannot extract"):
        prepare_sen12mscr(evil)
    assert not (tmp_path.parent / "escape.tif").exists()


def test_prepare_bad_sources(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        prepare_sen12mscr(tmp_path / "missing")
    other = tmp_path / "data.tar.gz"
    other.write_bytes(b"")
    with pytest.raises(DataIntegrityError, match="not one of the official"):
        prepare_sen12mscr(other)
    with pytest.raises(DatasetNotFoundError, match="no SEN12MS-CR season folder"):
        prepare_sen12mscr(tmp_path)


# ------------------------------------------------------------- legend travels with the model
def test_model_config_carries_the_legend():
    from tdpcr_lib.models.config import ModelConfig, ModelConfigError

    config = ModelConfig(num_classes=10, legend="igbp_simplified")
    again = ModelConfig.from_json(config.to_json())
    assert again.legend == "igbp_simplified" and again.num_classes == 10
    assert legend_of(again).names[9] == "Water"
    assert legend_of({"num_classes": 7}).name == "luojiaset"  # old checkpoints
    with pytest.raises(ModelConfigError, match="legend='nope' is unknown"):
        ModelConfig(legend="nope")


def test_training_takes_the_classes_from_the_dataset_and_products_carry_them(fake_sen12mscr_root, tmp_path):
    from tdpcr_lib.inference.products import open_prediction
    from tdpcr_lib.inference.scene import predict_scene
    from tdpcr_lib.models.build import build_model
    from tdpcr_lib.models.checkpoint import load_model, save_checkpoint
    from tdpcr_lib.models.config import ModelConfig
    from tdpcr_lib.training.config import TrainConfig
    from tdpcr_lib.training.run import classes_from_legend

    dataset = SEN12MSCR(fake_sen12mscr_root, "val")
    base = ModelConfig.preset("tiny", with_seg_decoder=True)
    config = classes_from_legend(TrainConfig(phase="joint"), base, dataset)
    assert (config.num_classes, config.legend) == (10, "igbp_simplified")
    model = build_model(config)
    checkpoint = save_checkpoint(tmp_path / "ckpt", model, phase="joint", epoch=0, step=0)
    loaded, meta = load_model(checkpoint)
    assert meta["model_config"]["legend"] == "igbp_simplified"
    record = dataset.records[0]
    outputs = predict_scene(
        fake_sen12mscr_root / record.paths["s2_cloudy"],
        fake_sen12mscr_root / record.paths["s1"],
        loaded,
        tmp_path / "out",
        tile=32,
        device="cpu",
        progress=False,
    )
    with rasterio.open(outputs["land_cover"]) as src:
        tags = src.tags()
    assert tags["LEGEND_NAME"] == "igbp_simplified" and tags["CLASS_9"] == "Water"
    arrays = open_prediction(outputs, load=True)
    assert arrays["land_cover"].attrs["class_names"][6] == "Urban/Built-up"
    for array in arrays.values():
        array.close()


def test_split_config_is_json(fake_sen12mscr_root):
    config = json.loads((fake_sen12mscr_root / "manifest" / "split_config.json").read_text())
    assert config["csv_columns"][-2:] == ["cloud_cover", "bucket"]
    assert "UnCRtainTS" in config["split_source"]


def test_stray_files_in_a_scene_folder_are_not_patches(fake_sen12mscr_copy, tmp_path):
    scene = fake_sen12mscr_copy / "ROIs1158_spring_s1" / "s1_1"
    (scene / "ROIs1158_spring_s1_1_pcopy.tif").write_bytes(b"not a patch")
    (scene / "notes.txt").write_text("x")
    out = write_sen12mscr_manifest(fake_sen12mscr_copy, out=tmp_path / "m", checksums=False)
    assert read_split_config(out)["indexed_samples"] == 45
