"""Scene prediction: georeferenced outputs, seamless tiling, nodata, bounded memory, bad inputs, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from torch import nn

from tdpcr_lib.cli import predict as P_cli
from tdpcr_lib.core.bands import S2_BANDS
from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.inference import inputs as P_inputs
from tdpcr_lib.inference import scene as P
from tdpcr_lib.inference import scene_loop as P_loop
from tdpcr_lib.inference import strip_reads as P_strips
from tdpcr_lib.inference import tiling as P_tiling
from tdpcr_lib.inference import xarray as P_xarray
from tdpcr_lib.notebook import predict as P_predict

HEIGHT, WIDTH = 300, 350  # odd size: not a multiple of any tile used below


# ------------------------------------------------------------------------------------ models
class PixelModel(nn.Module):
    """A per-pixel (1×1) network: its tiled and untiled predictions must agree exactly."""

    def __init__(self, num_classes: int = 7, with_prompts: bool = True) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.mix = nn.Conv2d(15, 13 + num_classes + 1, 1)
        with torch.no_grad():
            self.mix.weight.copy_(torch.randn(self.mix.weight.shape, generator=gen) * 0.5)
            self.mix.bias.copy_(torch.randn(self.mix.bias.shape, generator=gen) * 0.1)
        self.with_prompts = with_prompts

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict:
        y = self.mix(torch.cat([optical, sar], dim=1))
        out = {"reconstruction": torch.sigmoid(y[:, :13]), "segmentation": y[:, 13:-1]}
        if self.with_prompts:
            gate = torch.sigmoid(y[:, -1:])
            out["prompts"] = [gate] + [nn.functional.avg_pool2d(gate, 2**k, ceil_mode=True) for k in (1, 2, 3)]
        return out


class TileContextModel(nn.Module):
    """Adds each tile's mean to every pixel: tiles disagree, so unblended tiling shows seams."""

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict:
        context = optical.mean(dim=(2, 3), keepdim=True)
        return {"reconstruction": (0.5 * optical + context).clamp(0, 1)}


class ReconstructionOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict:
        return {"reconstruction": optical * self.scale}


class FailingModel(PixelModel):
    """Raises on its third call, to simulate an interruption in the middle of a scene."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict:
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt("simulated interruption")
        return super().forward(optical, sar)


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """300×350 scene, S1 on a 20 m grid shifted by a non-integer number of pixels, nodata corner."""
    return make_synthetic_scene(
        tmp_path_factory.mktemp("scene"),
        HEIGHT,
        WIDTH,
        seed=3,
        s1_offset=(13.0, -7.0),
        s1_resolution=20.0,
        nodata_corner=40,
    )


@pytest.fixture(scope="module")
def tiled_outputs(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiled")
    return P.predict_scene(
        scene.s2_cloudy,
        scene.s1,
        PixelModel(),
        out,
        tile=64,
        overlap=16,
        batch_size=4,
        write_prompt=True,
        progress=False,
        blocksize=128,
    )


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _write(
    path: Path,
    array: np.ndarray,
    crs: str | None = "EPSG:32755",
    transform: Affine | None = None,
    nodata: float | None = None,
) -> Path:
    transform = transform or Affine(10.0, 0.0, 399960.0, 0.0, -10.0, 5300020.0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[2],
        height=array.shape[1],
        count=array.shape[0],
        dtype=array.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(array)
    return path


# ---------------------------------------------------------------------------- tiling maths
@pytest.mark.parametrize(
    ("length", "tile", "overlap", "align", "expected"),
    [
        (700, 256, 64, 1, [0, 192, 384, 444]),
        (700, 256, 64, 16, [0, 192, 384, 448]),
        (300, 64, 16, 1, [0, 48, 96, 144, 192, 236]),
        (300, 64, 16, 8, [0, 48, 96, 144, 192, 240]),
        (256, 256, 64, 16, [0]),
        (100, 256, 64, 16, [0]),
        (257, 256, 0, 1, [0, 1]),
    ],
)
def test_tile_origins_hand_computed(length, tile, overlap, align, expected):
    assert P_tiling.tile_origins(length, tile, overlap, align) == expected


@pytest.mark.parametrize("length", [33, 64, 65, 300, 350, 1001])
@pytest.mark.parametrize(("tile", "overlap", "align"), [(64, 16, 1), (64, 16, 8), (48, 20, 16)])
def test_tiles_cover_every_pixel_on_the_grid(length, tile, overlap, align):
    origins = P_tiling.tile_origins(length, tile, overlap, align)
    size = min(tile, length)
    covered = np.zeros(length + align, dtype=int)
    for o in origins:
        covered[o : o + size] += 1
    assert (covered[:length] >= 1).all()
    assert origins[-1] + size < length + align  # sticks out by less than the pad multiple
    if len(origins) > 1:
        assert all(o % align == 0 for o in origins)
        steps = np.diff(origins)
        assert (steps <= size - overlap).all() and (steps > 0).all()


def test_blend_window_ramps_cross_fade_to_one():
    overlap, size = 16, 64
    left = P_tiling.blend_window(size, overlap, taper_start=False, taper_end=True)
    right = P_tiling.blend_window(size, overlap, taper_start=True, taper_end=False)
    np.testing.assert_allclose(left[-overlap:] + right[:overlap], 1.0, atol=1e-6)
    assert left[0] == 1.0 and right[-1] == 1.0  # scene edges are never tapered
    assert np.all(np.diff(right[:overlap]) > 0)  # smooth monotone ramp
    assert P_tiling.blend_window(size, 0, True, True).tolist() == [1.0] * size
    assert P_tiling.blend_window(size, overlap, True, True).min() >= P_tiling.WEIGHT_FLOOR


# --------------------------------------------------------------------- georeferenced outputs
def test_outputs_keep_the_sentinel2_grid_and_layout(scene, tiled_outputs):
    assert {"cloud_free", "land_cover", "degradation_prompt", "summary"} <= set(tiled_outputs)
    with rasterio.open(scene.s2_cloudy) as s2:
        crs, transform = s2.crs, s2.transform
    legend = load_legend()
    with rasterio.open(tiled_outputs["cloud_free"]) as cf:
        assert (cf.crs, cf.transform, cf.shape) == (crs, transform, (HEIGHT, WIDTH))
        assert cf.count == 13 and set(cf.dtypes) == {"uint16"}
        assert cf.descriptions == S2_BANDS
        assert cf.nodata == 0
        structure = cf.tags(ns="IMAGE_STRUCTURE")
        assert structure["LAYOUT"] == "COG" and structure["COMPRESSION"] == "DEFLATE"
        assert cf.block_shapes[0] == (128, 128) and cf.overviews(1)
    with rasterio.open(tiled_outputs["land_cover"]) as lc:
        assert (lc.crs, lc.transform, lc.shape) == (crs, transform, (HEIGHT, WIDTH))
        assert lc.count == 1 and lc.dtypes[0] == "uint8" and lc.nodata == 255
        colormap = lc.colormap(1)
        for code, colour in enumerate(legend.colours):
            assert colormap[code][:3] == tuple(colour)
        tags = lc.tags()
        assert json.loads(tags["LEGEND"]) == {str(c): n for c, n in enumerate(legend.names)}
        assert tags["CLASS_6"] == legend.names[6]
        assert lc.overviews(1)
    with rasterio.open(tiled_outputs["degradation_prompt"]) as pr:
        assert (pr.crs, pr.transform, pr.dtypes[0]) == (crs, transform, "float32")
        gate = pr.read(1)
        assert np.nanmin(gate) >= 0.0 and np.nanmax(gate) <= 1.0  # sigmoid gate stays in range
    summary = json.loads(Path(tiled_outputs["summary"]).read_text())
    # align 1 (PixelModel has no pad_multiple): 6 rows × 7 columns of 64 px tiles, stride 48.
    assert summary["tile_grid"] == [6, 7] and summary["n_tiles"] == 42
    assert summary["s1_resampled"] is True and summary["s1_coverage"] == pytest.approx(1.0)
    assert sum(summary["class_fractions"].values()) == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore:.*no segmentation head")
def test_reconstruction_is_inverse_normalised_dn(scene, tmp_path):
    """An identity model must give back the input DN (clip [0, 10000], valid pixels >= 1)."""
    out = P.predict_scene(
        scene.s2_cloudy, scene.s1, ReconstructionOnly(), tmp_path, tile=64, overlap=16, progress=False
    )
    with pytest.warns(UserWarning, match="no segmentation head"):
        P.predict_scene(scene.s2_cloudy, scene.s1, ReconstructionOnly(), tmp_path / "again", tile=512, progress=False)
    assert "land_cover" not in out
    expected = np.clip(_read(scene.s2_cloudy), 0, 10000)
    got = _read(out["cloud_free"])
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


# ---------------------------------------------------------------------------- seamlessness
def test_pixelwise_model_tiled_equals_untiled(scene, tiled_outputs, tmp_path):
    untiled = P.predict_scene(
        scene.s2_cloudy, scene.s1, PixelModel(), tmp_path, tile=512, write_prompt=True, progress=False
    )
    a, b = _read(tiled_outputs["cloud_free"]).astype(int), _read(untiled["cloud_free"]).astype(int)
    assert np.abs(a - b).max() <= 1  # float rounding of the weighted mean only
    np.testing.assert_array_equal(_read(tiled_outputs["land_cover"]), _read(untiled["land_cover"]))
    np.testing.assert_allclose(
        _read(tiled_outputs["degradation_prompt"]), _read(untiled["degradation_prompt"]), atol=1e-5
    )


@pytest.mark.filterwarnings("ignore:.*no segmentation head")
def test_blending_removes_seams(tmp_path):
    """Tiles that disagree (tile-mean context) give jumps without blending, none with it."""
    h, w = 96, 200
    ramp = np.linspace(1000, 9000, w, dtype=np.float64)[None, None, :]
    s2 = _write(tmp_path / "s2.tif", np.broadcast_to(ramp, (13, h, w)).astype(np.uint16))
    s1 = _write(tmp_path / "s1.tif", np.full((2, h, w), -10.0, dtype=np.float32))

    def max_step(overlap: int) -> float:
        out = P.predict_scene(
            s2, s1, TileContextModel(), tmp_path / f"o{overlap}", tile=64, overlap=overlap, progress=False
        )
        image = _read(out["cloud_free"])[3].astype(float)
        return float(np.abs(np.diff(image, axis=1)).max())

    natural = 0.5 * (9000 - 1000) / (w - 1)  # per-pixel change of the 0.5 · ramp term in DN
    hard, blended = max_step(0), max_step(32)
    # Neighbouring 64 px tiles' means differ by 64 px × 40 DN/px = 2560 DN: a visible step.
    assert hard > 2000
    # Blending spreads the disagreement over the 32 px overlap (sin² cross-fade: at most
    # π/2 × (tile-mean difference) / overlap per pixel) on top of the content's own slope.
    assert blended < natural + np.pi / 2 * (32 * 40) / 32 + 2
    assert blended < 0.1 * hard


@pytest.fixture(scope="module")
def tiny_tdpcr():
    from tdpcr_lib.models import ModelConfig, build_model

    torch.manual_seed(0)
    return build_model(ModelConfig.preset("tiny", with_seg_decoder=True)).eval()


def test_real_tdpcr_tiled_agrees_with_untiled(scene, tiny_tdpcr, tmp_path):
    """A (random) tiny TDP-CR: tiles differ from the whole image only through its global pooling.

    Measured on this scene: mean |difference| ≈ 2-4 DN (outputs span ~1000-9000 DN), land cover
    agreement > 99 %. Without grid-aligned tiles it was ~80 DN with ~470 DN in the last column.
    """
    tiled = P.predict_scene(scene.s2_cloudy, scene.s1, tiny_tdpcr, tmp_path / "t", tile=128, overlap=32, progress=False)
    whole = P.predict_scene(scene.s2_cloudy, scene.s1, tiny_tdpcr, tmp_path / "u", tile=512, progress=False)
    diff = np.abs(_read(tiled["cloud_free"]).astype(float) - _read(whole["cloud_free"]))
    assert diff.mean() < 10.0
    assert np.percentile(diff, 99) < 60.0
    agreement = (_read(tiled["land_cover"]) == _read(whole["land_cover"])).mean()
    assert agreement > 0.98


def test_evaluation_sliding_window_matches_scene_prediction(scene, tiny_tdpcr, tmp_path):
    """Evaluation and scene prediction share one pad-aligned tiler/blender.

    For the same model, tile and overlap, :func:`sliding_window_predict` on the whole scene (as
    evaluation runs it) gives the reconstruction ``predict_scene`` writes, up to the DN rounding
    and the scene's per-tile clipping to [0, 1]. With unaligned origins this differs by hundreds
    of DN at some pixels (see the agreement test above).
    """
    tile, overlap = 128, 32
    out = P.predict_scene(scene.s2_cloudy, scene.s1, tiny_tdpcr, tmp_path, tile=tile, overlap=overlap, progress=False)
    with P_inputs.scene_inputs(scene.s2_cloudy, scene.s1) as inputs:
        optical, sar, valid = P_strips.read_strip(inputs, 0, HEIGHT, WIDTH)
    rec = P_tiling.sliding_window_predict(
        tiny_tdpcr, torch.from_numpy(optical)[None], torch.from_numpy(sar)[None], tile=tile, overlap=overlap
    )["reconstruction"][0]
    dn = load_normalisation().s2_to_dn(rec.clamp(0, 1).numpy())
    written = _read(out["cloud_free"]).astype(float)
    diff = np.abs(np.maximum(dn, 1) - written)[:, valid]
    assert np.percentile(diff, 99.9) <= 1.0 and diff.mean() < 0.1


# --------------------------------------------------------------------------------- nodata
@pytest.mark.parametrize("declared", [True, False])
def test_nodata_stays_nodata(tmp_path, declared):
    sc = make_synthetic_scene(tmp_path / "sc", 70, 90, seed=1, nodata_corner=30, declare_s2_nodata=declared)
    out = P.predict_scene(
        sc.s2_cloudy, sc.s1, PixelModel(), tmp_path / "out", tile=32, overlap=8, write_prompt=True, progress=False
    )
    rows, cols = np.mgrid[0:70, 0:90]
    empty = rows + cols < 30
    cf, lc = _read(out["cloud_free"]), _read(out["land_cover"])[0]
    prompt = _read(out["degradation_prompt"])[0]
    assert (cf[:, empty] == 0).all() and (lc[empty] == 255).all() and np.isnan(prompt[empty]).all()
    assert (cf[:, ~empty] >= 1).all() and (lc[~empty] < 7).all()
    assert np.isfinite(prompt[~empty]).all()
    summary = json.loads(out["summary"].read_text())
    assert summary["valid_fraction"] == pytest.approx((~empty).mean())


# ---------------------------------------------------------------------- S1 resampling
def test_s1_is_bilinearly_resampled_onto_the_s2_grid(tmp_path):
    """S1 = a linear function of map x on a shifted 20 m grid: bilinear resampling is exact."""
    h, w = 40, 50
    s2_transform = Affine(10.0, 0.0, 1000.0, 0.0, -10.0, 5000.0)
    s2 = _write(tmp_path / "s2.tif", np.full((13, h, w), 3000, dtype=np.uint16), transform=s2_transform)
    s1_transform = Affine(20.0, 0.0, 1000.0 - 33.0, 0.0, -20.0, 5000.0 + 27.0)
    xs = s1_transform.c + (np.arange(30) + 0.5) * 20.0
    vv = np.broadcast_to(-20.0 + 0.01 * (xs - 1000.0), (30, 30))
    s1 = _write(tmp_path / "s1.tif", np.stack([vv, vv - 5]).astype(np.float32), transform=s1_transform)
    with P_inputs.scene_inputs(s2, s1) as inputs:
        assert inputs.s1_resampled
        resampled = inputs.s1.read(out_dtype="float32")
    centres = s2_transform.c + (np.arange(w) + 0.5) * 10.0
    np.testing.assert_allclose(resampled[0], np.broadcast_to(-20.0 + 0.01 * (centres - 1000.0), (h, w)), atol=1e-3)
    np.testing.assert_allclose(resampled[1], resampled[0] - 5, atol=1e-3)


def test_s1_on_the_same_grid_is_read_directly(tmp_path):
    s2 = _write(tmp_path / "s2.tif", np.full((13, 20, 20), 3000, dtype=np.uint16))
    s1 = _write(tmp_path / "s1.tif", np.full((2, 20, 20), -12.0, dtype=np.float32))
    with P_inputs.scene_inputs(s2, s1) as inputs:
        assert not inputs.s1_resampled


def test_partial_s1_coverage_warns(tmp_path):
    sc = make_synthetic_scene(tmp_path, 40, 40, seed=2, s1_offset=(200.0, 0.0), s1_margin=0.0)
    with pytest.warns(UserWarning, match="covers only 50"):
        P_inputs.open_scene_inputs(sc.s2_cloudy, sc.s1).close()


# ---------------------------------------------------------------------------- bad inputs
@pytest.fixture
def good_pair(tmp_path):
    s2 = _write(tmp_path / "good_s2.tif", np.full((13, 32, 32), 3000, dtype=np.uint16))
    s1 = _write(tmp_path / "good_s1.tif", np.full((2, 32, 32), -12.0, dtype=np.float32))
    return s2, s1


def _bad(tmp_path: Path, kind: str) -> Path:
    if kind == "s2_bands":
        return _write(tmp_path / "bad.tif", np.full((12, 32, 32), 3000, dtype=np.uint16))
    if kind == "s1_bands":
        return _write(tmp_path / "bad.tif", np.full((3, 32, 32), -12.0, dtype=np.float32))
    if kind in ("s2_crs", "s1_crs"):
        bands = 13 if kind == "s2_crs" else 2
        return _write(tmp_path / "bad.tif", np.ones((bands, 32, 32), dtype=np.float32), crs=None)
    if kind == "no_overlap":
        far = Affine(10.0, 0.0, 900000.0, 0.0, -10.0, 5300020.0)
        return _write(tmp_path / "bad.tif", np.full((2, 32, 32), -12.0, dtype=np.float32), transform=far)
    if kind in ("s2_unreadable", "s1_unreadable"):
        path = tmp_path / "bad.tif"
        path.write_text("this is not a GeoTIFF")
        return path
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "role", "message"),
    [
        ("s2_bands", "s2", "has 12 band"),
        ("s1_bands", "s1", "has 3 band"),
        ("s2_crs", "s2", "has no CRS"),
        ("s1_crs", "s1", "has no CRS"),
        ("no_overlap", "s1", "does not overlap"),
        ("s2_unreadable", "s2", "cannot be read as a raster"),
        ("s1_unreadable", "s1", "cannot be read as a raster"),
    ],
)
def test_bad_inputs_raise_clear_errors(tmp_path, good_pair, kind, role, message):
    s2, s1 = good_pair
    bad = _bad(tmp_path, kind)
    args = (bad, s1) if role == "s2" else (s2, bad)
    with pytest.raises(P_inputs.PredictionInputError, match=message) as info:
        P.predict_scene(*args, PixelModel(), tmp_path / "out", progress=False)
    assert str(bad) in str(info.value)  # the message names the file
    assert not (tmp_path / "out" / "cloud_free.tif").exists()


def test_missing_files_and_checkpoint(tmp_path, good_pair):
    s2, s1 = good_pair
    with pytest.raises(FileNotFoundError, match="missing_s2.tif does not exist"):
        P.predict_scene(tmp_path / "missing_s2.tif", s1, PixelModel(), tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="checkpoint .*nowhere does not exist"):
        P.predict_scene(s2, s1, tmp_path / "nowhere", tmp_path / "o")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile": 64, "overlap": 64}, "overlap < tile"),
        ({"tile": 64, "overlap": -1}, "overlap < tile"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_tiling_arguments(good_pair, tmp_path, kwargs, message):
    with pytest.raises(P_inputs.PredictionInputError, match=message):
        P.predict_scene(*good_pair, PixelModel(), tmp_path, **kwargs)


def test_prompt_requested_from_a_model_without_prompts(good_pair, tmp_path):
    with pytest.raises(P_inputs.PredictionInputError, match="returns no 'prompts'"):
        P.predict_scene(*good_pair, PixelModel(with_prompts=False), tmp_path, write_prompt=True, progress=False)


# ------------------------------------------------------------------ atomicity and memory
def test_interrupted_run_leaves_no_partial_outputs(scene, tmp_path):
    # an earlier run's products (a foreign file of a product's name is refused: test_faults_data)
    P.predict_scene(
        scene.s2_cloudy, scene.s1, PixelModel(), tmp_path, tile=64, overlap=16, batch_size=2, progress=False
    )
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(KeyboardInterrupt):
        P.predict_scene(
            scene.s2_cloudy, scene.s1, FailingModel(), tmp_path, tile=64, overlap=16, batch_size=2, progress=False
        )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_memory_stays_bounded_to_a_strip(tmp_path, monkeypatch):
    """Inputs are read one strip at a time, and peak NumPy memory does not grow with height."""
    heights: list[int] = []
    original = P_strips.read_strip

    def spy(inputs, y0, height, canvas_width):
        heights.append(height)
        return original(inputs, y0, height, canvas_width)

    monkeypatch.setattr(P_loop, "read_strip", spy)
    peaks = {}
    for rows in (400, 1600):
        sc = make_synthetic_scene(tmp_path / f"s{rows}", rows, 128, seed=4)
        heights.clear()
        tracemalloc.start()
        try:
            P.predict_scene(
                sc.s2_cloudy,
                sc.s1,
                PixelModel(),
                tmp_path / f"o{rows}",
                tile=64,
                overlap=16,
                batch_size=2,
                progress=False,
            )
            peaks[rows] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert set(heights) == {64} and len(heights) == len(P_tiling.tile_origins(rows, 64, 16))
    assert peaks[1600] < 1.3 * peaks[400]  # 4× the rows, about the same peak
    assert peaks[1600] < 0.5 * 13 * 1600 * 128 * 4  # well below one float32 copy of the scene


# ------------------------------------------------------------- checkpoints, xarray, CLI
@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_tdpcr, tmp_path_factory):
    from tdpcr_lib.models.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best", tiny_tdpcr, phase="phase2", epoch=0, step=0)


def test_checkpoint_folder_and_module_give_the_same_result(scene, tiny_tdpcr, tiny_checkpoint, tmp_path):
    kwargs = dict(tile=128, overlap=32, progress=False)
    from_dir = P.predict_scene(scene.s2_cloudy, scene.s1, tiny_checkpoint, tmp_path / "a", write_prompt=True, **kwargs)
    from_module = P.predict_scene(scene.s2_cloudy, scene.s1, tiny_tdpcr, tmp_path / "b", **kwargs)
    np.testing.assert_array_equal(_read(from_dir["cloud_free"]), _read(from_module["cloud_free"]))
    summary = json.loads(from_dir["summary"].read_text())
    # the checkpoint's run id (last two path parts), not the absolute local path
    assert summary["checkpoint"] == str(Path(*Path(tiny_checkpoint).parts[-2:]))
    assert summary["checkpoint_phase"] == "phase2"
    assert from_dir["degradation_prompt"].exists()


def test_xarray_api_returns_georeferenced_dataarrays(scene, tiled_outputs):
    import rioxarray

    with rioxarray.open_rasterio(scene.s2_cloudy) as s2, rioxarray.open_rasterio(scene.s1) as s1:
        arrays = P_xarray.predict_dataarrays(
            s2.load(), s1.load(), PixelModel(), tile=64, overlap=16, include_prompt=True, progress=False
        )
        crs, transform = s2.rio.crs, s2.rio.transform()
    cf, lc = arrays["cloud_free"], arrays["land_cover"]
    assert cf.dims == ("band", "y", "x") and list(cf.band.values) == list(S2_BANDS)
    assert cf.rio.crs == crs and cf.rio.transform() == transform
    assert lc.dims == ("y", "x") and lc.attrs["class_names"] == list(load_legend().names)
    assert arrays["degradation_prompt"].dtype == np.float32
    # Same pipeline as the file API (the DataArrays are written to scratch GeoTIFFs first).
    np.testing.assert_array_equal(cf.values, _read(tiled_outputs["cloud_free"]))
    np.testing.assert_array_equal(lc.values, _read(tiled_outputs["land_cover"])[0])


def test_xarray_input_without_crs_is_rejected(scene, tmp_path):
    import rioxarray

    with rioxarray.open_rasterio(scene.s2_cloudy) as s2:
        no_crs = s2.load().drop_vars("spatial_ref")
    with pytest.raises(P_inputs.PredictionInputError, match="has no CRS"):
        P.predict_scene(no_crs, scene.s1, PixelModel(), tmp_path)


def test_cli_writes_products_and_reports_errors(scene, tiny_checkpoint, tmp_path, capsys):
    from tdpcr_lib.cli import main as cli

    out = tmp_path / "cli"
    code = cli.main(
        [
            "predict",
            "--s2",
            str(scene.s2_cloudy),
            "--s1",
            str(scene.s1),
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(out),
            "--tile",
            "128",
            "--overlap",
            "32",
            "--write-prompt",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("cloud_free.tif", "land_cover.tif", "degradation_prompt.tif", "prediction.json"):
        assert (out / name).exists() and name in printed
    code = P_cli.main(
        [
            "--s2",
            str(scene.s2_cloudy),
            "--s1",
            str(scene.s1),
            "--checkpoint",
            str(tmp_path / "no_such_checkpoint"),
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 3  # not found (docs/errors.md)
    assert "no_such_checkpoint does not exist" in capsys.readouterr().err


def test_prepare_checkpoint(tmp_path, tiny_checkpoint):
    path, note = P_predict.prepare_checkpoint(tiny_checkpoint, smoke=False, scratch_dir=tmp_path)
    assert path == tiny_checkpoint and "trained" in note
    with pytest.raises(FileNotFoundError, match="Run the training notebooks"):
        P_predict.prepare_checkpoint(tmp_path / "missing", smoke=False, scratch_dir=tmp_path)
    path, note = P_predict.prepare_checkpoint(tmp_path / "missing", smoke=True, scratch_dir=tmp_path)
    assert (path / "model.safetensors").exists() and "meaningless" in note


@pytest.mark.filterwarnings("ignore:.*no segmentation head")
def test_compare_to_reference_scores_the_identity(scene, tmp_path):
    out = P.predict_scene(
        scene.s2_cloudy, scene.s1, ReconstructionOnly(), tmp_path, tile=64, overlap=16, progress=False
    )
    scores = P_predict.compare_to_reference(out, scene.s2_cloudy, cloudy_s2=scene.s2_cloudy)
    assert scores["mae_prediction"] < 1e-4 and scores["mae_cloudy_input"] == 0.0
    against_clear = P_predict.compare_to_reference(out, scene.s2_clear, cloudy_s2=scene.s2_cloudy)
    assert against_clear["mae_prediction"] == pytest.approx(against_clear["mae_cloudy_input"], abs=1e-4)


# -------------------------------------------------------------------------------- scenes
def test_synthetic_scene_is_deterministic_and_on_the_requested_grids(tmp_path):
    a = make_synthetic_scene(tmp_path / "a", 50, 70, seed=5, s1_offset=(13.0, -7.0), s1_resolution=20.0)
    b = make_synthetic_scene(tmp_path / "b", 50, 70, seed=5, s1_offset=(13.0, -7.0), s1_resolution=20.0)
    for name in ("s2_cloudy", "s1", "s2_clear", "land_cover", "cloud_mask"):
        np.testing.assert_array_equal(_read(getattr(a, name)), _read(getattr(b, name)))
    with rasterio.open(a.s1) as s1, rasterio.open(a.s2_cloudy) as s2:
        assert s1.res == (20.0, 20.0) and s2.res == (10.0, 10.0)
        assert s1.transform.c == pytest.approx(s2.transform.c - 40.0 + 13.0)
        assert s2.descriptions == S2_BANDS and s1.descriptions == ("VV", "VH")
    cloudy, clear = _read(a.s2_cloudy).astype(float), _read(a.s2_clear).astype(float)
    mask = _read(a.cloud_mask)[0] > 0.5
    if mask.any():  # clouds brighten the visible bands where the mask says so
        assert (cloudy[1:4, mask] - clear[1:4, mask]).mean() > 1000


# ---------------------------------------------------------------------------- GIS metadata
def test_products_are_gis_ready(tiled_outputs):
    """Category names and colours, an RGB hint and the scale, and no absolute local paths."""
    with rasterio.open(tiled_outputs["cloud_free"]) as cf:
        interp = [c.name for c in cf.colorinterp]
        assert (interp[3], interp[2], interp[1]) == ("red", "green", "blue")  # B04/B03/B02
        assert cf.descriptions[8] == "B8A" and cf.scales == (1e-4,) * 13
        assert "(DN - OFFSET) / 10000" in cf.tags()["REFLECTANCE"]
    sidecar = Path(f"{tiled_outputs['land_cover']}.aux.xml")
    assert sidecar.is_file() and "<CategoryNames>" in sidecar.read_text()
    with rasterio.open(tiled_outputs["degradation_prompt"]) as pr:
        assert "weight given to SAR" in pr.tags()["MEANING"]
    for name, path in tiled_outputs.items():
        with open(path, "rb") as f:
            content = f.read()
        assert str(Path(path).parent).encode() not in content, name
        assert b"/tmp/" not in content and b"/pytest-" not in content, name


def test_gdal_reads_category_names(tiled_outputs):
    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is None:
        pytest.skip("gdalinfo (gdal-bin) is not installed")
    text = subprocess.run(
        [gdalinfo, str(tiled_outputs["land_cover"])], capture_output=True, text=True, check=True
    ).stdout
    legend = load_legend()
    assert "Categories:" in text and legend.names[6] in text
    assert "Color Table" in text


def test_products_are_valid_cogs(tiled_outputs):
    cogeo = pytest.importorskip("rio_cogeo.cogeo", reason="rio-cogeo (dev extra) not installed")
    for name in ("cloud_free", "land_cover", "degradation_prompt"):
        valid, errors, _ = cogeo.cog_validate(str(tiled_outputs[name]))
        assert valid, (name, errors)
