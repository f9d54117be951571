"""What checkpoint writes cost the training thread: bare steps against steps with saves.

``python -m benchmarks.checkpoint_async [--tiny] [--threads N]`` (also run by ``make bench``).
One process, interleaved so that load on a shared machine hits every variant alike; each variant
has its own copy of the same model and AdamW state, on the same fixed batch, with the loss of the
CPU recipe (:func:`benchmarks.training_bare.step_function`, the ``after`` step):

* ``bare``: ``steps`` training steps;
* ``sync``: the same steps, then one checkpoint (weights + optimizer state, as ``last/``) written
  on the training thread (the trainer before);
* ``async``: the same, written by :class:`tdpcr_lib.training.async_checkpoint.AsyncCheckpointer`
  (the trainer now): the training thread pays the snapshot only.

``steps`` = 6 per save matches the notebooks' recipe (12-13 steps an epoch, ``best/`` and
``last/`` saved each epoch). Ratio = bare time / variant time (target >= 0.9 for ``async``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET = 0.9
STEPS_PER_SAVE = 6


def run(tiny: bool, rounds: int, preset: str | None = None) -> dict[str, Any]:
    import torch

    from tdpcr_lib.models.build import build_model
    from tdpcr_lib.models.config import ModelConfig
    from tdpcr_lib.models.presets import preset_fields
    from tdpcr_lib.training.async_checkpoint import AsyncCheckpointer

    from .common import settings_for
    from .training_bare import recipe, step_function

    spec = recipe(settings_for(tiny, "cpu"))
    if preset:  # e.g. the paper's "full" size, whose larger state makes saves costlier
        spec["preset"] = preset
    torch.manual_seed(0)
    base = build_model(ModelConfig(**preset_fields(spec["preset"])))
    shape = (spec["batch"], spec["crop"], spec["crop"])
    batch = {
        "optical": torch.rand(shape[0], 13, *shape[1:]),
        "sar": torch.rand(shape[0], 2, *shape[1:]),
        "target": torch.rand(shape[0], 13, *shape[1:]),
    }
    batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    variants: dict[str, dict[str, Any]] = {}
    for name in ("bare", "sync", "async"):
        model = copy.deepcopy(base).train().to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        saver = None if name == "bare" else AsyncCheckpointer(enabled=name == "async")
        variants[name] = {
            "model": model,
            "optimizer": optimizer,
            "saver": saver,
            "step": step_function(model, optimizer, {}, batch),
            "seconds": [],
        }
    steps = 2 if tiny else STEPS_PER_SAVE
    with tempfile.TemporaryDirectory(prefix="tdpcr-bench-ckpt-") as scratch:
        for round_ in range(rounds + 1):  # round 0 warms up
            for name, v in variants.items():
                started = time.perf_counter()
                for _ in range(steps):
                    v["step"]()
                if v["saver"] is not None:
                    v["saver"].save(
                        Path(scratch) / name / "last",
                        v["model"],
                        phase="phase1",
                        epoch=0,
                        step=round_,
                        code_version="bench",
                        trainer_state={"optimizer": v["optimizer"].state_dict()},
                    )
                if round_:
                    v["seconds"].append(time.perf_counter() - started)
        for v in variants.values():
            if v["saver"] is not None:
                v["saver"].close()
    median = {name: statistics.median(v["seconds"]) for name, v in variants.items()}
    return {
        "tiny": tiny,
        "preset": spec["preset"],
        "batch": spec["batch"],
        "crop": spec["crop"],
        "steps_per_save": steps,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "seconds_per_round": median,
        "ratio_sync": median["bare"] / median["sync"],
        "ratio_async": median["bare"] / median["async"],
    }


def render(result: dict[str, Any]) -> str:
    verdict = "SKIP (tiny)" if result["tiny"] else ("PASS" if result["ratio_async"] >= TARGET else "FAIL")
    s = result["seconds_per_round"]
    return "\n".join(
        [
            f"training with checkpoints, {result['preset']} preset, batch {result['batch']}, crop "
            f"{result['crop']}, one save per {result['steps_per_save']} steps, {result['threads']} "
            f"threads, {result['rounds']} interleaved rounds",
            f"  s/round: bare {s['bare']:.3f}, sync save {s['sync']:.3f}, async save {s['async']:.3f}",
            f"  bare/with-saves: sync {result['ratio_sync']:.3f}, async {result['ratio_async']:.3f} "
            f"(target >= {TARGET}) {verdict}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint_async")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default=None, help="model size (default: the CPU recipe's; 'full': 2.40 M)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads or int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    result = run(args.tiny, 1 if args.tiny else args.rounds, args.preset)
    print(render(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
