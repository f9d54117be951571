"""The bare training step of the CPU recipe and its variants (see :mod:`benchmarks.training_step`).

Forward, ``L_rec`` (0.9·L1 + 0.1·(1 − SSIM)), backward, gradient clipping and AdamW on a fixed
in-memory batch; the variants change one thing each (SSIM implementation, ``channels_last``, bf16
autocast, ``torch.compile``, loss). Also the ``torch.profiler`` table and the FLOPs of one step.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

from .common import Settings
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


def step_function(model, optimizer, variant: dict[str, Any], batch: dict[str, Any]):
    """One training step of ``variant`` on the fixed ``batch``, as a function returning the loss."""
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


def bare_steps(settings: Settings, spec: dict[str, Any], names: list[str], details: bool = True) -> dict[str, Any]:
    """Time the bare-step ``names`` in alternation (``details``: also the profile and the FLOPs)."""
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
        steps[name] = step_function(model, optimizer, variant, batch)
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
