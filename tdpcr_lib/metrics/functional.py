"""Cloud-removal and segmentation metric functions (per image and from confusion matrices).

Conventions (the first author's evaluation code where known; documented in ``docs/decisions.md``):

* **Cloud removal**, computed **per image, then averaged over images**, on all 13 bands, after
  clamping prediction and target to [0, 1] (data range 1):

  - PSNR = 10·log10(1 / max(MSE, 1e-10)): identical images give a finite **100 dB cap** instead of
    +∞ (an infinite value would make every average infinite);
  - SSIM: 11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, reflection padding (as
    torchmetrics ≥ 1.x), averaged over bands and pixels;
  - SAM: angle between the 13-band spectra of prediction and target per pixel, in **degrees**,
    averaged over pixels (computed in float64; pixels where either spectrum is all zero have no
    angle and are skipped);
  - MAE and RMSE over bands and pixels.

* **Masked metrics** (``mask``: 1 = pixel counts) average over the selected pixels of each image;
  an image with no selected pixel has no value (NaN) and is left out of the mean. For SSIM the
  full-image SSIM map is computed first, then averaged over the selected pixels.

* **Segmentation**: one confusion matrix accumulated over the whole dataset (labels equal to
  ``ignore_index`` = 255 skipped) → overall accuracy (OA), mean class accuracy (mAcc, over classes
  present in the truth), frequency-weighted IoU (FWIoU), per-class IoU and mIoU. A class that
  appears **neither in the prediction nor in the truth** has an undefined IoU (0/0): it is reported
  as NaN (``null`` in JSON) and **excluded from mIoU**; a class predicted but absent from the truth
  (or vice versa) has IoU 0 and counts.

* **Breakdowns**: ``all`` pixels, ``cloudy`` pixels (cloud mask = 1) and ``clear`` pixels (cloud
  mask = 0), for both tasks, overall and per cloud-cover bucket; plus the same cloud-removal
  metrics for the cloudy **input** itself (``input_<metric>``), the baseline any reconstruction
  must beat. Metric and region names are defined once, in :mod:`tdpcr_lib.metrics.results`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from tdpcr_lib.metrics.ssim_kernel import SSIM_WINDOW, ssim_map_fused
from tdpcr_lib.models.blocks import autocast_disabled

#: PSNR of identical images: MSE is floored at this value, i.e. a 100 dB cap for data range 1.
MSE_FLOOR = 1e-10


Reduction = Literal["none", "mean"]


# ----------------------------------------------------------------------------------------------
# cloud-removal metrics (per image)
# ----------------------------------------------------------------------------------------------
def _prepare(pred: torch.Tensor, target: torch.Tensor, clamp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"pred and target must both be (B, C, H, W); got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    pred, target = pred.float(), target.float()
    if clamp:
        pred, target = pred.clamp(0.0, 1.0), target.clamp(0.0, 1.0)
    return pred, target


def _pixel_mask(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """Mask as float (B, 1, H, W), or None."""
    if mask is None:
        return None
    if mask.ndim == 3:
        mask = mask[:, None]
    b, _, h, w = like.shape
    if mask.ndim != 4 or mask.shape[0] != b or mask.shape[1] != 1 or mask.shape[-2:] != (h, w):
        raise ValueError(
            f"mask must be (B, H, W) or (B, 1, H, W) matching {tuple(like.shape)}, got {tuple(mask.shape)}"
        )
    return (mask > 0.5).to(like.dtype) if mask.dtype.is_floating_point else (mask != 0).to(like.dtype)


def _masked_image_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of (B, C, H, W) values per image over channels and (masked) pixels; NaN if empty."""
    if mask is None:
        return values.flatten(1).mean(dim=1)
    weight = mask.expand_as(values)
    total = (values * weight).flatten(1).sum(dim=1)
    count = weight.flatten(1).sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan))


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.nanmean()
    raise ValueError(f"reduction must be 'none' or 'mean', got {reduction!r}")


def mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    clamp: bool = True,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Mean squared error per image (B,)."""
    pred, target = _prepare(pred, target, clamp)
    return _reduce(_masked_image_mean((pred - target) ** 2, _pixel_mask(mask, pred)), reduction)


def mae(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    clamp: bool = True,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Mean absolute error per image (B,) over bands and (masked) pixels."""
    pred, target = _prepare(pred, target, clamp)
    return _reduce(_masked_image_mean((pred - target).abs(), _pixel_mask(mask, pred)), reduction)


def rmse(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    clamp: bool = True,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Root mean squared error per image (B,)."""
    return _reduce(mse(pred, target, mask, clamp).sqrt(), reduction)


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    mask: torch.Tensor | None = None,
    clamp: bool = True,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Peak signal-to-noise ratio per image (B,), in dB.

    ``PSNR = 10·log10(data_range² / max(MSE, MSE_FLOOR·data_range²))`` — identical images give
    100 dB instead of +∞.
    """
    error = mse(pred, target, mask, clamp)
    floor = MSE_FLOOR * data_range**2
    return _reduce(10.0 * torch.log10(data_range**2 / error.clamp_min(floor)), reduction)


def sam_degrees(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    clamp: bool = True,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Spectral angle (degrees) per image (B,): mean over pixels of the angle between spectra.

    Computed in float64 so identical spectra give 0 (float32 rounding alone gives ~0.02°).
    Pixels where either spectrum is all zero have no defined angle and are skipped.
    """
    pred, target = _prepare(pred, target, clamp)
    p, t = pred.double(), target.double()
    dot = (p * t).sum(dim=1, keepdim=True)
    norms = p.norm(dim=1, keepdim=True) * t.norm(dim=1, keepdim=True)
    angle = torch.rad2deg(torch.acos((dot / norms.clamp_min(1e-300)).clamp(-1.0, 1.0)))
    valid = (norms > 0).double()
    pixel_mask = _pixel_mask(mask, p)
    if pixel_mask is not None:
        valid = valid * pixel_mask
    return _reduce(_masked_image_mean(angle, valid).float(), reduction)


def ssim_map(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel, per-band SSIM (B, C, H, W); reflection padding keeps the input size.

    Computed in float32 with autocast disabled (SSIM's small constants underflow in bf16).
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"pred and target must both be (B, C, H, W); got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    pad = SSIM_WINDOW // 2
    if min(pred.shape[-2:]) <= pad:
        raise ValueError(f"SSIM needs images larger than {pad} px, got {tuple(pred.shape[-2:])}")

    with autocast_disabled(pred.device.type):
        # two blur matrix products and a closed-form gradient (ssim_kernel): half the cost of
        # the padded 11x11 grouped convolution under autograd, the same map to float rounding
        return ssim_map_fused(pred.float(), target.float(), data_range)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    reduction: Reduction = "mean",
    mask: torch.Tensor | None = None,
    clamp: bool = False,
) -> torch.Tensor:
    """Structural similarity, differentiable (usable in a loss such as ``1 - ssim(pred, target)``).

    Parameters
    ----------
    pred, target
        (B, C, H, W) images.
    data_range
        Value range of the images (1 for reflectance in [0, 1]).
    reduction
        ``"mean"``: one number (mean of the per-image values); ``"none"``: per image (B,).
    mask
        Optional (B, H, W) or (B, 1, H, W); average the SSIM map over the selected pixels only.
    clamp
        Clamp both images to [0, 1] first. Off by default because this is also the loss
        function, and a clamp has no gradient outside the range; the evaluation turns it on.
    """
    pred, target = _prepare(pred, target, clamp) if clamp else (pred, target)
    values = _masked_image_mean(ssim_map(pred, target, data_range), _pixel_mask(mask, pred))
    return _reduce(values, reduction)


def cr_metrics(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """All five cloud-removal metrics per image (B,) after clamping to [0, 1] (NaN: no pixel)."""
    return cr_metrics_by_region(pred, target, {"region": mask})["region"]


def cr_metrics_by_region(
    pred: torch.Tensor, target: torch.Tensor, masks: dict[str, torch.Tensor | None]
) -> dict[str, dict[str, torch.Tensor]]:
    """:func:`cr_metrics` for several pixel masks at once (the per-pixel maps are computed once).

    ``masks`` maps a region name to a (B, H, W) mask or ``None`` (all pixels).
    """
    pred, target = _prepare(pred, target, clamp=True)
    squared = (pred - target) ** 2
    absolute = (pred - target).abs()
    structure = ssim_map(pred, target)
    p, t = pred.double(), target.double()
    norms = p.norm(dim=1, keepdim=True) * t.norm(dim=1, keepdim=True)
    cosine = ((p * t).sum(dim=1, keepdim=True) / norms.clamp_min(1e-300)).clamp(-1.0, 1.0)
    angle = torch.rad2deg(torch.acos(cosine))
    spectrum_defined = (norms > 0).double()
    results = {}
    for region, mask in masks.items():
        pixel_mask = _pixel_mask(mask, pred)
        error = _masked_image_mean(squared, pixel_mask)
        sam_mask = spectrum_defined if pixel_mask is None else spectrum_defined * pixel_mask.double()
        results[region] = {
            "psnr": 10.0 * torch.log10(1.0 / error.clamp_min(MSE_FLOOR)),
            "ssim": _masked_image_mean(structure, pixel_mask),
            "sam": _masked_image_mean(angle, sam_mask).float(),
            "mae": _masked_image_mean(absolute, pixel_mask),
            "rmse": error.sqrt(),
        }
    return results


# ----------------------------------------------------------------------------------------------
# segmentation metrics
# ----------------------------------------------------------------------------------------------
def confusion_matrix(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int = 255,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(K, K) int64 confusion matrix, rows = truth, columns = prediction.

    Pixels whose label is ``ignore_index`` (or outside ``mask``) are skipped; any other label
    outside 0..K-1 is an error (sanitise labels with ``Legend.sanitise`` first).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and labels {tuple(target.shape)} differ in shape")
    target = target.long()
    pred = pred.long()
    keep = target != ignore_index
    if mask is not None:
        keep &= mask.reshape(target.shape).bool() if mask.dtype == torch.bool else mask.reshape(target.shape) > 0.5
    t, p = target[keep], pred[keep]
    if t.numel() and (t.min() < 0 or t.max() >= num_classes):
        bad = sorted(set(t[(t < 0) | (t >= num_classes)].unique().tolist()))
        raise ValueError(f"labels {bad} are outside 0..{num_classes - 1} and not ignore_index={ignore_index}")
    if p.numel() and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted classes must be in 0..{num_classes - 1}")
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def segmentation_scores(confusion: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """OA, mean class accuracy, FWIoU, mIoU and per-class IoU from a confusion matrix.

    Returns NaN for every score when the matrix is empty. See the module docstring for how absent
    classes are handled.
    """
    cm = np.asarray(confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, dtype=np.float64)
    total = cm.sum()
    truth, predicted, hits = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    union = truth + predicted - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, hits / union, np.nan)
        accuracy = np.where(truth > 0, hits / truth, np.nan)
    if total == 0:
        return {
            "oa": math.nan,
            "macc": math.nan,
            "fwiou": math.nan,
            "miou": math.nan,
            "per_class_iou": [math.nan] * len(cm),
        }
    frequency = truth / total
    present = truth > 0
    return {
        "oa": float(hits.sum() / total),
        "macc": float(np.nanmean(accuracy)),
        "fwiou": float((frequency[present] * iou[present]).sum()),
        "miou": float(np.nanmean(iou)),
        "per_class_iou": [float(v) for v in iou],
    }
