"""Figures for comparing models tile by tile: pure functions that return matplotlib Figures.

Everything here takes a *sample dict* (the data layer's contract: ``optical``, ``sar``, ``target``,
``mask``, ``cloud_mask``, ``bucket``, ``id``; tensors or arrays, with or without a batch dimension
of 1) and *model output dicts* (``reconstruction``, optionally ``segmentation`` logits and
``prompts``). Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot, so no
global figure state accumulates and nothing needs a display; :func:`save_figure` writes PNGs
atomically. In a notebook, ``display(fig)`` shows them. The
interactive viewer (:mod:`tdpcr_lib.widgets`) and the notebooks only call these functions.

Display choices (the paper shows no figures we could copy, so these are ours):

* **One stretch for all optical panels of a tile** (the data layer's ``stretch_limits`` /
  ``percentile_stretch``, reused). The 2-98 % per-channel percentiles are taken
  from the clear target and applied to the cloudy input and to every reconstruction, so colours
  are comparable between panels (clouds saturate to white, which is what they are).
* **SAR false colour**: R = VV, G = VH, B = VV − VH (all in dB), each 2-98 % stretched.
* **Absolute error**: mean over the 13 bands of ``|reconstruction − target|`` in reflectance units,
  on a shared colour scale (0 … 99th percentile over all models shown) so models can be compared.
* **Prompt/gate maps**: each level's map is averaged over channels, min-max scaled per level
  (its absolute scale has no unit), and upsampled to the tile by nearest neighbour so the zoom
  window applies to it too.
* **Per-tile metrics** are computed on the whole tile (not the zoom window) with the project's
  :class:`tdpcr_lib.metrics.EvaluationAccumulator`, i.e. exactly the evaluation definitions.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from .bands import COMPOSITES
from .data import percentile_stretch, stretch_limits
from .io_utils import atomic_path
from .legend import Legend, load_legend
from .normalisation import load_normalisation

#: Cloud-cover buckets of LuojiaSET-OSFCR with the cover (%) at their centre, for x axes.
BUCKET_CENTRES: dict[str, float] = {
    "0-20%": 10.0, "20%-40%": 30.0, "40%-60%": 50.0, "60%-80%": 70.0, "80%-100%": 90.0,
}
#: Short names accepted wherever a composite is asked for.
COMPOSITE_ALIASES: dict[str, str] = {
    "true": "true colour (B04/B03/B02)",
    "rgb": "true colour (B04/B03/B02)",
    "nir": "NIR false colour (B08/B04/B03)",
    "swir": "SWIR (B12/B8A/B04)",
}
DEFAULT_COMPOSITE = "true colour (B04/B03/B02)"


class Window(NamedTuple):
    """A zoom/crop window in tile pixels: top-left ``row``, ``col`` and its ``height``, ``width``."""

    row: int
    col: int
    height: int
    width: int

    @classmethod
    def centred(cls, centre_row: float, centre_col: float, size: int,
                shape: tuple[int, int]) -> Window:
        """A ``size``×``size`` window centred on a point, shifted to stay inside ``shape``."""
        height, width = shape
        size = int(max(1, min(size, height, width)))
        row = int(round(centre_row - size / 2))
        col = int(round(centre_col - size / 2))
        return cls(min(max(row, 0), height - size), min(max(col, 0), width - size), size, size)

    def clip(self, shape: tuple[int, int]) -> Window:
        """The part of the window inside an image of ``shape``; an empty overlap is an error."""
        height, width = shape
        row0, col0 = max(self.row, 0), max(self.col, 0)
        row1, col1 = min(self.row + self.height, height), min(self.col + self.width, width)
        if row1 <= row0 or col1 <= col0:
            raise ValueError(f"window {tuple(self)} does not overlap an image of shape {shape}")
        return Window(row0, col0, row1 - row0, col1 - col0)


# ----------------------------------------------------------------------------- array helpers
def to_numpy(x: Any) -> np.ndarray:
    """Tensor or array → NumPy, dropping a leading batch dimension of 1 and any autograd graph."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    arr = np.asarray(x)
    return arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr


def _hw(x: Any) -> tuple[int, int]:
    arr = to_numpy(x)
    return int(arr.shape[-2]), int(arr.shape[-1])


def crop(array: np.ndarray, window: Window | None) -> np.ndarray:
    """Crop the last two (spatial) axes of ``array`` to ``window`` (``None`` → unchanged).

    For channels-last RGB images ``(H, W, 3)`` use :func:`crop_rgb`.
    """
    if window is None:
        return array
    w = Window(*window).clip(array.shape[-2:])
    return array[..., w.row:w.row + w.height, w.col:w.col + w.width]


def crop_rgb(image: np.ndarray, window: Window | None) -> np.ndarray:
    """Crop a channels-last image ``(H, W, 3)`` to ``window``."""
    if window is None:
        return image
    w = Window(*window).clip(image.shape[:2])
    return image[w.row:w.row + w.height, w.col:w.col + w.width]


def resolve_composite(name: str) -> str:
    """Accept a full :data:`tdpcr_lib.bands.COMPOSITES` key, an alias or a unique prefix."""
    if name in COMPOSITES:
        return name
    key = name.strip().lower()
    if key in COMPOSITE_ALIASES:
        return COMPOSITE_ALIASES[key]
    matches = [k for k in COMPOSITES if k.lower().startswith(key)]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"unknown band composite {name!r}; choose one of {list(COMPOSITES)} "
                     f"or an alias {list(COMPOSITE_ALIASES)}")


def band_composite(image: Any, composite: str = DEFAULT_COMPOSITE,
                   reference: Any | None = None, low: float = 2.0,
                   high: float = 98.0) -> np.ndarray:
    """A 13-band S2 image → a stretched RGB composite ``(H, W, 3)`` in [0, 1].

    ``reference`` (another 13-band image, typically the clear target) supplies the stretch limits
    so that input, reconstructions and target are displayed identically.
    """
    bands = list(COMPOSITES[resolve_composite(composite)])
    image = to_numpy(image)
    if image.ndim != 3 or image.shape[0] <= max(bands):
        raise ValueError(f"expected a 13-band image (13, H, W), got shape {image.shape}")
    source = to_numpy(reference)[bands] if reference is not None else image[bands]
    lo, hi = stretch_limits(source, (low, high))
    return percentile_stretch(image[bands], lo, hi).astype(np.float32)


def sar_false_colour(sar: Any, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """SAR in network units (2, H, W) → RGB (R = VV, G = VH, B = VV − VH, in dB), 2-98 % stretched."""
    sar = to_numpy(sar)
    if sar.ndim != 3 or sar.shape[0] != 2:
        raise ValueError(f"expected SAR (2, H, W) with VV, VH, got shape {sar.shape}")
    db = load_normalisation().s1_to_db(sar)
    stack = np.stack([db[0], db[1], db[0] - db[1]])
    return percentile_stretch(stack, percentiles=(low, high)).astype(np.float32)


def absolute_error_map(prediction: Any, target: Any) -> np.ndarray:
    """Mean over bands of ``|prediction − target|`` (reflectance units), shape ``(H, W)``.

    The prediction is clamped to [0, 1] first, as in the metrics.
    """
    prediction, target = to_numpy(prediction), to_numpy(target)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    return np.abs(np.clip(prediction, 0.0, 1.0) - target).mean(axis=0).astype(np.float32)


def predicted_labels(segmentation: Any) -> np.ndarray:
    """Segmentation logits ``(K, H, W)`` → class codes ``(H, W)`` (int64, argmax over classes)."""
    logits = to_numpy(segmentation)
    if logits.ndim != 3:
        raise ValueError(f"expected logits (K, H, W), got shape {logits.shape}")
    return logits.argmax(axis=0).astype(np.int64)


def prompt_maps(output: Mapping[str, Any], shape: tuple[int, int]) -> list[np.ndarray]:
    """The model's per-level prompt/gate maps, channel-averaged, min-max scaled and upsampled.

    Returns one ``(H, W)`` float array in [0, 1] per PGF level (an empty list when the model has
    no prompts, e.g. the baselines or ``optical_only``).
    """
    prompts = output.get("prompts") or []
    height, width = shape
    maps = []
    for level in prompts:
        arr = to_numpy(level)
        arr = arr.mean(axis=0) if arr.ndim == 3 else arr
        h, w = arr.shape
        rows = np.minimum(np.arange(height) * h // height, h - 1)
        cols = np.minimum(np.arange(width) * w // width, w - 1)
        up = arr[np.ix_(rows, cols)].astype(np.float64)
        lo, hi = float(np.nanmin(up)), float(np.nanmax(up))
        maps.append(((up - lo) / (hi - lo) if hi > lo else np.zeros_like(up)).astype(np.float32))
    return maps


# ----------------------------------------------------------------------------- metrics
def tile_metrics(sample: Mapping[str, Any], output: Mapping[str, Any],
                 num_classes: int | None = None) -> dict[str, float]:
    """Metrics of one model on one tile, with the evaluation's own definitions.

    Returns a flat dict: ``psnr``, ``ssim``, ``sam``, ``mae`` (whole tile), ``psnr_cloudy`` (inside
    the cloud mask; NaN when the tile has no cloud) and, when the model segments, ``oa`` and
    ``miou``.
    """
    import torch

    from .metrics import EvaluationAccumulator

    def batched(x: Any) -> torch.Tensor:
        t = torch.as_tensor(to_numpy(x))
        return t.unsqueeze(0)

    batch = {key: batched(sample[key]) for key in ("optical", "target", "cloud_mask", "mask")}
    batch["bucket"] = [str(sample.get("bucket", "all"))]
    out = {"reconstruction": batched(output["reconstruction"]).float()}
    if output.get("segmentation") is not None:
        out["segmentation"] = batched(output["segmentation"]).float()
    legend = load_legend()
    acc = EvaluationAccumulator(num_classes=num_classes or legend.num_classes,
                                ignore_index=legend.ignore_index)
    acc.update(out, batch)
    result = acc.compute()
    metrics: dict[str, float] = {}
    cr_all = result["cr"]["all"]
    for key in ("psnr", "ssim", "sam", "mae"):
        metrics[key] = float(cr_all[key])
    metrics["psnr_cloudy"] = _nan_if_none(result["cr"].get("cloudy", {}).get("psnr"))
    if "segmentation" in out and result.get("seg"):
        metrics["oa"] = float(result["seg"]["all"]["oa"])
        metrics["miou"] = float(result["seg"]["all"]["miou"])
    return metrics


def _nan_if_none(value: Any) -> float:
    return float("nan") if value is None else float(value)


def format_metrics(metrics: Mapping[str, float]) -> str:
    """Metrics dict → a few short lines for a figure panel (NaN shown as ``n/a``)."""
    def fmt(key: str, spec: str, scale: float = 1.0) -> str:
        value = metrics.get(key)
        if value is None or not math.isfinite(value):
            return "n/a"
        return format(value * scale, spec)

    lines = [f"PSNR {fmt('psnr', '.2f')} dB", f"  in cloud {fmt('psnr_cloudy', '.2f')} dB",
             f"SSIM {fmt('ssim', '.3f')}", f"SAM {fmt('sam', '.2f')}°", f"MAE {fmt('mae', '.4f')}"]
    if "miou" in metrics:
        lines += [f"OA {fmt('oa', '.1f', 100)} %", f"mIoU {fmt('miou', '.1f', 100)} %"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures
def _off(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _legend_handles(legend: Legend, labels: Sequence[np.ndarray]) -> list[Patch]:
    present = set()
    for lab in labels:
        present.update(int(v) for v in np.unique(lab) if 0 <= int(v) < legend.num_classes)
    codes = sorted(present) or list(legend.codes)
    return [Patch(facecolor=np.asarray(legend.colors[c]) / 255.0, edgecolor="k",
                  label=f"{c}: {legend.names[c]}") for c in codes]


def plot_comparison(sample: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]],
                    composite: str = DEFAULT_COMPOSITE, models: Sequence[str] | None = None,
                    window: Window | tuple[int, int, int, int] | None = None,
                    show_prompts: bool = True, metrics: Mapping[str, Mapping[str, float]] | None = None,
                    panel_size: float = 2.1) -> Figure:
    """The full side-by-side comparison of one tile.

    Row 0: SAR false colour, cloudy input, target, cloud mask, true land cover, class legend.
    One row per model: reconstruction, absolute-error map, predicted land cover (when the model
    segments), the prompt/gate map of each PGF level (when it has prompts and ``show_prompts``),
    and the tile's metrics.

    Parameters
    ----------
    sample : dict
        A dataset sample (batch dimension of 1 allowed).
    outputs : dict
        Model name → that model's output dict on this sample.
    composite : str
        Band composite (see :func:`resolve_composite`).
    models : sequence of str, optional
        Which of ``outputs`` to show, in order (default: all).
    window : Window, optional
        Zoom/crop window in tile pixels; the target panel marks it when zoomed.
    show_prompts : bool
        Draw the prompt/gate maps.
    metrics : dict, optional
        Model name → :func:`tile_metrics` result; computed when not given.
    """
    models = list(outputs) if models is None else list(models)
    unknown = [m for m in models if m not in outputs]
    if unknown:
        raise KeyError(f"no outputs for model(s) {unknown}; available: {list(outputs)}")
    legend = load_legend()
    shape = _hw(sample["target"])
    window = Window(*window).clip(shape) if window is not None else None
    target = to_numpy(sample["target"])
    composite = resolve_composite(composite)

    n_prompt_cols = 0
    if show_prompts:
        n_prompt_cols = max([len(outputs[m].get("prompts") or []) for m in models] + [0])
    n_cols = max(6, 3 + n_prompt_cols + 1)
    n_rows = 1 + len(models)
    fig = Figure(figsize=(panel_size * n_cols, panel_size * n_rows * 1.05), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    for ax in axes.ravel():
        _off(ax)
        ax.set_frame_on(False)

    def show(ax: Axes, image: np.ndarray, title: str, rgb: bool = True, **kw: Any) -> None:
        ax.imshow(crop_rgb(image, window) if rgb else crop(image, window), interpolation="nearest",
                  **kw)
        ax.set_title(title, fontsize=8)
        ax.set_frame_on(True)

    true_labels = legend.sanitise(to_numpy(sample["mask"]))
    show(axes[0, 0], sar_false_colour(sample["sar"]), "SAR (VV, VH, VV−VH)")
    show(axes[0, 1], band_composite(sample["optical"], composite, reference=target),
         "cloudy input")
    show(axes[0, 2], band_composite(target, composite, reference=target), "target (clear)")
    show(axes[0, 3], to_numpy(sample["cloud_mask"]).astype(np.float32), "cloud mask", rgb=False,
         cmap="gray", vmin=0, vmax=1)
    show(axes[0, 4], legend.colorize(true_labels), "true land cover")

    predicted = {m: predicted_labels(outputs[m]["segmentation"]) for m in models
                 if outputs[m].get("segmentation") is not None}
    handles = _legend_handles(legend, [true_labels, *predicted.values()])
    axes[0, 5].legend(handles=handles, loc="center", fontsize=7, frameon=False,
                      title="land cover", title_fontsize=8)
    bucket, tile_id = sample.get("bucket", "?"), sample.get("id", "?")
    bucket = bucket[0] if isinstance(bucket, list | tuple) else bucket
    tile_id = tile_id[0] if isinstance(tile_id, list | tuple) else tile_id
    zoom = f", zoom rows {window.row}:{window.row + window.height}, cols " \
           f"{window.col}:{window.col + window.width}" if window else ""
    fig.suptitle(f"tile {tile_id} (cloud cover {bucket}) — {composite}{zoom}", fontsize=10)

    errors = {m: absolute_error_map(outputs[m]["reconstruction"], target) for m in models}
    err_max = max([float(np.percentile(crop(e, window), 99)) for e in errors.values()] + [1e-6])
    for row, name in enumerate(models, start=1):
        out = outputs[name]
        show(axes[row, 0], band_composite(out["reconstruction"], composite, reference=target),
             "reconstruction")
        # the model name as the row label: long names stay readable (titles would be clipped)
        axes[row, 0].set_ylabel(name, fontsize=8, fontweight="bold")
        im = axes[row, 1].imshow(crop(errors[name], window), cmap="magma", vmin=0, vmax=err_max,
                                 interpolation="nearest")
        axes[row, 1].set_title("|error| (band mean)", fontsize=8)
        axes[row, 1].set_frame_on(True)
        fig.colorbar(im, ax=axes[row, 1], fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
        if name in predicted:
            show(axes[row, 2], legend.colorize(predicted[name]), "predicted land cover")
        else:
            axes[row, 2].text(0.5, 0.5, "no segmentation\nhead", ha="center", va="center",
                              fontsize=7, transform=axes[row, 2].transAxes)
        if show_prompts:
            maps = prompt_maps(out, shape)
            for level, pmap in enumerate(maps):
                show(axes[row, 3 + level], pmap, f"prompt/gate L{level + 1}", rgb=False,
                     cmap="viridis", vmin=0, vmax=1)
            if not maps and n_prompt_cols:
                axes[row, 3].text(0.5, 0.5, "no prompt", ha="center", va="center", fontsize=7,
                                  transform=axes[row, 3].transAxes)
        tile = metrics[name] if metrics and name in metrics else tile_metrics(sample, out)
        axes[row, n_cols - 1].text(0.02, 0.5, format_metrics(tile), ha="left", va="center",
                                   fontsize=7, family="monospace",
                                   transform=axes[row, n_cols - 1].transAxes)
    if window is not None:
        axes[0, 2].set_title("target (clear, zoomed)", fontsize=8)
    return fig


def plot_overview_with_window(sample: Mapping[str, Any], window: Window | None,
                              composite: str = DEFAULT_COMPOSITE, panel_size: float = 3.0) -> Figure:
    """The whole target tile with the zoom window outlined (orientation for a zoomed view)."""
    target = to_numpy(sample["target"])
    fig = Figure(figsize=(panel_size, panel_size), layout="constrained")
    ax = fig.subplots()
    ax.imshow(band_composite(target, composite, reference=target), interpolation="nearest")
    if window is not None:
        w = Window(*window).clip(target.shape[-2:])
        ax.add_patch(Rectangle((w.col - 0.5, w.row - 0.5), w.width, w.height, fill=False,
                               edgecolor="red", linewidth=1.5))
    ax.set_title("target, zoom window in red", fontsize=8)
    _off(ax)
    return fig


def plot_prompt_maps(output: Mapping[str, Any], sample: Mapping[str, Any],
                     window: Window | None = None, title: str = "") -> Figure:
    """Prompt/gate map of every PGF level beside the cloud mask, for one model."""
    shape = _hw(sample["target"])
    maps = prompt_maps(output, shape)
    if not maps:
        raise ValueError("this model's outputs have no 'prompts' (only PGF variants produce them)")
    fig = Figure(figsize=(2.4 * (len(maps) + 1), 2.6), layout="constrained")
    axes = fig.subplots(1, len(maps) + 1, squeeze=False)[0]
    axes[0].imshow(crop(to_numpy(sample["cloud_mask"]), window), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("cloud mask", fontsize=8)
    for level, (ax, pmap) in enumerate(zip(axes[1:], maps, strict=True)):
        ax.imshow(crop(pmap, window), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"level {level + 1}", fontsize=8)
    for ax in axes:
        _off(ax)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def _mean_std(value: Any) -> tuple[float, float]:
    if isinstance(value, Mapping):
        mean, std = value.get("mean"), value.get("std")
        return _nan_if_none(mean), (0.0 if std is None else float(std))
    if isinstance(value, list | tuple):
        return _nan_if_none(value[0]), float(value[1]) if len(value) > 1 else 0.0
    return _nan_if_none(value), 0.0


def plot_bucket_metrics(per_bucket: Mapping[str, Mapping[str, Mapping[str, Any]]],
                        metrics: Sequence[tuple[str, str]] = (("psnr", "PSNR (dB)"),
                                                              ("miou", "mIoU")),
                        title: str = "") -> Figure:
    """Metric vs cloud cover, one line per model, one panel per metric.

    Parameters
    ----------
    per_bucket : dict
        ``{model: {bucket: {metric: value}}}`` where a value is a float, ``(mean, std)`` or
        ``{"mean": m, "std": s}`` (std drawn as error bars). Buckets are placed at their
        cloud-cover centre (:data:`BUCKET_CENTRES`); missing or NaN values leave a gap.
    metrics : sequence of (key, axis label)
        Which metrics to plot. A model that lacks a metric (e.g. no segmentation) is skipped in
        that panel.
    """
    if not per_bucket:
        raise ValueError("per_bucket is empty: nothing to plot")
    fig = Figure(figsize=(4.2 * len(metrics), 3.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    buckets = [b for b in BUCKET_CENTRES if any(b in v for v in per_bucket.values())]
    extra = sorted({b for v in per_bucket.values() for b in v} - set(BUCKET_CENTRES))
    if extra:
        raise ValueError(f"unknown cloud-cover bucket(s) {extra}; expected {list(BUCKET_CENTRES)}")
    for ax, (key, label) in zip(axes, metrics, strict=True):
        drawn = 0
        for model, by_bucket in per_bucket.items():
            xs, ys, es = [], [], []
            for b in buckets:
                if b in by_bucket and key in by_bucket[b]:
                    mean, std = _mean_std(by_bucket[b][key])
                    xs.append(BUCKET_CENTRES[b])
                    ys.append(mean)
                    es.append(std)
            if not xs or not np.isfinite(ys).any():
                continue
            k = list(per_bucket).index(model)  # same colour/marker for a model in every panel
            ax.errorbar(xs, ys, yerr=es if any(es) else None, color=f"C{k % 10}",
                        marker="osD^v<>ph*"[k % 10], ms=4, capsize=3, label=model,
                        linestyle="-" if k < 10 else "--")
            drawn += 1
        ax.set_xlabel("cloud cover (%)")
        ax.set_ylabel(label)
        ax.set_xticks([BUCKET_CENTRES[b] for b in buckets], buckets, fontsize=7)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, "no model reports this metric", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG atomically (temp file + rename) and return the path."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


# ----------------------------------------------------------------------------- model helpers
def index_tiles(dataset: Any) -> OrderedDict[str, list[tuple[int, str]]]:
    """Bucket → ``[(dataset index, tile id), ...]`` in dataset order.

    Uses the dataset's manifest ``records`` (``LuojiaSETOSFCR``: no file access); otherwise
    reads each sample once (fine for the small splits the viewer is meant for).
    """
    records = getattr(dataset, "records", None)
    if records is not None and all(hasattr(r, "bucket") and hasattr(r, "id") for r in records):
        rows = [(i, str(r.bucket), str(r.id)) for i, r in enumerate(records)]
    else:
        rows = []
        for i in range(len(dataset)):
            sample = dataset[i]
            rows.append((i, str(sample["bucket"]), str(sample["id"])))
    index: OrderedDict[str, list[tuple[int, str]]] = OrderedDict()
    for i, bucket, tile_id in rows:
        index.setdefault(bucket, []).append((i, tile_id))
    if not index:
        raise ValueError("the dataset is empty: nothing to view")
    order = {b: k for k, b in enumerate(BUCKET_CENTRES)}
    return OrderedDict(sorted(index.items(), key=lambda kv: order.get(kv[0], len(order))))


def default_tile_ids(dataset: Any, per_bucket: int = 1) -> list[str]:
    """The first ``per_bucket`` tile ids of every cloud-cover bucket (bucket order)."""
    return [tile_id for rows in index_tiles(dataset).values() for _, tile_id in rows[:per_bucket]]


def index_of_tile(dataset: Any, tile_id: str) -> int:
    """Dataset index of the tile with this ``id``; ``KeyError`` naming it when absent."""
    for rows in index_tiles(dataset).values():
        for index, candidate in rows:
            if candidate == tile_id:
                return index
    raise KeyError(f"tile id {tile_id!r} is not in this split")


_SPATIAL_KEYS = ("optical", "sar", "target", "mask", "cloud_mask")


def centre_crop_sample(sample: Mapping[str, Any], size: int | None) -> dict[str, Any]:
    """A copy of ``sample`` with every spatial array centre-cropped to ``size``×``size``.

    ``None`` or a size not smaller than the tile returns an unchanged (shallow) copy. Used to keep
    heavy models (DSen2-CR at 256² costs ~2.5 TFLOP) interactive on a CPU.
    """
    out = dict(sample)
    if size is None:
        return out
    height, width = _hw(sample["target"])
    if size >= height and size >= width:
        return out
    window = Window.centred(height / 2, width / 2, int(size), (height, width))
    for key in _SPATIAL_KEYS:
        if key in out:
            value = out[key]
            out[key] = value[..., window.row:window.row + window.height,
                             window.col:window.col + window.width]
    return out


def predict_outputs(models: Mapping[str, Any], sample: Mapping[str, Any],
                    device: str = "cpu") -> dict[str, dict[str, Any]]:
    """Run each model on one sample; outputs as CPU float tensors without the batch dimension.

    Models are put in ``eval()`` mode and run under ``torch.inference_mode``.
    """
    import torch

    from .runtime import resolve_device

    dev = resolve_device(device)
    optical = torch.as_tensor(to_numpy(sample["optical"])).float().unsqueeze(0).to(dev)
    sar = torch.as_tensor(to_numpy(sample["sar"])).float().unsqueeze(0).to(dev)
    results: dict[str, dict[str, Any]] = {}
    with torch.inference_mode():
        for name, model in models.items():
            model.eval().to(dev)
            raw = model(optical, sar)
            out: dict[str, Any] = {"reconstruction": raw["reconstruction"][0].float().cpu()}
            if raw.get("segmentation") is not None:
                out["segmentation"] = raw["segmentation"][0].float().cpu()
            if raw.get("prompts"):
                out["prompts"] = [p[0].float().cpu() for p in raw["prompts"]]
            results[name] = out
    return results


def save_tile_comparisons(dataset: Any, models: Mapping[str, Any], tile_ids: Sequence[str],
                          out_dir: str | Path, composite: str = DEFAULT_COMPOSITE,
                          zoom: int = 1, device: str = "cpu", sample_crop: int | None = None,
                          prefix: str = "05_compare") -> dict[str, dict[str, Any]]:
    """Write the comparison figure of each listed tile as PNG (for readers without a kernel).

    Parameters
    ----------
    dataset : Dataset
        Split to draw from; ``tile_ids`` are looked up by the samples' ``id``.
    tile_ids : sequence of str
        Tiles to draw; an id not in the split raises ``KeyError`` naming it.
    zoom : int
        1 draws the whole tile; k > 1 also writes a centre zoom (``..._zoom{k}.png``).

    Returns
    -------
    dict
        Tile id → ``{"png": [paths], "metrics": {model: tile metrics}}``.
    """
    lookup = {tile_id: i for rows in index_tiles(dataset).values() for i, tile_id in rows}
    unknown = [t for t in tile_ids if t not in lookup]
    if unknown:
        raise KeyError(f"tile id(s) {unknown} are not in this split (it has e.g. "
                       f"{sorted(lookup)[:5]})")
    out_dir = Path(out_dir)
    written: dict[str, dict[str, Any]] = {}
    for tile_id in tile_ids:
        sample = centre_crop_sample(dataset[lookup[tile_id]], sample_crop)
        outputs = predict_outputs(models, sample, device=device)
        metrics = {name: tile_metrics(sample, out) for name, out in outputs.items()}
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in tile_id)
        paths = [save_figure(plot_comparison(sample, outputs, composite=composite,
                                             metrics=metrics),
                             out_dir / f"{prefix}_{safe}.png")]
        if zoom > 1:
            height, width = _hw(sample["target"])
            window = Window.centred(height / 2, width / 2, max(8, min(height, width) // zoom),
                                    (height, width))
            paths.append(save_figure(plot_comparison(sample, outputs, composite=composite,
                                                     window=window, metrics=metrics),
                                     out_dir / f"{prefix}_{safe}_zoom{zoom}.png"))
        written[tile_id] = {"png": [str(p) for p in paths], "metrics": metrics}
    return written
