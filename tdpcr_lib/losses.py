"""Training objectives for TDP-CR, its ablations and the baselines.

All losses take the model's output dict (``reconstruction``, optionally ``segmentation``) and the
batch dict from :class:`tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR` (``target``, ``mask``, ``cloud_mask``) and
return ``(total, parts)`` where ``parts`` holds detached floats for logging.

Choices (the paper is silent; see ``docs/decisions.md`` § Training):

* ``L_rec = 0.9·L1 + 0.1·(1 − SSIM)`` on all 13 bands, the first author's ECRformer recipe.
* ``L_seg`` = pixel-wise cross-entropy with ``ignore_index = 255``. A batch whose labels are all
  ignored contributes 0 (not NaN), so a crop without valid labels cannot poison training.
* Phase 2 and single-phase joint training: ``L_seg + λ·L_rec`` (λ = ``rec_weight``; the trainer's default is 10) so
  the reconstruction is not destroyed while the prompts adapt to the segmentation task.
* The multi-task competitor (CloudSeg-style, Xu et al. 2024): ``CE + w_cr·Charbonnier`` with the
  Charbonnier term ``((x − y)² + ε²)^0.45`` weighted 6 inside clouds and 1 outside, as in the
  CloudSeg code; its teacher/distillation hint loss needs a cloud-free teacher and is not used.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from tdpcr_lib.metrics.functional import ssim

#: Objective names accepted by :func:`compute_loss`.
Objective = Literal["rec", "seg_rec", "multitask"]


OBJECTIVES: tuple[str, ...] = ("rec", "seg_rec", "multitask")


def reconstruction_loss(
    prediction: Tensor, target: Tensor, l1_weight: float = 0.9, ssim_weight: float = 0.1
) -> tuple[Tensor, dict[str, float]]:
    """``l1_weight·L1 + ssim_weight·(1 − SSIM)``, both averaged over batch, bands and pixels.

    Parameters
    ----------
    prediction, target
        ``(B, C, H, W)`` reflectances in [0, 1]. The prediction is not clamped, so the gradient
        keeps pushing out-of-range values back.
    l1_weight, ssim_weight
        Weights of the two terms (0.9 / 0.1 by default).

    Returns
    -------
    total, parts
        The scalar loss and ``{"l1": ..., "ssim": ..., "rec": ...}`` as floats.
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"reconstruction_loss: prediction {tuple(prediction.shape)} and "
            f"target {tuple(target.shape)} differ in shape"
        )
    prediction = prediction.float()
    target = target.float()
    l1 = (prediction - target).abs().mean()
    similarity = ssim(prediction, target, data_range=1.0, reduction="mean")
    total = l1_weight * l1 + ssim_weight * (1.0 - similarity)
    return total, {"l1": float(l1.detach()), "ssim": float(similarity.detach()), "rec": float(total.detach())}


def segmentation_loss(logits: Tensor, labels: Tensor, ignore_index: int = 255) -> Tensor:
    """Pixel-wise cross-entropy, mean over the non-ignored pixels (0 if every pixel is ignored).

    Parameters
    ----------
    logits
        ``(B, K, H, W)`` class scores.
    labels
        ``(B, H, W)`` integer codes ``0..K-1`` or ``ignore_index``.
    """
    if (
        logits.ndim != 4
        or labels.ndim != 3
        or logits.shape[0] != labels.shape[0]
        or logits.shape[2:] != labels.shape[1:]
    ):
        raise ValueError(
            f"segmentation_loss: logits {tuple(logits.shape)} do not match "
            f"labels {tuple(labels.shape)} (expected (B,K,H,W) and (B,H,W))"
        )
    labels = labels.long()
    valid = labels != ignore_index
    if not bool(valid.any()):
        return logits.float().sum() * 0.0  # keeps the graph (DDP needs every grad) but adds 0
    bad = labels[valid]
    if int(bad.min()) < 0 or int(bad.max()) >= logits.shape[1]:
        raise ValueError(
            f"segmentation_loss: label codes must be in 0..{logits.shape[1] - 1} or "
            f"{ignore_index}, got range {int(bad.min())}..{int(bad.max())}"
        )
    return F.cross_entropy(logits.float(), labels, ignore_index=ignore_index)


def charbonnier_cloud_weighted(
    prediction: Tensor,
    target: Tensor,
    cloud_mask: Tensor,
    cloud_weight: float = 6.0,
    clear_weight: float = 1.0,
    eps: float = 1e-3,
    power: float = 0.45,
) -> Tensor:
    """CloudSeg's reconstruction loss: mean of ``w·((x − y)² + ε²)^power``.

    ``w`` is ``cloud_weight`` where ``cloud_mask`` is 1 and ``clear_weight`` elsewhere; the mean
    is over every band and pixel (not normalised by the weights, as in the CloudSeg code).
    """
    if cloud_mask.ndim == 3:
        cloud_mask = cloud_mask.unsqueeze(1)
    weight = clear_weight + (cloud_weight - clear_weight) * cloud_mask.float()
    per_pixel = ((prediction.float() - target.float()) ** 2 + eps**2) ** power
    return (weight * per_pixel).mean()


def compute_loss(
    outputs: dict[str, Tensor],
    batch: dict[str, Tensor],
    objective: str,
    rec_weight: float = 1.0,
    ignore_index: int = 255,
    multitask_cr_weight: float = 1.0,
) -> tuple[Tensor, dict[str, float]]:
    """Dispatch to the loss of one training objective.

    Parameters
    ----------
    outputs
        The model's forward dict.
    batch
        The data batch (needs ``target``; ``mask`` for segmentation objectives; ``cloud_mask``
        for ``"multitask"``).
    objective
        ``"rec"`` (phase 1 and CR-only baselines: ``L_rec``), ``"seg_rec"`` (phase 2 and joint
        training: ``CE + rec_weight·L_rec``) or ``"multitask"`` (the multi-task competitor:
        ``CE + multitask_cr_weight·Charbonnier``).

    Returns
    -------
    total, parts
        ``parts`` always has ``"loss"``; plus the terms of the chosen objective.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    if "reconstruction" not in outputs:
        raise KeyError("the model output has no 'reconstruction'")
    target = batch["target"]
    if objective == "rec":
        total, parts = reconstruction_loss(outputs["reconstruction"], target)
        return total, {"loss": float(total.detach()), **parts}
    if "segmentation" not in outputs:
        raise KeyError(
            f"objective {objective!r} needs a segmentation output; attach the "
            "segmentation decoder (ModelConfig.with_seg_decoder=True)"
        )
    ce = segmentation_loss(outputs["segmentation"], batch["mask"], ignore_index)
    if objective == "seg_rec":
        rec, parts = reconstruction_loss(outputs["reconstruction"], target)
        total = ce + rec_weight * rec
    else:
        rec = charbonnier_cloud_weighted(outputs["reconstruction"], target, batch["cloud_mask"])
        parts = {"charbonnier": float(rec.detach())}
        total = ce + multitask_cr_weight * rec
    return total, {"loss": float(total.detach()), "ce": float(ce.detach()), **parts}
