"""A readable viewer: picture at its pixel size with metrics below, text >= 10 px at 1:1, row
labels with the whole budget, an LRU cache of recently seen tiles."""

from __future__ import annotations

import json

import torch
from _viz_fakes import TinyModel, make_dataset
from matplotlib.backends.backend_agg import FigureCanvasAgg

from tdpcr_lib.plot import widgets as W
from tdpcr_lib.plot.mosaic import GAP, LABEL, PANEL
from tdpcr_lib.plot.tiles import checkpoint_budget, row_titles


def _viewer(per_bucket=3, **kwargs):
    torch.manual_seed(0)
    return W.build_viewer(
        make_dataset(per_bucket=per_bucket, size=16), {"tdpcr": TinyModel(), "other": TinyModel()}, **kwargs
    )


def test_revisiting_a_recent_tile_runs_no_model():
    viewer = _viewer()
    viewer.render()
    calls = dict(viewer.model_calls)
    viewer.tile.value = 2
    viewer.tile.value = 3
    assert viewer.model_calls["tdpcr"] == calls["tdpcr"] + 2
    viewer.tile.value = 1  # seen two tiles ago: from the cache
    viewer.tile.value = 2
    assert viewer.model_calls["tdpcr"] == calls["tdpcr"] + 2


def test_the_cache_keeps_only_the_most_recent_tiles(monkeypatch):
    monkeypatch.setattr(W, "TILE_CACHE", 2)
    viewer = _viewer()
    viewer.render()
    viewer.tile.value = 2
    viewer.tile.value = 3  # tile 1 is now the least recently seen of three: dropped
    before = viewer.model_calls["tdpcr"]
    viewer.tile.value = 1
    assert viewer.model_calls["tdpcr"] == before + 1 and len(viewer._tiles) == 2


def test_picture_has_the_full_width_and_the_metrics_go_below():
    viewer = _viewer()
    children = list(viewer.widget.children)
    assert viewer.output in children and viewer.metrics_table in children
    assert children.index(viewer.metrics_table) == children.index(viewer.output) + 1
    # JupyterLab draws the PNG at its pixel size, not shrunk to the notebook's width
    viewer.render()
    (shown,) = viewer.output.outputs
    assert shown["metadata"]["image/png"].get("unconfined") is True
    # the legend sits in row 0's free cells (the model rows have gates): no extra column, and
    # every text stays inside the picture
    fig = viewer.figure
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    width = fig.get_figwidth() * fig.dpi
    assert width == LABEL + 7 * (PANEL + GAP)  # 3 panels + 4 gate levels, no legend column
    assert all(t.get_window_extent(canvas.get_renderer()).x1 <= width for t in fig.texts)
    assert any(t.get_text().startswith("0: ") for t in fig.texts)  # the land-cover legend is drawn


def test_mosaic_text_is_at_least_10_px_and_labels_stay_in_their_column():
    label = "TDP-CR (ours)\nphase 1 600 + phase 2 175 steps · 0.29 M params"
    viewer = _viewer(row_titles={"tdpcr": label})
    fig = viewer.render()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for text in fig.texts:
        assert text.get_fontsize() * fig.dpi / 72 >= 10, text.get_text()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts if t.get_text()]
    for k, (a, box_a) in enumerate(boxes):  # bigger text must still not run into its neighbour
        for b, box_b in boxes[k + 1 :]:
            assert not (
                min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > 1
                and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > 1
            ), (a, b)
    labels = [t for t in fig.texts if t.get_text().startswith("TDP-CR")]
    assert labels and "\n" in labels[0].get_text()
    assert labels[0].get_window_extent(renderer).x1 < LABEL  # not over the first panel
    table = viewer.metrics_table.value
    assert "\\n" not in table and "phase 1 600 + phase 2 175 steps" in table


def _checkpoint(folder, phase, step, init_from=None):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "model_config": {},
                "phase": phase,
                "epoch": 1,
                "step": step,
                "num_parameters": 290000,
                "train_config": {"init_from": init_from},
            }
        )
    )
    return folder


def test_row_labels_carry_the_whole_budget(tmp_path):
    first = _checkpoint(tmp_path / "phase1" / "best", "phase1", 600)
    second = _checkpoint(tmp_path / "phase2" / "best", "phase2", 175, init_from=str(first))
    assert checkpoint_budget(first) == "phase 1 600 steps · 0.29 M params"
    assert checkpoint_budget(second) == "phase 1 600 + phase 2 175 steps · 0.29 M params"
    orphan = _checkpoint(tmp_path / "x" / "best", "phase2", 175, init_from=str(tmp_path / "gone"))
    assert checkpoint_budget(orphan).startswith("phase 1 ? + phase 2 175 steps")
    assert row_titles({"TDP-CR": second})["TDP-CR"] == ("TDP-CR\nphase 1 600 + phase 2 175 steps · 0.29 M params")
