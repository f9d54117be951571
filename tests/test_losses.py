"""Loss functions against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from tdpcr_lib.losses import charbonnier_cloud_weighted, compute_loss, reconstruction_loss, segmentation_loss

C1, C2 = 0.01**2, 0.03**2


def test_reconstruction_loss_is_zero_for_a_perfect_prediction():
    image = torch.rand(2, 13, 16, 16, generator=torch.Generator().manual_seed(0))
    total, parts = reconstruction_loss(image, image.clone())
    assert float(total) == pytest.approx(0.0, abs=1e-6)
    assert parts["ssim"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("a", "b"), [(0.2, 0.5), (0.9, 0.1), (0.4, 0.4)])
def test_reconstruction_loss_on_constant_images_matches_the_formula(a, b):
    # Constant images: L1 = |a − b|; SSIM has no variance/covariance term, so
    # SSIM = (2ab + C1) / (a² + b² + C1) exactly (reflection padding keeps them constant).
    prediction = torch.full((1, 13, 12, 12), a)
    target = torch.full((1, 13, 12, 12), b)
    expected_ssim = (2 * a * b + C1) / (a * a + b * b + C1)
    expected = 0.9 * abs(a - b) + 0.1 * (1 - expected_ssim)
    total, parts = reconstruction_loss(prediction, target)
    assert parts["l1"] == pytest.approx(abs(a - b), abs=1e-6)
    # float32 moments (E[x²] − μ²) limit the agreement to ~1e-4
    assert parts["ssim"] == pytest.approx(expected_ssim, abs=2e-4)
    assert float(total) == pytest.approx(expected, abs=2e-5)


def test_reconstruction_loss_weights_are_configurable_and_differentiable():
    prediction = torch.full((1, 13, 12, 12), 0.3, requires_grad=True)
    target = torch.full((1, 13, 12, 12), 0.5)
    total, _ = reconstruction_loss(prediction, target, l1_weight=1.0, ssim_weight=0.0)
    assert float(total.detach()) == pytest.approx(0.2, abs=1e-6)
    total.backward()
    # d/dx mean|x − y| = −1/N per element for x < y
    assert torch.allclose(prediction.grad, torch.full_like(prediction, -1 / prediction.numel()))


def test_reconstruction_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_loss(torch.zeros(1, 13, 12, 12), torch.zeros(1, 12, 12, 12))


def test_cross_entropy_by_hand_and_ignore_index():
    # Two pixels with logits [0, ln 3] → p = [1/4, 3/4]; one ignored pixel with any logits.
    logits = torch.tensor([[[[0.0, 0.0, 5.0]], [[math.log(3), math.log(3), -5.0]]]])  # (1,2,1,3)
    labels = torch.tensor([[[1, 0, 255]]])
    expected = (-math.log(3 / 4) - math.log(1 / 4)) / 2
    assert float(segmentation_loss(logits, labels)) == pytest.approx(expected, abs=1e-6)


def test_cross_entropy_with_every_pixel_ignored_is_zero_not_nan():
    logits = torch.randn(1, 7, 4, 4, requires_grad=True)
    loss = segmentation_loss(logits, torch.full((1, 4, 4), 255))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (torch.full((1, 4, 4), 7), "label codes must be in 0..6"),
        (torch.zeros(1, 3, 4, dtype=torch.long), "do not match"),
    ],
)
def test_cross_entropy_rejects_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        segmentation_loss(torch.zeros(1, 7, 4, 4), labels)


def test_charbonnier_weights_cloudy_pixels_six_times():
    prediction = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[0.5, 0.5]]]])
    cloud = torch.tensor([[[1.0, 0.0]]])
    per_pixel = (0.25 + 1e-6) ** 0.45
    expected = (6 * per_pixel + 1 * per_pixel) / 2
    got = charbonnier_cloud_weighted(prediction, target, cloud)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def _batch_and_outputs():
    generator = torch.Generator().manual_seed(3)
    batch = {
        "target": torch.rand(2, 13, 12, 12, generator=generator),
        "mask": torch.randint(0, 7, (2, 12, 12), generator=generator),
        "cloud_mask": (torch.rand(2, 12, 12, generator=generator) > 0.5).float(),
    }
    outputs = {
        "reconstruction": torch.rand(2, 13, 12, 12, generator=generator),
        "segmentation": torch.randn(2, 7, 12, 12, generator=generator),
    }
    return outputs, batch


@pytest.mark.parametrize("rec_weight", [0.0, 1.0, 2.5])
def test_phase2_objective_is_ce_plus_lambda_rec(rec_weight):
    outputs, batch = _batch_and_outputs()
    total, parts = compute_loss(outputs, batch, "seg_rec", rec_weight=rec_weight)
    ce = float(segmentation_loss(outputs["segmentation"], batch["mask"]))
    rec = float(reconstruction_loss(outputs["reconstruction"], batch["target"])[0])
    assert float(total) == pytest.approx(ce + rec_weight * rec, rel=1e-6)
    assert parts["ce"] == pytest.approx(ce, rel=1e-6)
    assert parts["loss"] == pytest.approx(float(total))


def test_phase1_objective_ignores_segmentation_and_multitask_uses_charbonnier():
    outputs, batch = _batch_and_outputs()
    rec_only, parts = compute_loss({"reconstruction": outputs["reconstruction"]}, batch, "rec")
    assert set(parts) == {"loss", "l1", "ssim", "rec"}
    assert float(rec_only) == pytest.approx(float(reconstruction_loss(outputs["reconstruction"], batch["target"])[0]))
    joint, parts = compute_loss(outputs, batch, "multitask")
    expected = float(segmentation_loss(outputs["segmentation"], batch["mask"])) + float(
        charbonnier_cloud_weighted(outputs["reconstruction"], batch["target"], batch["cloud_mask"])
    )
    assert float(joint) == pytest.approx(expected, rel=1e-6)
    assert "charbonnier" in parts


def test_segmentation_objective_without_a_decoder_says_what_to_do():
    outputs, batch = _batch_and_outputs()
    with pytest.raises(KeyError, match="attach the segmentation decoder"):
        compute_loss({"reconstruction": outputs["reconstruction"]}, batch, "seg_rec")
    with pytest.raises(ValueError, match="unknown objective"):
        compute_loss(outputs, batch, "perceptual")
