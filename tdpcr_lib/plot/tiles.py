"""Choosing tiles and running models on them for comparison figures."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tdpcr_lib.core.arrays import Window, spatial_shape, to_numpy
from tdpcr_lib.core.runtime import resolve_device
from tdpcr_lib.models.checkpoint import read_meta
from tdpcr_lib.plot.compare import plot_comparison, tile_metrics
from tdpcr_lib.plot.composites import DEFAULT_COMPOSITE, save_figure
from tdpcr_lib.plot.curves import BUCKET_CENTRES
from tdpcr_lib.transforms import centre_crop_sample


# ----------------------------------------------------------------------------- model helpers
def checkpoint_budget(checkpoint_dir: str | Path) -> str:
    """A one-line training budget of a checkpoint: phase, optimizer steps, parameters.

    E.g. ``"phase2 · 1200 steps · 0.29 M params"``, from its ``config.json``; used as row titles
    so that runs of different budgets are not compared unawares.
    """
    meta = read_meta(checkpoint_dir)
    params = meta.get("num_parameters")
    size = f" · {params / 1e6:.2f} M params" if params else ""
    return f"{meta.get('phase', '?')} · {int(meta.get('step', 0))} steps{size}"


def row_titles(checkpoints: Mapping[str, str | Path]) -> dict[str, str]:
    """Display name → ``"name\\nbudget"`` for every checkpoint (see :func:`checkpoint_budget`)."""
    return {name: f"{name}\n{checkpoint_budget(path)}" for name, path in checkpoints.items()}


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


def predict_outputs(
    models: Mapping[str, Any], sample: Mapping[str, Any], device: str = "cpu"
) -> dict[str, dict[str, Any]]:
    """Run each model on one sample; outputs as CPU float tensors without the batch dimension.

    Models are put in ``eval()`` mode and run under ``torch.inference_mode``.
    """
    import torch

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


def save_tile_comparisons(
    dataset: Any,
    models: Mapping[str, Any],
    tile_ids: Sequence[str],
    out_dir: str | Path,
    composite: str = DEFAULT_COMPOSITE,
    zoom: int = 1,
    device: str = "cpu",
    sample_crop: int | None = None,
    prefix: str = "05_compare",
    row_titles: Mapping[str, str] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write the comparison figure of each listed tile as PNG (for readers without a kernel).

    Parameters
    ----------
    dataset : Dataset
        Split to draw from; ``tile_ids`` are looked up by the samples' ``id``.
    tile_ids : sequence of str
        Tiles to draw; an id not in the split raises ``KeyError`` naming it.
    zoom : int
        1 draws the whole tile; k > 1 also writes a centre zoom (``..._zoom{k}.png``).
    row_titles, class_names : optional
        Passed to :func:`tdpcr_lib.plot.compare.plot_comparison` (row labels with budgets,
        land-cover names).

    Returns
    -------
    dict
        Tile id → ``{"png": [paths], "metrics": {model: tile metrics}}``.
    """
    lookup = {tile_id: i for rows in index_tiles(dataset).values() for i, tile_id in rows}
    unknown = [t for t in tile_ids if t not in lookup]
    if unknown:
        raise KeyError(f"tile id(s) {unknown} are not in this split (it has e.g. {sorted(lookup)[:5]})")
    out_dir = Path(out_dir)
    written: dict[str, dict[str, Any]] = {}
    for tile_id in tile_ids:
        sample = centre_crop_sample(dataset[lookup[tile_id]], sample_crop)
        outputs = predict_outputs(models, sample, device=device)
        metrics = {name: tile_metrics(sample, out) for name, out in outputs.items()}
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in tile_id)
        style = {"composite": composite, "metrics": metrics, "row_titles": row_titles, "class_names": class_names}
        paths = [save_figure(plot_comparison(sample, outputs, **style), out_dir / f"{prefix}_{safe}.png")]
        if zoom > 1:
            height, width = spatial_shape(sample["target"])
            window = Window.centred(height / 2, width / 2, max(8, min(height, width) // zoom), (height, width))
            paths.append(
                save_figure(
                    plot_comparison(sample, outputs, window=window, **style),
                    out_dir / f"{prefix}_{safe}_zoom{zoom}.png",
                )
            )
        written[tile_id] = {"png": [str(p) for p in paths], "metrics": metrics}
    return written
