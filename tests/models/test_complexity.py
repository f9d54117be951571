"""Parameter and FLOP accounting, and the complexity table."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tdpcr_lib.models import ModelConfig, build_model, named_configs
from tdpcr_lib.models.complexity import (
    complexity_table,
    count_parameters,
    flops_per_tile,
    measure_throughput,
    write_complexity_json,
)


def dsen2cr_flops(size: int, features: int = 256, blocks: int = 16) -> int:
    """Hand count: 2 FLOPs per multiply-add of every 3x3 convolution at full resolution."""
    macs_per_pixel = 9 * (15 * features + 2 * blocks * features * features + features * 13)
    return 2 * macs_per_pixel * size * size


def test_flops_of_dsen2cr_match_the_hand_count():
    with torch.device("meta"):
        model = build_model(ModelConfig(arch="dsen2cr"))
    flops = flops_per_tile(model, size=256)
    assert flops == dsen2cr_flops(256)
    assert flops == pytest.approx(2.48e12, rel=0.01)


def test_meta_count_equals_a_real_forward_pass():
    torch.manual_seed(0)
    model = build_model(ModelConfig.small(with_seg_decoder=True))
    assert flops_per_tile(model, size=32) == flops_per_tile(model, size=32, on_meta=False)
    # counting leaves the model untouched and in its mode
    assert model.training and next(model.parameters()).device.type == "cpu"


def test_flops_scale_with_tile_area():
    model = build_model(ModelConfig.small(with_seg_decoder=True))
    # convolutions scale with the area, the small MLPs on pooled vectors are a constant:
    # flops(s) = a·s² + c exactly
    f32, f64, f96 = (flops_per_tile(model, size=s) for s in (32, 64, 96))
    assert (f96 - f32) * 3 == (f64 - f32) * 8
    assert f64 == pytest.approx(4 * f32, rel=2e-3)


def test_count_parameters_total_trainable_and_groups():
    model = build_model(ModelConfig.small(with_seg_decoder=True))
    for p in model.optical_encoder.parameters():
        p.requires_grad_(False)
    counts = count_parameters(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["trainable"] == counts["total"] - counts["per_group"]["optical_encoder"]
    assert sum(counts["per_group"].values()) == counts["total"]
    plain = count_parameters(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)))
    assert plain == {"total": 11, "trainable": 11, "per_group": {"0": 8, "1": 3}}


def test_complexity_table_and_json(tmp_path):
    table = complexity_table(named_configs(small=True), size=32)
    assert list(table.index) == list(named_configs())
    assert table.loc["dsen2cr", "params_ratio"] == 1.0
    assert table.loc["dsen2cr", "gflops"] == pytest.approx(dsen2cr_flops(32, 16, 2) / 1e9)
    assert table.loc["tdpcr", "params"] > table.loc["tdpcr_phase1", "params"]
    assert table.loc["tdpcr_optical_only", "params.sar_encoder"] == 0
    assert (table["gmacs"] * 2 == table["gflops"]).all()
    path = write_complexity_json(table, tmp_path / "complexity.json")
    payload = json.loads(path.read_text())
    assert "2 x multiply-adds" in payload["flop_convention"]
    assert payload["models"]["tdpcr"]["params"] == int(table.loc["tdpcr", "params"])
    assert "params.input_conv" not in payload["models"]["tdpcr"]  # other models' parts dropped


def test_default_table_states_the_paper_budget():
    table = complexity_table()
    assert table.loc["tdpcr", "params_ratio"] <= 0.15
    assert table.loc["tdpcr", "gflops"] <= 35
    assert table.loc["multitask_unet", "params"] >= table.loc["tdpcr", "params"]


def test_measure_throughput_returns_tiles_per_second():
    model = build_model(ModelConfig.small())
    assert measure_throughput(model, size=32, batch_size=2, iterations=1, warmup=0) > 0
    assert measure_throughput(model, size=32, iterations=1, warmup=0, clock="process") > 0
    with pytest.raises(ValueError, match="clock"):
        measure_throughput(model, size=32, clock="gpu")


@pytest.mark.slow
def test_tdpcr_is_at_least_20x_faster_than_dsen2cr_on_cpu():
    torch.manual_seed(0)
    tdpcr = build_model(ModelConfig(with_seg_decoder=True))
    dsen2cr = build_model(ModelConfig(arch="dsen2cr"))
    # CPU time of this process on one thread: robust to other jobs on a shared machine (with
    # several threads, OpenMP spin-waiting under contention would count as CPU time)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fast = measure_throughput(tdpcr, size=128, iterations=3, clock="process")
        slow = measure_throughput(dsen2cr, size=128, iterations=1, clock="process")
    finally:
        torch.set_num_threads(threads)
    assert fast >= 20 * slow
