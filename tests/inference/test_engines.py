"""The ONNX export and the inference engines (issue "Fast CPU inference through a fusing runtime").

What a user depends on:

* ``tdpcr export onnx`` writes a file any ONNX runtime loads, with the legend, normalisation,
  band order, I/O names and shapes, weights' sha256 and opset in its metadata, for phase-1 and
  phase-2 checkpoints of both datasets' legends; dynamic batch and spatial size; it matches torch;
* ``predict_scene(..., engine="onnxruntime")`` gives the torch engine's products within 1 DN at
  the 99.9th percentile and the same land-cover label on >= 99.9 % of pixels;
* the export is cached beside the checkpoint, keyed by the weights' sha256, rebuilt when they
  change; ``auto`` is torch on CUDA and the fastest installed engine on a CPU; an engine that is
  not installed is one clear line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

pytest.importorskip("onnxruntime")

from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene  # noqa: E402
from tdpcr_lib.inference import engines as E  # noqa: E402
from tdpcr_lib.inference.export import VERIFY_ATOL, read_metadata  # noqa: E402
from tdpcr_lib.inference.scene import predict_scene  # noqa: E402
from tdpcr_lib.models.build import build_model  # noqa: E402
from tdpcr_lib.models.checkpoint import save_checkpoint  # noqa: E402
from tdpcr_lib.models.config import ModelConfig  # noqa: E402


def _tiny(phase2: bool, legend: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = ModelConfig.preset("tiny")
    config.legend = legend
    if legend != "luojiaset":
        from tdpcr_lib.core.legend import load_legend

        config.num_classes = load_legend(name=legend).num_classes
    config.with_seg_decoder = phase2
    return build_model(config).eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny phase-1 (SEN12MS-CR legend) and phase-2 (LuojiaSET legend) checkpoints."""
    root = tmp_path_factory.mktemp("engines")
    return {
        "phase1": save_checkpoint(
            root / "p1" / "best", _tiny(False, "igbp_simplified", 1), phase="phase1", epoch=0, step=0
        ),
        "phase2": save_checkpoint(root / "p2" / "best", _tiny(True, "luojiaset", 2), phase="phase2", epoch=0, step=0),
    }


@pytest.fixture(scope="module")
def exported(checkpoints):
    """``tdpcr export onnx`` on both checkpoints (the CLI, as a user runs it)."""
    from tdpcr_lib.cli import main as cli

    paths = {}
    for name, ckpt in checkpoints.items():
        out = ckpt.parent / f"{name}.onnx"
        assert cli.main(["export", "onnx", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
        paths[name] = out
    return paths


def test_export_metadata_says_what_a_deployer_needs(exported, checkpoints):
    from tdpcr_lib.core.bands import S2_BANDS
    from tdpcr_lib.inference.export import checkpoint_weights_sha256

    for name, path in exported.items():
        meta = read_metadata(path)
        assert meta["opset"] == 18
        assert meta["weights_sha256"] == checkpoint_weights_sha256(checkpoints[name])
        assert meta["band_order"]["optical"] == list(S2_BANDS)
        assert meta["band_order"]["sar"] == ["VV", "VH"]
        assert [i["name"] for i in meta["inputs"]] == ["optical", "sar"]
        assert meta["normalisation"]["s2_scale"] > 0
    p1, p2 = read_metadata(exported["phase1"]), read_metadata(exported["phase2"])
    assert p1["legend"]["name"] == "igbp_simplified" and p2["legend"]["name"] == "luojiaset"
    assert [o["name"] for o in p1["outputs"]][:2] == ["reconstruction", "prompt_0"]
    assert [o["name"] for o in p2["outputs"]][:2] == ["reconstruction", "segmentation"]
    assert p2["outputs"][1]["shape"][1] == len(p2["legend"]["names"])


@pytest.mark.parametrize("name", ["phase1", "phase2"])
def test_exported_graph_matches_torch_at_other_batch_and_size(exported, checkpoints, name):
    import onnxruntime as ort

    from tdpcr_lib.models.checkpoint import load_model

    model, _ = load_model(checkpoints[name])
    session = ort.InferenceSession(str(exported[name]), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    for batch, height, width in ((1, 32, 48), (5, 96, 16)):  # dynamic batch and size (x16)
        optical = rng.random((batch, 13, height, width), dtype=np.float32)
        sar = rng.random((batch, 2, height, width), dtype=np.float32)
        got = session.run(None, {"optical": optical, "sar": sar})
        with torch.inference_mode():
            want = model(torch.from_numpy(optical), torch.from_numpy(sar))
        np.testing.assert_allclose(got[0], want["reconstruction"].numpy(), atol=VERIFY_ATOL, rtol=0)
        if "segmentation" in want:
            np.testing.assert_allclose(got[1], want["segmentation"].numpy(), atol=VERIFY_ATOL, rtol=0)


def test_export_refuses_to_overwrite_and_names_a_missing_checkpoint(exported, tmp_path, capsys):
    from tdpcr_lib.cli import main as cli

    before = exported["phase2"].stat().st_mtime_ns
    assert (
        cli.main(
            [
                "export",
                "onnx",
                "--checkpoint",
                str(exported["phase2"].parent / "best"),
                "--out",
                str(exported["phase2"]),
            ]
        )
        == 2
    )
    assert "--overwrite" in capsys.readouterr().err
    assert exported["phase2"].stat().st_mtime_ns == before
    assert cli.main(["export", "onnx", "--checkpoint", str(tmp_path / "nope")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_synthetic_scene(
        tmp_path_factory.mktemp("scene"), 200, 230, seed=5, s1_offset=(7.0, -3.0), nodata_corner=20
    )


def _read(path):
    with rasterio.open(path) as src:
        return src.read()


def test_onnxruntime_products_match_torch(scene, checkpoints, tmp_path):
    kwargs = dict(tile=64, overlap=16, progress=False, batch_size=3)
    ckpt = checkpoints["phase2"]
    torch_out = predict_scene(scene.s2_cloudy, scene.s1, ckpt, tmp_path / "t", engine="torch", **kwargs)
    ort_out = predict_scene(scene.s2_cloudy, scene.s1, ckpt, tmp_path / "o", engine="onnxruntime", **kwargs)
    a = _read(torch_out["cloud_free"]).astype(np.int64)
    b = _read(ort_out["cloud_free"]).astype(np.int64)
    assert np.percentile(np.abs(a - b), 99.9) <= 1
    same = _read(torch_out["land_cover"]) == _read(ort_out["land_cover"])
    assert same.mean() >= 0.999
    assert json.loads(ort_out["summary"].read_text())["engine"] == "onnxruntime"
    # the export was cached beside the checkpoint, keyed by the weights' sha256
    cached = list(E.cache_dir(ckpt).glob("tdpcr-*.onnx"))
    assert len(cached) == 1
    assert read_metadata(cached[0])["weights_sha256"] in {
        v for v in json.loads((ckpt / "config.json").read_text())["sha256"].values()
    }


def test_cache_is_keyed_by_the_weights_and_rebuilt_when_they_change(tmp_path, monkeypatch):
    """The cache logic with a stand-in exporter (a real export costs ~40 s; the round trip through
    a real one is the slow test below and ``test_onnxruntime_products_match_torch``)."""
    import onnx

    from tdpcr_lib.inference.export import checkpoint_weights_sha256

    built: list[str] = []

    def fake_export(checkpoint, out, **_):
        sha = checkpoint_weights_sha256(checkpoint)
        built.append(sha)
        model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
        onnx.helper.set_model_props(model, {"weights_sha256": json.dumps(sha)})
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(out))

    monkeypatch.setattr(E, "export_onnx", fake_export)
    ckpt = save_checkpoint(tmp_path / "run" / "best", _tiny(True, "luojiaset", 3), phase="phase2", epoch=0, step=0)
    first = E.cached_export(ckpt)
    stamp = first.stat().st_mtime_ns
    assert E.cached_export(ckpt) == first and first.stat().st_mtime_ns == stamp and len(built) == 1  # reused
    first.write_bytes(b"damaged")
    assert E.cached_export(ckpt) == first and len(built) == 2  # a damaged cache file is rebuilt
    save_checkpoint(ckpt, _tiny(True, "luojiaset", 4), phase="phase2", epoch=1, step=1)
    second = E.cached_export(ckpt)
    assert second != first and not first.exists() and len(built) == 3  # new weights: new file, stale one gone
    assert read_metadata(second)["weights_sha256"] == checkpoint_weights_sha256(ckpt) == built[-1]


@pytest.mark.slow
def test_cache_is_rebuilt_when_the_weights_change(checkpoints, tmp_path):
    ckpt = save_checkpoint(tmp_path / "run" / "best", _tiny(True, "luojiaset", 3), phase="phase2", epoch=0, step=0)
    first = E.cached_export(ckpt)
    stamp = first.stat().st_mtime_ns
    assert E.cached_export(ckpt) == first and first.stat().st_mtime_ns == stamp  # reused
    save_checkpoint(ckpt, _tiny(True, "luojiaset", 4), phase="phase2", epoch=1, step=1)
    second = E.cached_export(ckpt)
    assert second != first and not first.exists()  # new weights, new export, stale one gone
    model, _, engine = E.engine_model(ckpt, "onnxruntime")
    assert engine == "onnxruntime"
    with torch.inference_mode():
        x, s = torch.rand(1, 13, 40, 40), torch.rand(1, 2, 40, 40)  # not a multiple of 16
        from tdpcr_lib.models.checkpoint import load_model

        want = load_model(ckpt)[0](x, s)["reconstruction"]
        got = model(x, s)["reconstruction"]
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= VERIFY_ATOL


def test_auto_picks_torch_on_cuda_and_the_fastest_installed_engine_on_cpu(monkeypatch):
    assert E.resolve_engine("auto", "cuda") == "torch"
    assert E.resolve_engine("auto", "cpu") == "onnxruntime"
    monkeypatch.setattr(E, "engine_available", lambda e: e == "torch")
    assert E.resolve_engine("auto", "cpu") == "torch"
    with pytest.raises(E.EngineError, match="pip install openvino"):
        E.resolve_engine("openvino", "cpu")
    with pytest.raises(E.EngineError, match="CPU only"):
        E.resolve_engine("onnxruntime", "cuda")
