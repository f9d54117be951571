"""DSen2-CR and the multi-task U-Net: the shared input/output contract and their sizes."""

from __future__ import annotations

import pytest
import torch

from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models.baselines import DSen2CR, MultiTaskUNet
from tdpcr_lib.models.complexity import count_parameters

DSEN2CR_PAPER_PARAMS = 18.95e6


def inputs(height: int, width: int, batch: int = 2):
    generator = torch.Generator().manual_seed(1)
    return (
        torch.rand(batch, 13, height, width, generator=generator),
        torch.rand(batch, 2, height, width, generator=generator),
    )


def test_dsen2cr_has_the_published_parameter_count():
    with torch.device("meta"):
        model = build_model(ModelConfig(arch="dsen2cr"))
    total = count_parameters(model)["total"]
    assert abs(total - DSEN2CR_PAPER_PARAMS) <= 0.005 * DSEN2CR_PAPER_PARAMS
    # hand count: 15->256 conv, 16 blocks of two 256->256 convs, 256->13 conv (3x3, with biases)
    assert total == (9 * 15 * 256 + 256) + 32 * (9 * 256 * 256 + 256) + (9 * 256 * 13 + 13)
    assert len(model.body) == 16 and all(block.scale == 0.1 for block in model.body)


@pytest.mark.parametrize("arch", ["dsen2cr", "multitask_unet"])
@pytest.mark.parametrize("size", [(32, 32), (27, 41)])
def test_baseline_output_contract(arch, size):
    torch.manual_seed(0)
    model = build_model(ModelConfig.small(arch=arch)).eval()
    optical, sar = inputs(*size)
    with torch.no_grad():
        out = model(optical, sar)
    assert out["reconstruction"].shape == (2, 13, *size)
    assert out["reconstruction"].dtype == torch.float32
    if arch == "multitask_unet":
        assert out["segmentation"].shape == (2, 7, *size)
    else:
        assert "segmentation" not in out
    assert model.config.arch == arch


@pytest.mark.parametrize("arch", ["dsen2cr", "multitask_unet"])
def test_baselines_learn_a_correction_on_top_of_the_cloudy_input(arch):
    model = build_model(ModelConfig.small(arch=arch))
    last = model.tail if arch == "dsen2cr" else model.reconstruction_head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    optical, sar = inputs(20, 24)
    torch.testing.assert_close(model(optical, sar)["reconstruction"], optical)


@pytest.mark.parametrize("arch", ["dsen2cr", "multitask_unet"])
def test_baseline_gradients_reach_every_parameter_and_sar_matters(arch):
    torch.manual_seed(0)
    model = build_model(ModelConfig.small(arch=arch))
    optical, sar = inputs(32, 32)
    out = model(optical, sar)
    loss = sum(v.square().mean() for v in out.values())
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0] == []
    model.eval()
    with torch.no_grad():
        a = model(optical, sar)["reconstruction"]
        b = model(optical, torch.rand_like(sar))["reconstruction"]
    assert (a - b).abs().max() > 1e-5


def test_multitask_unet_is_at_least_as_large_as_tdpcr():
    with torch.device("meta"):
        unet = build_model(ModelConfig(arch="multitask_unet"))
        tdpcr = build_model(ModelConfig(with_seg_decoder=True))
    unet_params = count_parameters(unet)["total"]
    assert unet_params >= count_parameters(tdpcr)["total"]
    assert 7e6 < unet_params < 9e6  # the documented 7.8 M


def test_baseline_classes_refuse_other_arches():
    with pytest.raises(ValueError, match="dsen2cr"):
        DSen2CR(ModelConfig.small())
    with pytest.raises(ValueError, match="multitask_unet"):
        MultiTaskUNet(ModelConfig.small())


def test_baselines_run_under_bf16_autocast_and_channels_last():
    optical, sar = inputs(24, 24, batch=1)
    for arch in ("dsen2cr", "multitask_unet"):
        model = build_model(ModelConfig.small(arch=arch)).eval().to(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(optical.contiguous(memory_format=torch.channels_last), sar)
        assert out["reconstruction"].dtype == torch.float32
        assert torch.isfinite(out["reconstruction"]).all()
