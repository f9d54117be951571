"""An ipywidgets viewer that compares models tile by tile on a dataset split.

The viewer is a thin controller: each control's change calls :meth:`ComparisonViewer.render`,
which asks :mod:`tdpcr_lib.plot.compare` for a Figure and shows it in an ``Output`` widget, with
the tile's metrics as an HTML table beside it. All state lives on the object (``render_count``,
``figure``, ``last_error``, ``model_calls``), so tests drive it by setting widget values, with no
browser or display (matplotlib's Agg canvas).

Controls
--------
* **bucket** (dropdown) and **tile** (slider numbered 1…N over the tiles of that bucket; "of N"
  and the tile id are shown beside it),
* **composite** (true colour, NIR false colour, SWIR — :data:`tdpcr_lib.core.bands.COMPOSITES`),
* **models** (multi-select: which models' rows to draw),
* **zoom** (1×, 2×, 4×, 8×) with the zoom **centre** (row, column sliders) — for looking at
  texture and boundaries, where over-smoothing shows,
* **prompts** (checkbox: draw the per-level prompt/gate maps).

Model outputs and per-tile metrics are cached per (tile, model) for the :data:`TILE_CACHE`
most recently seen tiles (least recently used dropped first): a view-only change (composite,
zoom, centre, models shown, gates on/off) only redraws, going back to a tile seen recently is
instant, and a new tile runs each selected model once, with a busy line ("running 3 models on
tile …") above the last picture until the new one is ready.

The picture keeps its pixel size (the mosaic is drawn 1:1, text >= 11 px): the metrics table
goes below it, not beside it (beside it, the 1,200 px mosaic was squeezed to about 640 px).
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from IPython.display import Image
from matplotlib.figure import Figure

from tdpcr_lib.core.arrays import Window
from tdpcr_lib.core.bands import COMPOSITES
from tdpcr_lib.inference.engines import engine_model
from tdpcr_lib.plot.compare import metrics_frame, tile_metrics
from tdpcr_lib.plot.composites import DEFAULT_COMPOSITE, resolve_composite
from tdpcr_lib.plot.mosaic import plot_comparison_mosaic
from tdpcr_lib.plot.tiles import index_tiles, predict_outputs
from tdpcr_lib.transforms import centre_crop_sample

ZOOM_FACTORS: tuple[int, ...] = (1, 2, 4, 8)

#: Tiles whose sample, outputs and metrics stay cached (about 6 MB per model and 256 px tile).
TILE_CACHE = 8


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
    row_titles : dict, optional
        Model name → row title (e.g. with its training budget, :func:`tdpcr_lib.plot.tiles.
        checkpoint_budget`), so runs of different budgets are not compared unawares.
    class_names : sequence of str, optional
        Land-cover names by code (e.g. the synthetic twin's); default the packaged legend's.
    engine : str
        ``"torch"`` (default) or an engine of :data:`tdpcr_lib.inference.engines.ENGINES`: each
        model then runs through its cached ONNX export (``docs/engines.md``).
    """

    def __init__(
        self,
        dataset: Any,
        models: Mapping[str, Any],
        device: str = "cpu",
        sample_crop: int | None = None,
        initial_models: Sequence[str] | None = None,
        composite: str = DEFAULT_COMPOSITE,
        render_on_change: bool = True,
        row_titles: Mapping[str, str] | None = None,
        class_names: Sequence[str] | None = None,
        engine: str = "torch",
    ) -> None:
        if not models:
            raise ValueError("give at least one model to compare")
        self.dataset = dataset
        self.models = (
            {name: engine_model(m, engine, device)[0] for name, m in models.items()}
            if engine != "torch"
            else dict(models)
        )
        self.device = device
        self.sample_crop = sample_crop
        self.tiles = index_tiles(dataset)
        self.render_on_change = render_on_change
        self.render_count = 0
        self.figure: Figure | None = None
        self.last_error: str | None = None
        self._cache_index: int | None = None
        self._tiles: OrderedDict[int, dict[str, Any]] = OrderedDict()  # LRU, TILE_CACHE entries
        self._sample: dict[str, Any] | None = None
        self._outputs: dict[str, dict[str, Any]] = {}
        self._metrics: dict[str, dict[str, float]] = {}
        self._suspend = False
        self.row_titles = {m: (row_titles or {}).get(m, m) for m in self.models}
        self.class_names = class_names
        #: Forward calls per model so far (each model runs once per tile it is shown on).
        self.model_calls: dict[str, int] = dict.fromkeys(self.models, 0)
        wide = {"description_width": "initial"}

        first_bucket = next(iter(self.tiles))
        self.bucket = widgets.Dropdown(
            options=list(self.tiles), value=first_bucket, description="cloud cover", style=wide
        )
        # 1-based, like the "of N" beside it: the slider and its label show the same number
        self.tile = widgets.IntSlider(
            min=1,
            max=max(1, len(self.tiles[first_bucket])),
            value=1,
            description="tile",
            continuous_update=False,
            style=wide,
        )
        self.tile_label = widgets.Label()
        self.composite = widgets.Dropdown(
            options=list(COMPOSITES), value=resolve_composite(composite), description="bands", style=wide
        )
        chosen = list(initial_models) if initial_models is not None else list(self.models)
        missing = [m for m in chosen if m not in self.models]
        if missing:
            raise KeyError(f"initial_models {missing} are not among the models {list(self.models)}")
        self.model_select = widgets.SelectMultiple(
            options=list(self.models), value=tuple(chosen), description="models", rows=min(len(self.models), 8)
        )
        self.zoom = widgets.SelectionSlider(options=list(ZOOM_FACTORS), value=1, description="zoom ×")
        self.centre_row = widgets.IntSlider(
            min=0, max=100, value=50, description="zoom centre, row %", continuous_update=False, style=wide
        )
        self.centre_col = widgets.IntSlider(
            min=0, max=100, value=50, description="zoom centre, column %", continuous_update=False, style=wide
        )
        self.show_prompts = widgets.Checkbox(value=True, description="gate maps (weight to SAR)", style=wide)
        self.status = widgets.HTML()
        self.output = widgets.Output()
        self.metrics_table = widgets.HTML()

        self.bucket.observe(self._on_bucket, names="value")
        for control in (
            self.tile,
            self.composite,
            self.model_select,
            self.zoom,
            self.centre_row,
            self.centre_col,
            self.show_prompts,
        ):
            control.observe(self._on_change, names="value")
        self._update_tile_label()
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.bucket, self.tile, self.tile_label]),
                widgets.HBox([self.composite, self.show_prompts]),
                widgets.HBox([self.model_select, widgets.VBox([self.zoom, self.centre_row, self.centre_col])]),
                self.status,
                self.output,  # full width: the picture is shown at its pixel size
                self.metrics_table,
            ]
        )

    # ------------------------------------------------------------------ state
    @property
    def controls(self) -> dict[str, widgets.Widget]:
        """Every control by name (what a user can change)."""
        return {
            "bucket": self.bucket,
            "tile": self.tile,
            "composite": self.composite,
            "models": self.model_select,
            "zoom": self.zoom,
            "centre_row": self.centre_row,
            "centre_col": self.centre_col,
            "show_prompts": self.show_prompts,
        }

    @property
    def dataset_index(self) -> int:
        """Index into the dataset of the tile currently shown."""
        return self.tiles[self.bucket.value][self.tile.value - 1][0]

    @property
    def tile_id(self) -> str:
        """Id of the tile currently shown."""
        return self.tiles[self.bucket.value][self.tile.value - 1][1]

    def current_sample(self) -> dict[str, Any]:
        """The shown tile's sample (centre-cropped when ``sample_crop`` is set), cached."""
        index = self.dataset_index
        entry = self._tiles.get(index)
        if entry is None:
            sample = self.dataset[index]
            entry = {
                "sample": centre_crop_sample(sample, self.sample_crop) if self.sample_crop else sample,
                "outputs": {},
                "metrics": {},
            }
            self._tiles[index] = entry
            while len(self._tiles) > TILE_CACHE:
                self._tiles.popitem(last=False)  # the least recently seen tile
        self._tiles.move_to_end(index)
        self._sample, self._outputs, self._metrics = (entry["sample"], entry["outputs"], entry["metrics"])
        self._cache_index = index
        return self._sample

    def current_outputs(self) -> dict[str, dict[str, Any]]:
        """Outputs of the selected models on the shown tile (each model runs once per tile)."""
        sample = self.current_sample()
        todo = {m: self.models[m] for m in self.model_select.value if m not in self._outputs}
        if todo:
            s = "s" if len(todo) > 1 else ""
            self.status.value = (
                f"<b>⏳ running {len(todo)} model{s} on tile {self.tile_id}…</b>"
                " (the picture below is the previous one)"
            )
            try:
                for name, model in todo.items():
                    self._outputs.update(predict_outputs({name: model}, sample, device=self.device))
                    self.model_calls[name] += 1
                    # metrics once per (tile, model) as well: they cost as much as a redraw
                    self._metrics[name] = tile_metrics(sample, self._outputs[name])
            finally:
                self.status.value = ""
        return {m: self._outputs[m] for m in self.model_select.value}

    def current_metrics(self) -> dict[str, dict[str, float]]:
        """Cached per-tile metrics of the selected models (after :meth:`current_outputs`)."""
        self.current_outputs()
        return {m: self._metrics[m] for m in self.model_select.value}

    def current_window(self) -> Window | None:
        """The zoom window from the zoom factor and centre sliders (``None`` at 1×)."""
        if self.zoom.value == 1:
            return None
        sample = self.current_sample()
        height, width = sample["target"].shape[-2:]
        size = max(8, min(height, width) // self.zoom.value)
        return Window.centred(
            self.centre_row.value / 100 * (height - 1),
            self.centre_col.value / 100 * (width - 1),
            size,
            (int(height), int(width)),
        )

    # ------------------------------------------------------------------ callbacks
    def _update_tile_label(self) -> None:
        self.tile_label.value = f"of {len(self.tiles[self.bucket.value])} · id {self.tile_id}"

    def _on_bucket(self, change: dict[str, Any]) -> None:
        # Changing the bucket moves the tile slider; render once, not twice.
        self._suspend = True
        try:
            self.tile.value = 1
            self.tile.max = max(1, len(self.tiles[change["new"]]))
        finally:
            self._suspend = False
        self._on_change(change)

    def _on_change(self, change: dict[str, Any] | None = None) -> None:  # noqa: ARG002 - ipywidgets' observer signature
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
        # The old picture stays until the new one is ready (no blank output while models run).
        # Replace the Output's contents directly instead of `clear_output` + `with output:`:
        # the context-manager route depends on kernel message routing and once stalled under
        # papermill; setting `outputs` behaves the same in JupyterLab, papermill and plain Python.
        try:
            fig = self.build_figure()
            buffer = io.BytesIO()
            # fast zlib level: the default level 6 took a third of a redraw for ~2 Mpx mosaics
            fig.savefig(buffer, format="png", dpi=fig.dpi, pil_kwargs={"compress_level": 1})
        except Exception as exc:  # shown to the user; the widget must stay usable
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.output.outputs = ()
            self.metrics_table.value = ""
            self.output.append_stdout(f"could not draw tile {self.tile_id}: {self.last_error}\n")
            return None
        self.last_error = None
        self.figure = fig
        self.render_count += 1
        self.output.outputs = ()
        # unconfined: JupyterLab draws the PNG at its own pixel size (a horizontal scroll bar
        # where the notebook is narrower) instead of shrinking it, and its text, to the width
        self.output.append_display_data(Image(data=buffer.getvalue(), format="png", unconfined=True))
        table = metrics_frame(
            self.current_metrics(),  # one-line labels: HTML shows no "\n"
            {m: t.replace("\n", " · ") for m, t in self.row_titles.items()},
        ).to_html(border=0)
        # JupyterLab's table style (padding, right-aligned numbers, striped rows) applies inside
        # jp-RenderedHTMLCommon; a bare widget HTML ran the column headings into each other
        self.metrics_table.value = (
            f'<div class="jp-RenderedHTMLCommon"><b>tile {self.tile_id}, whole tile</b>{table}</div>'
        )
        return fig

    def build_figure(self) -> Figure:
        """The Figure for the current control values (no widget side effects)."""
        selected = list(self.model_select.value)
        if not selected:
            raise ValueError("no model selected")
        # the one-axes mosaic: a view-only change redraws in well under a second (see
        # tdpcr_lib.plot.mosaic); the static PNGs use the per-panel plot_comparison
        return plot_comparison_mosaic(
            self.current_sample(),
            self.current_outputs(),
            composite=self.composite.value,
            models=selected,
            window=self.current_window(),
            show_prompts=self.show_prompts.value,
            row_titles=self.row_titles,
            class_names=self.class_names,
        )

    def show(self) -> widgets.VBox:
        """Render once and return the widget (the last expression of a notebook cell)."""
        self.render()
        return self.widget


def build_viewer(
    dataset: Any, models: Mapping[str, Any], device: str = "cpu", sample_crop: int | None = None, **kwargs: Any
) -> ComparisonViewer:
    """Build a :class:`ComparisonViewer` (convenience for notebooks)."""
    return ComparisonViewer(dataset, models, device=device, sample_crop=sample_crop, **kwargs)
