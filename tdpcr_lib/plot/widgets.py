"""An ipywidgets viewer that compares models tile by tile on a dataset split.

The viewer is a thin controller: each control's change calls :meth:`ComparisonViewer.render`,
which asks :mod:`tdpcr_lib.plot.compare` for a Figure and shows it in an ``Output`` widget. All state lives
on the object (``render_count``, ``figure``, ``last_error``), so tests drive it by setting widget
values, with no browser or display (matplotlib's Agg canvas).

Controls
--------
* **bucket** (dropdown) and **tile** (slider over the tiles of that bucket; the tile id is shown
  beside it),
* **composite** (true colour, NIR false colour, SWIR — :data:`tdpcr_lib.core.bands.COMPOSITES`),
* **models** (multi-select: which models' rows to draw),
* **zoom** (1×, 2×, 4×, 8×) with the zoom **centre** (row, column sliders) — for looking at
  texture and boundaries, where over-smoothing shows,
* **prompts** (checkbox: draw the per-level prompt/gate maps).

Model outputs are cached per (tile, model), so changing composite or zoom does not rerun models.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from IPython.display import Image
from matplotlib.figure import Figure

from tdpcr_lib.core.arrays import Window
from tdpcr_lib.core.bands import COMPOSITES
from tdpcr_lib.plot.compare import plot_comparison
from tdpcr_lib.plot.composites import DEFAULT_COMPOSITE, resolve_composite
from tdpcr_lib.plot.tiles import index_tiles, predict_outputs
from tdpcr_lib.transforms import centre_crop_sample

ZOOM_FACTORS: tuple[int, ...] = (1, 2, 4, 8)


class ComparisonViewer:
    """Interactive side-by-side comparison of several models on one dataset split.

    Parameters
    ----------
    dataset : torch Dataset
        Yields the data layer's sample dicts (e.g. ``LuojiaSETOSFCR(root, split="test")``).
    models : dict
        Display name → model (any ``forward(optical, sar) -> dict`` model). Evaluated lazily.
    device : str
        Where the models run (``"auto"`` allowed).
    sample_crop : int, optional
        Centre-crop every tile to this size before running the models (keeps heavy baselines
        interactive on a CPU); ``None`` shows whole tiles.
    initial_models : sequence of str, optional
        Models selected at start (default: all).
    render_on_change : bool
        Re-render when a control changes (on by default; off lets a caller batch changes).
    """

    def __init__(self, dataset: Any, models: Mapping[str, Any], device: str = "cpu",
                 sample_crop: int | None = None, initial_models: Sequence[str] | None = None,
                 composite: str = DEFAULT_COMPOSITE, render_on_change: bool = True) -> None:
        if not models:
            raise ValueError("give at least one model to compare")
        self.dataset = dataset
        self.models = dict(models)
        self.device = device
        self.sample_crop = sample_crop
        self.tiles = index_tiles(dataset)
        self.render_on_change = render_on_change
        self.render_count = 0
        self.figure: Figure | None = None
        self.last_error: str | None = None
        self._cache_index: int | None = None
        self._sample: dict[str, Any] | None = None
        self._outputs: dict[str, dict[str, Any]] = {}
        self._suspend = False

        first_bucket = next(iter(self.tiles))
        self.bucket = widgets.Dropdown(options=list(self.tiles), value=first_bucket,
                                       description="cloud cover")
        self.tile = widgets.IntSlider(min=0, max=len(self.tiles[first_bucket]) - 1, value=0,
                                      description="tile", continuous_update=False)
        self.tile_label = widgets.Label()
        self.composite = widgets.Dropdown(options=list(COMPOSITES),
                                          value=resolve_composite(composite),
                                          description="bands")
        chosen = list(initial_models) if initial_models is not None else list(self.models)
        missing = [m for m in chosen if m not in self.models]
        if missing:
            raise KeyError(f"initial_models {missing} are not among the models {list(self.models)}")
        self.model_select = widgets.SelectMultiple(options=list(self.models), value=tuple(chosen),
                                                   description="models",
                                                   rows=min(len(self.models), 8))
        self.zoom = widgets.SelectionSlider(options=list(ZOOM_FACTORS), value=1,
                                            description="zoom ×")
        self.centre_row = widgets.IntSlider(min=0, max=100, value=50, description="centre row %",
                                            continuous_update=False)
        self.centre_col = widgets.IntSlider(min=0, max=100, value=50, description="centre col %",
                                            continuous_update=False)
        self.show_prompts = widgets.Checkbox(value=True, description="prompt/gate maps")
        self.output = widgets.Output()

        self.bucket.observe(self._on_bucket, names="value")
        for control in (self.tile, self.composite, self.model_select, self.zoom, self.centre_row,
                        self.centre_col, self.show_prompts):
            control.observe(self._on_change, names="value")
        self._update_tile_label()
        self.widget = widgets.VBox([
            widgets.HBox([self.bucket, self.tile, self.tile_label]),
            widgets.HBox([self.composite, self.show_prompts]),
            widgets.HBox([self.model_select,
                          widgets.VBox([self.zoom, self.centre_row, self.centre_col])]),
            self.output,
        ])

    # ------------------------------------------------------------------ state
    @property
    def controls(self) -> dict[str, widgets.Widget]:
        """Every control by name (what a user can change)."""
        return {"bucket": self.bucket, "tile": self.tile, "composite": self.composite,
                "models": self.model_select, "zoom": self.zoom, "centre_row": self.centre_row,
                "centre_col": self.centre_col, "show_prompts": self.show_prompts}

    @property
    def dataset_index(self) -> int:
        """Index into the dataset of the tile currently shown."""
        return self.tiles[self.bucket.value][self.tile.value][0]

    @property
    def tile_id(self) -> str:
        return self.tiles[self.bucket.value][self.tile.value][1]

    def current_sample(self) -> dict[str, Any]:
        """The shown tile's sample (centre-cropped when ``sample_crop`` is set), cached."""
        index = self.dataset_index
        if self._cache_index != index or self._sample is None:
            sample = self.dataset[index]
            self._sample = centre_crop_sample(sample, self.sample_crop) if self.sample_crop \
                else sample
            self._outputs = {}
            self._cache_index = index
        return self._sample

    def current_outputs(self) -> dict[str, dict[str, Any]]:
        """Outputs of the selected models on the shown tile (each model runs once per tile)."""
        sample = self.current_sample()
        todo = {m: self.models[m] for m in self.model_select.value if m not in self._outputs}
        if todo:
            self._outputs.update(predict_outputs(todo, sample, device=self.device))
        return {m: self._outputs[m] for m in self.model_select.value}

    def current_window(self) -> Window | None:
        """The zoom window from the zoom factor and centre sliders (``None`` at 1×)."""
        if self.zoom.value == 1:
            return None
        sample = self.current_sample()
        height, width = sample["target"].shape[-2:]
        size = max(8, min(height, width) // self.zoom.value)
        return Window.centred(self.centre_row.value / 100 * (height - 1),
                              self.centre_col.value / 100 * (width - 1), size,
                              (int(height), int(width)))

    # ------------------------------------------------------------------ callbacks
    def _update_tile_label(self) -> None:
        self.tile_label.value = f"id {self.tile_id} ({self.tile.value + 1}/" \
                                f"{len(self.tiles[self.bucket.value])})"

    def _on_bucket(self, change: dict[str, Any]) -> None:
        # Changing the bucket moves the tile slider; render once, not twice.
        self._suspend = True
        try:
            self.tile.value = 0
            self.tile.max = len(self.tiles[change["new"]]) - 1
        finally:
            self._suspend = False
        self._on_change(change)

    def _on_change(self, change: dict[str, Any] | None = None) -> None:
        if self._suspend:
            return
        self._update_tile_label()
        if self.render_on_change:
            self.render()

    def render(self) -> Figure | None:
        """Draw the comparison for the current control values into the output widget.

        Errors (e.g. a model failing on a tile) are shown in the output and kept in
        ``last_error`` instead of breaking the widget.
        """
        # Replace the Output's contents directly instead of `clear_output` + `with output:`:
        # the context-manager route depends on kernel message routing and once stalled under
        # papermill; setting `outputs` behaves the same in JupyterLab, papermill and plain Python.
        self.output.outputs = ()
        try:
            fig = self.build_figure()
        except Exception as exc:  # shown to the user; the widget must stay usable
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.output.append_stdout(f"could not draw tile {self.tile_id}: {self.last_error}\n")
            return None
        self.last_error = None
        self.figure = fig
        self.render_count += 1
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
        self.output.append_display_data(Image(data=buffer.getvalue(), format="png"))
        return fig

    def build_figure(self) -> Figure:
        """The Figure for the current control values (no widget side effects)."""
        selected = list(self.model_select.value)
        if not selected:
            raise ValueError("no model selected")
        return plot_comparison(self.current_sample(), self.current_outputs(),
                               composite=self.composite.value, models=selected,
                               window=self.current_window(), show_prompts=self.show_prompts.value)

    def show(self) -> widgets.VBox:
        """Render once and return the widget (the last expression of a notebook cell)."""
        self.render()
        return self.widget


def build_viewer(dataset: Any, models: Mapping[str, Any], device: str = "cpu",
                 sample_crop: int | None = None, **kwargs: Any) -> ComparisonViewer:
    """Build a :class:`ComparisonViewer` (convenience for notebooks)."""
    return ComparisonViewer(dataset, models, device=device, sample_crop=sample_crop, **kwargs)
