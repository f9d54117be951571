"""Scene prediction with reading and writing overlapped on helper threads (``overlap_io``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from torch import nn

from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.inference import scene as P
from tdpcr_lib.inference import scene_loop as P_loop
from tdpcr_lib.inference.strips import StripWriter
from tdpcr_lib.models import ModelConfig, build_model


class PixelModel(nn.Module):
    """A per-pixel network with segmentation and prompts."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.mix = nn.Conv2d(15, 13 + 7 + 1, 1)

    def forward(self, optical, sar):
        y = self.mix(torch.cat([optical, sar], dim=1))
        gate = torch.sigmoid(y[:, -1:])
        return {"reconstruction": torch.sigmoid(y[:, :13]), "segmentation": y[:, 13:-1], "prompts": [gate] * 4}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_synthetic_scene(
        tmp_path_factory.mktemp("scene"), 200, 150, seed=5, s1_offset=(3.0, -4.0), nodata_corner=30
    )


def predict(scene, out: Path, **kwargs):
    kwargs.setdefault("blocksize", 128)
    return P.predict_scene(
        scene.s2_cloudy,
        scene.s1,
        PixelModel(),
        out,
        tile=64,
        overlap=16,
        batch_size=2,
        write_prompt=True,
        progress=False,
        **kwargs,
    )


def test_overlapped_and_sequential_predictions_are_identical(scene, tmp_path):
    overlapped = predict(scene, tmp_path / "a")
    sequential = predict(scene, tmp_path / "b", overlap_io=False)
    assert overlapped.keys() == sequential.keys() >= {"cloud_free", "land_cover", "degradation_prompt"}
    for name in ("cloud_free", "land_cover", "degradation_prompt"):
        with rasterio.open(overlapped[name]) as a, rasterio.open(sequential[name]) as b:
            np.testing.assert_array_equal(a.read(), b.read())
            assert str(a.profile) == str(b.profile)  # (nan != nan in a dict compare)


@pytest.mark.parametrize("overlap_io", [True, False])
def test_a_writer_failure_surfaces_and_leaves_nothing(scene, tmp_path, monkeypatch, overlap_io):
    calls = []
    original = StripWriter.finish_strip

    def failing(self, row, valid):
        calls.append(row)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return original(self, row, valid)

    monkeypatch.setattr(StripWriter, "finish_strip", failing)
    with pytest.raises(OSError, match="disk full"):
        predict(scene, tmp_path / "out", overlap_io=overlap_io)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_reader_failure_surfaces_and_leaves_nothing(scene, tmp_path, monkeypatch):
    original = P_loop.read_strip

    def failing(inputs, y0, height, canvas_width):
        if y0 > 0:
            raise rasterio.errors.RasterioIOError("read failed (simulated)")
        return original(inputs, y0, height, canvas_width)

    monkeypatch.setattr(P_loop, "read_strip", failing)
    with pytest.raises(rasterio.errors.RasterioIOError, match="simulated"):
        predict(scene, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_bf16_precision_runs_the_gpu_autocast_path_on_the_cpu(scene, tmp_path):
    """``precision="bf16"`` is the CUDA default path (channels_last tiles under bf16 autocast);
    on a CPU it runs the same code and stays close to fp32."""
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny", arch="tdpcr", with_seg_decoder=True)).eval()
    kwargs = dict(tile=64, overlap=16, batch_size=2, progress=False, blocksize=128)
    fp32 = P.predict_scene(scene.s2_cloudy, scene.s1, model, tmp_path / "fp32", **kwargs)
    bf16 = P.predict_scene(scene.s2_cloudy, scene.s1, model, tmp_path / "bf16", precision="bf16", **kwargs)
    assert json.loads(bf16["summary"].read_text())["precision"] == "bf16"
    with rasterio.open(fp32["cloud_free"]) as a, rasterio.open(bf16["cloud_free"]) as b:
        difference = np.abs(a.read().astype(np.int64) - b.read().astype(np.int64))
    assert 0 < difference.mean() < 20  # DN; autocast did run, and bf16 stays close


def test_unknown_precision_is_refused(scene, tmp_path):
    with pytest.raises(P.PredictionInputError, match="precision must be one of"):
        predict(scene, tmp_path / "out", precision="fp16")


def test_overviews_built_while_writing_equal_gdals_and_the_products_stay_valid_cogs(scene, tmp_path, monkeypatch):
    """The levels built from each strip (inference.overviews) against GDAL building them at the end."""
    cogeo = pytest.importorskip("rio_cogeo.cogeo", reason="rio-cogeo (dev extra) not installed")
    built = predict(scene, tmp_path / "new", blocksize=32)  # 200 x 150: 3 levels, odd sizes among them
    monkeypatch.setattr(P, "predict_into", partial(P_loop.predict_into, overviews_while_writing=False))
    gdal = predict(scene, tmp_path / "gdal", blocksize=32)
    for name in ("cloud_free", "land_cover", "degradation_prompt"):
        valid, errors, _ = cogeo.cog_validate(str(built[name]))
        assert valid, errors
        with rasterio.open(built[name]) as a, rasterio.open(gdal[name]) as b:
            np.testing.assert_array_equal(a.read(), b.read())  # full resolution: identical
            assert a.overviews(1) == b.overviews(1) == [2, 4, 8]
            assert str(a.profile) == str(b.profile)
        for level in range(3):
            with (
                rasterio.open(built[name], overview_level=level) as a,
                rasterio.open(gdal[name], overview_level=level) as b,
            ):
                ours, theirs = a.read(), b.read()
            if name == "degradation_prompt":
                np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
            else:  # same DN, same mode label
                np.testing.assert_array_equal(ours, theirs, err_msg=f"{name} level {level}")
    # the overview files were scratch: the folder holds the products and their side files only
    assert not [p.name for p in (tmp_path / "new").iterdir() if ".ovr" in p.name or p.name.startswith(".")]


_KILLED_CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from tdpcr_lib.inference import scene as P, scene_loop as L
from test_predict_pipeline import PixelModel

def stall(*args, **kwargs):  # the products' rows and overview levels are all written: wait for the kill
    Path({marker!r}).write_text("ready")
    time.sleep(600)

L.to_cog = stall
P.predict_scene({s2!r}, {s1!r}, PixelModel(), {out!r}, tile=64, overlap=16, batch_size=2,
                write_prompt=True, progress=False, blocksize=32)
"""


def test_a_sigkill_after_the_overview_levels_are_written_leaves_the_published_set(scene, tmp_path):
    """SIGKILL with the intermediates and their overview levels on disk: the earlier products stay as
    they were, and the next prediction removes the killed run's staging folder (levels included)."""
    out = tmp_path / "out"
    predict(scene, out, blocksize=32)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    marker = tmp_path / "ready"
    code = _KILLED_CHILD.format(
        tests=str(Path(__file__).parent), marker=str(marker), s2=str(scene.s2_cloudy), s1=str(scene.s1), out=str(out)
    )
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 300
        while not marker.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the child never reached the COG step"
        staged = [p.name for p in out.glob(".tdpcr-predict-*/*")]
        assert any(name.endswith(".ovr.ovr") for name in staged), staged  # levels were on disk
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")} == before
    again = predict(scene, out, blocksize=32)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or ".ovr" in p.name]
    with rasterio.open(again["cloud_free"]) as src:
        assert src.overviews(1) == [2, 4, 8]
