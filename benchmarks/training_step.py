"""Training step and training pipeline of the CPU recipe: where a phase-1 step's time goes.

One child process measures, interleaved so that a noisy machine slows every variant alike:

* **Bare step variants**: forward, ``L_rec`` (0.9·L1 + 0.1·(1 − SSIM)), backward, gradient
  clipping and AdamW on a fixed in-memory batch of the default preset (the notebooks' CPU model,
  batch and crop). ``before`` is the step as it was (SSIM by a padded 11×11 grouped convolution
  under autograd, :func:`tdpcr_lib.metrics.ssim_kernel.ssim_map_conv2d`); ``after`` is today's
  default (:func:`~tdpcr_lib.metrics.ssim_kernel.ssim_map_fused`); the others change one thing of
  ``after``: no ``channels_last``, bf16 autocast, ``torch.compile`` of the model (with
  ``--compile`` only: compiling takes minutes on 2 cores; its time is reported apart), and an
  L1-only loss. Each variant has its own copy of the same initial weights;
  the ``repeats`` rounds run every variant once in turn, the figure is the median.
* **Pipeline**: :func:`tdpcr_lib.training.run.train` (what notebook 01 calls) on a synthetic twin,
  for ``short`` and ``long`` epochs; per-step time = (T_long − T_short) / (steps_long −
  steps_short), so start-up cancels and validation and checkpoints are counted per epoch as in a
  real phase. ``before`` replays the previous trainer (samples decoded from GeoTIFF at every read,
  convolution SSIM) by swapping those two functions in this process; ``after`` is the trainer as
  it is. Pipeline ratio = time inside ``Trainer.train_step`` (the bare step, same loss) ÷ wall time
  over the same steps of the same runs, so a load change on a shared machine cancels; the
  separately timed bare step is reported beside it.
* **Profile**: ``torch.profiler`` table of the ``after`` bare step (top operators by self time).
* **FLOPs**: a training step counted by ``torch.utils.flop_counter.FlopCounterMode`` (forward +
  backward, 2 per multiply-add) next to the 3 × forward convention.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .children import ChildError, run_child, write_child_result
from .common import Settings
from .training_bare import VARIANTS, bare_steps, recipe


@contextmanager
def _previous_trainer():
    """The trainer before the speed work: GeoTIFFs decoded at every read, convolution SSIM,
    the cloudy input scored at every validation, every checkpoint file hashed afresh and
    written on the training thread (``checkpoint_s``: the training thread's time in saves)."""
    from tdpcr_lib.metrics import functional
    from tdpcr_lib.metrics.input_cache import InputMetricsCache
    from tdpcr_lib.metrics.ssim_kernel import ssim_map_conv2d
    from tdpcr_lib.models.checkpoint_files import DigestMemo
    from tdpcr_lib.training import trainer

    class _Forgetful(DigestMemo):
        def sha256(self, name: str, data: bytes) -> str:
            self._last.clear()
            return super().sha256(name, data)

    saved = (
        trainer.hold_in_memory,
        functional.ssim_map_fused,
        trainer.InputMetricsCache,
        trainer.DigestMemo,
        trainer.Trainer.async_checkpoints,
    )
    trainer.Trainer.async_checkpoints = False  # checkpoints written on the training thread
    trainer.hold_in_memory = lambda dataset, max_bytes=0: dataset
    functional.ssim_map_fused = ssim_map_conv2d
    trainer.InputMetricsCache = lambda: InputMetricsCache(max_batches=0)
    trainer.DigestMemo = _Forgetful
    try:
        yield
    finally:
        (
            trainer.hold_in_memory,
            functional.ssim_map_fused,
            trainer.InputMetricsCache,
            trainer.DigestMemo,
            trainer.Trainer.async_checkpoints,
        ) = saved


@contextmanager
def _timed(owner, name: str, sink: list[float]):
    """Add the seconds of every call of ``owner.name`` to ``sink`` while active."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - started)

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _pipeline(settings: Settings, spec: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    import contextlib

    from tdpcr_lib.datasets.synthetic.tiles import make_synthetic_luojiaset
    from tdpcr_lib.training import trainer as trainer_module
    from tdpcr_lib.training.presets import notebook_configs
    from tdpcr_lib.training.run import build_datasets, train

    root = make_synthetic_luojiaset(
        work_dir / f"train_twin_{spec['tiles']}x{spec['tile']}", n_tiles=spec["tiles"], size=spec["tile"], seed=0
    )
    runs: dict[str, dict[str, Any]] = {"before": {}, "after": {}}
    for epochs in spec["epochs"]:
        for version in ("before", "after"):
            smoke = settings.tiny
            config, model_config = notebook_configs("phase1", epochs=epochs, smoke=smoke)
            config = config.replace(progress=False, max_steps=None, batch_size=spec["batch"], crop_size=spec["crop"])
            train_set, val_set = build_datasets(root, config)
            validation, checkpoints, steps = [], [], []
            switch = _previous_trainer() if version == "before" else contextlib.nullcontext()
            with (
                tempfile.TemporaryDirectory(prefix="tdpcr-bench-pipeline-") as out_dir,
                switch,
                _timed(trainer_module.Trainer, "validate", validation),
                _timed(trainer_module.Trainer, "_save", checkpoints),
                _timed(trainer_module.Trainer, "train_step", steps),
            ):
                started = time.perf_counter()
                result = train(config, model_config, train_set, val_set, out_dir, device="cpu", resume=False)
                seconds = time.perf_counter() - started
            runs[version][epochs] = {
                "epochs": epochs,
                "steps": result.steps,
                "seconds": seconds,
                "train_step_s": sum(steps),
                "validation_s": sum(validation),
                "checkpoint_s": sum(checkpoints),
                "train_tiles": len(train_set),
            }
    out = {"twin_tiles": spec["tiles"], "tile": spec["tile"]}
    short, long = spec["epochs"]
    for version, by_epochs in runs.items():
        a, b = by_epochs[short], by_epochs[long]
        per_step = (b["seconds"] - a["seconds"]) / max(b["steps"] - a["steps"], 1)
        in_step = (b["train_step_s"] - a["train_step_s"]) / max(b["steps"] - a["steps"], 1)
        method = "difference of two run lengths (start-up cancels)"
        if per_step <= 0 or in_step <= 0:
            # a load swing between the two runs outweighed the extra steps (tiny mode on a
            # busy machine): fall back to the longer run alone, start-up included, and say so
            per_step, in_step = b["seconds"] / b["steps"], b["train_step_s"] / b["steps"]
            method = "longer run alone (the difference was noise)"
        out[version] = {
            "runs": [a, b],
            "method": method,
            "ms_per_step": 1000 * per_step,
            "train_step_ms": 1000 * in_step,
            "overhead_ms_per_step": 1000 * (per_step - in_step),
            "step_share": in_step / per_step,
            "samples_per_s": spec["batch"] / per_step,
            "validation_share": b["validation_s"] / b["seconds"],
            "checkpoint_share": b["checkpoint_s"] / b["seconds"],
        }
    return out


def measure(settings: Settings, work_dir: Path) -> dict[str, Any]:
    """Bare-step variants, pipeline, profile and FLOPs (module docstring)."""
    import torch

    spec = recipe(settings)
    compile_ok = settings.compile_cpu and not (settings.no_compile or settings.tiny)
    names = [n for n in VARIANTS if compile_ok or not VARIANTS[n].get("compile")]
    bare = bare_steps(settings, spec, names)
    pipeline = _pipeline(settings, spec, work_dir)
    # a second round of the two bare steps the pipeline ratio needs, after the pipeline runs
    again = (
        {}
        if settings.tiny
        else bare_steps(
            settings, {**spec, "repeats": max(2, spec["repeats"] // 2)}, ["before", "after"], details=False
        )["variants"]
    )
    # The pipeline ratio is the share of the phase's time spent in Trainer.train_step (the bare
    # step, same loss), measured inside the same runs: a load change on a shared machine slows
    # both alike. Separately timed bare steps are reported beside it as a cross-check.
    ratios = {}
    for version in ("before", "after"):
        blocks = bare["variants"][version]["block_ms"] + again.get(version, {}).get("block_ms", [])
        bare_ms = statistics.median(blocks)
        ratios[version] = {
            "pipeline_over_bare": pipeline[version]["step_share"],
            "train_step_ms_in_run": pipeline[version]["train_step_ms"],
            "pipeline_ms_per_step": pipeline[version]["ms_per_step"],
            "bare_ms_per_step_separate": bare_ms,
            "pipeline_over_separate_bare": bare_ms / pipeline[version]["ms_per_step"],
        }
    # phase speed-up after/before from interleaved figures only: bare-step speed-up (same-time
    # blocks) x the change of the in-run pipeline ratio
    before_ms, after_ms = (bare["variants"][name].get("ms_per_step") for name in ("before", "after"))
    if before_ms and after_ms:
        ratios["after"]["pipeline_speedup_vs_before"] = (
            before_ms / after_ms * ratios["after"]["pipeline_over_bare"] / ratios["before"]["pipeline_over_bare"]
        )
    l1, rec = (bare["variants"][name].get("ms_per_step") for name in ("L1 only (no SSIM)", "after"))
    if l1 and rec:  # the L1 step in proportion to the same-loss step (interleaved bare timings)
        ratios["after"]["pipeline_over_bare_l1"] = pipeline["after"]["step_share"] * l1 / rec
    return {
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()},
        "torch_threads": torch.get_num_threads(),
        **bare,
        "pipeline": pipeline,
        "ratios": ratios,
    }


def run(settings: Settings, work_dir: Path, log=print) -> dict[str, Any]:
    """Measure in a child process; log the headline figures."""
    log("[train] bare step variants, pipeline, profile ...")
    try:
        result = run_child(
            [
                "-m",
                "benchmarks.training_step",
                "--worker",
                "--work-dir",
                str(work_dir),
                "--settings",
                json.dumps(settings.to_dict()),
            ],
            timeout_s=settings.timeout_s,
            env=settings.child_env(),
        )
    except ChildError as err:
        log("          ERROR " + str(err).splitlines()[-1][:200])
        return {"error": str(err)}
    for name, row in result["variants"].items():
        if "ms_per_step" in row:
            log(f"          {name:28s} {row['ms_per_step']:.1f} ms/step")
    for version, row in result["ratios"].items():
        log(f"          pipeline/bare ({version}) {row['pipeline_over_bare']:.3f}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Training step benchmark worker (run benchmarks.run_all for the whole benchmark)."
    )
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_dict(json.loads(args.settings))
    settings.apply_threads()
    write_child_result(args.json, measure(settings, Path(args.work_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
