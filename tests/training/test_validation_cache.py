"""Validation scores the unchanged cloudy input once per run; checkpoints skip re-hashing."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
import torch
from torch.utils.data import Subset

from tdpcr_lib.core.io import sha256_file
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.metrics.accumulator import EvaluationAccumulator
from tdpcr_lib.metrics.input_cache import InputMetricsCache
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models.checkpoint import load_model, read_meta, save_checkpoint
from tdpcr_lib.models.checkpoint_files import HASHES_FIELD, MODEL_FILE, DigestMemo
from tdpcr_lib.training.config import TrainConfig
from tdpcr_lib.training.trainer import Trainer


def _batches(seed: int, scale: float = 1.0, size: int = 16):
    generator = torch.Generator().manual_seed(seed)
    for b in range(3):
        target = torch.rand(2, 13, size, size, generator=generator)
        optical = (target + 0.3 * torch.rand(2, 13, size, size, generator=generator)).clamp(0, 1)
        recon = target + 0.05 * torch.randn(2, 13, size, size, generator=generator)
        cloud = (torch.rand(2, size, size, generator=generator) < 0.4).float()
        yield (
            {"reconstruction": recon},
            {
                "target": target * scale,
                "optical": optical * scale,
                "cloud_mask": cloud,
                "bucket": ["0-20%", "80%-100%"],
                "id": [f"t{b}a", f"t{b}b"],
            },
        )


def _frame(batches, cache: InputMetricsCache | None) -> pd.DataFrame:
    accumulator = EvaluationAccumulator()
    for outputs, batch in batches:
        accumulator.update(outputs, batch, input_cache=cache)
    return accumulator.to_frame(split="val")


def test_cached_input_metrics_give_the_same_frame_and_are_reused():
    cache = InputMetricsCache()
    fresh = _frame(_batches(0), None)
    first, second = _frame(_batches(0), cache), _frame(_batches(0), cache)
    pd.testing.assert_frame_equal(first, fresh, check_exact=True)
    pd.testing.assert_frame_equal(second, fresh, check_exact=True)
    assert (cache.misses, cache.hits, len(cache)) == (3, 3, 3)


@pytest.mark.parametrize(
    "changed",
    [
        {"seed": 1},  # another validation set with the same ids
        {"seed": 0, "scale": 0.5},  # another normalisation
        {"seed": 0, "size": 12},  # another crop
    ],
)
def test_a_different_input_is_never_served_stale_metrics(changed):
    cache = InputMetricsCache()
    _frame(_batches(0), cache)
    reused = _frame(_batches(**changed), cache)
    pd.testing.assert_frame_equal(reused, _frame(_batches(**changed), None), check_exact=True)
    assert cache.hits == 0 and cache.misses == 6


def test_trainer_validation_scores_the_input_once(tiny_luojiaset_root, tmp_path):
    train = Subset(LuojiaSETOSFCR(tiny_luojiaset_root, split="train"), range(4))
    val = Subset(LuojiaSETOSFCR(tiny_luojiaset_root, split="val"), range(2))
    config = TrainConfig(
        phase="phase1", epochs=1, max_steps=None, batch_size=2, crop_size=16, lr=1e-3, progress=False, eval_batch_size=1
    )
    torch.manual_seed(0)
    trainer = Trainer(build_model(ModelConfig.small()), config, train, val, tmp_path, device="cpu")
    first = trainer.validate()
    assert trainer.input_metrics.misses == 2 and trainer.input_metrics.hits == 0
    second = trainer.validate()
    assert trainer.input_metrics.hits == 2
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    trainer.input_metrics = InputMetricsCache()  # no cache at all: the same numbers
    pd.testing.assert_frame_equal(trainer.validate(), first, check_exact=True)


def test_digest_memo_reuses_only_equal_bytes():
    memo = DigestMemo()
    data = bytes(range(256)) * 100
    assert memo.sha256("a", data) == hashlib.sha256(data).hexdigest()
    assert memo.sha256("a", bytes(data)) == hashlib.sha256(data).hexdigest()
    changed = data[:-1] + b"\x00"
    assert memo.sha256("a", changed) == hashlib.sha256(changed).hexdigest()


def test_checkpoints_sharing_a_memo_record_their_files_true_hashes(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig.small())
    memo = DigestMemo()
    for name in ("best", "last", "again"):
        save_checkpoint(
            tmp_path / name,
            model,
            phase="phase1",
            epoch=1,
            step=2,
            digests=memo,
            code_version="abc",
            trainer_state={"x": torch.ones(3)},
        )
        meta = read_meta(tmp_path / name)
        for file, digest in meta[HASHES_FIELD].items():
            assert sha256_file(tmp_path / name / file) == digest, (name, file)
        assert meta["git_sha"] == "abc"
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_checkpoint(tmp_path / "changed", model, phase="phase1", epoch=1, step=3, digests=memo)
    changed = read_meta(tmp_path / "changed")[HASHES_FIELD][MODEL_FILE]
    assert changed == sha256_file(tmp_path / "changed" / MODEL_FILE)
    assert changed != read_meta(tmp_path / "last")[HASHES_FIELD][MODEL_FILE]
    load_model(tmp_path / "changed")  # verified on load
