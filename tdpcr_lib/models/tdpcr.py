"""The TDP-CR network: two encoders, a prompt generator, PGF at four scales, a shared decoder,
a reconstruction head and a segmentation decoder attachable in phase 2.

Topology (paper overview figure; sizes and block types are ours, see ``docs/decisions.md``)::

    cloudy optical ──3×3──► optical encoder L1 ─► PGF1 ─► L2 ─► PGF2 ─► L3 ─► PGF3 ─► L4 ─► PGF4
                       (full)                    (1/2)         (1/4)         (1/8)        │
    SAR ───────────3×3──► SAR encoder L1 ───┘  L2 ───┘       L3 ───┘       L4 ───┘          │
    cloudy optical ─► Prompt Generator ─► P1..P4 (into every PGF)                           ▼
    shared decoder D4 (1/8) ─► D3 (1/4) ─► D2 (1/2) ─► D1 (full) ─► 3×3 head ─► + cloudy input
       (U-Net skips from the fused optical features Ô1..Ô4, added)
    segmentation decoder (phase 2): reads D1..D4, all-MLP fusion at full resolution → K logits

Choices the paper leaves open:

* **Residual output**: the head predicts a correction that is *added to the cloudy input*
  (``ModelConfig.residual=True``), so clear pixels start out right and the network spends its
  capacity on the clouds. The output is not clamped (a clamp would stop gradients at the range
  limits); the metrics clamp to [0, 1] before scoring.
* **Skips**: the fused optical features of each scale are added to the decoder features (the
  figure does not draw skips; a U-Net without them loses detail).
* **Any H, W**: inputs are reflection-padded to a multiple of 8 (three 2× down-samplings) and the
  outputs cropped back.
* **Outputs** have the dtype of the ``optical`` input, so under bf16 autocast the losses and
  metrics still see float32.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from tdpcr_lib.models.blocks import Downsample, LayerNorm2d, Upsample, conv3x3, crop_to, pad_to_multiple, residual_stack
from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.models.pgf import ConcatFusion, PromptGuidedFusion
from tdpcr_lib.models.prompt import PromptGenerator

NUM_LEVELS = 4


#: Scale of the residual head's initial weights (near-identity start; see TDPCR.__init__).
HEAD_INIT_SCALE = 0.01


class Encoder(nn.Module):
    """3×3 stem, then four stages (stage 1 at full resolution, each later one halves it)."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], depths: tuple[int, ...], expansion: float) -> None:
        super().__init__()
        self.stem = conv3x3(in_channels, widths[0])
        self.stages = nn.ModuleList()
        for level, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            down = [Downsample(widths[level - 1], width)] if level > 0 else []
            self.stages.append(nn.Sequential(*down, *residual_stack(width, depth, expansion)))


class SharedDecoder(nn.Module):
    """U-Net decoder from the 1/8 scale back to full resolution; skips are added."""

    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...], expansion: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(residual_stack(w, d, expansion) for w, d in zip(widths, depths, strict=True))
        self.ups = nn.ModuleList(Upsample(widths[level + 1], widths[level]) for level in range(len(widths) - 1))

    def forward(self, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        """Fused encoder features (finest first) → decoder features at the same four scales."""
        x = self.blocks[-1](skips[-1])
        features = [x]
        for level in range(len(skips) - 2, -1, -1):
            x = self.blocks[level](self.ups[level].add_to(x, skips[level]))
            features.insert(0, x)
        return features


class SegmentationDecoder(nn.Module):
    """All-MLP (SegFormer-style) head on four shared-decoder scales → K logits at full resolution.

    SegFormer projects every scale with a 1×1 convolution, up-samples, concatenates and fuses with
    another 1×1 convolution. Both 1×1 convolutions and bilinear up-sampling are linear, so that is
    exactly ``Σ_l up(W_l · D_l)``: we project each scale to ``width`` channels *at its own
    resolution*, up-sample and sum — the same function class at a quarter of the full-resolution
    memory and FLOPs. Then channel LayerNorm + GELU and a 1×1 classifier.
    """

    def __init__(self, in_widths: tuple[int, ...], width: int, num_classes: int) -> None:
        super().__init__()
        self.project = nn.ModuleList(nn.Conv2d(w, width, 1) for w in in_widths)
        self.norm = LayerNorm2d(width)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        fused = self.project[0](features[0])
        for project, feature in zip(self.project[1:], features[1:], strict=True):
            fused = fused + F.interpolate(project(feature), size=size, mode="bilinear", align_corners=False)
        return self.classifier(F.gelu(self.norm(fused)))


class TDPCR(nn.Module):
    """TDP-CR: joint SAR-optical cloud removal and (after phase 1) land-cover segmentation.

    Parameters
    ----------
    config
        A :class:`ModelConfig` with ``arch="tdpcr"``; the model keeps its own copy as
        ``model.config``.

    Examples
    --------
    >>> import torch
    >>> model = TDPCR(ModelConfig.small(with_seg_decoder=True))
    >>> out = model(torch.rand(1, 13, 40, 40), torch.rand(1, 2, 40, 40))
    >>> out["reconstruction"].shape, out["segmentation"].shape, len(out["prompts"])
    (torch.Size([1, 13, 40, 40]), torch.Size([1, 7, 40, 40]), 4)
    """

    pad_multiple = 2 ** (NUM_LEVELS - 1)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch != "tdpcr":
            raise ValueError(f"TDPCR needs arch='tdpcr', got {config.arch!r}; use build_model()")
        self.config = dataclasses.replace(config)
        widths, sar_widths = config.widths, config.resolved_sar_widths
        fusion = config.fusion
        self.optical_encoder = Encoder(config.in_optical, widths, config.encoder_depths, config.expansion)
        if fusion == "optical_only":
            self.sar_encoder = nn.ModuleList()  # not built: SAR cannot reach the output
        else:
            self.sar_encoder = Encoder(config.in_sar, sar_widths, config.encoder_depths, config.expansion)
        if fusion == "pgf":
            self.prompt_generator = PromptGenerator(
                config.in_optical, config.prompt_channels, config.prompt_components, NUM_LEVELS
            )
        else:
            self.prompt_generator = nn.ModuleList()
        if fusion in ("pgf", "pgf_no_prompt"):
            prompt_channels = config.prompt_channels if fusion == "pgf" else 0
            self.pgf = nn.ModuleList(
                PromptGuidedFusion(w, s, prompt_channels, config.pgf_reduction, config.pgf_hidden)
                for w, s in zip(widths, sar_widths, strict=True)
            )
        elif fusion == "concat":
            self.pgf = nn.ModuleList(ConcatFusion(w, s) for w, s in zip(widths, sar_widths, strict=True))
        else:
            self.pgf = nn.ModuleList()
        self.shared_decoder = SharedDecoder(widths, config.decoder_depths, config.expansion)
        self.reconstruction_head = conv3x3(widths[0], config.in_optical)
        if config.residual:
            # Start close to the identity (output ≈ cloudy input): clear pixels are then right
            # from the first step instead of being repainted by a random correction. Measured on
            # the synthetic twin (150 phase-1 steps): +1.1 dB PSNR overall, +1.0 dB on clear pixels.
            with torch.no_grad():
                self.reconstruction_head.weight.mul_(HEAD_INIT_SCALE)
                self.reconstruction_head.bias.zero_()
        self.seg_decoder: SegmentationDecoder | None = None
        if config.with_seg_decoder:
            self.attach_segmentation_decoder()

    # ------------------------------------------------------------------------------------------
    def attach_segmentation_decoder(self) -> SegmentationDecoder:
        """Add the phase-2 segmentation decoder (idempotent) and return it.

        The new decoder is created on the device and dtype of the existing parameters and
        ``config.with_seg_decoder`` becomes ``True`` (so saved configs rebuild it).
        """
        if self.seg_decoder is None:
            reference = next(self.reconstruction_head.parameters())
            self.seg_decoder = SegmentationDecoder(
                self.config.widths, self.config.seg_width, self.config.num_classes
            ).to(reference.device, reference.dtype)
        self.config.with_seg_decoder = True
        return self.seg_decoder

    def module_groups(self) -> dict[str, nn.Module]:
        """Named parts for freezing and per-part parameter counts.

        Keys: ``sar_encoder, optical_encoder, prompt_generator, pgf, shared_decoder,
        reconstruction_head`` and, once attached, ``seg_decoder``. Parts an ablation does not
        build (e.g. the prompt generator of ``concat``) are empty modules with no parameters.
        """
        groups: dict[str, nn.Module] = {
            "sar_encoder": self.sar_encoder,
            "optical_encoder": self.optical_encoder,
            "prompt_generator": self.prompt_generator,
            "pgf": self.pgf,
            "shared_decoder": self.shared_decoder,
            "reconstruction_head": self.reconstruction_head,
        }
        if self.seg_decoder is not None:
            groups["seg_decoder"] = self.seg_decoder
        return groups

    # ------------------------------------------------------------------------------------------
    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Run the network.

        Parameters
        ----------
        optical
            Cloudy Sentinel-2 image, (B, 13, H, W), values in [0, 1].
        sar
            Sentinel-1 image, (B, 2, H, W), values in [0, 1].

        Returns
        -------
        dict
            ``reconstruction`` (B, 13, H, W); ``segmentation`` (B, K, H, W) logits when the
            segmentation decoder is attached; ``prompts``: for the PGF variants, four injection-gate
            maps (B, 1, ⌈H/2^l⌉, ⌈W/2^l⌉), l = 0..3 — the channel mean of ``A``, i.e. how much SAR
            is injected where (for visualisation).
        """
        check_inputs(optical, sar, self.config)
        x, size = pad_to_multiple(optical, self.pad_multiple)
        uses_sar = self.config.fusion != "optical_only"
        prompts = self.prompt_generator(x) if self.config.fusion == "pgf" else [None] * NUM_LEVELS
        o = self.optical_encoder.stem(x)
        if uses_sar:
            s = self.sar_encoder.stem(pad_to_multiple(sar, self.pad_multiple)[0])
        skips, gates = [], []
        for level in range(NUM_LEVELS):
            o = self.optical_encoder.stages[level](o)
            if uses_sar:
                s = self.sar_encoder.stages[level](s)
                o, gate = self.pgf[level](o, s, prompts[level])
                if gate is not None:
                    gates.append(gate)
            skips.append(o)
        features = self.shared_decoder(skips)
        reconstruction = self.reconstruction_head(features[0])
        if self.config.residual:
            reconstruction = x + reconstruction
        out: dict[str, torch.Tensor | list[torch.Tensor]] = {
            "reconstruction": crop_to(reconstruction, size).to(optical.dtype)
        }
        if self.seg_decoder is not None:
            out["segmentation"] = crop_to(self.seg_decoder(features), size).to(optical.dtype)
        if gates:
            out["prompts"] = [
                crop_to(g.mean(dim=1, keepdim=True), (-(-size[0] // 2**lv), -(-size[1] // 2**lv))).float()
                for lv, g in enumerate(gates)
            ]
        return out


def check_inputs(optical: torch.Tensor, sar: torch.Tensor, config: ModelConfig) -> None:
    """Raise a ``ValueError`` that names the problem when the inputs do not fit the model."""
    if optical.ndim != 4 or optical.shape[1] != config.in_optical:
        raise ValueError(f"optical must be (B, {config.in_optical}, H, W), got {tuple(optical.shape)}")
    if sar.ndim != 4 or sar.shape[1] != config.in_sar:
        raise ValueError(f"sar must be (B, {config.in_sar}, H, W), got {tuple(sar.shape)}")
    if optical.shape[0] != sar.shape[0] or optical.shape[-2:] != sar.shape[-2:]:
        raise ValueError(
            f"optical {tuple(optical.shape)} and sar {tuple(sar.shape)} must share batch size, height and width"
        )
