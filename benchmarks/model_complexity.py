"""Model complexity of the *default* configs and TDP-CR's ratios to its competitors.

Parameters, FLOPs and bytes moved per 256 px tile are counted on the ``meta`` device (no weights
allocated); the ratios combine them with the measured speeds of :mod:`benchmarks.model_throughput`.
"""

from __future__ import annotations

from typing import Any

from tdpcr_lib.models.blocks import reference_kernels

from .common import MODEL_NAMES


def default_complexity() -> dict[str, Any]:
    """Parameters and GFLOPs per 13×256×256 tile of the *default* configs (always full size)."""
    import torch

    from tdpcr_lib.models import build_model, named_configs
    from tdpcr_lib.models.complexity import bytes_moved_per_tile, count_parameters, flops_per_tile

    configs = named_configs()
    out = {}
    for name in MODEL_NAMES:
        with torch.device("meta"):
            model = build_model(configs[name])
        flops = flops_per_tile(model, size=256)
        moved = bytes_moved_per_tile(model, size=256)
        with reference_kernels(model):
            moved_reference = bytes_moved_per_tile(model, size=256)
        out[name] = {
            "params": count_parameters(model)["total"],
            "gflops_per_tile_256": flops / 1e9,
            "gb_moved_per_tile_256": moved / 1e9,
            "flop_per_byte": flops / moved,
            "flop_per_byte_reference_kernels": flops / moved_reference,
        }
    return out


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """TDP-CR relative to each competitor: params, FLOPs, inference and training speed."""
    out: dict[str, Any] = {}
    complexity = results.get("complexity", {})
    tdpcr = complexity.get("tdpcr")
    for other in MODEL_NAMES[1:]:
        ref = complexity.get(other)
        if tdpcr and ref:
            out[f"params tdpcr/{other}"] = tdpcr["params"] / ref["params"]
            out[f"gflops tdpcr/{other}"] = tdpcr["gflops_per_tile_256"] / ref["gflops_per_tile_256"]
    for device, per_model in results.get("inference", {}).items():
        mine = per_model.get("tdpcr", {}).get("achieved_gflop_per_s")
        theirs = per_model.get("dsen2cr", {}).get("achieved_gflop_per_s")
        if mine and theirs:
            out[f"inference GFLOP/s tdpcr/dsen2cr ({device}, separate processes)"] = mine / theirs
        interleaved = per_model.get("tdpcr", {}).get("interleaved", {}).get("ratios", {})
        for key, value in interleaved.items():
            out[f"inference GFLOP/s {key} ({device}, interleaved)"] = value
    for task, key in (("inference", "tiles_per_s"), ("training", "samples_per_s")):
        for device, per_model in results.get(task, {}).items():
            mine = per_model.get("tdpcr", {}).get(key)
            for other in MODEL_NAMES[1:]:
                theirs = per_model.get(other, {}).get(key)
                if mine and theirs:
                    out[f"{task} speed tdpcr/{other} ({device})"] = mine / theirs
    return out
