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
import copy
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .common import ChildError, Settings, run_child, write_child_result
from .flops import TRAINING_FLOP_METHOD, training_flops_per_sample

#: The bare-step variants: SSIM implementation, channels_last, bf16 autocast, compile, loss.
VARIANTS: dict[str, dict[str, Any]] = {
    "before": {"ssim": "conv2d"},
    "after": {},
    "after, no channels_last": {"channels_last": False},
    "after + bf16 autocast": {"bf16": True},
    "after + torch.compile": {"compile": True},
    "L1 only (no SSIM)": {"loss": "l1"},
}


def recipe(settings: Settings) -> dict[str, Any]:
    """Model preset, batch, crop and twin of the measured recipe (tiny: the smoke preset)."""
    if settings.tiny:
        return {
            "preset": "smoke",
            "batch": 2,
            "crop": 32,
            "tiles": 10,
            "tile": 32,
            "epochs": (1, 2),
            "repeats": 1,
            "iterations": 1,
        }
    return {
        "preset": "default",
        "batch": 8,
        "crop": 64,
        "tiles": 100,
        "tile": 64,
        "epochs": (1, 3),
        "repeats": 5,
        "iterations": 2,
    }


def _step_function(model, optimizer, variant: dict[str, Any], batch: dict[str, Any]):
    import torch

    from tdpcr_lib.metrics.ssim_kernel import ssim_map_conv2d, ssim_map_fused

    ssim_map = ssim_map_conv2d if variant.get("ssim") == "conv2d" else ssim_map_fused
    forward = torch.compile(model) if variant.get("compile") else model
    params = [p for p in model.parameters() if p.requires_grad]

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(variant.get("bf16"))):
            prediction = forward(batch["optical"], batch["sar"])["reconstruction"]
        prediction, target = prediction.float(), batch["target"]
        l1 = (prediction - target).abs().mean()
        loss = l1 if variant.get("loss") == "l1" else (0.9 * l1 + 0.1 * (1.0 - ssim_map(prediction, target).mean()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        optimizer.step()
        return float(loss.detach())

    return step


def _bare_steps(settings: Settings, spec: dict[str, Any], names: list[str], details: bool = True) -> dict[str, Any]:
    import torch

    from tdpcr_lib.models import ModelConfig, build_model
    from tdpcr_lib.training.config import TrainConfig
    from tdpcr_lib.training.freezing import build_optimizer

    torch.manual_seed(0)
    base = build_model(ModelConfig.preset(spec["preset"], with_seg_decoder=False))
    shape = (spec["batch"], 13, spec["crop"], spec["crop"])
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(shape, generator=generator)
    raw = {
        "optical": (target + 0.3 * torch.rand(shape, generator=generator)).clamp(0, 1),
        "sar": torch.rand((spec["batch"], 2, spec["crop"], spec["crop"]), generator=generator),
        "target": target,
    }
    steps, timings, extra = {}, {name: [] for name in names}, {}
    for name in names:
        variant = VARIANTS[name]
        model = copy.deepcopy(base)
        layout = torch.channels_last if variant.get("channels_last", True) else torch.contiguous_format
        model = model.to(memory_format=layout).train()
        batch = {k: v.contiguous(memory_format=layout) for k, v in raw.items()}
        optimizer = build_optimizer(model, TrainConfig())
        steps[name] = _step_function(model, optimizer, variant, batch)
        try:
            started = time.perf_counter()
            for _ in range(2 if variant.get("compile") else 1):  # warm-up (compile happens here)
                steps[name]()
            extra[name] = {"warmup_s": round(time.perf_counter() - started, 2)}
        except Exception as err:  # torch.compile needs a working C++ toolchain
            extra[name] = {"error": f"{type(err).__name__}: {err}"[:300]}
            timings.pop(name)
    for _ in range(spec["repeats"]):
        for name in timings:
            started = time.perf_counter()
            for _ in range(spec["iterations"]):
                steps[name]()
            timings[name].append((time.perf_counter() - started) / spec["iterations"])
    out = {}
    for name in names:
        if name not in timings:
            out[name] = extra[name]
            continue
        seconds = statistics.median(timings[name])
        out[name] = {
            "ms_per_step": 1000 * seconds,
            "samples_per_s": spec["batch"] / seconds,
            "block_ms": [round(1000 * t, 1) for t in timings[name]],
            **extra[name],
        }
    reference = out["after"].get("ms_per_step")
    for row in out.values():
        if "ms_per_step" in row and reference:
            row["speedup_vs_after"] = reference / row["ms_per_step"]
    if not details:
        return {"variants": out}
    return {"variants": out, "profile": _profile(steps["after"]), "flops": _flops(base, raw, spec)}


def _profile(step, rows: int = 15) -> list[dict[str, Any]]:
    """Top operators of two ``after`` steps by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        {
            "op": e.key,
            "self_ms_per_step": e.self_cpu_time_total / 2e3,
            "share": e.self_cpu_time_total / total,
            "calls_per_step": e.count / 2,
        }
        for e in events[:rows]
    ]


def _flops(model, batch: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """FLOPs of one training step counted by FlopCounterMode, and the 3 × forward convention."""
    from tdpcr_lib.models.complexity import flops_per_tile

    counted = training_flops_per_sample(copy.deepcopy(model), batch)
    as_torch = training_flops_per_sample(copy.deepcopy(model), batch, fix_grouped=False)
    forward = flops_per_tile(model, size=spec["crop"])
    return {
        "counted_training_flops_per_sample": counted,
        "torch_counter_uncorrected_per_sample": as_torch,
        "forward_flops_per_sample": forward,
        "three_x_forward_per_sample": 3 * forward,
        "counted_over_three_x_forward": counted / (3 * forward),
        "method": TRAINING_FLOP_METHOD,
    }


@contextmanager
def _previous_trainer():
    """The trainer before the speed work: GeoTIFFs decoded at every read, convolution SSIM,
    the cloudy input scored at every validation, every checkpoint file hashed afresh."""
    from tdpcr_lib.metrics import functional
    from tdpcr_lib.metrics.input_cache import InputMetricsCache
    from tdpcr_lib.metrics.ssim_kernel import ssim_map_conv2d
    from tdpcr_lib.models.checkpoint_files import DigestMemo
    from tdpcr_lib.training import trainer

    class _Forgetful(DigestMemo):
        def sha256(self, name: str, data: bytes) -> str:
            self._last.clear()
            return super().sha256(name, data)

    saved = (trainer.hold_in_memory, functional.ssim_map_fused, trainer.InputMetricsCache, trainer.DigestMemo)
    trainer.hold_in_memory = lambda dataset, max_bytes=0: dataset
    functional.ssim_map_fused = ssim_map_conv2d
    trainer.InputMetricsCache = lambda: InputMetricsCache(max_batches=0)
    trainer.DigestMemo = _Forgetful
    try:
        yield
    finally:
        (trainer.hold_in_memory, functional.ssim_map_fused, trainer.InputMetricsCache, trainer.DigestMemo) = saved


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
                _timed(trainer_module, "save_checkpoint", checkpoints),
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
    bare = _bare_steps(settings, spec, names)
    pipeline = _pipeline(settings, spec, work_dir)
    # a second round of the two bare steps the pipeline ratio needs, after the pipeline runs
    again = (
        {}
        if settings.tiny
        else _bare_steps(
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
