"""The fused TDP-CR kernels compute the same function as the plain layer-by-layer reference."""

from __future__ import annotations

import pytest
import torch

from tdpcr_lib.models import FUSIONS, ModelConfig, build_model
from tdpcr_lib.models.blocks import KernelChoice, reference_kernels, use_kernels
from tdpcr_lib.models.checkpoint import load_model, save_checkpoint


def perturbed_model(fusion: str = "pgf", seed: int = 0):
    """A small TDP-CR with every parameter moved off its init (LayerNorm γ ≠ 1, β ≠ 0, ICNR broken,
    a non-tiny head), so that a fold that dropped a term would show."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig.small(fusion=fusion, with_seg_decoder=True))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def inputs(batch: int, height: int, width: int, channels_last: bool):
    generator = torch.Generator().manual_seed(1)
    optical = torch.rand(batch, 13, height, width, generator=generator)
    sar = torch.rand(batch, 2, height, width, generator=generator)
    if channels_last:
        optical = optical.contiguous(memory_format=torch.channels_last)
        sar = sar.contiguous(memory_format=torch.channels_last)
    return optical, sar


def assert_same_outputs(new, old, atol=1e-5, rtol=1e-5):
    assert new.keys() == old.keys()
    for key in ("reconstruction", "segmentation"):
        torch.testing.assert_close(new[key], old[key], atol=atol, rtol=rtol)
    for a, b in zip(new.get("prompts", []), old.get("prompts", []), strict=True):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol)


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("channels_last", [True, False])
def test_fused_forward_equals_reference_on_fixed_weights(fusion, channels_last):
    model = perturbed_model(fusion).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optical, sar = inputs(2, 37, 45, channels_last)  # odd size: padding and cropping too
    with torch.inference_mode():
        fused = model(optical, sar)
        with reference_kernels(model):
            reference = model(optical, sar)
    assert_same_outputs(fused, reference)


def test_fused_gradients_equal_reference():
    """Training runs the fused path too: same loss, same gradients."""
    model = perturbed_model().train().to(memory_format=torch.channels_last)
    optical, sar = inputs(2, 32, 32, channels_last=True)

    def grads():
        model.zero_grad()
        out = model(optical, sar)
        (out["reconstruction"].square().mean() + out["segmentation"].square().mean()).backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    fused = grads()
    with reference_kernels(model):
        reference = grads()
    assert fused.keys() == reference.keys()
    for name in fused:
        torch.testing.assert_close(
            fused[name], reference[name], atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}"
        )


def test_fused_bf16_autocast_stays_close_to_fp32_reference():
    model = perturbed_model().eval().to(memory_format=torch.channels_last)
    optical, sar = inputs(1, 32, 32, channels_last=True)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused = model(optical, sar)
        with reference_kernels(model):
            reference = model(optical, sar)
    assert fused["reconstruction"].dtype == torch.float32
    # bf16 keeps 8 mantissa bits: the documented tolerance of the bf16 option
    torch.testing.assert_close(fused["reconstruction"], reference["reconstruction"], atol=0.1, rtol=0.05)


def test_checkpoints_load_and_give_the_same_outputs(tmp_path):
    """No parameter was added, renamed or reshaped: a state_dict saved by the reference
    formulation loads unchanged and gives the same prediction."""
    model = perturbed_model().eval()
    save_checkpoint(tmp_path / "ckpt", model, phase="phase2", epoch=1, step=1)
    loaded, _ = load_model(tmp_path / "ckpt")
    assert list(loaded.state_dict()) == list(model.state_dict())
    optical, sar = inputs(1, 32, 32, channels_last=False)
    with torch.inference_mode():
        with reference_kernels(model):
            reference = model(optical, sar)
        fused = loaded.eval()(optical, sar)
    assert_same_outputs(fused, reference)


def test_the_kernel_choice_belongs_to_one_model_and_is_restored():
    """Switching one model to the reference kernels leaves another model (e.g. one being trained in
    the same process) on its own choice, and the context restores each block's previous choice."""
    model, other = perturbed_model().eval(), perturbed_model(seed=1).eval()
    blocks = [m for m in model.modules() if isinstance(m, KernelChoice)]
    kinds = {type(m).__name__ for m in blocks}
    assert {"ResidualBlock", "PromptGuidedFusion", "Upsample"} <= kinds
    with reference_kernels(model):
        assert not any(m.fused for m in blocks)
        assert all(m.fused for m in other.modules() if isinstance(m, KernelChoice))
    assert all(m.fused for m in blocks)
    use_kernels(model, fused=False)
    with pytest.raises(RuntimeError), reference_kernels(model):
        raise RuntimeError("a failing forward")
    assert not any(m.fused for m in blocks)  # the explicit choice survives the context
    assert "fused" not in str(list(model.state_dict()))  # not a parameter or buffer: checkpoints unchanged
