"""The trained models a notebook shows: every finished checkpoint under a runs folder, loaded.

Notebook 05 compares the main run (``runs/phase2/best``) with the ablation grid's runs
(``runs/ablations/<name>_seed<k>/``, notebook 04) side by side; these helpers find and load them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from tdpcr_lib.evaluation.ablations.spec import ABLATIONS, RESULTS_FILE
from tdpcr_lib.models.checkpoint import load_model
from tdpcr_lib.models.checkpoint_files import MODEL_FILE


def discover_checkpoints(runs_dir: str | Path, seed: int | None = None, include_main: bool = True) -> dict[str, Path]:
    """Display name → checkpoint folder of every finished model under ``runs_dir``.

    ``runs/phase2/best`` (the main pipeline's model) first, then each finished ablation run
    (of ``seed`` only, when given), in grid order. A run whose ``results.json`` cannot be read, or
    whose checkpoint has no weights, is skipped (it is not finished).
    """
    runs_dir = Path(runs_dir)
    found: dict[str, Path] = {}
    main = runs_dir / "phase2" / "best"
    if include_main and (main / MODEL_FILE).is_file():
        found["TDP-CR (runs/phase2/best)"] = main
    order = {name: k for k, name in enumerate(ABLATIONS)}
    runs = []
    for results_path in sorted((runs_dir / "ablations").glob(f"*/{RESULTS_FILE}")):
        try:
            results = json.loads(results_path.read_text())
        except json.JSONDecodeError:
            continue
        checkpoint = results_path.parent / results.get("checkpoint", "")
        if (checkpoint / MODEL_FILE).is_file() and (seed is None or results.get("seed") == seed):
            name = f"{results['name']} (seed {results['seed']})"
            runs.append((order.get(results["name"], len(order)), results["seed"], name, checkpoint))
    for _, _, name, checkpoint in sorted(runs):
        found[name] = checkpoint
    return found


def load_models(checkpoints: Mapping[str, str | Path], device: str = "cpu") -> dict[str, nn.Module]:
    """Load each checkpoint folder (:func:`tdpcr_lib.models.checkpoint.load_model`) in eval mode."""
    models = {}
    for name, path in checkpoints.items():
        model, _ = load_model(path, device=device)
        models[name] = model.eval()
    return models
