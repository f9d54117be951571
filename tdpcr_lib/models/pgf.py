"""Prompt-Guided Fusion (PGF) and the ablation fusions.

PGF at scale l (``docs/decisions.md`` § Model; equations are ours, the two named components are the paper's):

1. global channel context: ``g = W2 · GELU(W1 · [GAP(O); GAP(S); GAP(P)])`` (channel logits, C),
2. local prompt-conditioned spatial bias: ``b = Conv3×3(GELU(Conv3×3([O; S; P])))`` (1 channel),
3. injection gate: ``A = σ(g ⊗ 1_{H×W} + b)`` — in (0, 1) per channel and pixel,
4. gated residual injection: ``Ô = O + A ⊙ φ(S)`` with ``φ`` a 1×1 convolution aligning the SAR
   features to the optical channels.

``g`` enters the sigmoid as a logit (no inner sigmoid), so a confident gate can close (A → 0,
optics trusted, no SAR injected) or open (A → 1) fully. ``pgf_no_prompt`` is the same block with
``P`` removed from both branches. ``concat`` replaces the block by ``Ô = Conv1×1([O; S])`` (no gate);
``optical_only`` uses no SAR at all (``Ô = O``).
"""

from __future__ import annotations

import torch
from torch import nn

from tdpcr_lib.models.blocks import KernelChoice, conv3x3


class PromptGuidedFusion(KernelChoice, nn.Module):
    """One PGF block (``prompt_channels=0`` gives the no-prompt ablation).

    Parameters
    ----------
    optical_channels, sar_channels, prompt_channels
        Channels of O, S and P at this scale (``prompt_channels=0``: no prompt).
    reduction
        Squeeze-excitation reduction of the global branch (hidden = max(8, C_in / reduction)).
    hidden
        Channels of the local spatial-bias branch.
    """

    def __init__(
        self, optical_channels: int, sar_channels: int, prompt_channels: int, reduction: int = 4, hidden: int = 16
    ) -> None:
        super().__init__()
        self.uses_prompt = prompt_channels > 0
        context = optical_channels + sar_channels + prompt_channels
        self.align = nn.Conv2d(sar_channels, optical_channels, 1)  # φ
        se_hidden = max(8, context // reduction)
        self.global_context = nn.Sequential(
            nn.Linear(context, se_hidden), nn.GELU(), nn.Linear(se_hidden, optical_channels)
        )
        self.spatial_bias = nn.Sequential(conv3x3(context, hidden), nn.GELU(), conv3x3(hidden, 1))

    def gate(self, optical: torch.Tensor, sar: torch.Tensor, prompt: torch.Tensor | None) -> torch.Tensor:
        """The injection gate ``A`` (B, C_optical, H, W) in [0, 1]."""
        parts = [optical, sar] + ([prompt] if self.uses_prompt else [])
        if self.uses_prompt and prompt is None:
            raise ValueError("this PGF block was built with a prompt but got prompt=None")
        stacked = torch.cat(parts, dim=1)
        channel_logits = self.global_context(stacked.mean(dim=(2, 3)))  # g: (B, C)
        spatial_logits = self.spatial_bias(stacked)  # b: (B, 1, H, W)
        if self.fused:  # one allocation less (the logits' buffer is reused)
            return (channel_logits[:, :, None, None] + spatial_logits).sigmoid_()
        return torch.sigmoid(channel_logits[:, :, None, None] + spatial_logits)

    def forward(
        self, optical: torch.Tensor, sar: torch.Tensor, prompt: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the fused optical features ``Ô = O + A ⊙ φ(S)`` and the gate ``A``."""
        gate = self.gate(optical, sar, prompt)
        if self.fused:  # one pass instead of a product and a sum
            return torch.addcmul(optical, gate, self.align(sar)), gate
        return optical + gate * self.align(sar), gate


class ConcatFusion(nn.Module):
    """Ablation: ``Ô = Conv1×1([O; S])`` — SAR mixed in everywhere, with no gate."""

    def __init__(self, optical_channels: int, sar_channels: int) -> None:
        super().__init__()
        self.mix = nn.Conv2d(optical_channels + sar_channels, optical_channels, 1)

    def forward(
        self,
        optical: torch.Tensor,
        sar: torch.Tensor,
        prompt: torch.Tensor | None = None,  # noqa: ARG002 - PGF's interface, no prompt here
    ) -> tuple[torch.Tensor, None]:
        return self.mix(torch.cat([optical, sar], dim=1)), None
