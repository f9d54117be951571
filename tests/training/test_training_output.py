"""Quiet, informative training output: one bar per phase, one line per validation, the reason of
an early stop, all through ``logging``."""

from __future__ import annotations

import logging

from tdpcr_lib.models import ModelConfig
from tdpcr_lib.training.config import TrainConfig
from tdpcr_lib.training.logs import validation_line
from tdpcr_lib.training.run import build_datasets, train


class StopAfterTwo:
    reason = "plateau: validation psnr moved 0.01 (< 0.1) since step 10"

    def __call__(self, trainer) -> bool:
        return len(trainer.history) >= 2


def test_one_line_per_validation_and_the_early_stop_is_said(tiny_luojiaset_root, tmp_path, caplog, capsys):
    config = TrainConfig(
        phase="phase1",
        epochs=4,
        max_steps=None,
        batch_size=4,
        crop_size=16,
        lr=1e-3,
        progress=True,
        val_max_batches=1,
        log_every=1,
    )
    train_set, val_set = build_datasets(tiny_luojiaset_root, config)
    with caplog.at_level(logging.INFO, logger="tdpcr_lib"):
        result = train(
            config, ModelConfig.small(), train_set, val_set, tmp_path / "run", device="cpu", stop_rule=StopAfterTwo()
        )
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("tdpcr_lib.training")]
    validations = [line for line in lines if " · val " in line]
    assert len(validations) == len(result.history) == 2
    assert validations[0].startswith("phase1 step 10/40 · loss ")
    assert "PSNR" in validations[0] and " dB" in validations[0] and len(validations[0]) < 120
    assert any(line.startswith("phase1 stopped at step 20/40: plateau") for line in lines)
    out = capsys.readouterr()
    assert "epoch 1: {" not in out.out  # no raw dict per epoch any more
    # one bar for the phase (tqdm writes to stderr in a terminal): its description once
    assert out.err.count("phase1 (40 steps)") >= 1 and "epoch 1/4" not in out.err


def test_validation_line_units_and_rounding():
    row = {"step": 150, "train_loss": 0.41234, "val_psnr": 24.3149, "val_miou": 0.38249, "val_oa": 0.9}
    line = validation_line("phase2", row, 300, best=True)
    assert line == ("phase2 step 150/300 · loss 0.4123 · val PSNR 24.31 dB, mIoU 38.2 %, OA 90.0 % (best)")


def test_compact_history_has_units_and_few_columns():
    from tdpcr_lib.training.result import TrainResult

    history = [
        {
            "epoch": e,
            "step": 10 * e,
            "lr": 1e-3,
            "images_per_s": 50.0,
            "train_loss": 0.123456,
            "val_psnr": 20.12345,
            "val_miou": 0.41234,
            **{f"val_extra_{k}": 1.0 for k in range(15)},
        }
        for e in (1, 2)
    ]
    result = TrainResult(
        out_dir=None,
        best_dir=None,
        last_dir=None,
        best_metric="miou",
        best_value=0.4,
        best_epoch=2,
        history=history,
        parameters={},
        steps=20,
        wall_time_s=1.0,
        final_metrics=None,
    )
    table = result.compact_history()
    assert list(table.columns) == ["step", "training loss", "val PSNR (dB)", "val mIoU (%)"]
    assert table.loc[2, "val mIoU (%)"] == 41.2 and table.loc[1, "training loss"] == 0.1235
