"""Small building blocks shared by the TDP-CR encoders, decoder and fusion blocks.

Design choices (the paper does not describe its blocks):

* **Residual block** = channel LayerNorm → 1×1 expansion → depth-wise 3×3 → GELU gate → channel
  attention → 1×1 projection, added to the input (a NAFNet/Restormer-GDFN-style block). It costs
  about ``4·C²`` parameters and multiply-adds per pixel, against ``18·C²`` for a plain
  two-3×3-conv block, which is what keeps TDP-CR at 15 % of DSen2-CR's parameters.
* **Channel LayerNorm** normalises each pixel over its channels, so a pixel's output does not depend
  on batch statistics (batch size 1, frozen phase-2 backbone and tiled inference all behave alike).
  It is computed in float32 (also under bf16 autocast) for stability.
* **Down-sampling**: 2×2 convolution with stride 2. **Up-sampling**: 1×1 convolution to 4× the
  channels, then ``PixelShuffle(2)``, ICNR-initialised (Aitken et al. 2017): the four
  sub-pixel kernels of each output channel start equal. With the default random init the four
  sub-pixels differ and a constant input came out with a period-2 dot pattern (energy at the
  period-2 frequencies 56× the mean spectrum on an untrained default model; 0.3× with ICNR) —
  the faint regular dots of the scene reconstructions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")


def autocast_disabled(device_type: str) -> contextlib.AbstractContextManager:
    """A context that switches autocast off on ``device_type`` (a no-op where autocast does not
    exist, e.g. the ``meta`` device used for FLOP counting)."""
    if device_type in _AUTOCAST_DEVICES:
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


class KernelChoice:
    """A block with two formulations of one function: fused kernels (default) or the reference.

    The choice is an attribute of each block (:attr:`fused`), set for a whole model by
    :func:`use_kernels` or, for a while, by :func:`reference_kernels`: it belongs to the model, so
    one model's choice never changes another's (no process-wide switch). It is not a parameter or
    a buffer, so state dicts and checkpoints are the same under both.
    """

    #: True: the fused kernels; False: the plain, one-layer-at-a-time reference formulation.
    fused: bool = True


def use_kernels(model: nn.Module, *, fused: bool) -> nn.Module:
    """Make every block of ``model`` run its fused (``fused=True``) or reference kernels; returns ``model``.

    The default (fused) path computes the same function with fewer passes over memory (LayerNorm
    affine folded into the next 1×1 convolution, 1×1 convolutions as matrix products on the
    channels-last view, channel attention folded into the projection weights, fused multiply-add
    gates, pixel shuffle fused with the skip addition; ``docs/performance.md`` § Inference speed).
    The reference path is kept as the readable definition: the tests compare both on fixed
    weights and the benchmarks time it as the "before".
    """
    for module in model.modules():
        if isinstance(module, KernelChoice):
            module.fused = fused
    return model


@contextlib.contextmanager
def reference_kernels(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model``'s blocks with the reference formulation inside this context (see :func:`use_kernels`).

    Each block's previous choice is restored on exit, also when the body raises.
    """
    previous = [(module, module.fused) for module in model.modules() if isinstance(module, KernelChoice)]
    use_kernels(model, fused=False)
    try:
        yield model
    finally:
        for module, fused in previous:
            module.fused = fused


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """The (B, H, W, C) view of a (B, C, H, W) tensor (no copy when it is channels_last)."""
    return x.permute(0, 2, 3, 1)


def nchw(x: torch.Tensor) -> torch.Tensor:
    """The (B, C, H, W) view of a (B, H, W, C) tensor (channels_last strides, no copy)."""
    return x.permute(0, 3, 1, 2)


def pointwise(x_nhwc: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1×1 ``conv`` applied to a (B, H, W, C) tensor as one matrix product, (B, H, W, C_out).

    On a channels-last tensor the 1×1 convolution *is* a (pixels × C) @ (C × C_out) product;
    ``F.linear`` runs it as one GEMM with the bias fused, without the convolution's layout
    checks and reorders.
    """
    return F.linear(x_nhwc, conv.weight[:, :, 0, 0], conv.bias)


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (False where autocast does not exist)."""
    return device_type in _AUTOCAST_DEVICES and torch.is_autocast_enabled(device_type)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor, computed in float32."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        with autocast_disabled(x.device.type):
            # one fused layer_norm over the last axis of a channels-last view (a free view when the
            # tensor is already channels_last)
            y = F.layer_norm(
                x.float().permute(0, 2, 3, 1), (x.shape[1],), self.weight.float(), self.bias.float(), self.eps
            )
        return y.permute(0, 3, 1, 2).to(dtype)


class ResidualBlock(KernelChoice, nn.Module):
    """Gated depth-wise residual block (see the module docstring).

    Parameters
    ----------
    channels
        Input and output channels.
    expansion
        Hidden channels = ``round(expansion * channels / 2)`` per gate half; with the default 2
        the hidden width equals ``channels``.
    """

    def __init__(self, channels: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = max(4, int(round(expansion * channels / 2)))
        self.norm = LayerNorm2d(channels)
        self.expand = nn.Conv2d(channels, 2 * hidden, 1)
        self.spatial = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden)
        self.channel_attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden, hidden, 1))
        self.project = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return self._fused_forward(x)
        y = self.spatial(self.expand(self.norm(x)))
        value, gate = y.chunk(2, dim=1)
        y = value * F.gelu(gate)
        y = y * self.channel_attention(y)
        return x + self.project(y)

    def _fused_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same function in fewer memory passes, on the channels-last (B, H, W, C) view.

        * ``expand(norm(x))``: the LayerNorm's affine ``γ, β`` is folded into the 1×1 expansion
          (``W·(γ⊙n + β) + c = (W·diag γ)·n + (W·β + c)``), one GEMM on the normalised pixels;
        * ``project(y ⊙ a)`` with the per-image channel attention ``a``: ``a`` is folded into the
          projection weights (``W·diag a``), and the residual ``x`` is the GEMM's accumulator
          (``baddbmm``), so neither the attention product nor the sum is a separate pass.
        """
        batch, channels, height, width = x.shape
        hidden = self.project.in_channels
        y = nhwc(self.spatial(self.expand(self.norm(x))))
        value, gate = y[..., :hidden], y[..., hidden:]
        y = F.gelu(gate).mul_(value)  # (B, H, W, hidden), contiguous
        attention = self.channel_attention[1]
        scale = F.linear(y.mean(dim=(1, 2)), attention.weight[:, :, 0, 0], attention.bias)
        proj_w = self.project.weight[:, :, 0, 0]  # (C, hidden)
        per_image = (proj_w[None] * scale[:, None, :].to(proj_w.dtype)).transpose(1, 2)
        pixels = y.reshape(batch, height * width, hidden)
        residual = nhwc(x).reshape(batch, height * width, channels)
        if autocast_enabled(x.device.type):
            # autocast would run baddbmm's accumulator (the residual stream) in bf16: keep the
            # sum in x's precision, as x + project(y) does
            out = residual + (torch.bmm(pixels, per_image) + self.project.bias)
        else:
            out = torch.baddbmm(residual, pixels, per_image.to(pixels.dtype))
            out.add_(self.project.bias.to(out.dtype))
        return nchw(out.view(batch, height, width, channels))


def residual_stack(channels: int, depth: int, expansion: float) -> nn.Sequential:
    """``depth`` residual blocks in a row (an identity when ``depth`` is 0)."""
    return nn.Sequential(*[ResidualBlock(channels, expansion) for _ in range(depth)])


class Downsample(nn.Sequential):
    """Halve the resolution: 2×2 convolution with stride 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 2, stride=2))


class Upsample(KernelChoice, nn.Sequential):
    """Double the resolution: 1×1 convolution to ``4·out`` channels, then ``PixelShuffle(2)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        conv = nn.Conv2d(in_channels, 4 * out_channels, 1)
        # ICNR: PixelShuffle puts channels 4c … 4c+3 at the four sub-pixels of output channel c;
        # giving them one kernel makes the layer start as conv + nearest upsampling (no
        # checkerboard), and training departs from there. Same parameters and state-dict keys.
        with torch.no_grad():
            conv.weight.copy_(conv.weight[:out_channels].repeat_interleave(4, dim=0))
            conv.bias.copy_(conv.bias[:out_channels].repeat_interleave(4))
        super().__init__(conv, nn.PixelShuffle(2))

    def add_to(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``self(x) + skip`` (the decoder's up-sampling and skip addition).

        With channels-last ``x`` and ``skip`` the pixel shuffle is not materialised: the 1×1
        convolution's output channels are reordered to (row offset, column offset, channel), so
        the shuffled map is a strided *view* that the addition reads directly (one pass over the
        full-resolution map instead of three).
        """
        conv = self[0]
        channels = conv.out_channels // 4
        cl = torch.channels_last
        if (
            not (self.fused and x.is_contiguous(memory_format=cl) and skip.is_contiguous(memory_format=cl))
            or skip.shape[1] != channels
        ):
            return self(x) + skip
        batch, _, height, width = x.shape
        # PixelShuffle puts input channel 4c + 2i + j at sub-pixel (i, j) of output channel c
        order = torch.arange(4 * channels, device=x.device).view(channels, 4).t().reshape(-1)
        y = F.conv2d(x, conv.weight[order], conv.bias[order])
        shuffled = nhwc(y).reshape(batch, height, width, 2, 2, channels).permute(0, 1, 3, 2, 4, 5)
        out = nhwc(skip).reshape(batch, height, 2, width, 2, channels) + shuffled
        return nchw(out.reshape(batch, 2 * height, 2 * width, channels))


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` so H and W are multiples of ``multiple``.

    Reflection padding keeps image statistics continuous at the border; it falls back to
    replication when the image is too small to reflect. Returns the padded tensor and the
    original (H, W) for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple` (crop to the top-left ``size``)."""
    return x[..., : size[0], : size[1]]
