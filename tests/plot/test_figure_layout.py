"""Every figure function renders without overlapping text (constrained layout, suptitle placed),
and metrics in percent are drawn in percent."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from _viz_fakes import TinyModel, make_sample
from affine import Affine
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.text import Text

from tdpcr_lib.core import arrays
from tdpcr_lib.datasets.plot import plot_class_histogram, plot_sample
from tdpcr_lib.plot import compare, curves, diagnostics, tiles
from tdpcr_lib.plot.scene import plot_scene_prediction


def _drawn_tick_labels(ax):
    """Tick labels matplotlib actually draws: ticks inside the view interval."""
    for axis in (ax.xaxis, ax.yaxis):
        lo, hi = sorted(axis.get_view_interval())
        eps = 1e-9 * max(1.0, abs(hi - lo))
        for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
            if lo - eps <= tick.get_loc() <= hi + eps:
                yield from (tick.label1, tick.label2)
        yield axis.get_offset_text()


def text_boxes(fig):
    """(text, bbox in px) of every drawn, non-empty text artist after a draw."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    candidates = [*fig.texts, fig._suptitle, fig._supxlabel, fig._supylabel]
    for legend in fig.legends:
        candidates += [*legend.get_texts(), legend.get_title()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        candidates += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.axison:  # set_axis_off() hides ticks and axis labels
            candidates += [ax.xaxis.label, ax.yaxis.label, *_drawn_tick_labels(ax)]
        if ax.get_legend() is not None:
            candidates += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
        for child in ax.get_children():  # a second legend kept with add_artist
            if child is not ax.get_legend() and hasattr(child, "get_texts") and hasattr(child, "get_title"):
                candidates += [*child.get_texts(), child.get_title()]
    boxes, seen = [], set()
    for artist in candidates:
        if artist is None or id(artist) in seen or not isinstance(artist, Text):
            continue
        seen.add(id(artist))
        if not artist.get_visible() or not artist.get_text().strip():
            continue
        boxes.append((artist.get_text(), artist.get_window_extent(renderer), artist.axes))
    return boxes


def _intersect(a, b, tolerance):
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance and min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance


def overlaps(fig, tolerance: float = 1.0):
    """Pairs of overlapping texts, and texts drawn on another axes' picture."""
    boxes = text_boxes(fig)
    found = [(ta, tb) for (ta, a, _), (tb, b, _) in itertools.combinations(boxes, 2) if _intersect(a, b, tolerance)]
    pictures = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    found += [
        (text, f"picture of '{ax.get_title()}'")
        for text, box, owner in boxes
        for ax in pictures
        if owner is not ax and _intersect(box, ax.bbox, tolerance)
    ]
    return found


@pytest.fixture(scope="module")
def sample():
    return make_sample(0, size=32)


@pytest.fixture(scope="module")
def outputs(sample):
    torch.manual_seed(0)
    # six rows, as notebook 05 draws them: a fixed top margin let the title run into the panels
    models = {
        "TDP-CR": TinyModel(),
        "optical only (no SAR)": TinyModel(with_seg=False, with_prompts=False),
        **{f"variant {k}": TinyModel() for k in range(4)},
    }
    return tiles.predict_outputs(models, sample)


def _history():
    steps = [{"step": s, "loss": 1 / (s + 1), "ce": 0.5 / (s + 1)} for s in range(0, 40, 5)]
    epochs = [
        {
            "epoch": e,
            "step": 10 * e,
            "train_loss": 1 / e,
            "val_psnr": 20 + e,
            "val_psnr_cloudy": 18 + e,
            "val_input_psnr_cloudy": 12.0,
            "val_miou": 0.1 * e,
        }
        for e in range(1, 5)
    ]
    return {"phase": "phase2", "objective": "ce", "steps": steps, "epochs": epochs}


def _per_bucket():
    return {
        name: {
            b: {"psnr": (25 + i + k, 1.0), "miou": (30 + 5 * k, 2.0)}
            for k, b in enumerate(("0-20%", "20%-40%", "40%-60%", "60%-80%", "80%-100%"))
        }
        for i, name in enumerate(("TDP-CR (phase 1 600 + phase 2 175 steps)", "concat", "optical only", "DSen2-CR"))
    }


def _runs():
    curve = [{"train_flops": 1e9 * (k + 1), "value": 20 + k} for k in range(5)]
    seg = [{"train_flops": 1e9 * (k + 6), "value": 0.2 + 0.02 * k} for k in range(5)]
    return [
        {"model": m, "label": m, "phases": [{"curve": curve, "metric": "psnr"}, {"curve": seg, "metric": "miou"}]}
        for m in ("tdpcr_full", "no_prompt", "concat")
    ]


def _scene(tmp_path):
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
            width=64,
            height=64,
            count=count,
            dtype=dtype,
            crs="EPSG:32755",
            transform=transform,
        ) as dst:
            dst.write(
                (np.random.default_rng(0).random((count, 64, 64)) * 3000).astype(dtype)
                if dtype == "uint16"
                else np.full((1, 64, 64), 0.5, dtype)
            )
    return plot_scene_prediction(paths["s2"], {k: v for k, v in paths.items() if k != "s2"})


FIGURES = {
    "comparison": lambda s, o, t: compare.plot_comparison(
        s, o, row_titles={"TDP-CR": "TDP-CR\nphase 1 600 + phase 2 175 steps"}
    ),
    "comparison_one_model": lambda s, o, t: compare.plot_comparison(s, {"TDP-CR": o["TDP-CR"]}),
    "comparison_zoom": lambda s, o, t: compare.plot_comparison(s, o, window=arrays.Window(0, 0, 16, 16)),
    "overview": lambda s, o, t: compare.plot_overview_with_window(s, arrays.Window(0, 0, 16, 16)),
    "prompt_maps": lambda s, o, t: compare.plot_prompt_maps(o["TDP-CR"], s, title="gates"),
    "training_curves": lambda s, o, t: curves.plot_training_curves(_history()),
    "bucket_metrics": lambda s, o, t: curves.plot_bucket_metrics(_per_bucket(), title="per bucket"),
    "validation_vs_compute": lambda s, o, t: curves.plot_validation_vs_compute(_runs()),
    "confusion": lambda s, o, t: diagnostics.plot_confusion(
        pd.DataFrame(
            np.full((7, 7), 100 / 7),
            index=[f"class {i} long name" for i in range(7)],
            columns=[f"class {i} long name" for i in range(7)],
        )
    ),
    "band_error": lambda s, o, t: diagnostics.plot_band_error(
        pd.DataFrame(
            {
                "bias": np.linspace(-0.01, 0.01, 13),
                "mae": np.linspace(0.01, 0.03, 13),
                "target_range": np.full(13, 0.2),
            },
            index=[f"B{i:02d}" for i in range(1, 14)],
        )
    ),
    "scene": lambda s, o, t: _scene(t),
    "sample": lambda s, o, t: plot_sample(
        s, {"reconstruction": o["TDP-CR"]["reconstruction"], "segmentation": o["TDP-CR"]["segmentation"]}
    ),
    "class_histogram": lambda s, o, t: plot_class_histogram({str(i): 10 * i for i in range(7)}),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_no_two_texts_overlap(name, sample, outputs, tmp_path):
    fig = FIGURES[name](sample, outputs, tmp_path)
    found = overlaps(fig)
    assert not found, f"{name}: overlapping texts {found[:5]}"
    suptitle = fig._suptitle
    if suptitle is not None and suptitle.get_text():
        top = max(ax.get_tightbbox().y1 for ax in fig.axes if ax.get_visible())
        assert suptitle.get_window_extent().y0 >= top - 1, f"{name}: suptitle over the panels"


def test_miou_axes_are_in_percent():
    fig = curves.plot_training_curves(_history())
    seg = [ax for ax in fig.axes if "mIoU" in ax.get_ylabel()]
    assert seg and "%" in seg[0].get_ylabel() and seg[0].get_ylim()[1] > 1.5
    fig = curves.plot_bucket_metrics(_per_bucket())
    ax = next(ax for ax in fig.axes if "mIoU" in ax.get_ylabel())
    assert "%" in ax.get_ylabel() and ax.get_ylim()[1] > 1.5


def test_comparison_is_laid_out_by_constrained_layout_with_one_colour_bar_per_scale(sample, outputs):
    """Six model rows: the error scale and the gate scale each get one bar below the panels (a
    bar beside every error map widened that column and opened a gap in the inputs row)."""
    fig = compare.plot_comparison(sample, outputs)
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    FigureCanvasAgg(fig).draw()
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2
    lowest_panel = min(ax.get_position().y0 for ax in fig.axes if ax.images)
    assert all(bar.get_position().y1 <= lowest_panel for bar in bars)
