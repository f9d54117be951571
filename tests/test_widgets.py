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


def _image_shapes(viewer: ComparisonViewer) -> list[tuple[int, ...]]:
    return [ax.get_images()[0].get_array().shape[:2] for ax in viewer.figure.axes
            if ax.get_images()]


def test_builds_headless_and_renders_once(viewer):
    assert matplotlib.get_backend().lower() == "agg"
    assert viewer.render_count == 1 and viewer.last_error is None
    assert list(viewer.tiles) == ["0-20%", "20%-40%", "40%-60%"]
    assert viewer.tile_id == "ROIs_01_p0" and "1/2" in viewer.tile_label.value
    assert viewer.widget.children[-1] is viewer.output
    assert set(viewer.controls) == {"bucket", "tile", "composite", "models", "zoom",
                                    "centre_row", "centre_col", "show_prompts"}


CHANGES = {
    "tile": 1,
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
    viewer.tile.value = 1
    count = viewer.render_count
    viewer.bucket.value = "40%-60%"
    assert viewer.render_count == count + 1
    assert viewer.tile.value == 0 and viewer.tile.max == 1
    assert viewer.tile_id == "ROIs_03_p0" and viewer.dataset_index == 4
    assert "ROIs_03_p0" in viewer.figure._suptitle.get_text()


def test_controls_change_what_is_drawn(viewer):
    assert len(_image_shapes(viewer)) == 5 + 7 + 2  # both models, prompts on
    viewer.model_select.value = ("tdpcr",)
    assert len(_image_shapes(viewer)) == 5 + 7
    viewer.show_prompts.value = False
    assert len(_image_shapes(viewer)) == 5 + 3
    viewer.zoom.value = 4
    assert set(_image_shapes(viewer)) == {(8, 8)}
    window = viewer.current_window()
    viewer.centre_col.value = 0
    assert viewer.current_window().col == 0 and window.col > 0


def test_models_run_once_per_tile(viewer, models):
    calls = models["tdpcr"].calls
    viewer.composite.value = list(COMPOSITES)[1]
    viewer.zoom.value = 2
    assert models["tdpcr"].calls == calls  # cached outputs reused
    viewer.tile.value = 1
    assert models["tdpcr"].calls == calls + 1


def test_failure_is_shown_not_raised(viewer):
    viewer.model_select.value = ()
    assert viewer.last_error is not None and "no model selected" in viewer.last_error
    viewer.model_select.value = ("tdpcr",)
    assert viewer.last_error is None


def test_sample_crop_and_bad_arguments(models):
    dataset = make_dataset(per_bucket=1, size=32)
    viewer = ComparisonViewer(dataset, models, sample_crop=16, initial_models=["tdpcr"])
    viewer.render()
    assert set(_image_shapes(viewer)) == {(16, 16)}
    with pytest.raises(KeyError, match="not among the models"):
        ComparisonViewer(dataset, models, initial_models=["nope"])
    with pytest.raises(ValueError, match="at least one model"):
        ComparisonViewer(dataset, {})
