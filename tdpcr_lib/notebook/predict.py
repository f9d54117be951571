"""Helpers of the scene-prediction notebook: smoke checkpoints and reference comparison."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil  # noqa: F401 - kept as written; only ruff's preview F401 flags it
from rasterio.windows import Window

from tdpcr_lib.core.legend import class_scheme, legend_of_tags, load_legend
from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.core.runtime import seed_everything
from tdpcr_lib.inference.inputs import PredictionInputError
from tdpcr_lib.inference.products import CLOUD_FREE_NODATA
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models.checkpoint import CheckpointError, resolve_checkpoint_dir, save_checkpoint


# --------------------------------------------------------------------------------------------
# Helpers for notebook 06: checkpoint choice and reference scores
# --------------------------------------------------------------------------------------------
def prepare_checkpoint(
    checkpoint: str | Path, *, smoke: bool, scratch_dir: str | Path, seed: int = 0
) -> tuple[Path, str]:
    """The checkpoint folder to use, and a sentence saying what it is.

    If ``checkpoint`` exists it is used. If it is missing and ``smoke`` is true, a freshly
    initialised *tiny* TDP-CR (with segmentation head) is saved under ``scratch_dir`` so the
    pipeline can run standalone — its outputs are meaningless and the sentence says so. If it is
    missing and ``smoke`` is false, :class:`FileNotFoundError` explains how to get one.
    """
    path = Path(checkpoint)
    try:
        resolve_checkpoint_dir(path)
        return path, f"trained checkpoint {path}"
    except CheckpointError as err:
        if path.exists():
            raise
        if not smoke:
            raise FileNotFoundError(
                f"checkpoint {path} does not exist. Run the training notebooks first "
                "(01_train_phase1 and 02_train_phase2 write runs/phase2/best), or set CHECKPOINT "
                "to a trained checkpoint folder, or set SMOKE=True to try the pipeline with an "
                "untrained tiny model."
            ) from err

    seed_everything(seed)
    model = build_model(ModelConfig.preset("tiny", with_seg_decoder=True, name="tiny (smoke runs and tests)"))
    if hasattr(model, "attach_segmentation_decoder"):
        model.attach_segmentation_decoder()
    target = Path(scratch_dir) / "untrained_tiny_checkpoint"
    save_checkpoint(
        target,
        model,
        phase="untrained",
        epoch=0,
        step=0,
        extra={
            "note": "freshly initialised tiny model written by "
            "tdpcr_lib.notebook.predict.prepare_checkpoint (SMOKE mode)"
        },
    )
    return target, (
        f"checkpoint {path} not found; SMOKE mode uses a freshly initialised tiny "
        f"TDP-CR saved at {target} (its predictions are meaningless)"
    )


def compare_to_reference(
    outputs: dict[str, Path],
    reference_s2: str | Path,
    cloudy_s2: str | Path | None = None,
    reference_land_cover: str | Path | None = None,
    rows_per_read: int = 512,
) -> dict[str, float]:
    """Score written products against a reference scene on the same grid, strip by strip.

    Returns MAE and PSNR (reflectance units, data range 1, over valid pixels and all 13 bands) of
    the prediction — and of the cloudy input when given, as the "do nothing" baseline — and the
    overall land-cover accuracy when a reference label map with the same legend is given (no
    accuracy across legends, e.g. a SEN12MS-CR model on a LuojiaSET-coded map; codes outside the
    legend are ignored).
    """
    norm = load_normalisation()
    legend = load_legend()
    sums = {"pred_abs": 0.0, "pred_sq": 0.0, "in_abs": 0.0, "in_sq": 0.0}
    n_values = 0
    correct = labelled = 0
    with contextlib.ExitStack() as stack:
        pred = stack.enter_context(rasterio.open(outputs["cloud_free"]))
        ref = stack.enter_context(rasterio.open(reference_s2))
        if (ref.width, ref.height) != (pred.width, pred.height):
            raise PredictionInputError(
                f"reference {reference_s2} is {ref.width}x{ref.height}, prediction is {pred.width}x{pred.height}"
            )
        cloudy = stack.enter_context(rasterio.open(cloudy_s2)) if cloudy_s2 else None
        lc = (
            stack.enter_context(rasterio.open(outputs["land_cover"]))
            if reference_land_cover and "land_cover" in outputs
            else None
        )
        lc_ref = stack.enter_context(rasterio.open(reference_land_cover)) if lc else None
        if lc is not None and lc_ref is not None:
            legend = legend_of_tags(lc.tags())  # the classes the product was written with
            if class_scheme(legend_of_tags(lc_ref.tags()).name) != class_scheme(legend.name):
                lc = lc_ref = None  # different class schemes (e.g. SEN12MS vs LuojiaSET codes)
        for y0 in range(0, pred.height, rows_per_read):
            window = Window(0, y0, pred.width, min(rows_per_read, pred.height - y0))
            p = pred.read(window=window)
            ok = (p != CLOUD_FREE_NODATA).any(axis=0)
            target = norm.s2_to_unit(ref.read(window=window))[:, ok]
            diff = norm.s2_to_unit(p)[:, ok] - target
            sums["pred_abs"] += float(np.abs(diff).sum())
            sums["pred_sq"] += float((diff.astype(np.float64) ** 2).sum())
            n_values += diff.size
            if cloudy is not None:
                d_in = norm.s2_to_unit(cloudy.read(window=window))[:, ok] - target
                sums["in_abs"] += float(np.abs(d_in).sum())
                sums["in_sq"] += float((d_in.astype(np.float64) ** 2).sum())
            if lc is not None and lc_ref is not None:
                labels = lc.read(1, window=window)
                truth = legend.sanitise(lc_ref.read(1, window=window))
                keep = ok & (truth != legend.ignore_index)
                correct += int((labels[keep] == truth[keep]).sum())
                labelled += int(keep.sum())

    def psnr(sq: float) -> float:
        mse = sq / max(1, n_values)
        return float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf")

    scores = {"mae_prediction": sums["pred_abs"] / max(1, n_values), "psnr_prediction": psnr(sums["pred_sq"])}
    if cloudy is not None:
        scores.update(mae_cloudy_input=sums["in_abs"] / max(1, n_values), psnr_cloudy_input=psnr(sums["in_sq"]))
    if labelled:
        scores["land_cover_accuracy"] = correct / labelled
    return scores
