"""The fused SSIM (blur matrices + closed-form gradient) equals the padded-convolution SSIM."""

from __future__ import annotations

import pytest
import torch

from tdpcr_lib.losses import reconstruction_loss
from tdpcr_lib.metrics.ssim_kernel import blur_matrix, gaussian_kernel_1d, ssim_map_conv2d, ssim_map_fused


def _pair(shape, seed=0, channels_last=False):
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=generator)
    # a prediction near the target (the regime of training), with a few out-of-range values
    pred = target + 0.1 * torch.randn(shape, generator=generator)
    if channels_last:
        pred = pred.contiguous(memory_format=torch.channels_last)
        target = target.contiguous(memory_format=torch.channels_last)
    return pred, target


def test_blur_matrix_is_the_reflect_padded_gaussian():
    signal = torch.rand(3, 20, dtype=torch.float64)
    padded = torch.nn.functional.pad(signal[:, None], (5, 5), mode="reflect")[:, 0]
    expected = torch.nn.functional.conv1d(padded[:, None], gaussian_kernel_1d()[None, None])[:, 0]
    torch.testing.assert_close(signal @ blur_matrix(20, dtype=torch.float64), expected)
    # every output is a weighted mean: the columns sum to one
    torch.testing.assert_close(blur_matrix(20, dtype=torch.float64).sum(0), torch.ones(20, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(2, 13, 64, 64), (1, 3, 12, 40), (3, 2, 33, 17)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_ssim_matches_the_convolution_in_value_and_gradient(shape, channels_last):
    pred, target = _pair(shape, channels_last=channels_last)
    weight = torch.rand(shape, generator=torch.Generator().manual_seed(1))  # a non-uniform upstream
    results = []
    for function in (ssim_map_conv2d, ssim_map_fused):
        leaf = pred.clone().requires_grad_(True)
        value = function(leaf, target)
        (value * weight).sum().backward()
        results.append((value.detach(), leaf.grad))
    (old_value, old_grad), (new_value, new_grad) = results
    torch.testing.assert_close(new_value, old_value, rtol=0, atol=5e-5)
    torch.testing.assert_close(new_grad, old_grad, rtol=1e-4, atol=1e-4 * old_grad.abs().max())


def test_fused_ssim_gradient_passes_gradcheck_in_float64():
    pred, target = _pair((1, 2, 14, 13), seed=3)
    pred = pred.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: ssim_map_fused(x, target.double()), (pred,))


def test_fused_ssim_falls_back_when_the_target_needs_a_gradient():
    pred, target = _pair((1, 2, 16, 16), seed=4)
    target.requires_grad_(True)
    ssim_map_fused(pred, target).sum().backward()
    assert target.grad is not None and target.grad.abs().sum() > 0


def test_reconstruction_loss_value_is_unchanged_by_the_fused_ssim():
    pred, target = _pair((4, 13, 64, 64), seed=5)
    total, parts = reconstruction_loss(pred, target)
    old_ssim = ssim_map_conv2d(pred, target).mean()
    l1 = (pred - target).abs().mean()
    assert float(total) == pytest.approx(float(0.9 * l1 + 0.1 * (1 - old_ssim)), abs=1e-6)
    assert parts["ssim"] == pytest.approx(float(old_ssim), abs=1e-6)
