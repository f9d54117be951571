"""TDP-CR's FLOP rate against DSen2-CR's, measured in alternation in one process, with the
machine's copy bandwidth for the roofline (issue "Speed where it is spent", target 3; called from
:func:`benchmarks.model_throughput.measure_inference` in TDP-CR's inference child)."""

from __future__ import annotations

from typing import Any

from tdpcr_lib.models.blocks import reference_kernels

from .common import Settings

#: Size of the copied buffer that measures memory bandwidth (larger than the CPU caches; the
#: 2-core VM reports a 300 MiB L3); tiny mode copies 8 MiB.
STREAM_BYTES = 512 * 2**20


def interleaved_flop_rates(model, optical, sar, settings: Settings, device, bf16: bool) -> dict[str, Any]:
    """FLOP rates of TDP-CR (fused and reference kernels) and DSen2-CR, timed in alternation.

    Each round times one call of each, back to back in this process, so a busy machine slows all
    three alike and the per-round ratios cancel most of it. DSen2-CR runs on
    ``settings.ab_dsen2cr_tile`` px tiles (its FLOP rate barely depends on the tile: every layer
    is the same 3×3 convolution at one resolution; a 256 px call takes tens of seconds on a CPU).
    """
    import statistics
    import time

    import torch

    from tdpcr_lib.models import build_model, named_configs
    from tdpcr_lib.models.complexity import bytes_moved_per_tile, flops_per_tile

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    dsen2cr = build_model(named_configs(small=settings.tiny)["dsen2cr"]).to(device).eval()
    dsen2cr = dsen2cr.to(memory_format=torch.channels_last)
    tile = settings.ab_dsen2cr_tile
    generator = torch.Generator().manual_seed(99)
    d_optical = torch.rand(1, 13, tile, tile, generator=generator).to(device)
    d_sar = torch.rand(1, 2, tile, tile, generator=generator).to(device)
    d_optical, d_sar = (t.contiguous(memory_format=torch.channels_last) for t in (d_optical, d_sar))
    flops = {
        "tdpcr": flops_per_tile(model, size=optical.shape[-1]) * optical.shape[0],
        "tdpcr_reference": flops_per_tile(model, size=optical.shape[-1]) * optical.shape[0],
        "dsen2cr": flops_per_tile(dsen2cr, size=tile),
    }

    # the machine's memory bandwidth as a copy sees it, for the roofline (FLOP/byte x GB/s)
    stream_bytes = 8 * 2**20 if settings.tiny else STREAM_BYTES
    source = torch.ones(stream_bytes // 4, device=device)
    target = torch.empty_like(source)
    flops["stream copy"] = 2 * stream_bytes  # "FLOP" = bytes moved: its rate is GB/s

    def call(which: str) -> float:
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if which == "stream copy":
                target.copy_(source)
            elif which == "dsen2cr":
                dsen2cr(d_optical, d_sar)
            elif which == "tdpcr_reference":
                with reference_kernels(model):
                    model(optical, sar)
            else:
                model(optical, sar)
        sync()
        return time.perf_counter() - start

    for which in flops:  # warm-up
        call(which)
    rates: dict[str, list[float]] = {which: [] for which in flops}
    for _ in range(settings.ab_rounds):
        for which in flops:
            rates[which].append(flops[which] / call(which) / 1e9)
    per_round = {
        "tdpcr/dsen2cr": [a / b for a, b in zip(rates["tdpcr"], rates["dsen2cr"], strict=True)],
        "tdpcr_reference/dsen2cr": [a / b for a, b in zip(rates["tdpcr_reference"], rates["dsen2cr"], strict=True)],
        "fused/reference": [a / b for a, b in zip(rates["tdpcr"], rates["tdpcr_reference"], strict=True)],
    }
    stream = rates.pop("stream copy")
    intensity = flops["tdpcr"] / bytes_moved_per_tile(model, size=optical.shape[-1]) / optical.shape[0]
    bandwidth = statistics.median(stream)
    return {
        "rounds": settings.ab_rounds,
        "dsen2cr_tile": tile,
        "copy_gb_per_s": bandwidth,
        "copy_gb_per_s_all": stream,
        "tdpcr_flop_per_byte": intensity,
        "tdpcr_roofline_gflop_per_s": intensity * bandwidth,
        "tdpcr_tile": optical.shape[-1],
        "tdpcr_batch": optical.shape[0],
        "gflop_per_s": {k: statistics.median(v) for k, v in rates.items()},
        "gflop_per_s_all": rates,
        "ratios": {k: statistics.median(v) for k, v in per_round.items()},
        "ratio_spread": {k: [min(v), max(v)] for k, v in per_round.items()},
    }
