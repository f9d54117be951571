"""Decoded samples held in memory: same samples, decoded once, same training run."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.memory import InMemoryDataset, hold_in_memory, holds_fixed_samples, sample_nbytes
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.training.config import TrainConfig
from tdpcr_lib.training.trainer import Trainer
from tdpcr_lib.transforms import TrainAugment


class _CountingReads(Dataset):
    """Fixed samples; counts how often each index is read."""

    transforms = None

    def __init__(self, n: int = 6) -> None:
        self.reads = [0] * n
        self.split = "train"

    def __len__(self) -> int:
        return len(self.reads)

    def __getitem__(self, index: int) -> dict:
        self.reads[index] += 1
        return {"optical": torch.full((2, 4, 4), float(index)), "id": f"tile{index}"}


def test_samples_are_read_once_and_equal_the_base():
    base = _CountingReads()
    held = InMemoryDataset(base)
    for _ in range(3):
        for i in range(len(held)):
            sample = held[i]
            assert (
                torch.equal(sample["optical"], base.__class__.__getitem__(_CountingReads(), i)["optical"])
                and sample["id"] == f"tile{i}"
            )
    assert base.reads == [1] * 6
    assert held.held_samples == 6 and held.split == "train"  # attributes of the base show through
    held[0]["optical"] = None  # a caller replacing a key does not touch what is held
    assert held[0]["optical"] is not None


def test_samples_beyond_the_budget_are_read_every_time():
    base = _CountingReads()
    one_sample = sample_nbytes(base[0])
    base.reads[0] = 0
    held = InMemoryDataset(base, max_bytes=2 * one_sample)
    for _ in range(2):
        for i in range(len(held)):
            held[i]
    assert held.held_samples == 2 and held.held_bytes == 2 * one_sample
    assert base.reads == [1, 1, 2, 2, 2, 2]


def test_only_datasets_with_fixed_samples_are_held(tiny_luojiaset_root):
    plain = LuojiaSETOSFCR(tiny_luojiaset_root, split="train")
    augmented = LuojiaSETOSFCR(tiny_luojiaset_root, split="train", transforms=TrainAugment(16))
    assert holds_fixed_samples(plain) and holds_fixed_samples(Subset(plain, [0, 1]))
    assert not holds_fixed_samples(augmented)
    assert not holds_fixed_samples(Subset(augmented, [0, 1]))
    assert not holds_fixed_samples(torch.utils.data.TensorDataset(torch.zeros(3)))  # cannot tell
    assert isinstance(hold_in_memory(plain), InMemoryDataset)
    assert hold_in_memory(augmented) is augmented
    assert hold_in_memory(plain, max_bytes=0) is plain
    assert hold_in_memory(None) is None


def test_training_from_memory_reaches_the_same_weights(tiny_luojiaset_root, tmp_path):
    plain = Subset(LuojiaSETOSFCR(tiny_luojiaset_root, split="train"), range(8))
    val = Subset(LuojiaSETOSFCR(tiny_luojiaset_root, split="val"), range(2))
    config = TrainConfig(
        phase="phase1", epochs=2, max_steps=None, batch_size=4, crop_size=16, lr=1e-3, progress=False, val_max_batches=1
    )
    weights = []
    for memory_bytes in (0, 1 << 30):
        torch.manual_seed(0)
        model = build_model(ModelConfig.small())
        trainer = Trainer(
            model,
            config,
            plain,
            val,
            tmp_path / str(memory_bytes),
            device="cpu",
            train_transform=TrainAugment(config.crop_size),
            memory_bytes=memory_bytes,
        )
        assert isinstance(trainer.train_data.base, InMemoryDataset) == (memory_bytes > 0)
        result = trainer.fit()
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
        losses = [row["train_loss"] for row in result.history]
        assert len(losses) == 2
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
