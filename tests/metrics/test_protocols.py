"""Conformance of the named evaluation protocols (tdpcr_lib.metrics.protocols).

Each test checks one convention against a value worked out by hand or an independent formula
written here, on small fixed tensors. The source of each convention is named in a comment.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tdpcr_lib.metrics.functional import cr_metrics
from tdpcr_lib.metrics.protocols import PROTOCOLS, ProtocolAccumulator, centre_crop, score

C1, C2 = 0.01**2, 0.03**2


def _const(value: float, n: int = 1, size: int = 16) -> np.ndarray:
    return np.full((n, 13, size, size), value, dtype=np.float64)


def _reference_ssim(x: torch.Tensor, y: torch.Tensor, centre: float, padding: int) -> torch.Tensor:
    """SSIM map with a full 11x11 2-D window (not separable), written from the pytorch_ssim formula."""
    g = torch.tensor([math.exp(-((i - centre) ** 2) / (2 * 1.5**2)) for i in range(11)], dtype=torch.float64)
    g = g / g.sum()
    window = torch.outer(g, g)[None, None].expand(x.shape[1], 1, 11, 11)

    def blur(z):
        return F.conv2d(z, window, padding=padding, groups=x.shape[1])

    mu1, mu2 = blur(x), blur(y)
    s11, s22, s12 = blur(x * x) - mu1**2, blur(y * y) - mu2**2, blur(x * y) - mu1 * mu2
    return ((2 * mu1 * mu2 + C1) * (2 * s12 + C2)) / ((mu1**2 + mu2**2 + C1) * (s11 + s22 + C2))


def _random_pair(seed: int = 0, n: int = 2, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(0.05, 0.6, (n, 13, size, size))
    return target + rng.normal(0, 0.03, target.shape), target


# ---------------------------------------------------------------- every protocol
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_keys_numpy_and_torch_agree(protocol):
    pred, target = _random_pair()
    from_numpy = score(protocol, pred, target)
    from_torch = score(protocol, torch.from_numpy(pred).float(), torch.from_numpy(target).float())
    expected = {"psnr", "ssim", "sam", "mae", "rmse"} | ({"sam_rad"} if protocol == "dsen2cr" else set())
    assert set(from_numpy) == expected
    for key in expected:
        assert from_numpy[key] == pytest.approx(from_torch[key], rel=1e-4, abs=1e-6)


def test_unknown_protocol_and_bad_shapes_are_refused():
    pred, target = _random_pair()
    with pytest.raises(ValueError, match="unknown evaluation protocol 'psnr'.*uncrtaints"):
        score("psnr", pred, target)
    with pytest.raises(ValueError, match=r"\(N, 13, H, W\)"):
        score("uncrtaints", pred[0], target[0])
    with pytest.raises(ValueError, match="valid must be"):
        score("allclear", pred, target, valid=np.ones((2, 5, 5), bool))


# ---------------------------------------------------------------- uncrtaints
def test_uncrtaints_hand_values_and_no_clipping():
    # UnCRtainTS metrics.py: rmse = sqrt(mean(sq)), psnr = 20*log10(1/rmse), mae = mean(abs)
    values = score("uncrtaints", _const(0.51), _const(0.5))
    assert values["rmse"] == pytest.approx(0.01)
    assert values["psnr"] == pytest.approx(40.0)
    assert values["mae"] == pytest.approx(0.01)
    # no clamp before scoring (img_metrics takes the raw output): 1.2 vs 1.0 is an error of 0.2,
    # while tdpcr clamps both to [0, 1] first
    assert score("uncrtaints", _const(1.2), _const(1.0))["mae"] == pytest.approx(0.2)
    assert score("tdpcr", _const(1.2), _const(1.0))["mae"] == pytest.approx(0.0)


def test_uncrtaints_sam_degrees_and_nan_images_skipped():
    # metrics.py: acos(clamp(<t,p>/|t|/|p|, -1, 1)) * 180/pi, mean over pixels
    target = np.zeros((2, 13, 12, 12))
    pred = np.zeros((2, 13, 12, 12))
    target[0, 0], pred[0, 1] = 1.0, 1.0  # image 0: orthogonal spectra everywhere -> 90 degrees
    target[1, 0], pred[1, 0] = 1.0, 1.0  # image 1: identical, except one all-zero pixel ...
    pred[1, :, 3, 3] = 0.0  # ... whose 0/0 makes the image's SAM NaN: the running mean skips it
    assert score("uncrtaints", pred, target)["sam"] == pytest.approx(90.0)
    assert score("uncrtaints", pred[:1], target[:1])["sam"] == pytest.approx(90.0)
    # tdpcr leaves undefined pixels out instead of the image: mean of 90 and 0 degrees
    assert score("tdpcr", pred, target)["sam"] == pytest.approx(45.0, abs=1e-3)


def test_uncrtaints_ssim_is_pytorch_ssim_with_zero_padding():
    # util/pytorch_ssim: Gaussian centred at window_size//2 = 5, F.conv2d(padding=5) (zeros)
    pred, target = _random_pair(1, n=1)
    expected = _reference_ssim(torch.from_numpy(pred), torch.from_numpy(target), 5.0, 5).mean()
    assert score("uncrtaints", pred, target)["ssim"] == pytest.approx(float(expected), rel=1e-10)
    # constant images, hand value away from borders: (2ab + C1) / (a^2 + b^2 + C1); zero padding
    # darkens the border, reflection padding (tdpcr) does not
    a, b = 0.3, 0.5
    inner = (2 * a * b + C1) / (a * a + b * b + C1)
    assert score("tdpcr", _const(a), _const(b))["ssim"] == pytest.approx(inner, rel=1e-5)
    assert score("uncrtaints", _const(a), _const(b))["ssim"] < inner - 1e-3


def test_uncrtaints_running_mean_over_batches():
    # avg_img_metrics.add: running mean over images, regardless of how they were batched
    pred, target = _random_pair(2, n=3)
    acc = ProtocolAccumulator("uncrtaints")
    acc.update(pred[:1], target[:1])
    acc.update(pred[1:], target[1:])
    per_image = [score("uncrtaints", pred[i : i + 1], target[i : i + 1])["psnr"] for i in range(3)]
    running = 0.0
    for k, v in enumerate(per_image, start=1):
        running = (k - 1) / k * running + v / k
    assert acc.compute()["psnr"] == pytest.approx(running)
    assert acc.n_images == 3


# ---------------------------------------------------------------- glfcr
def test_glfcr_scores_the_centre_128_crop():
    # GLF-CR codes/dataloader.py (is_test): y = x = (256 - 128) // 2 = 64, crop 128
    target = np.full((1, 13, 256, 256), 0.4)
    pred = target.copy()
    pred[..., :64, :] += 0.1  # errors only outside the centre crop
    pred[..., :, 192:] += 0.1
    values = score("glfcr", pred, target)
    assert values["psnr"] == 100.0  # metrics.py PSNR: `if mse == 0: return 100`
    assert values["mae"] == 0.0
    assert score("uncrtaints", pred, target)["mae"] > 0
    assert centre_crop(torch.zeros(1, 13, 256, 256)).shape[-2:] == (128, 128)


def test_glfcr_ssim_window_is_centred_at_5_5():
    # GLF-CR metrics.py gaussian(): exp(-(x - window_size / 2)**2 ...) -> centre 5.5, zero padding
    pred, target = _random_pair(3, n=1)
    expected = _reference_ssim(torch.from_numpy(pred), torch.from_numpy(target), 5.5, 5).mean()
    assert score("glfcr", pred, target)["ssim"] == pytest.approx(float(expected), rel=1e-10)
    centred = _reference_ssim(torch.from_numpy(pred), torch.from_numpy(target), 5.0, 5).mean()
    assert abs(float(expected) - float(centred)) > 1e-6  # the shift is a real difference


# ---------------------------------------------------------------- dsen2cr
def test_dsen2cr_psnr_is_over_the_batch_and_sam_in_both_units():
    # image_metrics.py cloud_psnr: 20*log10(10000 / rmse(DN)) over the whole Keras batch
    pred = np.concatenate([_const(0.51), _const(0.53)])
    target = _const(0.5, n=2)
    values = score("dsen2cr", pred, target)
    assert values["psnr"] == pytest.approx(20 * math.log10(1 / math.sqrt((0.01**2 + 0.03**2) / 2)))
    assert values["psnr"] != pytest.approx(score("uncrtaints", pred, target)["psnr"])
    # MAE / RMSE on the network's scale, DN / 2000 = 5 x reflectance (dataIO scale 2000)
    assert values["mae"] == pytest.approx(5 * 0.02)
    # get_sam returns radians (the paper prints degrees)
    target, pred = np.zeros((1, 13, 12, 12)), np.zeros((1, 13, 12, 12))
    target[:, 0], pred[:, 1] = 1.0, 1.0
    values = score("dsen2cr", pred, target)
    assert values["sam_rad"] == pytest.approx(math.pi / 2)
    assert values["sam"] == pytest.approx(90.0)


def test_dsen2cr_ssim_is_tf_image_ssim_valid_window():
    # tf.image.ssim: 'VALID' convolution, so constant images give the hand value exactly
    a, b = 0.3, 0.5
    assert score("dsen2cr", _const(a), _const(b))["ssim"] == pytest.approx(
        (2 * a * b + C1) / (a * a + b * b + C1), rel=1e-10
    )
    pred, target = _random_pair(4, n=2)
    expected = _reference_ssim(torch.from_numpy(pred), torch.from_numpy(target), 5.0, 0).mean()
    assert score("dsen2cr", pred, target)["ssim"] == pytest.approx(float(expected), rel=1e-10)


def test_dsen2cr_batches_combine_weighted_by_size():
    # keras Model.evaluate: batch metrics averaged with the batch sizes as weights
    pred, target = _random_pair(5, n=4)
    acc = ProtocolAccumulator("dsen2cr")
    acc.update(pred[:1], target[:1])
    acc.update(pred[1:], target[1:])
    first = score("dsen2cr", pred[:1], target[:1])["psnr"]
    rest = score("dsen2cr", pred[1:], target[1:])["psnr"]
    assert acc.compute()["psnr"] == pytest.approx((1 * first + 3 * rest) / 4)


# ---------------------------------------------------------------- allclear
def test_allclear_scores_only_pixels_clear_in_the_target():
    # allclear/benchmark.py Metrics: sums over masked values / mask sum, per image
    target = _const(0.5, n=2)
    pred = target.copy()
    clear = np.zeros((2, 16, 16), bool)
    clear[:, :8] = True
    pred[:, :, :8] += 0.02  # error 0.02 on clear pixels
    pred[:, :, 8:] += 0.3  # a large error where the target is cloudy: not scored
    values = score("allclear", pred, target, valid=clear)
    assert values["mae"] == pytest.approx(0.02)
    assert values["psnr"] == pytest.approx(20 * math.log10(1 / 0.02))
    # an image without a clear pixel is NaN and left out by nanmean
    clear[1] = False
    assert score("allclear", pred, target, valid=clear)["mae"] == pytest.approx(0.02)


def test_allclear_sam_of_a_zero_spectrum_is_90_degrees():
    # F.normalize(eps=1e-12) turns a zero spectrum into the zero vector: cos 0, 90 degrees
    target = np.zeros((1, 13, 12, 12))
    target[:, 0] = 1.0
    pred = target.copy()
    pred[:, :, :6] = 0.0  # half the pixels are all zero
    assert score("allclear", pred, target)["sam"] == pytest.approx(45.0)


def test_allclear_ssim_of_masked_images_over_clear_pixels():
    # benchmark.py ssim(): conv of outputs*masks, targets*masks (zero padding), nanmean inside mask
    pred, target = _random_pair(6, n=1)
    clear = np.zeros((1, 24, 24), bool)
    clear[:, 4:20, 2:22] = True
    m = torch.from_numpy(clear)[:, None].double()
    full = _reference_ssim(torch.from_numpy(pred) * m, torch.from_numpy(target) * m, 5.0, 5)
    expected = full[m.expand_as(full) > 0].mean()
    assert score("allclear", pred, target, valid=clear)["ssim"] == pytest.approx(float(expected))


# ---------------------------------------------------------------- tdpcr
def test_tdpcr_is_the_package_definition():
    # tdpcr_lib/metrics/functional.py: per image (clamped), mean over images
    pred, target = _random_pair(7, n=3)
    per_image = cr_metrics(torch.from_numpy(pred).float(), torch.from_numpy(target).float())
    values = score("tdpcr", pred, target)
    for key, v in per_image.items():
        assert values[key] == pytest.approx(float(v.double().mean()), rel=1e-6)
    assert score("tdpcr", _const(0.5), _const(0.5))["psnr"] == pytest.approx(100.0)  # the cap
