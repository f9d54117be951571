"""Model throughput: inference tiles/s and training samples/s of TDP-CR, DSen2-CR and the
multi-task competitor, on the CPU and on CUDA, with parameters, FLOPs, achieved FLOP/s and peak
memory.

* **Inference**: eval mode, ``torch.inference_mode``, ``channels_last`` inputs and weights, bf16
  autocast on CUDA; batches of ``inference_batch`` tiles of ``inference_size`` px (the same
  seeded random tensors for every model). TDP-CR is also timed without ``channels_last`` (and in
  fp32 on CUDA) as the before/after of those choices, and with ``torch.compile`` where asked.
* **Training**: one optimizer step of :meth:`tdpcr_lib.training.trainer.Trainer.train_step` (forward,
  the run's loss, backward, gradient clipping, AdamW, LR schedule) exactly as training runs it:
  TDP-CR with its segmentation decoder as a ``joint`` run (every parameter trainable, CE + L_rec),
  the baselines as ``baseline`` runs with their own losses. Training FLOPs are counted over one
  ``train_step`` (:data:`benchmarks.flops.TRAINING_FLOP_METHOD`: ``FlopCounterMode`` with
  grouped-convolution weight gradients counted right); the "3 × forward" convention is kept
  beside it.
* **FLOP rate, interleaved**: in TDP-CR's inference child, rounds of one call each of TDP-CR
  (fused kernels), TDP-CR (``reference_kernels(model)``, the plain formulation: the "before"),
  DSen2-CR on a small tile and a 512 MiB copy (memory bandwidth), back to back, so the ratios
  cancel most of a busy machine's drift; with the bytes each model moves per tile
  (:func:`tdpcr_lib.models.complexity.bytes_moved_per_tile`) this gives the roofline.
* FLOPs per tile from :func:`tdpcr_lib.models.complexity.flops_per_tile` (2 per multiply-add); achieved
  FLOP/s = FLOPs per sample × samples/s.

Each (model, task, device) runs in its own child process (``--worker``), so its peak memory is
its own (:mod:`benchmarks.measure`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Any

from tdpcr_lib.models.blocks import reference_kernels

from .children import ChildError, run_child, write_child_result
from .common import MODEL_NAMES, RandomTiles, Settings
from .flop_rate import interleaved_flop_rates
from .flops import TRAINING_FLOP_METHOD, flop_counter
from .measure import current_rss_bytes, mib, peak_rss_bytes, time_call
from .model_complexity import default_complexity, ratios


# --------------------------------------------------------------------------------------------
# Worker side (runs in the child process)
# --------------------------------------------------------------------------------------------
def _model_config(name: str, tiny: bool):
    from tdpcr_lib.models import named_configs

    configs = named_configs(small=tiny)
    if name not in configs:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(configs)}")
    return configs[name]


def _synchronizer(device):
    import torch

    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return None


def _memory_start(device) -> int | None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return int(torch.cuda.memory_allocated(device))
    return current_rss_bytes()


def _memory_peak(device, start: int | None) -> dict[str, Any]:
    import torch

    if device.type == "cuda":
        peak = int(torch.cuda.max_memory_allocated(device))
        return {"kind": "cuda_max_memory_allocated", "peak_mib": mib(peak), "delta_mib": mib(peak - (start or 0))}
    peak = peak_rss_bytes()
    return {
        "kind": "cpu_peak_rss",
        "peak_mib": mib(peak),
        "delta_mib": mib(None if peak is None or start is None else peak - start),
    }


def measure_inference(name: str, settings: Settings, device_name: str) -> dict[str, Any]:
    """Inference tiles/s of one model on one device (plus TDP-CR's before/after variants)."""
    import torch

    from tdpcr_lib.core.runtime import resolve_device, seed_everything
    from tdpcr_lib.models import build_model
    from tdpcr_lib.models.complexity import count_parameters, flops_per_tile

    device = resolve_device(device_name)
    seed_everything(0)
    memory_start = _memory_start(device)
    config = _model_config(name, settings.tiny)
    model = build_model(config).to(device).eval()
    size, batch = settings.inference_size, settings.inference_batch
    generator = torch.Generator().manual_seed(1234)
    optical = torch.rand(batch, config.in_optical, size, size, generator=generator).to(device)
    sar = torch.rand(batch, config.in_sar, size, size, generator=generator).to(device)
    use_bf16 = device.type == "cuda"
    sync = _synchronizer(device)

    def timed(module, channels_last: bool, bf16: bool, warmup: int | None = None):
        o, s = optical, sar
        if channels_last:
            o = o.contiguous(memory_format=torch.channels_last)
            s = s.contiguous(memory_format=torch.channels_last)

        def call():
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                module(o, s)

        timing = time_call(
            call,
            warmup=settings.warmup if warmup is None else warmup,
            iterations=settings.iterations,
            repeats=settings.repeats,
            budget_s=settings.budget_s,
            synchronize=sync,
        )
        timing["tiles_per_s"] = batch / timing["seconds_per_call"]
        return timing

    model = model.to(memory_format=torch.channels_last)
    # DSen2-CR at full size costs tens of seconds per tile on a CPU: one warm-up call is enough
    # (its one-time costs are negligible next to the call itself).
    heavy = name == "dsen2cr" and device.type == "cpu" and not settings.tiny
    main = timed(model, channels_last=True, bf16=use_bf16, warmup=1 if heavy else None)
    memory = _memory_peak(device, memory_start)
    flops = flops_per_tile(model, size=size)
    result: dict[str, Any] = {
        "model": name,
        "task": "inference",
        "device": str(device),
        "tile": size,
        "batch": batch,
        "precision": "bf16-autocast" if use_bf16 else "fp32",
        "channels_last": True,
        "params": count_parameters(model)["total"],
        "flops_per_tile": flops,
        "gflops_per_tile": flops / 1e9,
        "tiles_per_s": main["tiles_per_s"],
        "achieved_gflop_per_s": flops * main["tiles_per_s"] / 1e9,
        "timing": main,
        "memory": memory,
        "variants": {},
    }
    if name == "tdpcr":
        variants = result["variants"]
        with reference_kernels(model):  # the plain layer-by-layer formulation: the "before"
            variants["reference kernels (before)"] = timed(model, channels_last=True, bf16=use_bf16)
        plain = model.to(memory_format=torch.contiguous_format)
        variants["contiguous (NCHW)"] = timed(plain, channels_last=False, bf16=use_bf16)
        model = plain.to(memory_format=torch.channels_last)
        if use_bf16:
            variants["fp32 (no autocast)"] = timed(model, channels_last=True, bf16=False)
        if not settings.no_compile and (device.type == "cuda" or settings.compile_cpu):
            try:
                import time

                start = time.perf_counter()
                compiled = torch.compile(model)
                timing = timed(compiled, channels_last=True, bf16=use_bf16, warmup=max(2, settings.warmup))
                timing["first_calls_s_including_compile"] = round(time.perf_counter() - start, 2)
                variants["torch.compile"] = timing
            except Exception as err:  # compile needs a working C++/Triton toolchain
                variants["torch.compile"] = {"error": f"{type(err).__name__}: {err}"[:500]}
        for timing in variants.values():
            if "tiles_per_s" in timing:
                timing["speedup_vs_main"] = timing["tiles_per_s"] / main["tiles_per_s"]
        result["interleaved"] = interleaved_flop_rates(model, optical, sar, settings, device, use_bf16)
    return result


def _counted_step_flops(trainer, batch) -> float:
    """FLOPs of one ``train_step`` (``flops.flop_counter``; run after the timing)."""
    with flop_counter() as counter:
        trainer.train_step(batch)
    return float(counter.get_total_flops())


def measure_training(name: str, settings: Settings, device_name: str) -> dict[str, Any]:
    """Training samples/s of one model: ``Trainer.train_step`` on a fixed random batch."""
    from torch.utils.data import default_collate

    from tdpcr_lib.core.runtime import resolve_device, seed_everything
    from tdpcr_lib.models import build_model
    from tdpcr_lib.models.complexity import count_parameters, flops_per_tile
    from tdpcr_lib.training.config import TrainConfig
    from tdpcr_lib.training.trainer import Trainer

    device = resolve_device(device_name)
    crop, batch_size = settings.train_shape(device.type)
    seed_everything(0)
    memory_start = _memory_start(device)
    config = _model_config(name, settings.tiny)
    model = build_model(config)
    flops = flops_per_tile(model, size=crop)
    phase = "joint" if config.arch == "tdpcr" else "baseline"
    train_config = TrainConfig(
        phase=phase, batch_size=batch_size, crop_size=None, epochs=1, max_steps=10_000, progress=False, num_workers=0
    )
    data = RandomTiles(batch_size, crop, seed=7)
    with tempfile.TemporaryDirectory(prefix="tdpcr-bench-train-") as out_dir:
        trainer = Trainer(model, train_config, data, None, out_dir, device=device)
        trainer._set_train_mode()  # what fit() does before every epoch
        batch = default_collate([data[i] for i in range(batch_size)])
        heavy = name == "dsen2cr" and device.type == "cpu" and not settings.tiny
        timing = time_call(
            lambda: trainer.train_step(batch),
            warmup=1 if heavy else settings.warmup,
            iterations=settings.iterations,
            repeats=settings.repeats,
            budget_s=settings.budget_s,
            synchronize=_synchronizer(device),
        )
        memory = _memory_peak(device, memory_start)
        samples_per_s = batch_size / timing["seconds_per_call"]
        counted = _counted_step_flops(trainer, batch) / batch_size
        return {
            "model": name,
            "task": "training",
            "device": str(device),
            "crop": crop,
            "batch": batch_size,
            "phase": phase,
            "objective": trainer.objective,
            "precision": "bf16-autocast" if trainer.autocast_dtype is not None else "fp32",
            "channels_last": trainer.use_channels_last,
            "deterministic": train_config.deterministic,
            "params": count_parameters(model)["total"],
            "flops_per_sample": counted,
            "three_x_forward_flops_per_sample": 3 * flops,
            "flop_method": TRAINING_FLOP_METHOD,
            "samples_per_s": samples_per_s,
            "achieved_gflop_per_s": counted * samples_per_s / 1e9,
            "timing": timing,
            "memory": memory,
        }


# --------------------------------------------------------------------------------------------
# Orchestrator side
# --------------------------------------------------------------------------------------------
def devices_of(settings: Settings) -> list[str]:
    """CPU always; CUDA too when the run measures a GPU."""
    return ["cpu"] + ([settings.accelerator] if settings.accelerator else [])


def run(settings: Settings, log=print) -> dict[str, Any]:
    """Measure every model, task and device in child processes; return the nested results.

    Returns
    -------
    dict
        ``{"inference": {device: {model: result}}, "training": {device: {model: result}},
        "complexity": {...default-config params/GFLOPs at 256 px...}, "ratios": {...}}``;
        a failed child gives ``{"error": message}`` in place of its result.
    """
    results: dict[str, Any] = {"inference": {}, "training": {}}
    for device in devices_of(settings):
        for task in ("inference", "training"):
            per_model = results[task].setdefault(device, {})
            for name in MODEL_NAMES:
                log(f"[model] {task:9s} {name:15s} on {device} ...")
                try:
                    result = run_child(
                        [
                            "-m",
                            "benchmarks.model_throughput",
                            "--worker",
                            "--task",
                            task,
                            "--model",
                            name,
                            "--device",
                            device,
                            "--settings",
                            _settings_json(settings),
                        ],
                        timeout_s=settings.timeout_s,
                        env=settings.child_env(),
                    )
                except ChildError as err:
                    result = {"error": str(err)}
                per_model[name] = result
                log("          " + _one_line(result))
    results["complexity"] = default_complexity()
    results["ratios"] = ratios(results)
    return results


def _settings_json(settings: Settings) -> str:
    import json

    return json.dumps(settings.to_dict())


def _one_line(result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR " + result["error"].splitlines()[-1][:200]
    if result["task"] == "inference":
        return (
            f"{result['tiles_per_s']:.3f} tiles/s, {result['achieved_gflop_per_s']:.1f} "
            f"GFLOP/s, peak {result['memory']['delta_mib']} MiB"
        )
    return (
        f"{result['samples_per_s']:.3f} samples/s, {result['achieved_gflop_per_s']:.1f} "
        f"GFLOP/s, peak {result['memory']['delta_mib']} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Model throughput benchmark worker (run benchmarks.run_all for the whole benchmark)."
    )
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--task", choices=("inference", "training"), required=True)
    parser.add_argument("--model", choices=MODEL_NAMES, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--settings", required=True, help="Settings as JSON")
    parser.add_argument("--json", required=True, help="where to write the result")
    args = parser.parse_args(argv)
    import json

    settings = Settings.from_dict(json.loads(args.settings))
    settings.apply_threads()
    measure = measure_inference if args.task == "inference" else measure_training
    write_child_result(args.json, measure(args.model, settings, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
