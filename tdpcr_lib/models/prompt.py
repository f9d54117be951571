"""The Prompt Generator: a learnable degradation prompt computed from the cloudy optical image.

The paper says only that the prompt is *learnable*, is generated from the cloudy optical input and
is meant to encode *cloud thickness and spatial uncertainty*. Our reading (a spatial prompt map per
scale plus learnable components), documented in ``docs/decisions.md``:

* a light CNN on the cloudy image gives a **spatial** prompt map at each of the four scales
  (full, 1/2, 1/4, 1/8 resolution), so the prompt can say *where* the optics are corrupted;
* each scale also owns a bank of ``N`` **learnable prompt components** (vectors of
  ``prompt_channels``); image-dependent softmax weights (from the pooled map, as in PromptIR) mix
  them into one vector that is added to every pixel of that scale's map. The learnable part is
  therefore a global "kind of degradation" code; it is not a spatial parameter map, so the network
  stays translation-equivariant and tiles can be processed independently.

The prompt receives no cloud-mask supervision: it is learned end to end from the task losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tdpcr_lib.models.blocks import conv3x3


class PromptGenerator(nn.Module):
    """Cloudy optical image → one prompt map (B, ``prompt_channels``, H/2^l, W/2^l) per scale l.

    Parameters
    ----------
    in_channels
        Bands of the cloudy optical image (13).
    prompt_channels
        Channels of each prompt map.
    num_components
        Learnable prompt components per scale.
    num_levels
        Number of scales (4).
    """

    def __init__(self, in_channels: int, prompt_channels: int, num_components: int, num_levels: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv3x3(in_channels, prompt_channels), nn.GELU())
        self.downs = nn.ModuleList(
            nn.Sequential(conv3x3(prompt_channels, prompt_channels, stride=2), nn.GELU()) for _ in range(num_levels - 1)
        )
        self.heads = nn.ModuleList(nn.Conv2d(prompt_channels, prompt_channels, 1) for _ in range(num_levels))
        self.routers = nn.ModuleList(nn.Linear(prompt_channels, num_components) for _ in range(num_levels))
        self.components = nn.Parameter(0.02 * torch.randn(num_levels, num_components, prompt_channels))

    def forward(self, optical: torch.Tensor) -> list[torch.Tensor]:
        """Return the list of per-scale prompt maps, finest first."""
        features = self.stem(optical)
        prompts = []
        for level, (head, router) in enumerate(zip(self.heads, self.routers, strict=True)):
            if level > 0:
                features = self.downs[level - 1](features)
            weights = F.softmax(router(features.mean(dim=(2, 3))), dim=1)  # (B, N)
            learned = weights @ self.components[level].to(weights.dtype)  # (B, P)
            prompts.append(head(features) + learned[:, :, None, None].to(features.dtype))
        return prompts
