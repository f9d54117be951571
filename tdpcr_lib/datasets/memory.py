"""Keep decoded samples in memory: every tile is decoded from its GeoTIFFs once per run.

Decoding the five GeoTIFFs of a sample was a fifth of a CPU training epoch of the default recipe
(the synthetic twin's 200 training tiles are decoded again every epoch, ``reports/benchmarks.md``,
"Training pipeline"). :class:`InMemoryDataset` wraps a dataset and keeps each sample the first
time it is read, up to a byte budget; samples beyond the budget are read from the base dataset
every time, so a split larger than RAM still trains, only the part that fits is faster.

Only a dataset whose samples are deterministic may be held (a random transform inside the base
dataset would be frozen at its first draw): :func:`holds_fixed_samples` checks that every level
of the wrapper chain has ``transforms``/``transform`` set to ``None``. The trainer applies its
random augmentation *after* this wrapper, per ``(seed, epoch, index)``, so nothing changes in
what a run sees.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

#: Default budget of decoded samples held per dataset (the default synthetic twin's training split
#: is ~120 MB; a real LuojiaSET-OSFCR tile of 256 px is ~7.5 MB, so ~140 of them fit).
DEFAULT_MEMORY_BYTES = 1 << 30


def sample_nbytes(sample: dict[str, Any]) -> int:
    """Bytes held by the tensors of a sample dict."""
    return sum(value.element_size() * value.nelement() for value in sample.values() if torch.is_tensor(value))


def holds_fixed_samples(dataset: Any) -> bool:
    """Whether every read of a sample returns the same values (no random transform on the way).

    Walks ``.base`` (tdpcr wrappers) and ``.dataset`` (``torch.utils.data.Subset``) down to the
    dataset that reads the files; every level must have no transform, and the last must say so
    explicitly (``transforms = None``, as :class:`tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR`).
    A dataset that does not tell is treated as random and not held.
    """
    seen = 0
    while dataset is not None and seen < 16:
        for name in ("transforms", "transform"):
            if getattr(dataset, name, None) is not None:
                return False
        inner = dataset.__dict__.get("base", dataset.__dict__.get("dataset")) if hasattr(dataset, "__dict__") else None
        if inner is None:
            return "transforms" in getattr(dataset, "__dict__", {})
        dataset, seen = inner, seen + 1
    return False


class InMemoryDataset(Dataset):
    """``base`` with each sample kept after its first read (up to ``max_bytes`` in all).

    Parameters
    ----------
    base
        A map-style dataset of sample dicts with fixed values (see :func:`holds_fixed_samples`).
    max_bytes
        Budget for the held samples; once it is spent, further samples are read from ``base``
        every time.

    Notes
    -----
    ``__getitem__`` returns a new dict of the held tensors (never copies of their data); training
    augmentation and collation copy before anything is modified, and the model does not write to
    its inputs. Attributes such as ``split``, ``manifest_hash``, ``root`` and ``plot`` are those of
    ``base``. With DataLoader worker processes each worker would hold its own copy, so the
    trainer uses this wrapper only when it loads in the main process.
    """

    def __init__(self, base: Dataset, max_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self.base = base
        self.max_bytes = int(max_bytes)
        self.held_bytes = 0
        self._held: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        held = self._held.get(index)
        if held is not None:
            return dict(held)
        sample = self.base[index]
        size = sample_nbytes(sample)
        if self.held_bytes + size <= self.max_bytes:
            self._held[index] = sample
            self.held_bytes += size
            return dict(sample)
        return sample

    @property
    def held_samples(self) -> int:
        """How many samples are held."""
        return len(self._held)

    def __repr__(self) -> str:
        return (
            f"InMemoryDataset({self.base!r}, held={self.held_samples}/{len(self)}, "
            f"{self.held_bytes / 2**20:.1f} MiB of {self.max_bytes / 2**20:.0f} MiB)"
        )

    def __getattr__(self, name: str) -> Any:  # expose split, manifest_hash, plot, ... of the base
        if name in ("base", "max_bytes", "held_bytes", "_held"):
            raise AttributeError(name)
        return getattr(self.base, name)


def hold_in_memory(dataset: Dataset | None, max_bytes: int = DEFAULT_MEMORY_BYTES) -> Dataset | None:
    """``InMemoryDataset(dataset)`` when its samples are fixed and ``max_bytes > 0``; else as is."""
    if dataset is None or max_bytes <= 0 or isinstance(dataset, InMemoryDataset) or not holds_fixed_samples(dataset):
        return dataset
    return InMemoryDataset(dataset, max_bytes)
