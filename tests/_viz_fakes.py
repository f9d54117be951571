"""Small stand-ins shared by the viz / widgets tests: sample dicts and a tiny model.

The samples follow the data layer's contract (docs/contracts.md); the model follows the model
contract (``forward(optical, sar) -> dict`` with reconstruction, segmentation and prompts).
"""

from __future__ import annotations

import torch
from torch import nn

BUCKETS = ("0-20%", "20%-40%", "40%-60%", "60%-80%", "80%-100%")


def make_sample(seed: int, size: int = 32, bucket: str = "0-20%", tile_id: str | None = None) -> dict:
    """A sample dict with random but valid values (labels 0..6, a few ignored pixels)."""
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(13, size, size, generator=g) * 0.4 + 0.1
    cloud = torch.zeros(size, size)
    cloud[: size // 2, : size // 2] = 1.0
    optical = torch.where(cloud.bool(), torch.full_like(target, 0.9), target)
    mask = torch.randint(0, 7, (size, size), generator=g)
    mask[0, :4] = 255
    return {
        "optical": optical,
        "sar": torch.rand(2, size, size, generator=g),
        "target": target,
        "mask": mask,
        "cloud_mask": cloud,
        "bucket": bucket,
        "id": tile_id or f"ROIs_01_p{seed}",
    }


class TinyModel(nn.Module):
    """A 1-layer model with the full output contract; counts its forward calls."""

    def __init__(self, with_seg: bool = True, with_prompts: bool = True, num_classes: int = 7):
        super().__init__()
        self.rec = nn.Conv2d(15, 13, 3, padding=1)
        self.seg = nn.Conv2d(15, num_classes, 1) if with_seg else None
        self.with_prompts = with_prompts
        self.calls = 0

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict:
        self.calls += 1
        x = torch.cat([optical, sar], dim=1)
        out = {"reconstruction": optical + 0.01 * self.rec(x)}
        if self.seg is not None:
            out["segmentation"] = self.seg(x)
        if self.with_prompts:
            out["prompts"] = [torch.nn.functional.avg_pool2d(optical[:, :1], 2**k) for k in range(1, 5)]
        return out


class ListDataset:
    """A list of samples that behaves like a map-style Dataset."""

    def __init__(self, samples: list[dict]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return dict(self.samples[i])


def make_dataset(per_bucket: int = 2, size: int = 32) -> ListDataset:
    samples = []
    for b, bucket in enumerate(BUCKETS[:3]):
        for k in range(per_bucket):
            samples.append(make_sample(10 * b + k, size=size, bucket=bucket, tile_id=f"ROIs_0{b + 1}_p{k}"))
    return ListDataset(samples)
