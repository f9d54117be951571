"""Sample transforms: training augmentation, seeded per-sample augmentation, centre crops."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from tdpcr_lib.core.arrays import Window, spatial_shape


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------
class TrainAugment:
    """Random crop, flips and rot90 applied identically to every spatial tensor of a sample.

    Every tensor whose last two dimensions equal those of ``optical`` is transformed (``optical``,
    ``sar``, ``target``, ``mask``, ``cloud_mask`` and anything else of that size); strings pass
    through. Randomness comes from torch (``generator`` or the global RNG, which DataLoader workers
    seed), so runs are reproducible under :func:`tdpcr_lib.core.runtime.seed_everything`.

    Parameters
    ----------
    crop_size : int, optional
        Side of a random square crop (the author crops 128 or 160 of 256); ``None`` keeps size.
    flips : bool
        Horizontal and vertical flip, each with probability 0.5.
    rot90 : bool
        Rotation by k·90°, k uniform in {0, 1, 2, 3}.
    generator : torch.Generator, optional
    """

    def __init__(
        self,
        crop_size: int | None = None,
        flips: bool = True,
        rot90: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        if crop_size is not None and crop_size < 1:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        self.crop_size = crop_size
        self.flips = flips
        self.rot90 = rot90
        self.generator = generator

    #: :class:`SeededAugmentDataset` may pass a seeded ``generator`` per call (cheaper than
    #: seeding and restoring the global RNGs, the same draws).
    accepts_generator = True

    def _randint(self, high: int, generator: torch.Generator | None) -> int:
        return int(torch.randint(high, (1,), generator=generator).item())

    def __call__(self, sample: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Any]:
        generator = generator if generator is not None else self.generator
        height, width = sample["optical"].shape[-2:]
        top = left = 0
        size_h, size_w = height, width
        if self.crop_size is not None:
            if self.crop_size > min(height, width):
                raise ValueError(f"crop_size {self.crop_size} is larger than the sample ({height}x{width})")
            size_h = size_w = self.crop_size
            top = self._randint(height - size_h + 1, generator)
            left = self._randint(width - size_w + 1, generator)
        hflip = self.flips and self._randint(2, generator) == 1
        vflip = self.flips and self._randint(2, generator) == 1
        k = self._randint(4, generator) if self.rot90 else 0

        transpose, flip_dims = _DIHEDRAL[(hflip, vflip, k)]
        out = dict(sample)
        for key, value in sample.items():
            if not (torch.is_tensor(value) and value.ndim >= 2 and tuple(value.shape[-2:]) == (height, width)):
                continue
            value = value[..., top : top + size_h, left : left + size_w]
            if transpose:
                value = value.transpose(-2, -1)  # a view; the flip or contiguous() copies once
            out[key] = (value.flip(flip_dims) if flip_dims else value).contiguous()
        return out

    def __repr__(self) -> str:
        return f"TrainAugment(crop_size={self.crop_size}, flips={self.flips}, rot90={self.rot90})"


def apply_flips_and_rotation(value: torch.Tensor, hflip: bool, vflip: bool, k: int) -> torch.Tensor:
    """The augmentation's definition: flip the last axis, then the second last, then rot90 ×k."""
    if hflip:
        value = value.flip(-1)
    if vflip:
        value = value.flip(-2)
    return torch.rot90(value, k, dims=(-2, -1)) if k else value


def _as_transpose_and_flips() -> dict[tuple[bool, bool, int], tuple[bool, tuple[int, ...]]]:
    """Each (hflip, vflip, k) as one optional transpose + one flip, found on a 2×3 probe.

    The eight results form the dihedral group of the square; as transpose + flip they cost one
    copy per tensor instead of up to four (flip, flip, rot90, contiguous).
    """
    probe = torch.arange(6).reshape(2, 3)
    table = {}
    for hflip in (False, True):
        for vflip in (False, True):
            for k in range(4):
                expected = apply_flips_and_rotation(probe, hflip, vflip, k)
                table[(hflip, vflip, k)] = next(
                    (transpose, dims)
                    for transpose in (False, True)
                    for dims in ((), (-2,), (-1,), (-2, -1))
                    if torch.equal(_transpose_flip(probe, transpose, dims), expected)
                )
    return table


def _transpose_flip(value: torch.Tensor, transpose: bool, dims: tuple[int, ...]) -> torch.Tensor:
    value = value.transpose(-2, -1) if transpose else value
    return value.flip(dims) if dims else value


_DIHEDRAL = _as_transpose_and_flips()


# --------------------------------------------------------------------------------------------
# Deterministic, resumable data order
# --------------------------------------------------------------------------------------------
class SeededAugmentDataset(Dataset):
    """Applies a random transform with an RNG seeded by ``(seed, epoch, index)``.

    The global torch / NumPy / Python RNG states are restored afterwards, so augmentation does
    not depend on how many samples were drawn before (the key to resuming mid-epoch).
    """

    def __init__(self, base: Dataset, transform: Callable[[dict], dict] | None, seed: int) -> None:
        self.base = base
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        sample = self.base[index]
        if self.transform is None:
            return sample
        sample_seed = int(np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(1)[0])
        if getattr(self.transform, "accepts_generator", False):
            # a private generator seeded alike draws what the seeded global RNG would, without
            # torch.manual_seed and the NumPy state copies (~0.5 ms a sample)
            return self.transform(sample, generator=torch.Generator().manual_seed(sample_seed))
        torch_state, numpy_state, python_state = (
            torch.get_rng_state(),
            np.random.get_state(),  # noqa: NPY002 (the legacy global RNG is what we save/restore)
            random.getstate(),
        )
        try:
            torch.manual_seed(sample_seed)
            np.random.seed(sample_seed)  # noqa: NPY002 (the legacy global RNG is what we save/restore)
            random.seed(sample_seed)
            return self.transform(sample)
        finally:
            torch.set_rng_state(torch_state)
            np.random.set_state(numpy_state)  # noqa: NPY002 (the legacy global RNG is what we save/restore)
            random.setstate(python_state)

    def __getattr__(self, name: str) -> Any:  # expose manifest_hash, plot, ... of the base
        if name in ("base", "transform", "seed", "epoch"):
            raise AttributeError(name)
        return getattr(self.base, name)


_SPATIAL_KEYS = ("optical", "sar", "target", "mask", "cloud_mask")


def centre_crop_sample(sample: Mapping[str, Any], size: int | None) -> dict[str, Any]:
    """A copy of ``sample`` with every spatial array centre-cropped to ``size``×``size``.

    ``None`` or a size not smaller than the tile returns an unchanged (shallow) copy. Used to keep
    heavy models (DSen2-CR at 256² costs ~2.5 TFLOP) interactive on a CPU.
    """
    out = dict(sample)
    if size is None:
        return out
    height, width = spatial_shape(sample["target"])
    if size >= height and size >= width:
        return out
    window = Window.centred(height / 2, width / 2, int(size), (height, width))
    for key in _SPATIAL_KEYS:
        if key in out:
            value = out[key]
            out[key] = value[..., window.row : window.row + window.height, window.col : window.col + window.width]
    return out
