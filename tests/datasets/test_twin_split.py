"""The default twin's split: >= 100 test and >= 50 validation tiles, balanced over the buckets,
with the training split (and so the steps per epoch) unchanged."""

from __future__ import annotations

from types import SimpleNamespace

from tdpcr_lib.datasets.luojiaset.manifest import split_samples
from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.datasets.synthetic.tiles import DEFAULT_N_TILES, SMOKE_N_TILES, twin_split_ratios


def _split(n_tiles: int) -> dict[str, dict[str, int]]:
    samples = [SimpleNamespace(bucket=BUCKETS[i % len(BUCKETS)]) for i in range(n_tiles)]
    splits = split_samples(samples, twin_split_ratios(n_tiles))
    return {name: {b: sum(s.bucket == b for s in rows) for b in BUCKETS} for name, rows in splits.items()}


def test_default_twin_has_100_test_and_50_val_tiles_balanced_over_buckets():
    counts = _split(DEFAULT_N_TILES)
    assert counts["test"] == dict.fromkeys(BUCKETS, 20)  # 100 test tiles
    assert counts["val"] == dict.fromkeys(BUCKETS, 10)  # 50 validation tiles
    assert counts["train"] == dict.fromkeys(BUCKETS, 40)  # 200: 25 steps of batch 8 per epoch


def test_small_twins_keep_the_authors_split():
    assert twin_split_ratios(SMOKE_N_TILES) == (0.8, 0.1, 0.1)
    assert _split(SMOKE_N_TILES)["val"] == dict.fromkeys(BUCKETS, 1)
