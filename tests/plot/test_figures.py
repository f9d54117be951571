"""Tests for tdpcr_lib.plot.compare: stretch/composite maths, crops, prompt maps, figures, PNG output."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from _viz_fakes import TinyModel, make_dataset, make_sample
from affine import Affine
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tdpcr_lib import transforms as viz_transforms
from tdpcr_lib.core import arrays
from tdpcr_lib.core.arrays import percentile_stretch
from tdpcr_lib.core.bands import COMPOSITES
from tdpcr_lib.plot import compare as viz_compare
from tdpcr_lib.plot import composites as viz
from tdpcr_lib.plot import curves as viz_curves
from tdpcr_lib.plot import tiles as viz_tiles
from tdpcr_lib.plot.mosaic import PANEL, plot_comparison_mosaic
from tdpcr_lib.plot.scene import plot_scene_prediction

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sample() -> dict:
    return make_sample(0, size=32)


@pytest.fixture
def outputs(sample) -> dict:
    torch.manual_seed(0)
    models = {"full": TinyModel(), "no-seg": TinyModel(with_seg=False, with_prompts=False)}
    return viz_tiles.predict_outputs(models, sample)


def test_band_composite_hand_computed_stretch():
    image = np.zeros((13, 1, 101))
    image[[3, 2, 1]] = np.arange(101.0)  # B04, B03, B02 ramps
    rgb = viz.band_composite(image, "true", low=10, high=90)
    assert rgb.shape == (1, 101, 3)
    # value 10 → 0, 50 → 0.5, 90 → 1, beyond is clipped
    np.testing.assert_allclose(rgb[0, [0, 10, 50, 90, 100], 0], [0, 0, 0.5, 1, 1], atol=1e-6)
    # a reference supplies the limits: the same ramp against a ramp twice as bright → halves
    brighter = viz.band_composite(image, "true", reference=image * 2, low=0, high=100)
    np.testing.assert_allclose(brighter[0, [0, 50, 100], 1], [0, 0.25, 0.5], atol=1e-6)


@pytest.mark.parametrize("name", list(COMPOSITES) + ["true", "nir", "swir", "SWIR"])
def test_band_composite_uses_the_right_bands(sample, name):
    target = sample["target"].numpy()
    rgb = viz.band_composite(target, name, reference=target, common=False)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.float32
    assert 0 <= rgb.min() and rgb.max() <= 1
    bands = COMPOSITES[viz.resolve_composite(name)]
    # stretching each chosen band alone gives the same channels
    np.testing.assert_allclose(rgb, percentile_stretch(target[list(bands)]), atol=1e-6)


def test_common_stretch_keeps_a_small_band_excess_small():
    """The cause of the cyan/blue blobs: a per-channel stretch gives the narrow blue band a large
    gain; the common stretch (the default) shows a +0.02 blue excess as a faint tint."""
    rng = np.random.default_rng(0)
    target = np.zeros((13, 16, 16), dtype=np.float32)
    target[3] = rng.uniform(0.05, 0.25, (16, 16))  # B04: wide range
    target[2] = rng.uniform(0.06, 0.14, (16, 16))  # B03
    target[1] = rng.uniform(0.08, 0.12, (16, 16))  # B02: narrow range (0.04)
    hazy = target.copy()
    hazy[1] += 0.02
    shift = {
        common: (
            viz.band_composite(hazy, "true", reference=target, common=common)
            - viz.band_composite(target, "true", reference=target, common=common)
        )[..., 2].mean()
        for common in (False, True)
    }
    assert shift[False] > 0.3 and shift[True] < 0.15
    lo, hi = arrays.stretch_limits(target[[3, 2, 1]], common=True)
    assert len(set(lo)) == 1 and len(set(hi)) == 1  # one gain and offset for all channels


def test_composite_errors(sample):
    with pytest.raises(ValueError, match="unknown band composite"):
        viz.resolve_composite("thermal")
    with pytest.raises(ValueError, match="13-band"):
        viz.band_composite(np.zeros((3, 8, 8)))


def test_reference_stretch_makes_cloud_white(sample):
    rgb = viz.band_composite(sample["optical"], "true", reference=sample["target"])
    cloud = sample["cloud_mask"].numpy().astype(bool)
    assert np.allclose(rgb[cloud], 1.0)  # cloud brighter than any clear target pixel


def test_sar_false_colour(sample):
    rgb = viz.sar_false_colour(sample["sar"])
    assert rgb.shape == (32, 32, 3) and 0 <= rgb.min() and rgb.max() <= 1
    with pytest.raises(ValueError, match="VV, VH"):
        viz.sar_false_colour(torch.zeros(3, 8, 8))


def test_absolute_error_map_hand_computed():
    target = torch.full((13, 4, 4), 0.5)
    pred = target + 0.1
    pred[:, 0, 0] = 2.0  # clamped to 1 → error 0.5
    err = viz.absolute_error_map(pred.unsqueeze(0), target)
    assert err.shape == (4, 4)
    assert err[0, 0] == pytest.approx(0.5) and err[1, 1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="differ in shape"):
        viz.absolute_error_map(pred[:, :2], target)


def test_window_centred_stays_inside_and_crop():
    w = arrays.Window.centred(0, 30, 10, (32, 32))
    assert w == arrays.Window(0, 22, 10, 10)
    image = np.arange(2 * 32 * 32).reshape(2, 32, 32)
    cropped = arrays.crop(image, w)
    assert cropped.shape == (2, 10, 10) and cropped[0, 0, 0] == image[0, 0, 22]
    assert arrays.crop_rgb(np.zeros((32, 32, 3)), w).shape == (10, 10, 3)
    with pytest.raises(ValueError, match="does not overlap"):
        arrays.Window(40, 40, 4, 4).clip((32, 32))


def test_prompt_maps_nearest_upsampling_and_scaling():
    level = torch.tensor([[[0.0, 0.25], [0.5, 1.0]]])  # (1, 2, 2) gate values
    maps = viz.prompt_maps({"prompts": [level, torch.full((3, 1, 1), 0.7)]}, (4, 4))
    assert len(maps) == 2
    np.testing.assert_allclose(maps[0][:2, :2], 0.0)
    np.testing.assert_allclose(maps[0][2:, 2:], 1.0)
    np.testing.assert_allclose(maps[0][0, 3], 0.25)
    np.testing.assert_allclose(maps[1], 0.7)  # the gate's own 0-1 scale, not min-max scaled
    scaled = viz.prompt_maps({"prompts": [level * 0.5]}, (4, 4), normalise=True)
    np.testing.assert_allclose(scaled[0][2:, 2:], 1.0)
    assert viz.prompt_maps({"reconstruction": None}, (4, 4)) == []


def test_predicted_labels_argmax():
    logits = torch.zeros(7, 2, 2)
    logits[3, 0, 0] = 1
    logits[6, 1, 1] = 1
    labels = viz.predicted_labels(logits)
    assert labels.dtype == np.int64 and labels[0, 0] == 3 and labels[1, 1] == 6


def test_predict_outputs_shapes(sample, outputs):
    full, plain = outputs["full"], outputs["no-seg"]
    assert full["reconstruction"].shape == (13, 32, 32)
    assert full["segmentation"].shape == (7, 32, 32)
    assert [p.shape[-1] for p in full["prompts"]] == [16, 8, 4, 2]
    assert "segmentation" not in plain and "prompts" not in plain


def test_centre_crop_sample(sample):
    cropped = viz_transforms.centre_crop_sample(sample, 16)
    assert cropped["optical"].shape == (13, 16, 16) and cropped["mask"].shape == (16, 16)
    assert torch.equal(cropped["target"], sample["target"][:, 8:24, 8:24])
    assert cropped["id"] == sample["id"]
    assert viz_transforms.centre_crop_sample(sample, 64)["optical"].shape == (13, 32, 32)


def test_tile_metrics_perfect_and_cloudy_input(sample):
    labels = torch.where(sample["mask"] == 255, 0, sample["mask"])  # ignored pixels: any class
    logits = torch.nn.functional.one_hot(labels, 7).permute(2, 0, 1).float()
    perfect = {"reconstruction": sample["target"].clone(), "segmentation": logits}
    good = viz_compare.tile_metrics(sample, perfect)
    bad = viz_compare.tile_metrics(sample, {"reconstruction": sample["optical"]})
    assert good["oa"] == pytest.approx(1.0) and good["miou"] == pytest.approx(1.0)
    assert good["ssim"] == pytest.approx(1.0, abs=1e-4) and good["mae"] == pytest.approx(0.0)
    assert good["psnr"] > bad["psnr"] and bad["psnr_cloudy"] < bad["psnr"]
    assert "miou" not in bad


def _image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_images()]


def test_comparison_row_labels_stay_within_their_rows(sample, outputs):
    """The main job's row titles (name, seed, budget, size) ran past their row into the next."""
    titles = {m: f"{m} (seed 0)\nphase 1 300 + phase 2 125 steps · 0.29 M params" for m in outputs}
    fig = viz_compare.plot_comparison(sample, outputs, row_titles=titles)
    canvas = FigureCanvasAgg(fig)  # the figure as the PNG is drawn
    canvas.draw()
    renderer = canvas.get_renderer()
    labelled = [ax for ax in fig.axes if ax.get_ylabel()]
    assert len(labelled) == len(outputs)
    for ax in labelled:
        label = ax.yaxis.label.get_window_extent(renderer)
        assert label.height <= ax.get_window_extent(renderer).height, ax.get_ylabel()


def test_plot_comparison_layout_zoom_and_errors(sample, outputs, tmp_path):
    metrics = {m: {"psnr": 30.0, "psnr_cloudy": 20.0, "ssim": 0.9, "sam": 3.0, "mae": 0.02} for m in outputs}
    fig = viz_compare.plot_comparison(sample, outputs, metrics=metrics)
    # row 0: SAR, input, target, cloud mask, true LC; "full": rec, err, LC, 4 prompts; "no-seg": rec, err
    assert len(_image_axes(fig)) == 5 + 7 + 2
    assert "ROIs_01_p0" in fig._suptitle.get_text()
    assert [fig.axes[k].get_ylabel() for k in (8, 16)] == ["full", "no-seg"]  # 8 columns
    zoomed = viz_compare.plot_comparison(
        sample, outputs, models=["full"], window=(4, 8, 12, 12), show_prompts=False, metrics=metrics
    )
    assert len(_image_axes(zoomed)) == 5 + 3
    assert all(ax.get_images()[0].get_array().shape[:2] == (12, 12) for ax in _image_axes(zoomed))
    with pytest.raises(KeyError, match="no outputs"):
        viz_compare.plot_comparison(sample, outputs, models=["missing"], metrics=metrics)
    path = viz.save_figure(fig, tmp_path / "cmp.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["cmp.png"]  # no temp file left behind


def test_plot_comparison_computes_metrics_itself(sample, outputs):
    fig = viz_compare.plot_comparison(sample, outputs, models=["full"])
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "PSNR" in texts and "mIoU" in texts


def test_plot_prompt_maps(sample, outputs):
    fig = viz_compare.plot_prompt_maps(outputs["full"], sample, window=arrays.Window(0, 0, 16, 16))
    assert len(_image_axes(fig)) == 5
    with pytest.raises(ValueError, match="no 'prompts'"):
        viz_compare.plot_prompt_maps(outputs["no-seg"], sample)


def test_plot_bucket_metrics_lines_and_errorbars():
    per_bucket = {
        "A": {
            "0-20%": {"psnr": (30, 1), "miou": {"mean": 0.5, "std": 0.1}},
            "80%-100%": {"psnr": (25, 2), "miou": 0.3},
        },
        "B (no seg)": {"0-20%": {"psnr": 29.0}, "40%-60%": {"psnr": float("nan")}},
    }
    fig = viz_curves.plot_bucket_metrics(per_bucket)
    psnr_ax, miou_ax = fig.axes[:2]
    assert len(psnr_ax.get_lines()) >= 2 and len(psnr_ax.get_legend().get_texts()) == 2
    assert [t.get_text() for t in miou_ax.get_legend().get_texts()] == ["A"]
    # a model keeps its colour across panels even when another model is missing from one
    first_missing = viz_curves.plot_bucket_metrics({"B": per_bucket["B (no seg)"], "A": per_bucket["A"]})
    psnr_lines, miou_lines = (ax.get_lines() for ax in first_missing.axes[:2])
    assert psnr_lines[-1].get_color() == miou_lines[0].get_color() == "C1"  # A, 2nd model
    assert [t.get_text() for t in psnr_ax.get_xticklabels()] == ["0-20%", "40%-60%", "80%-100%"]
    with pytest.raises(ValueError, match="unknown cloud-cover bucket"):
        viz_curves.plot_bucket_metrics({"A": {"50%": {"psnr": 1.0}}})
    with pytest.raises(ValueError, match="empty"):
        viz_curves.plot_bucket_metrics({})


def test_save_tile_comparisons_writes_pngs(tmp_path):
    dataset = make_dataset(per_bucket=1, size=32)
    models = {"tiny": TinyModel()}
    written = viz_tiles.save_tile_comparisons(dataset, models, ["ROIs_02_p0"], tmp_path, zoom=2, sample_crop=24)
    pngs = [tmp_path / p for p in written["ROIs_02_p0"]["png"]]
    assert [p.name for p in pngs] == ["05_compare_ROIs_02_p0.png", "05_compare_ROIs_02_p0_zoom2.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    assert set(written["ROIs_02_p0"]["metrics"]["tiny"]) >= {"psnr", "miou"}
    with pytest.raises(KeyError, match="nope"):
        viz_tiles.save_tile_comparisons(dataset, models, ["nope"], tmp_path)


def test_comparison_has_colour_bars_legends_and_row_titles(sample, outputs):
    fig = viz_compare.plot_comparison(sample, outputs, row_titles={"full": "full\nphase2 · 9 steps"})
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "full\nphase2\n9 steps" in labels  # the " · " parts on lines of their own
    bar_labels = " ".join(ax.get_ylabel() + " " + ax.get_xlabel() for ax in fig.axes)  # bars sit below the rows
    assert "weight given to SAR" in bar_labels and "reflectance" in bar_labels
    legends = [t.get_text() for ax in fig.axes for lg in [ax.get_legend()] if lg for t in [lg.get_title()]]
    assert "cloud mask" in legends
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "dB" in titles  # the SAR panel gives its dB ranges


def test_metrics_frame_units_and_missing_values():
    table = viz_compare.metrics_frame({"a": {"psnr": 30.0, "miou": 0.5}, "b": {"psnr": 20.0}})
    assert table.loc["a", "mIoU (%)"] == "50.0" and table.loc["b", "mIoU (%)"] == "n/a"
    assert table.loc["a", "PSNR (dB)"] == "30.00"


def test_mosaic_draws_every_panel_in_one_image(sample, outputs):
    fig = plot_comparison_mosaic(sample, outputs, row_titles={"full": "full run"})
    assert not fig.axes and len(fig.images) == 1
    texts = [t.get_text() for t in fig.texts]
    assert "full run" in texts and "gate L1" in texts and "no segmentation head" in texts
    assert any("weight given to SAR" in t for t in texts)
    assert fig.images[0].get_array().shape[0] > 3 * PANEL


def test_scene_figure_has_map_coordinates_and_scale_bar(tmp_path):
    transform = Affine(10.0, 0, 400000.0, 0, -10.0, 5300000.0)
    paths = {}
    for name, count, dtype in (
        ("s2", 13, "uint16"),
        ("cloud_free", 13, "uint16"),
        ("degradation_prompt", 1, "float32"),
    ):
        paths[name] = tmp_path / f"{name}.tif"
        with rasterio.open(
            paths[name],
            "w",
            driver="GTiff",
            width=32,
            height=32,
            count=count,
            dtype=dtype,
            crs="EPSG:32755",
            transform=transform,
        ) as dst:
            dst.write(
                (np.random.default_rng(0).random((count, 32, 32)) * 3000).astype(dtype)
                if dtype == "uint16"
                else np.full((1, 32, 32), 0.5, dtype)
            )
    fig = plot_scene_prediction(
        paths["s2"], {"cloud_free": paths["cloud_free"], "degradation_prompt": paths["degradation_prompt"]}
    )
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == pytest.approx(400000.0) and "easting" in ax.get_xlabel()
    assert any(t.get_text().endswith(" m") for t in ax.texts)  # the scale bar's label
    assert "EPSG:32755" in fig._suptitle.get_text()
