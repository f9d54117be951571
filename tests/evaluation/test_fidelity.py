"""The calibrated twin, its fidelity measurement against real samples, and the transfer check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from tdpcr_lib.datasets.synthetic.calibration import load_calibration, twin_version
from tdpcr_lib.datasets.synthetic.tiles import read_synthetic_info
from tdpcr_lib.evaluation.fidelity import (
    fidelity_distances,
    jsonable,
    real_statistics,
    sen12mscr_sample_tiles,
    statistics_from_arrays,
    twin_tiles,
)
from tdpcr_lib.evaluation.fidelity_report import fidelity_markdown, load_before
from tdpcr_lib.evaluation.transfer import transfer_check, transfer_markdown


def test_every_calibration_block_says_where_its_numbers_come_from():
    calibration = load_calibration()
    for block in ("class_spectra", "seasons", "atmosphere", "sar", "texture", "class_frequencies", "ground_change"):
        assert calibration[block].get("provenance"), block
    assert len(calibration["class_spectra"]["values"]) == 7
    assert all(len(v) == 13 for v in calibration["class_spectra"]["values"].values())


def test_twin_records_its_version(tiny_luojiaset_root):
    info = read_synthetic_info(tiny_luojiaset_root)
    assert info["twin_version"] == twin_version() == info["parameters"]["twin_version"]
    assert sum(info["seasons"].values()) == info["parameters"]["n_tiles"]


def test_shipped_real_samples_are_read_with_their_buckets():
    tiles = {t["name"]: t for t in sen12mscr_sample_tiles()}
    assert set(tiles) == {"ROIs1970_fall_139_p839", "ROIs2017_winter_112_p797"}
    assert tiles["ROIs1970_fall_139_p839"]["bucket"] == "60%-80%"  # thick cumulus
    assert tiles["ROIs2017_winter_112_p797"]["bucket"] == "0-20%"  # haze only
    for tile in tiles.values():
        assert tile["s2"].shape == (13, 128, 128) and tile["s1"].shape == (2, 128, 128)


def _tile(rng, offset=1000.0, shift=0.0):
    refl = rng.uniform(0.05, 0.3, (13, 64, 64)) + shift
    return {
        "s2": refl * 10000 + offset,
        "dn_offset": offset,
        "s1": rng.normal(-12, 3, (2, 64, 64)),
        "land_cover": rng.integers(5, 7, (64, 64)),
        "cloud_mask": (rng.random((64, 64)) < 0.5).astype(np.float32),
        "bucket": "40%-60%",
    }


def test_distances_vanish_for_identical_data_and_measure_a_shift():
    same_a = statistics_from_arrays([_tile(np.random.default_rng(0))])
    same_b = statistics_from_arrays([_tile(np.random.default_rng(0))])
    zero = fidelity_distances(same_a, {"real": same_b})
    assert zero["band_wasserstein_mean"] == pytest.approx(0, abs=1e-12)
    assert zero["band_ks_mean"] == 0 and zero["psd_log10_mae_mean"] == pytest.approx(0)
    shifted = statistics_from_arrays([_tile(np.random.default_rng(0), shift=0.05)])
    moved = fidelity_distances(shifted, {"real": same_b})
    assert moved["band_wasserstein_mean"] == pytest.approx(0.05, rel=0.02)
    assert moved["class_spectra_mae"]["5"] == pytest.approx(0.05, rel=0.02)


def test_the_dn_offset_is_removed_per_source():
    """The same reflectance with and without the +1000 DN offset is the same distribution."""
    with_offset = statistics_from_arrays([_tile(np.random.default_rng(1), offset=1000.0)])
    without = statistics_from_arrays([_tile(np.random.default_rng(1), offset=0.0)])
    assert fidelity_distances(with_offset, {"real": without})["band_wasserstein_mean"] < 1e-9


def test_calibrated_twin_is_closer_to_real_than_before(tiny_luojiaset_root):
    """The tiny twin (32 px, so no power spectra) against the real samples, vs the shipped
    distances of the uncalibrated twin: per-band histograms, class spectra and SAR all closer."""
    twin = statistics_from_arrays(twin_tiles(tiny_luojiaset_root, max_tiles=50))
    now = fidelity_distances(twin, real_statistics())
    before = load_before()["distances"]
    assert now["band_ks_mean"] < before["band_ks_mean"]
    assert np.mean(list(now["class_spectra_mae"].values())) < np.mean(list(before["class_spectra_mae"].values()))
    for band in ("VV", "VH"):
        assert now["s1_wasserstein_db"][band] < before["s1_wasserstein_db"][band]
    text = fidelity_markdown(jsonable(now), load_before(), {"bands": "figures/b.png"})
    assert "before calibration" in text and f"now (twin {twin_version()})" in text
    json.dumps(jsonable(now), allow_nan=False)  # strict JSON for the metrics record


class _Identity(nn.Module):
    """Returns its optical input: the 'do nothing' model."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, optical, sar):
        return {"reconstruction": optical + 0 * self.p}


def test_transfer_check_measures_the_do_nothing_model_as_no_gain():
    table, images = transfer_check(_Identity())
    assert list(table.index) == ["ROIs1970_fall_139_p839", "ROIs2017_winter_112_p797"]
    assert np.allclose(table["gain_as_is"], 0, atol=0.02)
    assert np.allclose(table["gain_offset_added"], 0, atol=0.02)
    assert (table["psnr_cloudy"] > 5).all() and (table["psnr_cloudy"] < 40).all()
    assert images["ROIs2017_winter_112_p797"]["prediction_as_is"].shape == (13, 128, 128)
    assert "| ROIs1970_fall_139_p839 |" in transfer_markdown(table, "ckpt")
    warned = table.assign(domain_warning=["twin model on real files", ""])
    text = transfer_markdown(warned, "ckpt")  # one line per sample, not the warnings run together
    assert "- `ROIs1970_fall_139_p839`: twin model on real files\n" in text
    assert "- `ROIs2017_winter_112_p797`: no warning\n" in text
