"""Named evaluation protocols: one prediction scored the way each peer's code scores it.

Published cloud-removal tables use different conventions; a number is only comparable with a
table scored under the same one. :func:`score` computes PSNR, SSIM, SAM, MAE and RMSE under a
named protocol; :class:`ProtocolAccumulator` does the same over a whole split, batch by batch.
The conventions, each read from the peer's public code (file named beside it):

``tdpcr``
    This package's definitions (:mod:`tdpcr_lib.metrics.functional`): both images clamped to
    [0, 1]; per image, then the mean over images; PSNR = 10·log10(1/MSE) capped at 100 dB; SSIM
    with reflection padding; SAM in degrees over pixels with a defined angle.
``uncrtaints``
    PatrickTUM/UnCRtainTS ``model/src/learning/metrics.py`` (``img_metrics``, ``avg_img_metrics``)
    and ``util/pytorch_ssim/__init__.py``: no clipping; per image over all 13 bands; RMSE over
    all values, PSNR = 20·log10(1/RMSE), MAE; SAM = mean over pixels of arccos(clamp(cos, −1, 1))
    in degrees (a zero spectrum gives NaN, which drops the image's SAM); SSIM with an 11×11
    Gaussian window (σ 1.5, centred at index 5), **zero** padding, C1 = 0.01², C2 = 0.03²,
    averaged over bands and pixels; images combined by a running mean that skips NaN.
``glfcr``
    xufangchn/GLF-CR ``codes/dataloader.py`` (test: centre crop ``(256 − 128) // 2``, 128 × 128),
    ``codes/test_CR.py`` (batch size 1) and ``metrics.py``: PSNR = 20·log10(1/√MSE), 100 when
    MSE = 0; SSIM with zero padding and a Gaussian window centred at ``window_size / 2`` = 5.5
    (a half-pixel shift GLF-CR's copy of ``pytorch_ssim`` has). GLF-CR's code has no SAM, MAE or
    RMSE; those are computed on the crop as ``uncrtaints`` does. Tiles smaller than 128 px are
    scored whole.
``dsen2cr``
    ameraner/dsen2-cr ``Code/tools/image_metrics.py``: each metric over one Keras **batch** (one
    :func:`score` call); PSNR = 20·log10(10000/RMSE) on DN, i.e. 20·log10(1/RMSE) on reflectance,
    RMSE over the batch; SSIM = ``tf.image.ssim`` (max 10000 on DN ≡ 1 on reflectance, **valid**
    convolution, no padding); SAM in **radians** in the code (``sam_rad``) and in degrees in the
    paper (``sam``); MAE and RMSE on the network's scale, S2 DN / 2000 (5 × reflectance).
    Batches combine by a mean weighted by their size (``keras.Model.evaluate``).
``allclear``
    Zhou-Hangyu/allclear ``allclear/benchmark.py`` (class ``Metrics``): only pixels clear in the
    target (``valid``; all pixels when not given) count; per image: masked MAE, RMSE,
    PSNR = 20·log10(1/RMSE), SAM in degrees (``F.normalize``: a zero spectrum has angle 90°; we
    take the angle across bands where that version normalises along dim 2 of a (N, C, H, W)
    tensor), SSIM of the masked images with zero padding, averaged over masked pixels; images
    combined with ``nanmean``.

``valid`` (N, H, W) restricts every protocol to the given pixels (allclear: the clear pixels of
the target); the peers other than AllClear score every pixel, so a mask is our extension there.
Computation is in float64; no protocol clips predictions except ``tdpcr``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tdpcr_lib.metrics.functional import cr_metrics
from tdpcr_lib.metrics.protocol_specs import PROTOCOL_SPECS, PROTOCOLS, check_protocol

__all__ = ["PROTOCOLS", "PROTOCOL_SPECS", "ProtocolAccumulator", "score", "score_parts"]

#: Keys every protocol reports (``dsen2cr`` adds ``sam_rad``).
KEYS: tuple[str, ...] = ("psnr", "ssim", "sam", "mae", "rmse")
_C1, _C2 = 0.01**2, 0.03**2
_WINDOW, _SIGMA = 11, 1.5
#: GLF-CR's evaluation crop (codes/test_CR.py: --load_size 256 --crop_size 128).
GLFCR_CROP = 128
#: DSen2-CR divides S2 DN by 2000 (its MAE/RMSE are on that scale): 10000 / 2000.
DSEN2CR_SCALE = 5.0


def _gaussian(offset: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(_WINDOW, dtype=torch.float64, device=device) - offset
    g = torch.exp(-(coords**2) / (2 * _SIGMA**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor, pad: int) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with zero padding ``pad`` (0 = valid)."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(pad, 0), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, pad), groups=c)


def _ssim_map(x: torch.Tensor, y: torch.Tensor, offset: float = 5.0, pad: int = 5) -> torch.Tensor:
    """The pytorch_ssim / tf.image.ssim map (biased moments, C1, C2 for data range 1)."""
    g = _gaussian(offset, x.device)
    mu_x, mu_y = _blur(x, g, pad), _blur(y, g, pad)
    sxx = _blur(x * x, g, pad) - mu_x**2
    syy = _blur(y * y, g, pad) - mu_y**2
    sxy = _blur(x * y, g, pad) - mu_x * mu_y
    return ((2 * mu_x * mu_y + _C1) * (2 * sxy + _C2)) / ((mu_x**2 + mu_y**2 + _C1) * (sxx + syy + _C2))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-image mean of (N, C, H, W) over C, H, W (and the (N, H, W) mask): NaN when empty."""
    if mask is None:
        return values.flatten(1).mean(dim=1)
    weight = mask[:, None].to(values.dtype).expand_as(values)
    count = weight.flatten(1).sum(dim=1)
    total = (values * weight).flatten(1).sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan))


def _cosine_angle(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """UnCRtainTS/DSen2-CR spectral angle (radians, (N, 1, H, W)); 0/0 stays NaN."""
    cos = (p * t).sum(1, keepdim=True) / t.norm(dim=1, keepdim=True) / p.norm(dim=1, keepdim=True)
    return torch.acos(cos.clamp(-1.0, 1.0))


# ----------------------------------------------------------------------------------------------
# one scorer per protocol: (pred, target, valid) -> {key: (N,) per image} or {key: scalar}
# ----------------------------------------------------------------------------------------------
def _tdpcr(p: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None) -> dict[str, torch.Tensor]:
    values = cr_metrics(p.float(), t.float(), None if m is None else m.float())
    return {k: v.double() for k, v in values.items()}


def _uncrtaints(
    p: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None, glfcr: bool = False
) -> dict[str, torch.Tensor]:
    diff = t - p
    mse = _masked_mean(diff**2, m)
    rmse = mse.sqrt()
    if glfcr:  # GLF-CR metrics.py: `if mse == 0: return 100`
        psnr = torch.where(mse == 0, torch.full_like(mse, 100.0), 20 * torch.log10(1 / rmse))
    else:
        psnr = 20 * torch.log10(1 / rmse)
    angle = torch.rad2deg(_cosine_angle(p, t))
    # torch.mean of a map holding a NaN is NaN: the image's SAM is then skipped by the mean
    sam = _masked_mean(angle, m) if m is None else _nan_aware_masked(angle, m)
    offset = _WINDOW / 2 if glfcr else _WINDOW // 2
    ssim = _masked_mean(_ssim_map(p, t, offset=offset), m)
    return {"psnr": psnr, "ssim": ssim, "sam": sam, "mae": _masked_mean(diff.abs(), m), "rmse": rmse}


def _nan_aware_masked(values: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Masked mean where a NaN inside the mask makes the image NaN (as torch.mean does)."""
    inside = m[:, None].expand_as(values)
    poisoned = (torch.isnan(values) & inside).flatten(1).any(dim=1)
    mean = _masked_mean(torch.nan_to_num(values, nan=0.0), m)
    return torch.where(poisoned, torch.full_like(mean, math.nan), mean)


def centre_crop(x: torch.Tensor, size: int = GLFCR_CROP) -> torch.Tensor:
    """GLF-CR's test crop: offset ``max(0, H − size) // 2`` (codes/dataloader.py), on (..., H, W)."""
    h, w = x.shape[-2:]
    y0, x0 = max(0, h - size) // 2, max(0, w - size) // 2
    return x[..., y0 : y0 + size, x0 : x0 + size]


def _glfcr(p: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None) -> dict[str, torch.Tensor]:
    return _uncrtaints(centre_crop(p), centre_crop(t), None if m is None else centre_crop(m), glfcr=True)


def _dsen2cr(p: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None) -> dict[str, torch.Tensor]:
    diff = t - p
    if m is None:
        mse, mae = (diff**2).mean(), diff.abs().mean()
        sam_rad = _cosine_angle(p, t).mean()
    else:  # our extension: the batch's masked pixels
        weight = m[:, None].to(diff.dtype).expand_as(diff)
        mse = (diff**2 * weight).sum() / weight.sum()
        mae = (diff.abs() * weight).sum() / weight.sum()
        angle, inside = _cosine_angle(p, t)[:, 0], m
        sam_rad = math.nan if bool(torch.isnan(angle[inside]).any()) else angle[inside].mean()
        sam_rad = torch.as_tensor(sam_rad, dtype=p.dtype)
    # tf.image.ssim: 'VALID' 11x11 Gaussian, mean over H', W', C per image, then over the batch
    ssim_map = _ssim_map(p, t, offset=(_WINDOW - 1) / 2, pad=0)
    ssim = ssim_map.flatten(1).mean(dim=1).mean()
    rmse = mse.sqrt()
    return {
        "psnr": 20 * torch.log10(1 / rmse),
        "ssim": ssim,
        "sam": torch.rad2deg(sam_rad),
        "sam_rad": sam_rad,
        "mae": DSEN2CR_SCALE * mae,
        "rmse": DSEN2CR_SCALE * rmse,
    }


def _allclear(p: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None) -> dict[str, torch.Tensor]:
    mask = torch.ones_like(p[:, 0], dtype=torch.bool) if m is None else m
    weight = mask[:, None].to(p.dtype)
    pm, tm = p * weight, t * weight  # benchmark.py scores outputs * masks against targets * masks
    mse = _masked_mean((pm - tm) ** 2, mask)
    rmse = mse.sqrt()
    # F.normalize(eps=1e-12): a zero spectrum becomes the zero vector, cos 0, angle 90 degrees
    cos = (F.normalize(p, dim=1, eps=1e-12) * F.normalize(t, dim=1, eps=1e-12)).sum(1, keepdim=True)
    angle = torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))
    ssim = _masked_mean(_ssim_map(pm, tm), mask)
    return {
        "psnr": 20 * torch.log10(1 / rmse),
        "ssim": ssim,
        "sam": _masked_mean(angle, mask),
        "mae": _masked_mean((pm - tm).abs(), mask),
        "rmse": rmse,
    }


_SCORERS: dict[str, Callable[..., dict[str, torch.Tensor]]] = {
    "tdpcr": _tdpcr,
    "uncrtaints": _uncrtaints,
    "glfcr": _glfcr,
    "dsen2cr": _dsen2cr,
    "allclear": _allclear,
}


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")
    return x.detach()


def _prepare(prediction: Any, target: Any, valid: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    p = _as_tensor(prediction, "prediction")
    t = _as_tensor(target, "target").to(p.device)
    if p.ndim != 4 or p.shape != t.shape:
        raise ValueError(f"prediction and target must both be (N, 13, H, W); got {tuple(p.shape)} and {tuple(t.shape)}")
    if min(p.shape[-2:]) < _WINDOW:
        raise ValueError(f"SSIM needs images of at least {_WINDOW} px, got {tuple(p.shape[-2:])}")
    m = None
    if valid is not None:
        m = _as_tensor(valid, "valid").to(p.device)
        if m.shape != (p.shape[0], *p.shape[-2:]):
            raise ValueError(f"valid must be (N, H, W) = {(p.shape[0], *p.shape[-2:])}, got {tuple(m.shape)}")
        m = m.bool() if m.dtype == torch.bool or not m.is_floating_point() else m > 0.5
    return p.double(), t.double(), m


def score_parts(
    protocol: str, prediction: Any, target: Any, *, valid: Any = None
) -> tuple[dict[str, torch.Tensor], float]:
    """The protocol's values before combining: per image ((N,) tensors) or, for ``dsen2cr``,
    per batch (0-d tensors), and the weight of that batch (N)."""
    name = check_protocol(protocol)
    p, t, m = _prepare(prediction, target, valid)
    with torch.no_grad():
        return _SCORERS[name](p, t, m), float(p.shape[0])


class ProtocolAccumulator:
    """Combines :func:`score_parts` over batches as the protocol's code does.

    Per-image protocols: the mean over images of each metric, skipping images where it is NaN
    (UnCRtainTS's running mean, AllClear's ``nanmean``, our ``tdpcr``); ``dsen2cr``: the batch
    values' mean weighted by batch size (``keras.Model.evaluate``), skipping NaN batches.
    """

    def __init__(self, protocol: str) -> None:
        self.protocol = check_protocol(protocol)
        self._sum: dict[str, float] = {}
        self._count: dict[str, float] = {}
        self.n_images = 0

    def update(self, prediction: Any, target: Any, valid: Any = None) -> None:
        """Add a batch (N, 13, H, W) with optional (N, H, W) ``valid``."""
        values, weight = score_parts(self.protocol, prediction, target, valid=valid)
        self.n_images += int(weight)
        for key, v in values.items():
            v = v.detach().double().cpu().reshape(-1)
            w = torch.full_like(v, weight if v.numel() == 1 and self.protocol == "dsen2cr" else 1.0)
            keep = ~torch.isnan(v)
            self._sum[key] = self._sum.get(key, 0.0) + float((v[keep] * w[keep]).sum())
            self._count[key] = self._count.get(key, 0.0) + float(w[keep].sum())

    def compute(self) -> dict[str, float]:
        """``{metric: value}`` (NaN where no image had a defined value)."""
        if not self._sum:
            raise RuntimeError(f"protocol {self.protocol!r}: no batch was added")
        return {k: (self._sum[k] / self._count[k] if self._count[k] else math.nan) for k in self._sum}


def score(protocol: str, prediction: Any, target: Any, *, valid: Any = None) -> dict[str, float]:
    """Score a prediction under a named protocol.

    Parameters
    ----------
    protocol
        One of :data:`PROTOCOLS`: ``"tdpcr"``, ``"uncrtaints"``, ``"glfcr"``, ``"dsen2cr"``,
        ``"allclear"`` (see the module docstring and ``docs/metrics.md``).
    prediction, target
        (N, 13, H, W) reflectance on the [0, 1] scale, numpy arrays or torch tensors.
    valid
        Optional (N, H, W) boolean mask of the pixels to score (``allclear``: the pixels clear in
        the target).

    Returns
    -------
    dict
        ``psnr`` (dB), ``ssim``, ``sam`` (degrees), ``mae``, ``rmse``; ``dsen2cr`` adds
        ``sam_rad`` (radians) and treats the N images as one Keras batch.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.full((1, 13, 16, 16), 0.5)
    >>> round(score("uncrtaints", x + 0.01, x)["psnr"], 6)
    40.0
    """
    accumulator = ProtocolAccumulator(protocol)
    accumulator.update(prediction, target, valid)
    return accumulator.compute()


def describe(protocol: str) -> dict[str, Any]:
    """The protocol's description (:data:`PROTOCOL_SPECS`) as a JSON-ready dict."""
    return PROTOCOL_SPECS[check_protocol(protocol)].to_dict()
