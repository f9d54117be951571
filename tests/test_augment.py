"""TrainAugment's one-copy transpose + flip equals its definition (flips, then rot90)."""

from __future__ import annotations

import itertools

import pytest
import torch

from tdpcr_lib.transforms import TrainAugment, apply_flips_and_rotation


@pytest.mark.parametrize(("hflip", "vflip", "k"),
                         list(itertools.product((False, True), (False, True), range(4))))
def test_each_draw_equals_flips_then_rotation(hflip, vflip, k, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    sample = {"optical": torch.rand(3, 12, 12, generator=generator),
              "mask": torch.randint(0, 9, (12, 12), generator=generator),
              "id": "tile"}
    augment = TrainAugment(crop_size=7)
    draws = iter([2, 4, int(hflip), int(vflip), k])  # top, left, hflip, vflip, k
    monkeypatch.setattr(augment, "_randint", lambda high: next(draws))
    out = augment(sample)
    for key in ("optical", "mask"):
        expected = apply_flips_and_rotation(sample[key][..., 2:9, 4:11], hflip, vflip, k)
        assert torch.equal(out[key], expected), key
        assert out[key].is_contiguous()
    assert out["id"] == "tile"


def test_rectangular_samples_without_crop_rotate_their_shape():
    sample = {"optical": torch.rand(2, 5, 8)}
    augment = TrainAugment(crop_size=None, flips=False)
    draws = iter([1])
    augment._randint = lambda high: next(draws)
    out = augment(sample)
    assert torch.equal(out["optical"], torch.rot90(sample["optical"], 1, dims=(-2, -1)))
