"""TDP-CR network: shapes, variants, PGF maths, gradients, budgets, determinism, config I/O."""

from __future__ import annotations

import json

import pytest
import torch

from tdpcr_lib.models import FUSIONS, TDPCR, ModelConfig, ModelConfigError, build_model
from tdpcr_lib.models.blocks import Upsample
from tdpcr_lib.models.complexity import count_parameters, flops_per_tile
from tdpcr_lib.models.pgf import PromptGuidedFusion

GROUP_KEYS = {"sar_encoder", "optical_encoder", "prompt_generator", "pgf", "shared_decoder", "reconstruction_head"}


def make_inputs(batch: int = 2, height: int = 32, width: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.rand(batch, 13, height, width, generator=generator),
        torch.rand(batch, 2, height, width, generator=generator),
    )


def small_model(fusion: str = "pgf", seg: bool = True, seed: int = 0) -> TDPCR:
    torch.manual_seed(seed)
    return build_model(ModelConfig.small(fusion=fusion, with_seg_decoder=seg))


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("size", [(32, 32), (37, 45)])
def test_output_shapes_and_dtypes(fusion, size):
    model = small_model(fusion).eval()
    optical, sar = make_inputs(2, *size)
    with torch.no_grad():
        out = model(optical, sar)
    assert out["reconstruction"].shape == (2, 13, *size)
    assert out["segmentation"].shape == (2, 7, *size)
    assert out["reconstruction"].dtype == out["segmentation"].dtype == torch.float32
    assert torch.isfinite(out["reconstruction"]).all() and torch.isfinite(out["segmentation"]).all()
    if fusion in ("pgf", "pgf_no_prompt"):
        gates = out["prompts"]
        assert len(gates) == 4
        for level, gate in enumerate(gates):
            expected = (-(-size[0] // 2**level), -(-size[1] // 2**level))
            assert gate.shape == (2, 1, *expected)
            assert gate.min() >= 0 and gate.max() <= 1
    else:
        assert "prompts" not in out


def test_segmentation_absent_until_attached_and_attach_is_idempotent():
    model = small_model(seg=False)
    optical, sar = make_inputs()
    assert "segmentation" not in model(optical, sar)
    assert "seg_decoder" not in model.module_groups()
    decoder = model.attach_segmentation_decoder()
    assert model.attach_segmentation_decoder() is decoder
    assert model.config.with_seg_decoder is True
    assert model.module_groups()["seg_decoder"] is decoder
    assert model(optical, sar)["segmentation"].shape == (2, 7, 32, 32)
    # a rebuilt model from the saved config has the decoder and the same parameter names
    rebuilt = build_model(ModelConfig.from_dict(model.config.to_dict()))
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradients_reach_every_parameter(fusion):
    model = small_model(fusion)
    optical, sar = make_inputs()
    out = model(optical, sar)
    loss = out["reconstruction"].square().mean() + out["segmentation"].square().mean()
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("fusion", FUSIONS)
def test_module_groups_cover_all_parameters_once(fusion):
    model = small_model(fusion)
    groups = model.module_groups()
    assert set(groups) == GROUP_KEYS | {"seg_decoder"}
    grouped = [id(p) for part in groups.values() for p in part.parameters()]
    assert len(grouped) == len(set(grouped)) == len(list(model.parameters()))
    if fusion != "pgf":
        assert sum(p.numel() for p in groups["prompt_generator"].parameters()) == 0
    if fusion == "optical_only":
        assert sum(p.numel() for p in groups["sar_encoder"].parameters()) == 0
        assert sum(p.numel() for p in groups["pgf"].parameters()) == 0


def test_pgf_block_is_a_gated_residual_injection():
    torch.manual_seed(0)
    block = PromptGuidedFusion(optical_channels=8, sar_channels=4, prompt_channels=3)
    o, s, p = torch.randn(2, 8, 6, 6), torch.randn(2, 4, 6, 6), torch.randn(2, 3, 6, 6)
    fused, gate = block(o, s, p)
    assert gate.shape == o.shape and (gate > 0).all() and (gate < 1).all()
    torch.testing.assert_close(fused, o + gate * block.align(s))
    # the gate depends on the prompt
    assert not torch.allclose(block.gate(o, s, p), block.gate(o, s, p + 1))
    # a closed gate (spatial-bias logit -inf) injects no SAR: the optical features pass unchanged
    with torch.no_grad():
        block.spatial_bias[-1].bias.fill_(-float("inf"))
    fused, gate = block(o, s, torch.randn(2, 3, 6, 6))
    assert (gate == 0).all()
    assert torch.equal(fused, o)


def test_no_prompt_block_refuses_to_silently_ignore_a_missing_prompt():
    block = PromptGuidedFusion(8, 4, prompt_channels=3)
    with pytest.raises(ValueError, match="prompt"):
        block(torch.randn(1, 8, 4, 4), torch.randn(1, 4, 4, 4), None)


def perturbed_sar_difference(model: TDPCR) -> float:
    optical, sar = make_inputs()
    model.eval()
    with torch.no_grad():
        a = model(optical, sar)
        b = model(optical, torch.rand_like(sar))
    return max((a[k] - b[k]).abs().max().item() for k in ("reconstruction", "segmentation"))


@pytest.mark.parametrize("fusion", ["pgf", "pgf_no_prompt", "concat"])
def test_sar_fusions_use_sar(fusion):
    assert perturbed_sar_difference(small_model(fusion)) > 1e-4


def test_optical_only_ignores_sar():
    assert perturbed_sar_difference(small_model("optical_only")) == 0.0


def test_closed_gates_make_pgf_model_ignore_sar():
    model = small_model("pgf")
    with torch.no_grad():
        for block in model.pgf:
            block.spatial_bias[-1].bias.fill_(-float("inf"))
    assert perturbed_sar_difference(model) == 0.0


def test_residual_output_starts_from_the_cloudy_input():
    model = small_model(seg=False)
    with torch.no_grad():
        model.reconstruction_head.weight.zero_()
        model.reconstruction_head.bias.zero_()
    optical, sar = make_inputs(1, 35, 33)
    torch.testing.assert_close(model(optical, sar)["reconstruction"], optical)
    direct = build_model(ModelConfig.small(residual=False))
    with torch.no_grad():
        direct.reconstruction_head.weight.zero_()
        direct.reconstruction_head.bias.zero_()
    assert direct(optical, sar)["reconstruction"].abs().max() == 0


@pytest.mark.parametrize("fusion", FUSIONS)
def test_fresh_residual_model_starts_near_the_identity(fusion):
    """Near-identity init: an untrained model changes the cloudy input only slightly."""
    torch.manual_seed(0)
    model = build_model(ModelConfig.small(fusion=fusion))
    optical, sar = make_inputs(2, 32, 32)
    with torch.no_grad():
        change = (model(optical, sar)["reconstruction"] - optical).abs().mean()
    assert 0 < change < 0.02  # a random (unscaled) head changes it by ~0.1-0.5
    assert model.reconstruction_head.bias.abs().max() == 0


def test_default_model_meets_the_parameter_and_flop_budget():
    with torch.device("meta"):
        model = build_model(ModelConfig(with_seg_decoder=True))
        dsen2cr = build_model(ModelConfig(arch="dsen2cr"))
    params = count_parameters(model)["total"]
    assert params <= 2_840_000
    assert params <= 0.15 * count_parameters(dsen2cr)["total"]
    assert flops_per_tile(model, size=256) <= 35e9


def test_same_seed_same_model_and_output():
    optical, sar = make_inputs()
    a, b, c = small_model(seed=3), small_model(seed=3), small_model(seed=4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.reconstruction_head.weight, c.reconstruction_head.weight)
    torch.testing.assert_close(a(optical, sar)["reconstruction"], b(optical, sar)["reconstruction"], rtol=0, atol=0)


def test_bf16_autocast_and_channels_last_on_cpu():
    model = small_model().eval().to(memory_format=torch.channels_last)
    optical, sar = make_inputs(1, 40, 40)
    with torch.no_grad():
        reference = model(optical, sar)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(
                optical.contiguous(memory_format=torch.channels_last), sar.contiguous(memory_format=torch.channels_last)
            )
    assert out["reconstruction"].dtype == torch.float32
    assert torch.isfinite(out["reconstruction"]).all() and torch.isfinite(out["segmentation"]).all()
    # bf16 has ~3 significant digits; the reconstruction must stay close to float32
    assert (out["reconstruction"] - reference["reconstruction"]).abs().max() < 0.1


@pytest.mark.parametrize(
    ("optical_shape", "sar_shape", "message"),
    [
        ((1, 12, 32, 32), (1, 2, 32, 32), "optical must be"),
        ((1, 13, 32, 32), (1, 3, 32, 32), "sar must be"),
        ((1, 13, 32, 32), (1, 2, 32, 30), "share"),
    ],
)
def test_bad_inputs_are_rejected_with_a_clear_message(optical_shape, sar_shape, message):
    model = small_model(seg=False)
    with pytest.raises(ValueError, match=message):
        model(torch.rand(optical_shape), torch.rand(sar_shape))


# ---------------------------------------------------------------------------------------------
# ModelConfig
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(),
        ModelConfig(fusion="concat", with_seg_decoder=True, sar_widths=(8, 8, 16, 16), name="x"),
        ModelConfig.small(arch="multitask_unet"),
        ModelConfig(arch="dsen2cr"),
    ],
)
def test_config_json_round_trip(config):
    text = json.dumps(config.to_dict())
    restored = ModelConfig.from_dict(json.loads(text))
    assert restored == config
    assert restored.to_dict() == config.to_dict()


def test_config_resolves_arch_defaults():
    assert ModelConfig().with_seg_decoder is False
    assert ModelConfig(arch="multitask_unet").with_seg_decoder is True
    assert ModelConfig().replace(arch="multitask_unet").with_seg_decoder is True
    assert ModelConfig(with_seg_decoder=True).replace(fusion="concat").with_seg_decoder is True
    assert ModelConfig().resolved_sar_widths == tuple(w // 2 for w in ModelConfig().widths)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"arch": "tdpcr", "widthz": [1, 2, 3, 4]}, "unknown key.*widthz"),
        ({"arch": "unet"}, "arch='unet' is unknown"),
        ({"fusion": "attention"}, "fusion='attention' is unknown"),
        ({"widths": [8, 16, 32]}, "widths must be 4 ints"),
        ({"num_classes": 0}, "num_classes must be a positive int"),
        ({"num_classes": "7"}, "num_classes must be a positive int"),
        ({"arch": "dsen2cr", "with_seg_decoder": True}, "no segmentation decoder"),
        ({"arch": "multitask_unet", "with_seg_decoder": False}, "always segments"),
        ({"expansion": -1.0}, "expansion must be a positive number"),
    ],
)
def test_config_rejects_bad_dicts(data, message):
    with pytest.raises(ModelConfigError, match=message):
        ModelConfig.from_dict(data)


def test_build_model_accepts_a_dict_and_copies_the_config():
    config = ModelConfig.small()
    model = build_model(config.to_dict())
    model.attach_segmentation_decoder()
    assert config.with_seg_decoder is False  # the caller's object is not mutated
    with pytest.raises(TypeError):
        build_model("tdpcr")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("fusion", FUSIONS)
def test_cuda_bf16_channels_last_matches_cpu(fusion):
    model = small_model(fusion).eval()
    optical, sar = make_inputs(2, 48, 40)
    with torch.no_grad():
        reference = model(optical, sar)
        gpu = model.cuda().to(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = gpu(optical.cuda().contiguous(memory_format=torch.channels_last), sar.cuda())
    assert out["reconstruction"].dtype == torch.float32
    assert (out["reconstruction"].cpu() - reference["reconstruction"]).abs().max() < 0.1
    assert out["segmentation"].shape == reference["segmentation"].shape


def test_upsampling_starts_without_a_checkerboard():
    """ICNR init: a constant input gives a constant output (no period-2 dot pattern)."""
    torch.manual_seed(0)
    out = Upsample(8, 4)(torch.ones(1, 8, 6, 6))
    assert out.shape == (1, 4, 12, 12)
    # every 2×2 sub-pixel block equals its neighbours: constant per channel
    assert torch.allclose(out, out[..., :1, :1].expand_as(out), atol=1e-6)
