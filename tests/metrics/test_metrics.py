"""Metrics: agreement with torchmetrics, hand-computed cases, and the evaluation accumulator."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    spectral_angle_mapper,
    structural_similarity_index_measure,
)

from tdpcr_lib.metrics.accumulator import EvaluationAccumulator
from tdpcr_lib.metrics.functional import confusion_matrix, mae, psnr, rmse, sam_degrees, segmentation_scores, ssim
from tdpcr_lib.metrics.results import (
    COLUMNS,
    CR_METRICS,
    REGIONS,
    SEG_METRICS,
    buckets,
    from_records,
    has,
    iou_class,
    metric_spec,
    select,
    to_records,
    value,
)


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(3, 13, 24, 24, generator=generator)
    pred = (target + 0.1 * torch.randn(3, 13, 24, 24, generator=generator)).clamp(0, 1)
    return pred, target


# ---------------------------------------------------------------------------------------------
# cloud-removal metrics vs torchmetrics and hand values
# ---------------------------------------------------------------------------------------------
def test_psnr_matches_torchmetrics_per_image(images):
    pred, target = images
    expected = peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
    torch.testing.assert_close(psnr(pred, target), expected, rtol=1e-5, atol=1e-4)


def test_ssim_matches_torchmetrics(images):
    pred, target = images
    expected = structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none")
    torch.testing.assert_close(ssim(pred, target, reduction="none"), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ssim(pred, target), expected.mean(), rtol=1e-5, atol=1e-5)


def test_sam_matches_torchmetrics_in_degrees(images):
    pred, target = images
    per_pixel = spectral_angle_mapper(pred, target, reduction="none")  # radians, (B, H, W)
    expected = torch.rad2deg(per_pixel.mean(dim=(1, 2)))
    torch.testing.assert_close(sam_degrees(pred, target), expected, rtol=1e-4, atol=1e-4)


def test_mae_rmse_psnr_for_a_constant_error():
    target = torch.full((2, 13, 16, 16), 0.5)
    pred = target + 0.1
    torch.testing.assert_close(mae(pred, target), torch.full((2,), 0.1))
    torch.testing.assert_close(rmse(pred, target), torch.full((2,), 0.1))
    torch.testing.assert_close(psnr(pred, target), torch.full((2,), 20.0))


def test_identical_images_have_capped_psnr_zero_sam_unit_ssim(images):
    _, target = images
    assert torch.equal(psnr(target, target), torch.full((3,), 100.0))
    assert sam_degrees(target, target).abs().max() < 1e-6
    torch.testing.assert_close(ssim(target, target, reduction="none"), torch.ones(3))
    assert mae(target, target).abs().max() == 0


def test_metrics_clamp_to_the_unit_range():
    target = torch.rand(1, 13, 16, 16)
    out_of_range = target.clone()
    out_of_range[..., :4, :] = 1.7  # brighter than 1: clamped to 1 before scoring
    target_clamped = target.clone()
    target_clamped[..., :4, :] = 1.0
    assert psnr(out_of_range, target_clamped).item() == 100.0
    assert psnr(out_of_range, target_clamped, clamp=False).item() < 100.0


def test_masked_metrics_select_pixels():
    target = torch.full((1, 13, 16, 16), 0.5)
    pred = target.clone()
    pred[..., :, :8] = 0.7  # error only in the left half
    left = torch.zeros(1, 16, 16)
    left[..., :8] = 1
    torch.testing.assert_close(mae(pred, target, mask=left), torch.tensor([0.2]))
    torch.testing.assert_close(mae(pred, target, mask=1 - left), torch.tensor([0.0]))
    assert psnr(pred, target, mask=1 - left).item() == 100.0
    assert math.isnan(mae(pred, target, mask=torch.zeros(1, 16, 16)).item())  # no pixel selected


def test_ssim_is_differentiable_and_stable_under_bf16_autocast(images):
    pred, target = images
    pred = pred.clone().requires_grad_(True)
    loss = 1 - ssim(pred, target)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = ssim(pred.detach(), target)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, 1 - loss.detach(), rtol=1e-5, atol=1e-5)


def test_metric_inputs_are_validated():
    with pytest.raises(ValueError, match="same|both"):
        psnr(torch.rand(1, 13, 8, 8), torch.rand(1, 13, 8, 9))
    with pytest.raises(ValueError, match="mask"):
        mae(torch.rand(2, 13, 8, 8), torch.rand(2, 13, 8, 8), mask=torch.ones(2, 7, 8))
    with pytest.raises(ValueError, match="larger than"):
        ssim(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5))


# ---------------------------------------------------------------------------------------------
# segmentation
# ---------------------------------------------------------------------------------------------
KNOWN_CM = np.array(
    [
        [3, 1, 0, 0],  # truth 0
        [1, 2, 0, 1],  # truth 1
        [0, 0, 0, 0],  # class 2: absent from truth and prediction
        [0, 0, 0, 0],
    ]
)  # class 3: predicted once, never true


def pixels_from_confusion(cm: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    truth, pred = [], []
    for t in range(len(cm)):
        for p in range(len(cm)):
            truth += [t] * int(cm[t, p])
            pred += [p] * int(cm[t, p])
    truth += [255, 255]  # ignored labels, whatever is predicted there
    pred += [0, 3]
    return torch.tensor(pred), torch.tensor(truth)


def test_confusion_matrix_and_scores_on_a_known_case():
    pred, truth = pixels_from_confusion(KNOWN_CM)
    cm = confusion_matrix(pred, truth, num_classes=4)
    assert np.array_equal(cm.numpy(), KNOWN_CM)
    scores = segmentation_scores(cm)
    assert scores["oa"] == pytest.approx(5 / 8)
    assert scores["macc"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    iou = scores["per_class_iou"]
    assert iou[0] == pytest.approx(3 / 5) and iou[1] == pytest.approx(2 / 5)
    assert math.isnan(iou[2])  # absent from both: undefined, excluded from the mean
    assert iou[3] == 0.0  # predicted but never true: counts as 0
    assert scores["miou"] == pytest.approx((0.6 + 0.4 + 0.0) / 3)
    assert scores["fwiou"] == pytest.approx(0.5 * 0.6 + 0.5 * 0.4)


def test_miou_matches_torchmetrics_when_all_classes_are_present():
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 7, (4, 32, 32), generator=generator)
    truth[:, :2] = 255
    pred = torch.where(
        torch.rand(4, 32, 32, generator=generator) < 0.6,
        truth.clamp(max=6),
        torch.randint(0, 7, (4, 32, 32), generator=generator),
    )
    metric = MulticlassJaccardIndex(num_classes=7, average="macro", ignore_index=255)
    expected = metric(pred, truth).item()
    scores = segmentation_scores(confusion_matrix(pred, truth, num_classes=7))
    assert scores["miou"] == pytest.approx(expected, abs=1e-6)


def test_empty_confusion_gives_nan_scores():
    scores = segmentation_scores(torch.zeros(3, 3, dtype=torch.int64))
    assert all(math.isnan(scores[key]) for key in ("oa", "macc", "fwiou", "miou"))


def test_labels_outside_the_legend_are_an_error():
    with pytest.raises(ValueError, match=r"labels \[9\]"):
        confusion_matrix(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 9, 255]), num_classes=7)


# ---------------------------------------------------------------------------------------------
# accumulator
# ---------------------------------------------------------------------------------------------
def hand_batch():
    """One 16x16 image: left half cloudy. Reconstruction off by 0.2 there, exact elsewhere."""
    target = torch.full((1, 13, 16, 16), 0.5)
    cloud = torch.zeros(1, 16, 16)
    cloud[..., :8] = 1
    optical = target.clone()
    optical[..., :8] = 1.0  # the cloud itself: bright
    recon = target.clone()
    recon[..., :8] = 0.7
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[:, :8] = 1  # top half class 1, bottom class 0
    labels[:, 0, 0] = 255
    pred_labels = torch.zeros_like(labels)
    pred_labels[:, :8, 8:] = 1  # class 1 found only in the clear (right) half
    logits = torch.nn.functional.one_hot(pred_labels.clamp(max=6), 7).permute(0, 3, 1, 2).float()
    batch = {
        "target": target,
        "optical": optical,
        "cloud_mask": cloud,
        "mask": labels,
        "bucket": ["40%-60%"],
        "id": ["tile-a"],
    }
    return {"reconstruction": recon, "segmentation": logits}, batch


def test_cloudy_and_clear_breakdown_on_a_hand_made_case():
    outputs, batch = hand_batch()
    acc = EvaluationAccumulator()
    acc.update(outputs, batch)
    res = acc.compute()
    assert value(res, "n_images") == 1
    assert value(res, "mae", "cloudy") == pytest.approx(0.2)
    assert value(res, "mae", "clear") == pytest.approx(0.0)
    assert value(res, "mae") == pytest.approx(0.1)
    assert value(res, "psnr", "cloudy") == pytest.approx(10 * math.log10(1 / 0.04), rel=1e-5)
    assert value(res, "psnr", "clear") == 100.0
    assert value(res, "psnr") == pytest.approx(10 * math.log10(1 / 0.02), rel=1e-5)
    assert value(res, "sam") == pytest.approx(0.0, abs=1e-6)  # flat spectra: same direction
    assert value(res, "input_mae", "cloudy") == pytest.approx(0.5)
    assert value(res, "input_mae", "clear") == pytest.approx(0.0)
    # segmentation: cloudy = left half (columns < 8): truth 1 in the top rows, predicted 0 → miss
    cloudy_cm = acc.confusion_matrix("cloudy").numpy()
    assert cloudy_cm[1, 1] == 0 and cloudy_cm[1, 0] == 8 * 8 - 1  # minus the ignored pixel
    assert cloudy_cm[0, 0] == 8 * 8
    clear_cm = acc.confusion_matrix("clear").numpy()
    assert clear_cm[1, 1] == 64 and clear_cm[0, 0] == 64 and clear_cm.sum() == 128
    assert value(res, "oa", "clear") == 1.0
    assert value(res, "oa", "cloudy") == pytest.approx(64 / 127)
    assert value(res, "oa") == pytest.approx((64 + 128) / 255)
    assert buckets(res) == ["40%-60%"]
    in_bucket = res[res["bucket"] == "40%-60%"].drop(columns="bucket").reset_index(drop=True)
    overall = res[res["bucket"] == "all"].drop(columns="bucket").reset_index(drop=True)
    pd.testing.assert_frame_equal(in_bucket, overall)
    record = acc.per_image().iloc[0]
    assert record["id"] == "tile-a" and record["cloud_fraction"] == 0.5
    assert record["bucket"] == "40%-60%" and record["input_mae"] == pytest.approx(0.25)


def random_batches(n_batches: int = 4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    buckets = ["0-20%", "20%-40%", "80%-100%"]
    for b in range(n_batches):
        target = torch.rand(2, 13, 16, 16, generator=generator)
        optical = (target + 0.3 * torch.rand(2, 13, 16, 16, generator=generator)).clamp(0, 1)
        recon = target + 0.05 * torch.randn(2, 13, 16, 16, generator=generator)
        cloud = (torch.rand(2, 16, 16, generator=generator) < 0.4).float()
        if b == 0:
            cloud[0] = 0  # an image without clouds: no cloudy value for it
        labels = torch.randint(0, 7, (2, 16, 16), generator=generator)
        logits = torch.randn(2, 7, 16, 16, generator=generator)
        yield (
            {"reconstruction": recon, "segmentation": logits},
            {
                "target": target,
                "optical": optical,
                "cloud_mask": cloud,
                "mask": labels,
                "bucket": [buckets[(2 * b) % 3], buckets[(2 * b + 1) % 3]],
                "id": [f"t{b}a", f"t{b}b"],
            },
        )


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    pd.testing.assert_frame_equal(a, b, rtol=1e-9, atol=1e-12)
    return True


def test_merge_equals_one_accumulator_over_all_data():
    batches = list(random_batches())
    whole = EvaluationAccumulator()
    first, second = EvaluationAccumulator(), EvaluationAccumulator()
    for i, (outputs, batch) in enumerate(batches):
        whole.update(outputs, batch)
        (first if i < 2 else second).update(outputs, batch)
    first.merge_state(second)
    assert _same(first.compute(), whole.compute())
    assert len(first.per_image()) == len(whole.per_image()) == 8
    assert sorted(first.per_image()["id"]) == sorted(whole.per_image()["id"])
    # the image without clouds is excluded from the cloudy average, not counted as NaN/0
    assert not math.isnan(value(whole.compute(), "psnr", "cloudy"))


def test_halves_of_one_batch_merge_to_the_whole_batch():
    outputs, batch = next(random_batches(1))

    def half(part: slice) -> tuple[dict, dict]:
        return ({k: v[part] for k, v in outputs.items()}, {k: v[part] for k, v in batch.items()})

    whole, first, second = EvaluationAccumulator(), EvaluationAccumulator(), EvaluationAccumulator()
    whole.update(outputs, batch)
    first.update(*half(slice(0, 1)))
    second.update(*half(slice(1, 2)))
    first.merge_state(second)
    assert _same(first.to_frame(model="m", seed=0, split="val"), whole.to_frame(model="m", seed=0, split="val"))


def test_export_state_round_trips_through_json():
    acc = EvaluationAccumulator()
    for outputs, batch in random_batches(2):
        acc.update(outputs, batch)
    restored = EvaluationAccumulator.from_export(json.loads(json.dumps(acc.export_state())))
    assert _same(restored.compute(), acc.compute())
    pd.testing.assert_frame_equal(restored.per_image(), acc.per_image())


def test_results_have_the_documented_layout_and_buckets_in_order():
    acc = EvaluationAccumulator()
    for outputs, batch in random_batches():
        acc.update(outputs, batch)
    res = acc.to_frame(model="tdpcr", seed=3, split="test")
    assert list(res.columns) == list(COLUMNS)
    assert set(res["region"]) == set(REGIONS)
    assert not res.duplicated(["region", "bucket", "metric"]).any()  # one row per number
    cr = set(CR_METRICS) | {"input_" + m for m in CR_METRICS}
    seg = set(SEG_METRICS) | {iou_class(k) for k in range(7)}
    for region in REGIONS:
        assert set(res[(res.region == region) & (res.bucket == "all")]["metric"]) == (
            cr | seg | ({"n_images"} if region == "all" else set())
        )
    assert all(metric_spec(m) for m in res["metric"])  # every name is in the vocabulary
    assert buckets(res) == ["0-20%", "20%-40%", "80%-100%"]
    counts = select(res, "n_images", bucket=None)
    assert counts["value"].sum() == 2 * value(res, "n_images") == 16
    assert set(res["model"]) == {"tdpcr"} and set(res["seed"]) == {3}
    # the reconstruction (small noise) beats the cloudy input (large positive offset)
    assert value(res, "psnr") > value(res, "input_psnr")


def test_reconstruction_only_models_report_no_segmentation():
    acc = EvaluationAccumulator()
    outputs, batch = next(random_batches(1))
    acc.update({"reconstruction": outputs["reconstruction"]}, batch)
    res = acc.compute()
    assert not has(res, "miou") and has(res, "psnr")
    with pytest.raises(KeyError, match="miou"):
        value(res, "miou")


def test_accumulator_reports_missing_inputs():
    acc = EvaluationAccumulator()
    outputs, batch = next(random_batches(1))
    with pytest.raises(KeyError, match="cloud_mask"):
        acc.update(outputs, {k: v for k, v in batch.items() if k != "cloud_mask"})
    with pytest.raises(KeyError, match="'mask'"):
        acc.update(outputs, {k: v for k, v in batch.items() if k != "mask"})
    with pytest.raises(ValueError, match="not one of"):
        acc.update(outputs, {**batch, "bucket": ["0-20%", "elsewhere"]})
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="no batch"):
        EvaluationAccumulator().compute()
    with pytest.raises(ValueError, match="num_classes"):
        EvaluationAccumulator(num_classes=7).merge_state(EvaluationAccumulator(num_classes=5))


def _all_reduce_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        acc = EvaluationAccumulator()
        for i, (outputs, batch) in enumerate(random_batches()):
            if i % world == rank:
                acc.update(outputs, batch)
        frame = acc.compute()  # torchmetrics sums the states over the ranks
        ids = list(acc.per_image()["id"])  # rank-local again after compute (unsynced)
        if rank == 0:
            with open(out_file, "w") as handle:
                json.dump({"frame": to_records(frame), "local_ids": ids}, handle)
    finally:
        dist.destroy_process_group()


def test_ddp_reduction_across_two_processes_equals_one_process(tmp_path):
    import torch.multiprocessing as mp

    out_file = tmp_path / "reduced.json"
    mp.spawn(_all_reduce_worker, args=(2, str(tmp_path / "init"), str(out_file)), nprocs=2)
    whole = EvaluationAccumulator()
    for outputs, batch in random_batches():
        whole.update(outputs, batch)
    saved = json.loads(out_file.read_text())
    assert _same(from_records(saved["frame"]), from_records(to_records(whole.compute())))
    assert saved["local_ids"] == ["t0a", "t0b", "t2a", "t2b"]


def test_compute_without_distributed_needs_no_process_group():
    acc = EvaluationAccumulator()
    outputs, batch = next(random_batches(1))
    acc.update(outputs, batch)
    assert _same(acc.compute(), acc.compute())
