"""SSIM's Gaussian moments as two small matrix products, with a hand-written backward.

SSIM needs five local Gaussian means (of x, y, x², y², xy) with an 11×11 window, σ = 1.5 and
reflection padding. The straightforward formulation (:func:`ssim_map_conv2d`, kept as the
reference) pads the five maps, runs a grouped 11×11 convolution and lets autograd differentiate
some forty element-wise operations. In the training loss on 13 bands that cost about a quarter of
a whole TDP-CR training step on the CPU (``reports/benchmarks.md``, "Training step").

:func:`ssim_map_fused` computes the same map differently:

* The reflect-padded Gaussian blur of an ``n``-pixel axis is a fixed linear map, an ``n × n``
  matrix (:func:`blur_matrix`). Blurring a batch of images is then ``Mh @ X @ Mw``: two batched
  matrix products (BLAS speed, no padding copy), the exact same weighted sums as the padded
  convolution up to float rounding.
* The gradient with respect to the prediction has a closed form (the blur is linear, so its
  adjoint is ``Mhᵀ @ Z @ Mwᵀ``); :class:`_FusedSSIM` evaluates it with three blurs and a dozen
  element-wise operations instead of autograd's graph, and keeps only the five moment maps.

Both functions agree to float32 rounding (about 1e-5 absolute on the map; tests compare values and
gradients). The gradient flows to the prediction only; a target that requires a gradient falls
back to the reference formulation.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

#: Side of the Gaussian window and its standard deviation (Wang et al. 2004; torchmetrics).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def gaussian_kernel_1d(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The normalised 1-D Gaussian of the SSIM window (its outer product is the 2-D window)."""
    coords = torch.arange(SSIM_WINDOW, dtype=dtype) - (SSIM_WINDOW - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    return kernel / kernel.sum()


@functools.lru_cache(maxsize=32)
def _blur_matrix_cpu64(n: int) -> torch.Tensor:
    pad = SSIM_WINDOW // 2
    if n <= pad:
        raise ValueError(f"SSIM needs images larger than {pad} px, got {n}")
    source = torch.arange(-pad, n + pad).abs()  # padded position -> source pixel (reflect)
    source = torch.where(source > n - 1, 2 * (n - 1) - source, source)
    kernel = gaussian_kernel_1d()
    matrix = torch.zeros(n, n, dtype=torch.float64)
    for tap in range(SSIM_WINDOW):  # output pixel o reads padded position o + tap
        matrix.index_put_((source[tap : tap + n], torch.arange(n)), kernel[tap].expand(n), accumulate=True)
    return matrix


def blur_matrix(n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n, n)`` matrix ``M`` with ``x @ M`` = the reflect-padded Gaussian blur of ``x``'s last axis."""
    return _blur_matrix_cpu64(int(n)).to(device=device, dtype=dtype)


def _blur(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Blur the last two axes: ``rowsᵀ @ images @ cols`` (``rows``/``cols`` from blur_matrix)."""
    return rows.transpose(0, 1) @ images @ cols


_C1, _C2 = 0.01**2, 0.03**2


def _ssim_from_moments(moments: torch.Tensor, data_range: float) -> tuple[torch.Tensor, ...]:
    c1, c2 = _C1 * data_range**2, _C2 * data_range**2
    mu_x, mu_y, s_xx, s_yy, s_xy = moments.unbind(0)
    m_xy, m_xx, m_yy = mu_x * mu_y, mu_x * mu_x, mu_y * mu_y
    var_x, var_y = s_xx - m_xx, s_yy - m_yy
    a1 = 2 * m_xy + c1
    a2 = 2 * (s_xy - m_xy) + c2
    b1 = m_xx + m_yy + c1
    b2 = var_x.clamp_min(0) + var_y.clamp_min(0) + c2
    return a1 * a2 / (b1 * b2), a1, a2, b1, b2, var_x


class _FusedSSIM(torch.autograd.Function):
    """SSIM map of ``(x, y)`` with the closed-form gradient with respect to ``x``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
        rows = blur_matrix(x.shape[-2], x.device, x.dtype)
        cols = blur_matrix(x.shape[-1], x.device, x.dtype)
        moments = _blur(torch.stack([x, y, x * x, y * y, x * y]), rows, cols)
        ssim, *_ = _ssim_from_moments(moments, data_range)
        ctx.save_for_backward(x, y, moments)
        ctx.data_range = data_range
        return ssim

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        x, y, moments = ctx.saved_tensors
        ssim, a1, a2, b1, b2, var_x = _ssim_from_moments(moments, ctx.data_range)
        mu_x, mu_y = moments[0], moments[1]
        scaled = grad / (b1 * b2)
        grad_a1, grad_a2 = scaled * a2, scaled * a1
        grad_b1 = -grad * ssim / b1
        grad_var_x = torch.where(var_x > 0, -grad * ssim / b2, 0.0)  # clamp_min(0)'s gradient
        grad_mu_x = 2 * mu_y * (grad_a1 - grad_a2) + 2 * mu_x * (grad_b1 - grad_var_x)
        rows = blur_matrix(x.shape[-2], x.device, x.dtype)
        cols = blur_matrix(x.shape[-1], x.device, x.dtype)
        # adjoint of the blur: rows @ Z @ colsᵀ
        back = rows @ torch.stack([grad_mu_x, grad_var_x, 2 * grad_a2]) @ cols.transpose(0, 1)
        return back[0] + 2 * x * back[1] + y * back[2], None, None


def ssim_map_fused(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel, per-band SSIM ``(B, C, H, W)`` of float tensors (see the module docstring)."""
    if target.requires_grad:
        return ssim_map_conv2d(pred, target, data_range)
    return _FusedSSIM.apply(pred.contiguous(), target.contiguous(), float(data_range))


def ssim_map_conv2d(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """The reference formulation: reflection pad + grouped 11×11 convolution, autograd backward."""
    pad = SSIM_WINDOW // 2
    channels = pred.shape[1]
    kernel = gaussian_kernel_1d(pred.dtype).to(pred.device)  # as computed before the fused path
    window = (kernel[:, None] * kernel[None, :]).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()
    c1, c2 = _C1 * data_range**2, _C2 * data_range**2
    stack = torch.cat([pred, target, pred * pred, target * target, pred * target])
    stack = F.pad(stack, (pad, pad, pad, pad), mode="reflect")
    mu_p, mu_t, e_pp, e_tt, e_pt = F.conv2d(stack, window, groups=channels).split(pred.shape[0])
    var_p = (e_pp - mu_p**2).clamp_min(0)
    var_t = (e_tt - mu_t**2).clamp_min(0)
    cov = e_pt - mu_p * mu_t
    return ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
