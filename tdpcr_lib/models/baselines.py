"""Comparison models with the same input/output contract as TDP-CR.

* :class:`DSen2CR` — Meraner et al., "Cloud removal in Sentinel-2 imagery using a deep residual
  neural network and SAR-optical data fusion", ISPRS JPRS 166 (2020), re-implemented faithfully
  from the paper and the authors' Keras code: SAR and optical concatenated, a 3×3 convolution to
  256 features + ReLU, 16 residual blocks (3×3 conv, ReLU, 3×3 conv, scaled by 0.1, added), a 3×3
  convolution to 13 bands, added to the cloudy input (long skip). No normalisation layers, all at
  full resolution. 18,947,341 parameters (the paper's 18.95 M); the heavy baseline of the
  "+PSNR at 15 % of the parameters" claim.
* :class:`MultiTaskUNet` — the multi-task competitor in the style of CloudSeg (Xu et al., ISPRS
  JPRS 214, 2024): a segmentation network on SAR + optical with an auxiliary cloud-removal branch,
  trained jointly. CloudSeg builds on ``segmentation_models_pytorch``; that package is not used
  here because it pulls in ``torchvision`` (and with it a second, CUDA, torch build). We use a
  plain U-Net instead (Ronneberger et al. 2015: double 3×3 conv + BatchNorm + ReLU, max-pool down,
  transposed-conv up, concatenated skips) with widths (32, 64, 128, 256, 512): 7.8 M parameters,
  about 3× TDP-CR, so the mIoU comparison is not won by size. Its decoder feeds a 1×1
  segmentation head and a cloud-removal head (3×3 conv + ReLU + 3×3 conv to 13 bands, added to the
  cloudy input). CloudSeg's teacher/student feature distillation is not reproduced (it needs a
  second network trained on cloud-free images); only the joint CR + segmentation training is.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from tdpcr_lib.models.blocks import crop_to, pad_to_multiple
from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.models.tdpcr import check_inputs


class _DSen2CRResBlock(nn.Module):
    def __init__(self, features: int, scale: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.conv2(F.relu(self.conv1(x)))


class DSen2CR(nn.Module):
    """DSen2-CR (Meraner et al. 2020): a deep residual network at full resolution.

    Parameters
    ----------
    config
        ``arch="dsen2cr"``; uses ``dsen2cr_features`` (256), ``dsen2cr_blocks`` (16) and
        ``dsen2cr_res_scale`` (0.1).

    Notes
    -----
    The original feeds the optical bands first and the SAR bands after them, which we keep. Being
    fully convolutional at one resolution, it needs no padding for any H, W.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch != "dsen2cr":
            raise ValueError(f"DSen2CR needs arch='dsen2cr', got {config.arch!r}")
        self.config = dataclasses.replace(config)
        features = config.dsen2cr_features
        self.head = nn.Sequential(nn.Conv2d(config.in_optical + config.in_sar, features, 3, padding=1), nn.ReLU())
        self.body = nn.Sequential(
            *[_DSen2CRResBlock(features, config.dsen2cr_res_scale) for _ in range(config.dsen2cr_blocks)]
        )
        self.tail = nn.Conv2d(features, config.in_optical, 3, padding=1)

    def module_groups(self) -> dict[str, nn.Module]:
        """Named parts for per-part parameter counts."""
        return {"input_conv": self.head, "residual_blocks": self.body, "output_conv": self.tail}

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"reconstruction": optical + correction}`` (B, 13, H, W)."""
        check_inputs(optical, sar, self.config)
        x = torch.cat([optical, sar], dim=1)
        correction = self.tail(self.body(self.head(x)))
        return {"reconstruction": (optical + correction).to(optical.dtype)}


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class MultiTaskUNet(nn.Module):
    """CloudSeg-style multi-task U-Net: segmentation + auxiliary cloud removal from SAR + optical.

    Parameters
    ----------
    config
        ``arch="multitask_unet"``; uses ``unet_widths`` (five scales), ``num_classes``.

    Returns (forward)
    -----------------
    ``{"reconstruction": (B, 13, H, W), "segmentation": (B, K, H, W) logits}``. Inputs are padded to
    a multiple of 16 (four 2× poolings) and outputs cropped back.
    """

    pad_multiple = 16

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch != "multitask_unet":
            raise ValueError(f"MultiTaskUNet needs arch='multitask_unet', got {config.arch!r}")
        self.config = dataclasses.replace(config)
        widths = config.unet_widths
        self.encoder = nn.ModuleList()
        in_channels = config.in_optical + config.in_sar
        for width in widths:
            self.encoder.append(_double_conv(in_channels, width))
            in_channels = width
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(len(widths) - 1)
        )
        self.decoder = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in range(len(widths) - 1))
        self.segmentation_head = nn.Conv2d(widths[0], config.num_classes, 1)
        self.reconstruction_head = nn.Sequential(
            nn.Conv2d(widths[0], widths[0], 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(widths[0], config.in_optical, 3, padding=1),
        )

    def module_groups(self) -> dict[str, nn.Module]:
        """Named parts for per-part parameter counts."""
        return {
            "encoder": self.encoder,
            "decoder": nn.ModuleList([self.ups, self.decoder]),
            "segmentation_head": self.segmentation_head,
            "reconstruction_head": self.reconstruction_head,
        }

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict[str, torch.Tensor]:
        check_inputs(optical, sar, self.config)
        x, size = pad_to_multiple(torch.cat([optical, sar], dim=1), self.pad_multiple)
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for level in range(len(self.decoder) - 1, -1, -1):
            x = self.decoder[level](torch.cat([self.ups[level](x), skips[level]], dim=1))
        padded_optical = pad_to_multiple(optical, self.pad_multiple)[0]
        reconstruction = padded_optical + self.reconstruction_head(x)
        return {
            "reconstruction": crop_to(reconstruction, size).to(optical.dtype),
            "segmentation": crop_to(self.segmentation_head(x), size).to(optical.dtype),
        }
