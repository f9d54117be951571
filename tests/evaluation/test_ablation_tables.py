"""Notebook 04's results per task: three narrow tables instead of one of 21 columns."""

from __future__ import annotations

from tdpcr_lib.evaluation.ablations.report import TABLE_COLUMNS, ablation_tables


def _entry(label, segments=True):
    metrics = {key: {"mean": 0.5, "std": 0.01} for source, key, _, _ in TABLE_COLUMNS.values() if source == "m"}
    if not segments:
        metrics.update({k: {"mean": None} for k in metrics if k.startswith(("oa", "miou"))})
    return {
        "label": label,
        "metrics": metrics,
        "seeds": [0, 1, 2],
        "steps": {"mean": 600},
        "plateau": [True, True, False],
        "complexity": {"params": 2.9e5, "trainable_last_phase": 1e5, "flops_256": 3e9},
    }


def test_tables_split_by_task_and_leave_out_models_without_the_task():
    tables = ablation_tables({"a": _entry("TDP-CR"), "b": _entry("DSen2-CR", segments=False)})
    assert list(tables) == ["cloud removal", "segmentation", "cost and runs"]
    assert all(len(t.columns) <= 9 for t in tables.values())
    assert "PSNR all (dB)" in tables["cloud removal"] and "mIoU all (%)" in tables["segmentation"]
    assert list(tables["segmentation"].index) == ["TDP-CR"]
    assert tables["segmentation"].loc["TDP-CR", "mIoU all (%)"] == "50.0 ± 1.0"
    assert {"params (M)", "seeds", "plateau"} <= set(tables["cost and runs"].columns)
    assert sum(len(t.columns) for t in tables.values()) == len(TABLE_COLUMNS) + 3
