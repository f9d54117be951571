"""Notebook 05 finds every finished model under a runs folder, in a fixed order, and only those."""

from __future__ import annotations

import json

from tdpcr_lib.models.checkpoint_files import MODEL_FILE
from tdpcr_lib.notebook.checkpoints import discover_checkpoints


def finished_run(runs_dir, name, seed, weights=True):
    folder = runs_dir / "ablations" / f"{name}_seed{seed}"
    checkpoint = folder / "phase2" / "best"
    checkpoint.mkdir(parents=True)
    if weights:
        (checkpoint / MODEL_FILE).write_bytes(b"weights")
    (folder / "results.json").write_text(json.dumps({"name": name, "seed": seed, "checkpoint": "phase2/best"}))
    return checkpoint


def test_main_run_first_then_ablations_in_grid_order_for_the_seed(tmp_path):
    main = tmp_path / "phase2" / "best"
    main.mkdir(parents=True)
    (main / MODEL_FILE).write_bytes(b"weights")
    multitask = finished_run(tmp_path, "multitask", 0)
    full = finished_run(tmp_path, "tdpcr_full", 0)
    finished_run(tmp_path, "tdpcr_full", 1)
    finished_run(tmp_path, "dsen2cr", 0, weights=False)  # interrupted: no weights
    broken = tmp_path / "ablations" / "concat_fusion_seed0"
    broken.mkdir()
    (broken / "results.json").write_text("{not json")

    found = discover_checkpoints(tmp_path, seed=0)
    assert found == {"TDP-CR (runs/phase2/best)": main, "tdpcr_full (seed 0)": full, "multitask (seed 0)": multitask}
    every_seed = discover_checkpoints(tmp_path, include_main=False)
    assert list(every_seed) == ["tdpcr_full (seed 0)", "tdpcr_full (seed 1)", "multitask (seed 0)"]
