"""The noise-aware plateau rule on constructed curves, and the stopping hook that uses it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from tdpcr_lib.training.plateau import (
    PlateauRule,
    PlateauStop,
    curve,
    describe_metric,
    noise_sd,
    plateau_status,
    rule_for,
)

STEPS = list(range(25, 601, 25))  # a 600-step phase validated every 25 steps: 24 validations


def _curve(values) -> list[tuple[int, float]]:
    return list(zip(STEPS, (float(v) for v in values), strict=True))


def _rising():
    return [20 + 1.5 * math.log2(s / 25) for s in STEPS]  # +1.5 dB per doubling: still climbing


def test_rising_curve_is_not_on_its_plateau():
    status = plateau_status(_curve(_rising()), rule_for("psnr"))
    # over steps 480..600 the log curve still gains 1.5·log2(600/480) ≈ 0.48 dB
    assert not status["reached"]
    assert status["gain"] == pytest.approx(0.48, abs=0.05)
    assert status["threshold"] == pytest.approx(0.1)  # no noise: the 0.1 dB floor
    assert status["n_fit"] >= 5 and status["window_start"] >= 480


def test_flat_curve_is_on_its_plateau():
    status = plateau_status(_curve([28.0] * len(STEPS)), rule_for("psnr"))
    assert status["reached"] and status["gain"] == pytest.approx(0.0, abs=1e-9)
    assert status["noise_sd"] == pytest.approx(0.0)


def test_noisy_flat_curve_is_on_its_plateau_where_the_old_range_rule_said_no():
    rng = np.random.default_rng(0)
    values = 28.0 + rng.normal(0, 0.3, len(STEPS))  # validation noise σ = 0.3 dB
    status = plateau_status(_curve(values), rule_for("psnr"))
    assert status["reached"]
    assert 0.15 < status["noise_sd"] < 0.6  # the estimate finds the noise
    assert status["threshold"] == pytest.approx(2 * status["noise_sd"])
    tail = values[-6:]
    assert tail.max() - tail.min() > 0.1  # a 0.1 dB range rule would never call this flat


def test_noisy_rising_curve_is_not_on_its_plateau():
    rng = np.random.default_rng(1)
    values = np.array([20 + 0.01 * s for s in STEPS]) + rng.normal(0, 0.2, len(STEPS))
    status = plateau_status(_curve(values), rule_for("psnr"))
    # a 1.2 dB linear gain over the last 120 steps is far above 2σ ≈ 0.4 dB
    assert not status["reached"] and status["gain"] > 0.8
    assert status["noise_sd"] == pytest.approx(0.2, abs=0.12)


def test_few_validations_never_make_a_plateau():
    short = [(25, 28.0), (50, 28.0), (75, 28.0), (100, 28.0)]
    status = plateau_status(short, rule_for("psnr"))
    assert not status["reached"] and status["gain"] is None and status["n_points"] == 4
    assert "not judged" in describe_metric(status)
    # a phase of 300 steps: its last 20 % holds 3 validations; the fit still uses 5
    phase2 = [(s, 0.5) for s in range(25, 301, 25)]
    assert plateau_status(phase2, rule_for("miou"))["n_fit"] == 5
    with pytest.raises(ValueError, match="min_points"):
        PlateauRule(min_points=2)


def test_miou_uses_one_point_and_a_climbing_phase2_is_not_flat():
    # the main run's phase 2 in the issue: mIoU climbing from 34 to 52 % by step 175
    climbing = [(25 * k, 0.34 + 0.03 * k) for k in range(1, 8)]
    status = plateau_status(climbing, rule_for("miou"))
    assert rule_for("miou").tolerance == 0.01 and not status["reached"]
    assert "NO plateau" in describe_metric(status) and "points" in describe_metric(status)


def test_noise_sd_cancels_a_linear_trend():
    assert noise_sd([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(0.0)
    assert noise_sd([1.0, 2.0]) is None


def test_curve_reads_history_rows():
    history = [
        {"step": 25, "val_psnr": 20.0, "val_miou": 0.3},
        {"step": 50, "val_psnr": None},
        {"step": 75, "val_psnr": 21.0},
    ]
    assert curve(history, "psnr") == [(25, 20.0), (75, 21.0)]
    assert curve(history, "miou") == [(25, 0.3)]
    assert rule_for("psnr_cloudy").metric == "psnr_cloudy"
    with pytest.raises(ValueError, match="window"):
        PlateauRule(window=1.5)


def test_plateau_stop_uses_the_same_judgement_as_the_reports():
    history = [{"step": s, "val_psnr": 28.0} for s in STEPS[:8]]
    trainer = SimpleNamespace(step=200, total_steps=800, history=history, best_metric="psnr")
    stop = PlateauStop()
    assert not stop(trainer)  # flat, but only 25 % of the budget spent
    trainer.total_steps = 300
    assert stop(trainer) and stop.stopped_at == 200
    assert stop.status == plateau_status(curve(history, "psnr"), rule_for("psnr"), 300)
    trainer.history = [{"step": s, "val_psnr": float(s)} for s in STEPS[:8]]
    assert not PlateauStop()(trainer)


def test_a_phase_judged_at_half_its_budget_must_be_flat_over_a_fifth_of_the_budget():
    # a measured multi-task U-Net curve (val mIoU, 6 validations) at step 150 of a 300-step budget
    points = list(zip(range(25, 151, 25), [0.062, 0.136, 0.132, 0.154, 0.165, 0.210], strict=True))
    rule = rule_for("miou")
    # over 20 % of the 150 steps made (30 steps) the rise is about 2σ; over 20 % of the budget
    # (60 steps) it is twice that: early stopping must not fire here
    short, status = plateau_status(points, rule), plateau_status(points, rule, budget_steps=300)
    assert status["gain"] == pytest.approx(2 * short["gain"])
    assert not status["reached"] and status["gain"] > 1.5 * status["threshold"]
    trainer = SimpleNamespace(
        step=150, total_steps=300, best_metric="miou", history=[{"step": s, "val_miou": v} for s, v in points]
    )
    assert not PlateauStop()(trainer)
