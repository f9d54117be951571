"""Tests for the interactive viewer: builds headless (Agg) and every control re-renders."""

from __future__ import annotations

import matplotlib
import pytest
from _viz_fakes import TinyModel, make_dataset

from tdpcr_lib.core.bands import COMPOSITES
from tdpcr_lib.plot.widgets import ComparisonViewer, build_viewer


@pytest.fixture
def models() -> dict:
    return {"tdpcr": TinyModel(), "baseline": TinyModel(with_seg=False, with_prompts=False)}


@pytest.fixture
def viewer(models) -> ComparisonViewer:
    v = build_viewer(make_dataset(per_bucket=2, size=32), models)
    v.show()
    return v


def _panel_titles(viewer: ComparisonViewer) -> list[str]:
    """Titles of the mosaic's image panels (one text per panel, plus labels)."""
    return [t.get_text() for t in viewer.figure.texts]


def _n_panels(viewer: ComparisonViewer) -> int:
    keys = (
        "SAR (",
        "cloudy input",
        "target",
        "cloud mask",
        "true land cover",
        "reconstruction",
        "|error| (band",
        "predicted land cover",
        "gate L",
    )
    return sum(1 for t in _panel_titles(viewer) if t.startswith(keys))


def test_builds_headless_and_renders_once(viewer):
    assert matplotlib.get_backend().lower() == "agg"
    assert viewer.render_count == 1 and viewer.last_error is None
    assert list(viewer.tiles) == ["0-20%", "20%-40%", "40%-60%"]
    assert viewer.tile_id == "ROIs_01_p0" and viewer.tile.value == 1
    assert viewer.tile_label.value == "of 2 · id ROIs_01_p0"  # the tile index shown one way
    assert "PSNR (dB)" in viewer.metrics_table.value and "mIoU (%)" in viewer.metrics_table.value
    # the picture at full width, the metrics below it (not beside: that squeezed the picture)
    assert list(viewer.widget.children[-2:]) == [viewer.output, viewer.metrics_table]
    assert set(viewer.controls) == {
        "bucket",
        "tile",
        "composite",
        "models",
        "zoom",
        "centre_row",
        "centre_col",
        "show_prompts",
    }


CHANGES = {
    "tile": 2,
    "composite": list(COMPOSITES)[2],
    "models": ("baseline",),
    "zoom": 4,
    "centre_row": 10,
    "centre_col": 90,
    "show_prompts": False,
}


@pytest.mark.parametrize("control", list(CHANGES))
def test_each_control_rerenders_exactly_once(viewer, control):
    before = viewer.figure
    viewer.controls[control].value = CHANGES[control]
    assert viewer.render_count == 2, control
    assert viewer.figure is not before and viewer.last_error is None


def test_bucket_change_resets_tile_and_renders_once(viewer):
    viewer.tile.value = 2
    count = viewer.render_count
    viewer.bucket.value = "40%-60%"
    assert viewer.render_count == count + 1
    assert viewer.tile.value == 1 and viewer.tile.max == 2
    assert viewer.tile_id == "ROIs_03_p0" and viewer.dataset_index == 4
    assert "ROIs_03_p0" in _panel_titles(viewer)[0]


def test_controls_change_what_is_drawn(viewer):
    assert _n_panels(viewer) == 5 + 7 + 2  # both models, gates on (4 levels)
    viewer.model_select.value = ("tdpcr",)
    assert _n_panels(viewer) == 5 + 7
    viewer.show_prompts.value = False
    assert _n_panels(viewer) == 5 + 3
    viewer.zoom.value = 4
    assert "zoom rows 12:20" in _panel_titles(viewer)[0]
    window = viewer.current_window()
    viewer.centre_col.value = 0
    assert viewer.current_window().col == 0 and window.col > 0


def test_row_titles_carry_the_budget(models):
    viewer = build_viewer(make_dataset(per_bucket=1, size=16), models, row_titles={"tdpcr": "tdpcr\nphase2 · 20 steps"})
    viewer.show()
    assert "tdpcr\nphase2 · 20 steps" in _panel_titles(viewer)
    assert "phase2 · 20 steps" in viewer.metrics_table.value


ALL_VIEW_CHANGES = [
    ("composite", list(COMPOSITES)[1]),
    ("zoom", 2),
    ("centre_row", 10),
    ("centre_col", 80),
    ("show_prompts", False),
    ("show_prompts", True),
    ("models", ("tdpcr",)),
    ("models", ("tdpcr", "baseline")),
]


def test_models_run_once_per_tile(viewer, models):
    # count forward calls with the wrapper models: view-only changes reuse cached outputs
    assert viewer.model_calls == {"tdpcr": 1, "baseline": 1}
    calls = {name: model.calls for name, model in models.items()}
    for control, value in ALL_VIEW_CHANGES:
        viewer.controls[control].value = value
        assert viewer.last_error is None, control
    assert {name: model.calls for name, model in models.items()} == calls
    viewer.tile.value = 2  # a new tile: each model runs exactly once more
    assert {name: model.calls for name, model in models.items()} == {name: n + 1 for name, n in calls.items()}
    viewer.tile.value = 1  # back again: still in the LRU cache of recent tiles, no model runs
    assert models["tdpcr"].calls == calls["tdpcr"] + 1
    assert viewer.status.value == ""  # the busy line is cleared after the run


def test_busy_indicator_shows_while_models_run(models):
    seen = []
    viewer = build_viewer(make_dataset(per_bucket=2, size=16), models)
    original = models["tdpcr"].forward

    def spy(optical, sar):
        seen.append(viewer.status.value)
        return original(optical, sar)

    models["tdpcr"].forward = spy
    viewer.show()
    assert seen and "running" in seen[0] and "ROIs_01_p0" in seen[0]


def test_failure_is_shown_not_raised(viewer):
    viewer.model_select.value = ()
    assert viewer.last_error is not None and "no model selected" in viewer.last_error
    viewer.model_select.value = ("tdpcr",)
    assert viewer.last_error is None


def test_sample_crop_and_bad_arguments(models):
    dataset = make_dataset(per_bucket=1, size=32)
    viewer = ComparisonViewer(dataset, models, sample_crop=16, initial_models=["tdpcr"])
    viewer.render()
    assert viewer.current_sample()["target"].shape[-2:] == (16, 16)
    with pytest.raises(KeyError, match="not among the models"):
        ComparisonViewer(dataset, models, initial_models=["nope"])
    with pytest.raises(ValueError, match="at least one model"):
        ComparisonViewer(dataset, {})
