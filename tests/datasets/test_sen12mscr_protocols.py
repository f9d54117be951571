"""SEN12MS-CR comparability: the s2cloudless mask, the leak-proof split, the legacy leaky split,
and named protocols evaluated on the fake tree (real layout, real headers)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tdpcr_lib.cli.data import main as data_main
from tdpcr_lib.cli.evaluate import main as evaluate_main
from tdpcr_lib.datasets.manifests import read_split_config
from tdpcr_lib.datasets.samples import SPLITS, bucket_of, read_raster
from tdpcr_lib.datasets.sen12mscr.cloudmask import cloud_mask, compute_cloud_mask
from tdpcr_lib.datasets.sen12mscr.dataset import SEN12MSCR
from tdpcr_lib.datasets.sen12mscr.layout import SPECS
from tdpcr_lib.datasets.sen12mscr.manifest import mask_cache_path, write_sen12mscr_manifest
from tdpcr_lib.datasets.sen12mscr.s2cloudless import detector, s2cloudless_mask
from tdpcr_lib.datasets.sen12mscr.splits import leaking_scenes, scene_lists, splits_of_scene
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint import save_checkpoint
from tdpcr_lib.models.config import ModelConfig


@pytest.fixture(scope="module")
def default_root(fake_sen12mscr_tree, tmp_path_factory) -> Path:
    root = Path(shutil.copytree(fake_sen12mscr_tree, tmp_path_factory.mktemp("default") / "SEN12MS-CR"))
    write_sen12mscr_manifest(root, checksums=False)
    return root


# ------------------------------------------------------------------------ s2cloudless
def test_s2cloudless_mask_is_uncrtaints_get_cloud_map(default_root):
    # UnCRtainTS data/dataLoader.py: S2PixelCloudDetector(threshold=0.4, all_bands=True,
    # average_over=4, dilation_size=2); get_cloud_map clips to 0..10000 and divides by 10000
    from s2cloudless import S2PixelCloudDetector

    reference = S2PixelCloudDetector(threshold=0.4, all_bands=True, average_over=4, dilation_size=2)
    ds = SEN12MSCR(default_root, "test")
    for index in (0, 4):
        raw = ds.load_raw(index)["s2_cloudy"]
        image = np.clip(raw.astype(np.float32), 0, 10000)
        expected = reference.get_cloud_masks(np.moveaxis(image / 10000, 0, -1)[None])[0]
        assert np.array_equal(s2cloudless_mask(raw), expected.astype(np.float32))
        assert np.array_equal(ds[index]["cloud_mask"].numpy(), expected.astype(np.float32))


def test_blank_patch_is_cloudy_and_the_model_ships_in_the_wheel():
    # get_cloud_map: 'Encountered a blank sample, defaulting to cloudy mask.'
    assert s2cloudless_mask(np.zeros((13, 16, 16), np.uint16)).all()
    model = Path(detector().model_filename)
    assert model.is_file() and model.parent.parent.name == "s2cloudless"  # nothing downloaded
    with pytest.raises(ValueError, match="unknown cloud mask"):
        compute_cloud_mask(np.zeros((13, 16, 16)), "fmask")


def test_manifest_records_the_mask_and_buckets_follow_it(default_root):
    config = read_split_config(default_root / "manifest")
    assert config["cloud_mask_method"] == "s2cloudless" and "0.4" in config["cloud_mask"]
    assert config["split_protocol"] == "scene-exact"
    for split in SPLITS:
        with open(default_root / "manifest" / f"{split}.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                raw, _ = read_raster(default_root / row["s2_cloudy"], SPECS["s2_cloudy"], "s2")
                cover = float(s2cloudless_mask(raw).mean())
                assert float(row["cloud_cover"]) == pytest.approx(cover, abs=1e-6)
                assert row["bucket"] == bucket_of(cover)
    ds = SEN12MSCR(default_root, "train")
    assert mask_cache_path(ds.manifest_dir, ds.records[0].id).is_file()
    assert ds[0]["bucket"] == ds.buckets[0]


def test_rule_based_mask_remains_an_option(fake_sen12mscr_tree, tmp_path):
    out = write_sen12mscr_manifest(fake_sen12mscr_tree, out=tmp_path / "m", checksums=False, cloud_mask="rule-based")
    config = read_split_config(out)
    assert config["cloud_mask_method"] == "rule-based" and config["cloud_mask_cache"] is None
    ds = SEN12MSCR(fake_sen12mscr_tree, "val", manifest=out)
    raw = ds.load_raw(0)["s2_cloudy"]
    assert np.array_equal(ds[0]["cloud_mask"].numpy(), cloud_mask(raw))
    assert not (out / "cloud_masks").exists()


# ------------------------------------------------------------------------ splits
def test_no_region_is_in_two_splits():
    lists = scene_lists()
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1 :]:
            both = set(lists[first]) & set(lists[second])
            assert not both, f"regions in {first} and {second}: {sorted(both)}"
    for split in SPLITS:
        for scene in lists[split]:
            assert splits_of_scene(scene) == [split]


def test_default_manifest_puts_each_region_in_one_split(default_root):
    regions = {}
    for split in SPLITS:
        for record in SEN12MSCR(default_root, split).records:
            region = record.id.rsplit("_p", 1)[0]
            assert regions.setdefault(region, split) == split, region
    assert read_split_config(default_root / "manifest")["leak"]["leaked_patches"] == 0


def test_legacy_substring_leak_matches_uncrtaints_substring_test():
    # UnCRtainTS data/dataLoader.py SEN12MSCR.get_paths: `split_roi in paths_S1[pdx]`
    lists = scene_lists()
    leaks = leaking_scenes()
    expected = {}
    for scene in sorted({s for split in SPLITS for s in lists[split]}):
        season, number = scene.split("/")
        path = f"/data/{season}_s1/s1_{number}/{season}_s1_{number}_p1.tif"
        hits = [
            split for split in SPLITS if any(f"{r.split('/')[0]}_s1/s1_{r.split('/')[1]}" in path for r in lists[split])
        ]
        if len(hits) > 1:
            expected[scene] = hits
    assert leaks == expected
    assert sum("test" in v for v in leaks.values()) == 6
    assert sum("val" in v for v in leaks.values()) == 3
    assert all("train" in v for v in leaks.values())
    resource = json.loads((Path(__file__).parents[2] / "tdpcr_lib" / "resources" / "sen12mscr_split.json").read_text())
    assert set(leaks) == set(resource["substring_leak_into_train"])


def test_legacy_split_is_written_and_labelled(fake_sen12mscr_tree, tmp_path, capsys):
    root = Path(shutil.copytree(fake_sen12mscr_tree, tmp_path / "SEN12MS-CR"))
    assert (
        data_main(
            [
                "manifest",
                str(root),
                "--source",
                "sen12mscr",
                "--split",
                "legacy-substring",
                "--no-checksums",
                "--cloud-mask",
                "rule-based",
            ]
        )
        == 0
    )
    assert "LEAKY" in capsys.readouterr().out
    config = read_split_config(root / "manifest")
    assert config["split_protocol"] == "legacy-substring" and "LEAKY" in config["protocol"]
    leaked = config["leak"]["scenes_in_several_splits"]
    # the fake tree's test scenes spring/106 and fall/139 and val scene spring/17 match the
    # train entries 'ROIs1158_spring_s1/s1_1' and 'ROIs1970_fall_s1/s1_1'
    assert leaked == {
        "ROIs1158_spring/106": {"splits": ["train", "test"], "patches": 5},
        "ROIs1158_spring/17": {"splits": ["train", "val"], "patches": 5},
        "ROIs1970_fall/139": {"splits": ["train", "test"], "patches": 5},
    }
    assert config["leak"]["leaked_patches"] == 15
    assert len(SEN12MSCR(root, "train")) == 35  # 20 clean + 15 leaked
    # every report says so
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ck", build_model(ModelConfig.small(arch="dsen2cr")), phase="phase1", epoch=0, step=0)
    assert (
        evaluate_main(
            [
                str(tmp_path / "ck"),
                "--data-root",
                str(root),
                "--no-progress",
                "--tile",
                "none",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "ev.json").read_text())["meta"]["split_protocol"] == "legacy-substring"
    assert "Leaky split" in (tmp_path / "ev.md").read_text()


def test_cli_refuses_split_options_for_luojiaset(tmp_path, capsys):
    assert data_main(["manifest", str(tmp_path), "--split", "legacy-substring"]) == 2
    assert "--source sen12mscr only" in capsys.readouterr().err


# ------------------------------------------------------------------------ protocols
def test_evaluate_uncrtaints_and_allclear_on_the_fake_tree(default_root, tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ck", build_model(ModelConfig.small(arch="dsen2cr")), phase="phase1", epoch=0, step=0)
    assert (
        evaluate_main(
            [
                str(tmp_path / "ck"),
                "--data-root",
                str(default_root),
                "--no-progress",
                "--tile",
                "none",
                "--out",
                str(tmp_path / "ev"),
                "--protocol",
                "uncrtaints",
                "--protocol",
                "allclear",
            ]
        )
        == 0
    )
    meta = json.loads((tmp_path / "ev.json").read_text())["meta"]
    assert meta["split_protocol"] == "scene-exact"
    assert list(meta["protocols"]) == ["tdpcr", "uncrtaints", "allclear"]
    allclear = meta["protocols"]["allclear"]
    assert "cloud mask of the target" in allclear["note"]
    for name in ("uncrtaints", "allclear"):
        assert meta["protocols"][name]["n_images"] == 10
        assert np.isfinite(meta["protocols"][name]["psnr"])
