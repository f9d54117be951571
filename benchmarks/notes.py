"""Plain-language observations on a benchmark report (the Notes section), computed from its figures."""

from __future__ import annotations

from typing import Any


def notes_for(report: dict[str, Any]) -> list[str]:
    """Plain-language observations computed from the figures (no hand-written numbers)."""
    notes = []
    machine = report["machine"]
    load = machine.get("load_average_at_start")
    cores = machine.get("cpu_cores_usable") or 1
    if load and load[0] > cores:
        notes.append(
            f"The machine was busy at the start (1-min load {load[0]} on {cores} "
            "cores): timings are noisy; rerun on a quiet machine for reference figures."
        )
    for device, per_model in (report.get("model_throughput") or {}).get("inference", {}).items():
        variants = per_model.get("tdpcr", {}).get("variants", {})
        nchw = variants.get("contiguous (NCHW)", {}).get("speedup_vs_main")
        if nchw:
            notes.append(
                f"{device}: TDP-CR inference with channels_last runs at {1 / nchw:.2f}x "
                "the speed of contiguous NCHW" + (" (NCHW is faster here)." if nchw > 1 else ".")
            )
        compiled = variants.get("torch.compile", {})
        if compiled.get("speedup_vs_main"):
            notes.append(
                f"{device}: torch.compile gives {compiled['speedup_vs_main']:.2f}x "
                f"after {compiled.get('first_calls_s_including_compile')} s of "
                "compilation and warm-up."
            )
    for device, result in (report.get("data_pipeline") or {}).items():
        if "error" in result:
            continue
        loaders = result["loaders"]
        for name, loader in loaders.items():
            if loader.get("cache"):
                plain = loaders.get(name.replace(", memory-mapped cache", ""))
                if plain:
                    notes.append(
                        f"{device}: the memory-mapped cache (tdpcr_lib.datasets.cache, built once "
                        f"in {loader['cache_build_seconds']} s) delivers "
                        f"{loader['samples_per_s'] / plain['samples_per_s']:.2f}x the "
                        "samples/s of the GeoTIFF loader with the same workers."
                    )
            if loader["persistent_workers"]:
                plain = loaders.get(name.replace(", persistent", ""))
                if plain:
                    notes.append(
                        f"{device}: persistent workers deliver "
                        f"{loader['samples_per_s'] / plain['samples_per_s']:.2f}x the "
                        f"samples/s of a new {plain['num_workers']}-worker loader per "
                        "epoch (Trainer._train_loader makes a new one each epoch)."
                    )
    return notes
