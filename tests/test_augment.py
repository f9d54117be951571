"""TrainAugment's one-copy transpose + flip equals its definition (flips, then rot90)."""

from __future__ import annotations

import itertools

import pytest
import torch

from tdpcr_lib.transforms import SeededAugmentDataset, TrainAugment, apply_flips_and_rotation


@pytest.mark.parametrize(("hflip", "vflip", "k"), list(itertools.product((False, True), (False, True), range(4))))
def test_each_draw_equals_flips_then_rotation(hflip, vflip, k, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    sample = {
        "optical": torch.rand(3, 12, 12, generator=generator),
        "mask": torch.randint(0, 9, (12, 12), generator=generator),
        "id": "tile",
    }
    augment = TrainAugment(crop_size=7)
    draws = iter([2, 4, int(hflip), int(vflip), k])  # top, left, hflip, vflip, k
    monkeypatch.setattr(augment, "_randint", lambda high, generator: next(draws))
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
    augment._randint = lambda high, generator: next(draws)
    out = augment(sample)
    assert torch.equal(out["optical"], torch.rot90(sample["optical"], 1, dims=(-2, -1)))


def test_seeded_dataset_draws_the_same_with_a_private_generator():
    """The generator path of SeededAugmentDataset equals seeding the global RNG (the old path)."""

    class Tiles(torch.utils.data.Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, index):
            return {"optical": torch.arange(3 * 16 * 16.0).reshape(3, 16, 16) + index}

    augment = TrainAugment(crop_size=9)
    fast = SeededAugmentDataset(Tiles(), augment, seed=4)
    old = SeededAugmentDataset(Tiles(), lambda sample: augment(sample), seed=4)  # global RNG
    for epoch in (0, 3):
        fast.set_epoch(epoch)
        old.set_epoch(epoch)
        for index in range(20):
            assert torch.equal(fast[index]["optical"], old[index]["optical"]), (epoch, index)
