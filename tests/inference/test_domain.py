"""Domain honesty: checkpoints record their training data, prediction warns on unlike inputs."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from tdpcr_lib.cli.predict import main as predict_main
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.provenance import describe_training_data
from tdpcr_lib.datasets.synthetic.calibration import twin_version
from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.evaluation.fidelity import sen12mscr_sample_tiles
from tdpcr_lib.inference.domain import DomainWarning, domain_check, input_statistics
from tdpcr_lib.inference.scene import predict_scene
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models.checkpoint import read_meta, save_checkpoint


@pytest.fixture(scope="module")
def training_data(tiny_luojiaset_root):
    return describe_training_data(LuojiaSETOSFCR(tiny_luojiaset_root, "train"), n_samples=8)


@pytest.fixture(scope="module")
def twin_checkpoint(tmp_path_factory, training_data):
    """A (random) tiny TDP-CR checkpoint whose config says it was trained on the twin."""
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny", with_seg_decoder=True)).eval()
    directory = tmp_path_factory.mktemp("ckpt") / "best"
    save_checkpoint(directory, model, phase="phase2", epoch=1, step=1, extra={"training_data": training_data})
    return directory


@pytest.fixture(scope="module")
def real_pair():
    tile = sen12mscr_sample_tiles()[1]  # the dark winter scene under haze
    return tile["paths"]["s2_cloudy"], tile["paths"]["s1"]


def test_training_data_records_source_twin_version_and_band_statistics(training_data):
    assert training_data["source"] == "synthetic"
    assert training_data["dataset"] == "LuojiaSETOSFCR"
    assert training_data["twin_version"] == twin_version()
    optical = training_data["input_statistics"]["optical"]
    assert len(optical) == 13 and set(training_data["input_statistics"]["sar"]) == {"VV", "VH"}
    # the twin carries the +1000 DN offset: even B10's lowest inputs sit at ~0.1 after /10000
    assert 0.099 < optical["B10"]["p01"] <= optical["B10"]["p50"] <= optical["B10"]["p99"]


def test_checkpoint_keeps_the_training_data(twin_checkpoint, training_data):
    assert read_meta(twin_checkpoint)["training_data"] == training_data


def test_twin_model_on_real_files_warns_and_names_bands(training_data, real_pair):
    observed = input_statistics(*real_pair)
    result = domain_check(training_data, observed, synthetic_input=False)
    assert result["input"] == "real"
    assert "synthetic twin" in result["warning"] and "real files" in result["warning"]
    # SEN12MS-CR predates the +1000 DN offset: its cirrus band lies far below the twin's range
    assert "B10" in result["bands_outside_training"]
    assert "B10" in result["warning"] and "\n" not in result["warning"]


def test_statistics_are_taken_as_the_network_sees_the_input(real_pair):
    # prediction adds the model's offset to an offset-free file: the check must see that input,
    # not the raw DN (every band would look 0.1 too dark and be named)
    raw, shifted = input_statistics(*real_pair), input_statistics(*real_pair, s2_shift=1000)
    for band, stats in raw["optical"].items():
        assert shifted["optical"][band]["p50"] - stats["p50"] == pytest.approx(0.1, abs=1e-3), band
    assert shifted["sar"] == raw["sar"]


def test_like_data_gives_no_warning(training_data):
    observed = {
        "optical": {b: {"p50": s["p50"]} for b, s in training_data["input_statistics"]["optical"].items()},
        "sar": {b: {"p50": s["p50"]} for b, s in training_data["input_statistics"]["sar"].items()},
    }
    result = domain_check(training_data, observed, synthetic_input=True)
    assert result["warning"] is None and result["bands_outside_training"] == []


def test_a_real_trained_checkpoint_only_warns_about_bands(training_data, real_pair):
    real_trained = {**training_data, "source": "luojiaset", "twin_version": None}
    result = domain_check(real_trained, input_statistics(*real_pair), synthetic_input=False)
    assert "synthetic twin" not in result["warning"] and "B10" in result["warning"]


def test_predict_scene_warns_and_stores_the_warning(twin_checkpoint, training_data, real_pair, tmp_path):
    with pytest.warns(DomainWarning, match="synthetic twin"):
        paths = predict_scene(*real_pair, twin_checkpoint, tmp_path / "out", tile=64, progress=False, overlap_io=False)
    summary = json.loads(paths["summary"].read_text())
    assert "synthetic twin" in summary["domain"]["warning"]
    # the SEN12MS-CR file has no offset (read from its content), so prediction adds the twin's
    # 1000 DN and the bands are judged on that input: the raw file's B10 is no longer named
    assert summary["s2_offset"] == 0
    shifted = domain_check(training_data, input_statistics(*real_pair, s2_shift=1000), synthetic_input=False)
    assert summary["domain"]["bands_outside_training"] == shifted["bands_outside_training"]
    assert summary["domain"]["trained_on"]["twin_version"] == twin_version()


def test_predict_scene_on_a_synthetic_scene_does_not_call_it_real(twin_checkpoint, tmp_path):
    scene = make_synthetic_scene(tmp_path / "scene", 48, 48, seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = predict_scene(
            scene.s2_cloudy, scene.s1, twin_checkpoint, tmp_path / "out", tile=48, progress=False, overlap_io=False
        )
    summary = json.loads(paths["summary"].read_text())
    assert summary["domain"]["input"] == "synthetic"
    assert not any("real files" in str(w.message) for w in caught)


def test_cli_prints_the_domain_warning_in_one_line(twin_checkpoint, real_pair, tmp_path, capsys):
    status = predict_main(
        [
            "--s2",
            str(real_pair[0]),
            "--s1",
            str(real_pair[1]),
            "--checkpoint",
            str(twin_checkpoint),
            "--out",
            str(tmp_path / "o"),
            "--tile",
            "64",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert status == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "synthetic twin" in ln]
    assert len(lines) == 1 and lines[0].startswith("tdpcr predict: warning:")
    assert "applied to real files" in lines[0]
