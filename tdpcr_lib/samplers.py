"""Samplers and index subsets: resumable (DDP-sharded) shuffling and fixed index subsets.

Sharding across DDP ranks has one rule everywhere: rank ``r`` of ``W`` takes positions
``r, r+W, ...``. Training gets them from :class:`ResumableSampler` (positions of a seeded
permutation, as ``DistributedSampler`` does); evaluation from :meth:`IndexSubset.shard`
(positions of the dataset itself, no padding, so no sample is counted twice when per-rank
metrics are merged).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import Dataset, DistributedSampler, Sampler


class ResumableSampler(Sampler[int]):
    """``DistributedSampler`` order for (rank, world), minus the first ``skip`` samples.

    With ``world_size=1`` it is a seeded shuffle; with several ranks rank ``r`` gets positions
    ``r, r+W, ...`` of the same permutation, so a global batch of ``B`` (``B/W`` per rank) holds
    the same samples as a one-process batch ``B``.
    """

    def __init__(self, dataset: Dataset, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        self.inner = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=True
        )
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.skip = int(skip)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip :])

    def __len__(self) -> int:
        return max(len(self.inner) - self.skip, 0)


class IndexSubset(Dataset):
    """The samples ``indices`` of ``base``, keeping its ``split`` and ``manifest_hash``.

    Evaluation reads both attributes (they are recorded with the metrics), so a subset must not
    hide them the way ``torch.utils.data.Subset`` does.
    """

    def __init__(self, base: Any, indices: Sequence[int]) -> None:
        self.base, self.indices = base, list(indices)
        self.split = getattr(base, "split", None)
        self.manifest_hash = getattr(base, "manifest_hash", None)

    @classmethod
    def shard(cls, base: Any, rank: int = 0, world_size: int = 1) -> IndexSubset:
        """Rank ``rank``'s shard of ``base``: every ``world_size``-th sample from ``rank``."""
        return cls(base, range(rank, len(base), world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.base[self.indices[i]]
