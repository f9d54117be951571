"""Tests of the synthetic LuojiaSET-OSFCR twin (tdpcr_lib.datasets.synthetic.tiles) and ``tdpcr data``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy.ndimage import uniform_filter

from tdpcr_lib.cli import main as cli
from tdpcr_lib.cli.data import main as data_main
from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.luojiaset.layout import MODALITIES, discover_samples
from tdpcr_lib.datasets.luojiaset.manifest import read_split_csv
from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.datasets.synthetic.clouds import simulate_clouds
from tdpcr_lib.datasets.synthetic.landscape import CLASS_SPECTRA
from tdpcr_lib.datasets.synthetic.tiles import (
    bucket_fraction_range,
    generate_tile,
    make_synthetic_luojiaset,
    read_synthetic_info,
)

N_TILES, SIZE = 50, 32  # tests/conftest.py tiny_luojiaset_root


def _all_records(root: Path):
    return [r for split in ("train", "val", "test") for r in read_split_csv(root / "manifest" / f"{split}.csv")]


# ------------------------------------------------------------------------------------ layout
def test_twin_has_the_real_layout_and_a_manifest(tiny_luojiaset_root):
    samples, missing = discover_samples(tiny_luojiaset_root)
    assert not missing and len(samples) == N_TILES
    assert {b: sum(s.bucket == b for s in samples) for b in BUCKETS} == dict.fromkeys(BUCKETS, 10)
    for split, n in (("train", 40), ("val", 5), ("test", 5)):
        ds = LuojiaSETOSFCR(tiny_luojiaset_root, split)
        assert len(ds) == n and ds.manifest_dir == tiny_luojiaset_root / "manifest"
    assert (tiny_luojiaset_root / "manifest" / "checksums.sha256").is_file()
    assert LuojiaSETOSFCR(tiny_luojiaset_root, "val", checksum=True)[0]["optical"].shape == (13, SIZE, SIZE)


@pytest.mark.parametrize(
    ("modality", "count", "dtype", "descriptions"),
    [
        ("s2", 13, "uint16", S2_BANDS),
        ("s2_cloudy", 13, "uint16", S2_BANDS),
        ("s1", 2, "float32", S1_BANDS),
        ("land_cover_maps", 1, "uint8", None),
        ("cloud_detection_results", 1, "float32", None),
    ],
)
def test_twin_headers_match_the_real_tiles(tiny_luojiaset_root, modality, count, dtype, descriptions):
    record = _all_records(tiny_luojiaset_root)[0]
    with rasterio.open(tiny_luojiaset_root / record.paths[modality]) as src:
        assert (src.count, src.dtypes[0], src.width, src.height) == (count, dtype, SIZE, SIZE)
        if descriptions is not None:
            assert src.descriptions == descriptions
        assert src.transform.a == 10.0 and src.transform.e == -10.0
        assert src.profile.get("compress") is None and not src.profile.get("tiled", False)
        if src.crs is not None:
            assert src.crs.to_epsg() // 100 in (326, 327)  # WGS84 / UTM


def test_some_land_cover_maps_have_no_crs(tiny_luojiaset_root):
    crs_present = []
    for record in _all_records(tiny_luojiaset_root):
        with rasterio.open(tiny_luojiaset_root / record.paths["land_cover_maps"]) as src:
            crs_present.append(src.crs is not None)
    assert 0 < sum(crs_present) < len(crs_present)


def test_values_have_real_units(tiny_luojiaset_root):
    ds = LuojiaSETOSFCR(tiny_luojiaset_root, "train")
    raw = ds.load_raw(0)
    b10 = raw["s2"][S2_BANDS.index("B10")]
    assert 1000 <= b10.min() and b10.max() <= 1030  # +1000 offset, cirrus band nearly empty
    assert raw["s2"].min() >= 1000
    assert -40 < raw["s1"].min() and raw["s1"].max() < 10  # dB
    assert set(np.unique(raw["land_cover_maps"])) <= set(range(7))
    assert set(np.unique(raw["cloud_detection_results"])) <= {0.0, 1.0}


def test_cloud_fraction_lies_in_the_bucket(tiny_luojiaset_root):
    for record in _all_records(tiny_luojiaset_root):
        with rasterio.open(tiny_luojiaset_root / record.paths["cloud_detection_results"]) as src:
            fraction = float(src.read(1).mean())
        index = BUCKETS.index(record.bucket)
        assert 0.2 * index <= fraction <= 0.2 * (index + 1), (record.id, fraction)
    info = read_synthetic_info(tiny_luojiaset_root)
    assert info["parameters"]["n_tiles"] == N_TILES and info["parameters"]["size"] == SIZE
    assert sum(info["cloud_kinds"].values()) == N_TILES


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_fraction_range(bucket):
    lo, hi = bucket_fraction_range(bucket)
    index = BUCKETS.index(bucket)
    assert (lo, hi) == pytest.approx((0.2 * index + 0.02, 0.2 * index + 0.18))


# ------------------------------------------------------------------------------------ content
def test_content_is_learnable(tiny_luojiaset_root):
    """Per-pixel nearest-centroid classifiers beat the majority class by a wide margin on both
    sensors, and land cover drives spectra and backscatter as designed.

    The optical features are each tile's spectra divided by the tile's mean spectrum: the season
    scales a tile's surface signal by 0.55-1.1 and the path term by 0.9-1.5 (twin 2.1), so raw
    reflectance across tiles mixes classes, as in real scenes; a network sees the tile's context.
    """
    ds = LuojiaSETOSFCR(tiny_luojiaset_root, "train")
    raw, optical, sar, labels = [], [], [], []
    for index in range(len(ds)):
        sample = ds[index]
        spectra = sample["target"].numpy().reshape(13, -1)
        raw.append(spectra)
        optical.append(spectra / spectra.mean(axis=1, keepdims=True))
        sar.append(uniform_filter(sample["sar"].numpy(), (0, 5, 5)).reshape(2, -1))
        labels.append(sample["mask"].numpy().ravel())
    y = np.concatenate(labels)
    majority = np.bincount(y).max() / y.size
    for features, minimum in ((np.concatenate(optical, 1).T, 0.75), (np.concatenate(sar, 1).T, majority + 0.12)):
        half = y.size // 2
        present = [c for c in range(7) if np.any(y[:half] == c)]
        centroids = np.stack([features[:half][y[:half] == c].mean(0) for c in present])
        scale = features[:half].std(0)
        distance = (((features[half:, None] - centroids[None]) / scale) ** 2).sum(-1)
        accuracy = float((np.asarray(present)[distance.argmin(1)] == y[half:]).mean())
        assert accuracy > minimum, (accuracy, minimum)
    x = np.concatenate(raw, 1).T
    ndvi = (x[:, 7] - x[:, 3]) / (x[:, 7] + x[:, 3])
    assert ndvi[y == 6].mean() > ndvi[y == 5].mean() > ndvi[y == 1].mean()  # forest > grass > water
    vv = np.concatenate(sar, 1).T[:, 0]
    assert vv[y == 2].mean() > vv[y == 6].mean() > vv[y == 1].mean()  # built-up > forest > water


def test_generate_tile_is_deterministic():
    a, b, c = generate_tile(32, 5, 0.5), generate_tile(32, 5, 0.5), generate_tile(32, 6, 0.5)
    for modality in MODALITIES:
        np.testing.assert_array_equal(a[modality], b[modality])
    assert not np.array_equal(a["s2"], c["s2"])
    assert a["info"] == b["info"]


def test_twin_is_deterministic_for_a_seed(tmp_path):
    a = make_synthetic_luojiaset(tmp_path / "a", n_tiles=5, size=16, seed=3)
    b = make_synthetic_luojiaset(tmp_path / "b", n_tiles=5, size=16, seed=3)
    c = make_synthetic_luojiaset(tmp_path / "c", n_tiles=5, size=16, seed=4)
    checksums = [(root / "manifest" / "checksums.sha256").read_text() for root in (a, b, c)]
    assert checksums[0] == checksums[1] != checksums[2]


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.37, 0.9, 1.0])
@pytest.mark.parametrize("kind", ["thick", "thin", "mixed"])
def test_cloud_mask_hits_the_target_fraction(fraction, kind):
    rng = np.random.default_rng(0)
    clear = np.tile(CLASS_SPECTRA[6][:, None, None], (1, 40, 40))
    cloudy, mask, info = simulate_clouds(clear, fraction, rng, kind=kind)
    assert cloudy.shape == clear.shape and mask.shape == (40, 40)
    assert mask.mean() == pytest.approx(fraction, abs=1.5 / 40**2)
    assert info["kind"] == kind


def test_clouds_change_the_image_inside_the_mask():
    rng = np.random.default_rng(1)
    clear = np.tile(CLASS_SPECTRA[6][:, None, None], (1, 64, 64))
    cloudy, mask, _ = simulate_clouds(clear, 0.4, rng, kind="thick")
    inside, outside = mask.astype(bool), ~mask.astype(bool)
    change = np.abs(cloudy - clear)[1:4]  # visible bands
    assert change[:, inside].mean() > 5 * change[:, outside].mean()
    assert (cloudy[1:4, inside] > clear[1:4, inside]).mean() > 0.95  # clouds brighten


def test_thick_clouds_cast_shadows_outside_the_mask():
    darkened = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        clear = np.tile(CLASS_SPECTRA[4][:, None, None], (1, 64, 64))
        cloudy, mask, _ = simulate_clouds(clear, 0.3, rng, kind="thick")
        outside = ~mask.astype(bool)
        darkened.append(float((cloudy[7][outside] < 0.8 * clear[7][outside]).mean()))
    assert max(darkened) > 0.02


def test_low_clouds_are_dark_in_b09_and_invisible_in_b10():
    """Real low clouds (SEN12MS-CR's autumn sample: B10 0.0018, B09 a fifth of VNIR inside the
    cloud) leave B10 at its clear-sky level; only the few high tops are bright there. A twin
    whose every cloud is bright in B10 teaches a model to find clouds by B10 alone."""
    clear = np.tile(CLASS_SPECTRA[6][:, None, None], (1, 48, 48))
    high_tops = []
    for seed in range(40):
        cloudy, mask, info = simulate_clouds(clear, 0.5, np.random.default_rng(seed), kind="thick")
        core = mask.astype(bool) & (cloudy[3] > 0.5)  # the opaque part
        high_tops.append(info["high_top"])
        if not core.any():
            continue
        if info["high_top"]:
            assert np.median(cloudy[10, core]) > 0.02
        else:
            assert np.median(cloudy[10, core]) < 0.003
            assert np.median(cloudy[9, core]) < 0.35 * np.median(cloudy[1:9, core])
    assert 0.05 <= np.mean(high_tops) <= 0.4


def test_thin_clouds_are_band_dependent():
    rng = np.random.default_rng(2)
    clear = np.tile(CLASS_SPECTRA[6][:, None, None], (1, 48, 48))
    cloudy, mask, info = simulate_clouds(clear, 0.6, rng, kind="thin")
    assert info["alpha"] >= 0.5
    inside = mask.astype(bool)
    blue_gain = (cloudy[1, inside] - clear[1, inside]).mean()
    swir_gain = (cloudy[12, inside] - clear[12, inside]).mean()
    assert blue_gain > 2 * swir_gain
    assert cloudy[1, inside].mean() < 0.9 * 0.78  # thin: the surface still shows through


# ------------------------------------------------------------------------------------ reuse / errors
def test_existing_twin_is_reused_or_protected(tmp_path):
    root = make_synthetic_luojiaset(tmp_path / "twin", n_tiles=5, size=16)
    stamp = (root / "synthetic.json").stat().st_mtime_ns
    assert make_synthetic_luojiaset(root, n_tiles=5, size=16) == root
    assert (root / "synthetic.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="other parameters"):
        make_synthetic_luojiaset(root, n_tiles=6, size=16)
    make_synthetic_luojiaset(root, n_tiles=6, size=16, overwrite=True)
    assert len(_all_records(root)) == 6


def test_foreign_folder_is_not_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "0-20%").mkdir()  # e.g. the real data by mistake
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a synthetic twin"):
            make_synthetic_luojiaset(tmp_path, n_tiles=5, size=16, overwrite=overwrite)
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "0-20%").is_dir()


@pytest.mark.parametrize(("n_tiles", "size"), [(0, 32), (5, 4)])
def test_invalid_parameters(tmp_path, n_tiles, size):
    with pytest.raises(ValueError, match="n_tiles"):
        make_synthetic_luojiaset(tmp_path / "x", n_tiles=n_tiles, size=size)


# ------------------------------------------------------------------------------------ CLI
def test_cli_synth_then_manifest(tmp_path, capsys):
    root = tmp_path / "twin"
    assert data_main(["synth", str(root), "--n-tiles", "10", "--size", "16", "--seed", "2"]) == 0
    assert "synthetic twin" in capsys.readouterr().out
    assert read_synthetic_info(root)["parameters"]["seed"] == 2
    out = tmp_path / "manifest"
    assert cli.main(["data", "manifest", str(root), "--out", str(out)]) == 0
    for split in ("train", "val", "test"):
        assert (out / f"{split}.csv").read_bytes() == (root / "manifest" / f"{split}.csv").read_bytes()
    assert (out / "checksums.sha256").is_file() and (out / "split_config.json").is_file()
    assert data_main(["manifest", str(root), "--out", str(tmp_path / "m2"), "--no-checksums"]) == 0
    assert not (tmp_path / "m2" / "checksums.sha256").exists()


def test_cli_reports_errors(tmp_path, capsys):
    assert data_main(["manifest", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 3
    err = capsys.readouterr().err
    assert "questionnaire" in err and str(tmp_path / "missing") in err
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "x.txt").write_text("x")
    assert data_main(["synth", str(tmp_path / "occupied"), "--n-tiles", "5", "--size", "16"]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_default_twin_generates_in_about_a_minute(tmp_path):
    started = time.perf_counter()
    root = make_synthetic_luojiaset(tmp_path / "twin")  # 350 tiles of 64 px
    elapsed = time.perf_counter() - started
    assert len(_all_records(root)) == 350
    assert elapsed < 120, f"default twin took {elapsed:.0f} s"
