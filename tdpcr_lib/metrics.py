"""Cloud-removal and segmentation metrics, and a mergeable accumulator for whole evaluations.

Conventions (paper notes §5.3, the first author's evaluation code; documented in ``docs/design.md``):

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
  metrics for the cloudy **input** itself (``cr_input``), the baseline any reconstruction must beat.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

#: PSNR of identical images: MSE is floored at this value, i.e. a 100 dB cap for data range 1.
MSE_FLOOR = 1e-10
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
CR_METRICS: tuple[str, ...] = ("psnr", "ssim", "sam", "mae", "rmse")
REGIONS: tuple[str, ...] = ("all", "cloudy", "clear")
SEG_METRICS: tuple[str, ...] = ("oa", "macc", "fwiou", "miou", "per_class_iou")

Reduction = Literal["none", "mean"]


# ----------------------------------------------------------------------------------------------
# cloud-removal metrics (per image)
# ----------------------------------------------------------------------------------------------
def _prepare(pred: torch.Tensor, target: torch.Tensor, clamp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must both be (B, C, H, W); got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
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
        raise ValueError(f"mask must be (B, H, W) or (B, 1, H, W) matching {tuple(like.shape)}, "
                         f"got {tuple(mask.shape)}")
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


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
        clamp: bool = True, reduction: Reduction = "none") -> torch.Tensor:
    """Mean squared error per image (B,)."""
    pred, target = _prepare(pred, target, clamp)
    return _reduce(_masked_image_mean((pred - target) ** 2, _pixel_mask(mask, pred)), reduction)


def mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
        clamp: bool = True, reduction: Reduction = "none") -> torch.Tensor:
    """Mean absolute error per image (B,) over bands and (masked) pixels."""
    pred, target = _prepare(pred, target, clamp)
    return _reduce(_masked_image_mean((pred - target).abs(), _pixel_mask(mask, pred)), reduction)


def rmse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
         clamp: bool = True, reduction: Reduction = "none") -> torch.Tensor:
    """Root mean squared error per image (B,)."""
    return _reduce(mse(pred, target, mask, clamp).sqrt(), reduction)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         mask: torch.Tensor | None = None, clamp: bool = True,
         reduction: Reduction = "none") -> torch.Tensor:
    """Peak signal-to-noise ratio per image (B,), in dB.

    ``PSNR = 10·log10(data_range² / max(MSE, MSE_FLOOR·data_range²))`` — identical images give
    100 dB instead of +∞.
    """
    error = mse(pred, target, mask, clamp)
    floor = MSE_FLOOR * data_range**2
    return _reduce(10.0 * torch.log10(data_range**2 / error.clamp_min(floor)), reduction)


def sam_degrees(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                clamp: bool = True, reduction: Reduction = "none") -> torch.Tensor:
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


def _gaussian_window(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    coords = torch.arange(SSIM_WINDOW, device=device, dtype=dtype) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()


def ssim_map(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel, per-band SSIM (B, C, H, W); reflection padding keeps the input size.

    Computed in float32 with autocast disabled (SSIM's small constants underflow in bf16).
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must both be (B, C, H, W); got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    pad = SSIM_WINDOW // 2
    if min(pred.shape[-2:]) <= pad:
        raise ValueError(f"SSIM needs images larger than {pad} px, got {tuple(pred.shape[-2:])}")
    from .models.blocks import autocast_disabled

    with autocast_disabled(pred.device.type):
        pred, target = pred.float(), target.float()
        channels = pred.shape[1]
        window = _gaussian_window(channels, pred.device, pred.dtype)
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        stack = torch.cat([pred, target, pred * pred, target * target, pred * target])
        stack = F.pad(stack, (pad, pad, pad, pad), mode="reflect")
        mu_p, mu_t, e_pp, e_tt, e_pt = F.conv2d(stack, window, groups=channels).split(pred.shape[0])
        var_p = (e_pp - mu_p**2).clamp_min(0)
        var_t = (e_tt - mu_t**2).clamp_min(0)
        cov = e_pt - mu_p * mu_t
        return ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         reduction: Reduction = "mean", mask: torch.Tensor | None = None,
         clamp: bool = False) -> torch.Tensor:
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


def cr_metrics_by_region(pred: torch.Tensor, target: torch.Tensor,
                         masks: dict[str, torch.Tensor | None]) -> dict[str, dict[str, torch.Tensor]]:
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
def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255, mask: torch.Tensor | None = None) -> torch.Tensor:
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
        return {"oa": math.nan, "macc": math.nan, "fwiou": math.nan, "miou": math.nan,
                "per_class_iou": [math.nan] * len(cm)}
    frequency = truth / total
    present = truth > 0
    return {
        "oa": float(hits.sum() / total),
        "macc": float(np.nanmean(accuracy)),
        "fwiou": float((frequency[present] * iou[present]).sum()),
        "miou": float(np.nanmean(iou)),
        "per_class_iou": [float(v) for v in iou],
    }


# ----------------------------------------------------------------------------------------------
# accumulator
# ----------------------------------------------------------------------------------------------
def _bucket_sort_key(name: str) -> tuple[float, str]:
    match = re.match(r"\s*(\d+(?:\.\d+)?)", name)
    return (float(match.group(1)) if match else math.inf, name)


class EvaluationAccumulator:
    """Accumulates cloud-removal and segmentation metrics over batches, mergeable across processes.

    Parameters
    ----------
    num_classes
        Segmentation classes (7).
    ignore_index
        Label value skipped by the segmentation metrics (255).
    keep_per_image
        Also keep one record per image (id, bucket, cloud fraction and the five CR metrics of the
        reconstruction and of the input, all pixels) for :meth:`per_image`.

    Examples
    --------
    >>> acc = EvaluationAccumulator()
    >>> for batch in loader:  # doctest: +SKIP
    ...     acc.update(model(batch["optical"], batch["sar"]), batch)
    >>> results = acc.compute()  # doctest: +SKIP
    >>> results["cr"]["cloudy"]["psnr"], results["seg"]["all"]["miou"]  # doctest: +SKIP
    """

    def __init__(self, num_classes: int = 7, ignore_index: int = 255, keep_per_image: bool = True) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.keep_per_image = keep_per_image
        self.reset()

    def reset(self) -> None:
        # per group ("all" or a bucket name): CR sums/counts (source x region x metric) and seg CMs
        self._cr_sum: dict[str, torch.Tensor] = {}
        self._cr_count: dict[str, torch.Tensor] = {}
        self._confusion: dict[str, torch.Tensor] = {}
        self._n_images: dict[str, int] = {}
        self._records: list[dict[str, Any]] = []
        self._seen_segmentation = False

    # -- bookkeeping -------------------------------------------------------------------------
    def _ensure(self, group: str) -> None:
        if group not in self._cr_sum:
            shape = (2, len(REGIONS), len(CR_METRICS))
            self._cr_sum[group] = torch.zeros(shape, dtype=torch.float64)
            self._cr_count[group] = torch.zeros(shape, dtype=torch.float64)
            self._confusion[group] = torch.zeros(len(REGIONS), self.num_classes, self.num_classes,
                                                 dtype=torch.int64)
            self._n_images[group] = 0

    @property
    def has_segmentation(self) -> bool:
        """Whether any batch carried a segmentation output."""
        return self._seen_segmentation

    # -- updating ----------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Add one batch.

        Parameters
        ----------
        outputs
            Model outputs: ``reconstruction`` (B, 13, H, W) and optionally ``segmentation``
            (B, K, H, W) logits (or (B, H, W) class indices).
        batch
            The data batch: ``target`` (B, 13, H, W), ``optical`` (the cloudy input),
            ``cloud_mask`` (B, H, W) in {0, 1}; ``mask`` (B, H, W) labels when segmentation is
            scored; optionally ``bucket`` (str or list of str) and ``id``.
        """
        for key in ("target", "optical", "cloud_mask"):
            if key not in batch:
                raise KeyError(f"EvaluationAccumulator.update: batch has no {key!r} "
                               f"(keys: {sorted(batch)})")
        if "reconstruction" not in outputs:
            raise KeyError(f"EvaluationAccumulator.update: outputs have no 'reconstruction' "
                           f"(keys: {sorted(outputs)})")
        target = batch["target"].detach().float()
        recon = outputs["reconstruction"].detach().float().to(target.device)
        cloudy_input = batch["optical"].detach().float().to(target.device)
        cloud = batch["cloud_mask"].detach().to(target.device).float()
        if cloud.ndim == 4:
            cloud = cloud[:, 0]
        cloud = (cloud > 0.5).float()
        n = target.shape[0]
        buckets = batch.get("bucket")
        if buckets is None:
            buckets = [None] * n
        elif isinstance(buckets, str):
            buckets = [buckets] * n
        ids = batch.get("id")
        if ids is None:
            ids = [None] * n
        elif isinstance(ids, str):
            ids = [ids] * n
        else:
            ids = [i.item() if isinstance(i, torch.Tensor) else i for i in ids]
        if len(buckets) != n:
            raise ValueError(f"batch['bucket'] has {len(buckets)} entries for {n} images")

        region_masks = {"all": None, "cloudy": cloud, "clear": 1.0 - cloud}
        # values[source][region][metric] -> (B,)
        values = [cr_metrics_by_region(prediction, target, region_masks)
                  for prediction in (recon, cloudy_input)]
        stacked = torch.stack([torch.stack([torch.stack([values[s][r][k] for k in CR_METRICS])
                                            for r in REGIONS]) for s in range(2)])  # (2, 3, 5, B)
        stacked = stacked.double().cpu()
        defined = ~torch.isnan(stacked)
        sums = torch.where(defined, stacked, torch.zeros_like(stacked))

        confusions = None
        if "segmentation" in outputs and outputs["segmentation"] is not None:
            if "mask" not in batch:
                raise KeyError("EvaluationAccumulator.update: outputs have 'segmentation' but the "
                               "batch has no 'mask' (labels)")
            self._seen_segmentation = True
            seg = outputs["segmentation"].detach()
            labels = seg.argmax(dim=1) if seg.ndim == 4 else seg
            labels = labels.to(target.device)
            truth = batch["mask"].to(target.device)
            confusions = [
                [confusion_matrix(labels[i], truth[i], self.num_classes, self.ignore_index,
                                  None if m is None else m[i]).cpu() for m in region_masks.values()]
                for i in range(n)]

        for i in range(n):
            groups = ["all"] + ([str(buckets[i])] if buckets[i] is not None else [])
            for group in groups:
                self._ensure(group)
                self._cr_sum[group] += sums[..., i]
                self._cr_count[group] += defined[..., i].double()
                self._n_images[group] += 1
                if confusions is not None:
                    self._confusion[group] += torch.stack(confusions[i])
            if self.keep_per_image:
                record: dict[str, Any] = {"id": None if ids[i] is None else str(ids[i]),
                                          "bucket": None if buckets[i] is None else str(buckets[i]),
                                          "cloud_fraction": float(cloud[i].mean())}
                for k, metric in enumerate(CR_METRICS):
                    record[metric] = float(stacked[0, 0, k, i])
                    record[f"input_{metric}"] = float(stacked[1, 0, k, i])
                if confusions is not None:
                    record["pixel_accuracy"] = segmentation_scores(confusions[i][0])["oa"]
                self._records.append(record)

    # -- combining ---------------------------------------------------------------------------
    def merge(self, other: EvaluationAccumulator) -> EvaluationAccumulator:
        """Add another accumulator's data into this one (in place) and return ``self``."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError("cannot merge accumulators with different num_classes/ignore_index: "
                             f"{(self.num_classes, self.ignore_index)} vs "
                             f"{(other.num_classes, other.ignore_index)}")
        for group in other._cr_sum:
            self._ensure(group)
            self._cr_sum[group] += other._cr_sum[group]
            self._cr_count[group] += other._cr_count[group]
            self._confusion[group] += other._confusion[group]
            self._n_images[group] += other._n_images[group]
        self._records.extend(other._records)
        self._seen_segmentation = self._seen_segmentation or other._seen_segmentation
        return self

    def all_reduce(self, device: str | torch.device | None = None) -> EvaluationAccumulator:
        """Sum the state over all ``torch.distributed`` processes (in place; every rank ends equal).

        A no-op when ``torch.distributed`` is not initialised. Bucket names are gathered first so
        ranks that saw different buckets still agree. ``device`` is where the reduction runs
        (default: the current CUDA device for the NCCL backend, else CPU).
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        if device is None:
            device = (torch.device("cuda", torch.cuda.current_device())
                      if dist.get_backend() == "nccl" else torch.device("cpu"))
        world = dist.get_world_size()
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (sorted(self._cr_sum), self._records, self._seen_segmentation))
        groups = sorted({g for names, _, _ in gathered for g in names})
        for group in groups:
            self._ensure(group)
        flat = torch.cat([torch.cat([self._cr_sum[g].flatten(), self._cr_count[g].flatten(),
                                     self._confusion[g].double().flatten(),
                                     torch.tensor([float(self._n_images[g])], dtype=torch.float64)])
                          for g in groups]).to(device)
        dist.all_reduce(flat)
        flat = flat.cpu()
        offset = 0
        for group in groups:
            for store in (self._cr_sum, self._cr_count):
                size = store[group].numel()
                store[group] = flat[offset: offset + size].reshape(store[group].shape).clone()
                offset += size
            size = self._confusion[group].numel()
            self._confusion[group] = flat[offset: offset + size].round().long().reshape(
                self._confusion[group].shape)
            offset += size
            self._n_images[group] = int(round(float(flat[offset])))
            offset += 1
        self._records = [r for _, records, _ in gathered for r in records]
        self._seen_segmentation = any(seen for _, _, seen in gathered)
        return self

    # -- results -----------------------------------------------------------------------------
    def _cr_results(self, group: str, source: int) -> dict[str, dict[str, float]]:
        sums, counts = self._cr_sum[group][source], self._cr_count[group][source]
        means = torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, math.nan))
        return {region: {metric: float(means[r, k]) for k, metric in enumerate(CR_METRICS)}
                for r, region in enumerate(REGIONS)}

    def _seg_results(self, group: str) -> dict[str, dict[str, Any]]:
        return {region: segmentation_scores(self._confusion[group][r]) for r, region in enumerate(REGIONS)}

    def compute(self) -> dict[str, Any]:
        """Final metrics as a nested dict (JSON-ready; undefined values are NaN).

        Returns
        -------
        dict
            ``{"cr": {region: {psnr, ssim, sam, mae, rmse}}, "cr_input": {...},
            "seg": {region: {oa, macc, fwiou, miou, per_class_iou}}`` (only when segmentation
            was scored), ``"per_bucket": {bucket: {"cr", "cr_input", "seg"?, "n_images"}},
            "n_images": int}`` with ``region`` in ``all``, ``cloudy``, ``clear``.
        """
        if "all" not in self._cr_sum:
            raise RuntimeError("EvaluationAccumulator.compute: no batch was added")
        with_seg = self._seen_segmentation

        def block(group: str) -> dict[str, Any]:
            out: dict[str, Any] = {"cr": self._cr_results(group, 0),
                                   "cr_input": self._cr_results(group, 1)}
            if with_seg:
                out["seg"] = self._seg_results(group)
            out["n_images"] = self._n_images[group]
            return out

        results = block("all")
        buckets = sorted((g for g in self._cr_sum if g != "all"), key=_bucket_sort_key)
        results["per_bucket"] = {bucket: block(bucket) for bucket in buckets}
        return results

    def confusion(self, region: str = "all", bucket: str | None = None) -> torch.Tensor:
        """The accumulated (K, K) confusion matrix for a region (and bucket)."""
        return self._confusion[bucket or "all"][REGIONS.index(region)].clone()

    def per_image(self):
        """One row per image (a pandas DataFrame); requires ``keep_per_image=True``."""
        import pandas as pd

        return pd.DataFrame(self._records)

    # -- (de)serialisation -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state (lists and numbers), e.g. to save partial evaluations as JSON."""
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "seen_segmentation": self._seen_segmentation,
            "groups": {g: {"cr_sum": self._cr_sum[g].tolist(), "cr_count": self._cr_count[g].tolist(),
                           "confusion": self._confusion[g].tolist(), "n_images": self._n_images[g]}
                       for g in self._cr_sum},
            "records": list(self._records),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (replaces the current state)."""
        if (state["num_classes"], state["ignore_index"]) != (self.num_classes, self.ignore_index):
            raise ValueError("state was saved with num_classes/ignore_index "
                             f"{(state['num_classes'], state['ignore_index'])}, this accumulator "
                             f"has {(self.num_classes, self.ignore_index)}")
        self.reset()
        self._seen_segmentation = bool(state["seen_segmentation"])
        for group, g in state["groups"].items():
            self._cr_sum[group] = torch.tensor(g["cr_sum"], dtype=torch.float64)
            self._cr_count[group] = torch.tensor(g["cr_count"], dtype=torch.float64)
            self._confusion[group] = torch.tensor(g["confusion"], dtype=torch.int64)
            self._n_images[group] = int(g["n_images"])
        self._records = list(state["records"])

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], keep_per_image: bool = True) -> EvaluationAccumulator:
        acc = cls(state["num_classes"], state["ignore_index"], keep_per_image)
        acc.load_state_dict(state)
        return acc


def merge_all(accumulators: Sequence[EvaluationAccumulator]) -> EvaluationAccumulator:
    """A new accumulator holding the sum of ``accumulators``."""
    if not accumulators:
        raise ValueError("merge_all needs at least one accumulator")
    first = accumulators[0]
    out = EvaluationAccumulator(first.num_classes, first.ignore_index, first.keep_per_image)
    for acc in accumulators:
        out.merge(acc)
    return out
