"""Correct reflectance in GIS: ``--s2-offset``, GDAL scale/offset of ``cloud_free.tif`` read back
with rioxarray (``mask_and_scale=True``), ``s2_offset`` in ``prediction.json``."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import rioxarray
import torch
from torch import nn

from tdpcr_lib.cli import predict as P_cli
from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.inference import offset as O
from tdpcr_lib.inference import scene as P


class Identity(nn.Module):
    """Returns its optical input and remembers the mean it saw (the model's view of the DN)."""

    def __init__(self, legend: str | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.seen: list[float] = []
        if legend is not None:
            self.config = SimpleNamespace(legend=legend)

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict:
        self.seen.append(float(optical.mean()))
        return {"reconstruction": optical * self.w}


@pytest.fixture(autouse=True)
def progress_lines_on_stdout():
    # the offset line is an INFO log line, on stdout as the CLI shows it; without this the tests
    # saw it only when an earlier test in the session had configured logging (alone they failed)
    from tdpcr_lib.core.logs import configure_logging

    configure_logging(0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_synthetic_scene(tmp_path_factory.mktemp("scene"), 96, 112, seed=5)


def _predict(scene, out, model=None, s2=None, **kwargs):
    """Predict ``scene`` (or ``s2``, a variant of its Sentinel-2 file, with its S1) with ``model``."""
    model = model or Identity()
    paths = P.predict_scene(
        s2 or scene.s2_cloudy, scene.s1, model, out, tile=64, overlap=16, progress=False, device="cpu", **kwargs
    )
    return paths, model


@pytest.mark.parametrize("offset", [0, 1000])
def test_rioxarray_mask_and_scale_reads_reflectance(scene, tmp_path, offset):
    paths, _ = _predict(scene, tmp_path / str(offset), s2_offset=offset)
    with rasterio.open(scene.s2_cloudy) as src:
        dn_in = src.read().astype(np.float64)
    with rioxarray.open_rasterio(paths["cloud_free"], mask_and_scale=True) as da:
        reflectance = da.values.astype(np.float64)
    with rasterio.open(paths["cloud_free"]) as dst:
        dn_out = dst.read().astype(np.float64)
        assert dst.offsets == (-offset * 1e-4,) * 13
        assert dst.scales == (1e-4,) * 13
        assert dst.tags()[O.OFFSET_TAG] == str(offset)
    valid = (dn_in > 0).all(axis=0) & (dn_in < 10000 - 1000).all(axis=0)
    # identity model: the DN come back in the input's convention, whatever the model's
    np.testing.assert_allclose(dn_out[:, valid], dn_in[:, valid], atol=1)
    # and a GDAL reader that applies scale and offset gets (DN - offset) / 10000
    np.testing.assert_allclose(reflectance[:, valid], (dn_in[:, valid] - offset) / 1e4, atol=1.5e-4)
    summary = json.loads(paths["summary"].read_text())
    assert summary["s2_offset"] == offset
    assert summary["s2_offset_model"] == 1000


def test_input_is_shifted_into_the_models_convention(scene, tmp_path):
    _, seen_1000 = _predict(scene, tmp_path / "a", s2_offset=1000)
    _, seen_0 = _predict(scene, tmp_path / "b", s2_offset=0)
    # a LuojiaSET model expects +1000 DN: an offset-free input is raised by 1000 DN = 0.1
    assert np.mean(seen_0.seen) - np.mean(seen_1000.seen) == pytest.approx(0.1, abs=0.01)


def _with_tags(src_path, dst_path, band_tags=None, tags=None):
    shutil.copy(src_path, dst_path)
    with rasterio.open(dst_path, "r+") as dst:
        if tags:
            dst.update_tags(**tags)
        for band in range(1, dst.count + 1):
            if band_tags:
                dst.update_tags(band, **band_tags)
    return dst_path


def test_auto_reads_esa_offset_metadata(scene, tmp_path, capsys):
    s2 = _with_tags(scene.s2_cloudy, tmp_path / "s2.tif", band_tags={"RADIO_ADD_OFFSET": "-1000"})
    paths, _ = _predict(scene, tmp_path / "o", model=Identity(legend="igbp_simplified"), s2=s2)
    assert json.loads(paths["summary"].read_text())["s2_offset"] == 1000
    assert "1000 DN, declared by" in capsys.readouterr().out


def _shifted(src_path, dst_path, shift):
    """A copy of the scene with ``shift`` DN added to every valid pixel (no offset metadata)."""
    shutil.copy(src_path, dst_path)
    with rasterio.open(dst_path, "r+") as dst:
        data = dst.read().astype(np.int64)
        dst.write(np.where(data > 0, np.clip(data + shift, 1, 65535), 0).astype(dst.dtypes[0]))
    return dst_path


def test_auto_without_metadata_judges_the_content_and_says_so(scene, tmp_path, capsys):
    # the twin's scene carries +1000 DN: a SEN12MS-CR model (offset 0) is told so by the content
    paths, _ = _predict(scene, tmp_path / "o", model=Identity(legend="igbp_simplified"))
    assert json.loads(paths["summary"].read_text())["s2_offset"] == 1000
    line = capsys.readouterr().out
    assert "declares none; its content says 1000 DN" in line and "unlike the 0 DN" in line
    # the same scene without the offset (SEN12MS-CR's convention): its B10 sits at a few DN
    bare = _shifted(scene.s2_cloudy, tmp_path / "bare.tif", -1000)
    paths, _ = _predict(scene, tmp_path / "p", s2=bare)
    assert json.loads(paths["summary"].read_text())["s2_offset"] == 0
    line = capsys.readouterr().out
    assert "its content says 0 DN" in line and "B10" in line and "LuojiaSET-OSFCR" in line


def test_auto_falls_back_on_the_checkpoints_convention_when_the_content_cannot_tell(scene, tmp_path, capsys):
    # darkest pixels between 500 and 1000 DN: offset-free with a bright B10, or offset with noise
    unclear = _shifted(scene.s2_cloudy, tmp_path / "unclear.tif", -300)
    paths, _ = _predict(scene, tmp_path / "o", model=Identity(legend="igbp_simplified"), s2=unclear)
    assert json.loads(paths["summary"].read_text())["s2_offset"] == 0
    line = capsys.readouterr().out
    assert "do not tell; assuming 0 DN" in line and "SEN12MS-CR" in line


@pytest.mark.parametrize(
    ("floor", "expected"), [(10.0, 0), (480.0, 0), (700.0, None), (999.0, None), (1000.0, 1000), (1500.0, 1000)]
)
def test_offset_from_content_thresholds(floor, expected):
    rng = np.random.default_rng(0)
    sample = floor + rng.uniform(0, 3000, size=(13, 5000))
    sample[:, :100] = floor  # the 1st percentile of every band is the floor
    assert O.offset_from_content(sample)[0] == expected
    assert O.offset_from_content(sample[:, :50])[0] is None  # too few pixels to judge


def test_explicit_offset_wins_and_names_a_conflict(scene, tmp_path, capsys):
    s2 = _with_tags(scene.s2_cloudy, tmp_path / "s2.tif", tags={O.OFFSET_TAG: "1000"})
    paths, _ = _predict(scene, tmp_path / "o", s2=s2, s2_offset=0)
    assert json.loads(paths["summary"].read_text())["s2_offset"] == 0
    assert "declares 1000 DN" in capsys.readouterr().out


def test_a_product_declares_its_offset_for_the_next_prediction(scene, tmp_path):
    paths, _ = _predict(scene, tmp_path / "o", s2_offset=0)
    with rasterio.open(paths["cloud_free"]) as src:
        assert O.declared_s2_offset(src)[0] == 0
    paths, _ = _predict(scene, tmp_path / "p", s2_offset=1000)
    with rasterio.open(paths["cloud_free"]) as src:
        assert O.declared_s2_offset(src) == (1000, "dataset tags")


def test_bad_offset_is_refused(scene, tmp_path, capsys):
    with pytest.raises(P.PredictionInputError, match="s2_offset must be one of"):
        _predict(scene, tmp_path / "o", s2_offset=500)
    status = P_cli.main(
        [
            "--s2",
            str(scene.s2_cloudy),
            "--s1",
            str(scene.s1),
            "--checkpoint",
            str(tmp_path),
            "--out",
            str(tmp_path / "d"),
            "--s2-offset",
            "500",
        ]
    )
    err = capsys.readouterr().err
    assert status != 0 and "--s2-offset" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
