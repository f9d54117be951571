"""Scene inference: megapixels/s of :func:`tdpcr_lib.inference.scene.predict_scene` and its peak RAM at
two scene sizes.

Synthetic scene pairs come from :func:`tdpcr_lib.datasets.synthetic.scenes.make_synthetic_scene` (S1 on its own,
slightly larger grid, so the on-the-fly S1 resampling is part of the cost). The model is the
default TDP-CR with its segmentation decoder (randomly initialised: speed and memory do not
depend on the weights), passed in memory. Every prediction runs in a fresh child process; its
peak resident set size minus its size just before ``predict_scene`` is the prediction's own RAM.

**Bounded RAM** means the peak does not grow with the scene the way whole-scene arrays would:
the check passes when the growth of the peak from the small to the large scene is at most a
quarter of the growth of the float32 arrays a whole-scene implementation would hold (15 input
bands + 13 reconstructed bands + 7 class probabilities = 140 bytes per pixel). The two scenes
differ in height and share a width wide enough for full batches: by design
(``tdpcr_lib.inference.scene``) only the strip buffers depend on the scene, on its *width* (about
36 floats per column per strip row, ≈ 0.4 GB at 10980 px), and the largest single item is the
activations of one batch of tiles, which depends on ``batch_size`` and the model, not the scene.

On CUDA the time of a full 10980 × 10980 scene is extrapolated linearly in pixels from the large
scene (tile count and file writing are both linear in pixels); ``--full-scene`` also measures it.

Variants (before/after figures for changes applied to ``tdpcr_lib.inference.scene``): on the small scene
``batch_size=8`` (the earlier default; ``main`` uses the library's default, 2 tiles on CPU) and a
wrapper that feeds the model ``channels_last`` tensors under bf16 autocast (``predict_scene``
now does this on CUDA); on both scenes ``GDAL_CACHEMAX=64MB`` in the environment (an earlier
before/after: ``predict_scene`` sets its own cap, now 32 MiB, over it); on the small scene
``overlap_io=False`` (reading, prediction and writing in turn: the before of the I/O threads).

**Bare-model bound** (issue "Speed where it is spent"): tiles/s of the bare model on random
batches of the scene's tile and batch size (``predict_tile_batch``, timed in the same child just
before and after the prediction) × (tile − overlap)²; ``ratio_to_bound`` = scene Mpx/s / bound.
``forward_share`` = the time ``predict_scene`` spent in forward passes (its ``timings``) / its
wall time, measured inside the run; ``ratio_to_in_run_bound`` uses the tiles/s of those forward
passes as the bare speed (drift-free, but it counts any slow-down the I/O threads cause to the
forward passes as model time).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .children import ChildError, run_child, write_child_result
from .common import Settings
from .measure import current_rss_bytes, mib, peak_rss_bytes, time_call

#: Bytes per pixel of the float32 arrays a whole-scene (non-streaming) prediction would hold.
WHOLE_SCENE_BYTES_PER_PIXEL = (15 + 13 + 7) * 4
#: Side of a Sentinel-2 L1C granule at 10 m.
FULL_SCENE = 10980
#: Peak growth allowed, as a share of the whole-scene arrays' growth, for "bounded".
BOUNDED_SHARE = 0.25
#: Variant run at both sizes with GDAL's block cache capped (MiB), to show where growth comes from.
GDAL_VARIANT = "GDAL_CACHEMAX=64MB"
#: Variant with reading, prediction and writing one after another (the "before" of overlap_io).
SEQUENTIAL_VARIANT = "overlap_io=False"


def scene_dir(work_dir: Path, height: int, width: int) -> Path:
    return Path(work_dir) / f"scene_{height}x{width}"


def ensure_scene(work_dir: Path, height: int, width: int) -> tuple[Path, Path, float]:
    """The (s2_cloudy, s1) paths of a synthetic scene, generated once; and the seconds it took."""
    import rasterio

    from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene

    folder = scene_dir(work_dir, height, width)
    s2, s1 = folder / "s2_cloudy.tif", folder / "s1.tif"
    if s2.is_file() and s1.is_file():
        with rasterio.open(s2) as src:
            if (src.height, src.width) == (height, width):
                return s2, s1, 0.0
    started = time.perf_counter()
    scene = make_synthetic_scene(folder, height, width, seed=0, s1_offset=(3.0, -4.0))
    return scene.s2_cloudy, scene.s1, time.perf_counter() - started


def _fast_wrapper(model):
    """``model`` fed channels-last tensors, under bf16 autocast on CUDA (a candidate change)."""
    import torch
    from torch import nn

    class ChannelsLastAutocast(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner.to(memory_format=torch.channels_last)
            self.pad_multiple = getattr(inner, "pad_multiple", 1)

        def forward(self, optical, sar):
            optical = optical.contiguous(memory_format=torch.channels_last)
            sar = sar.contiguous(memory_format=torch.channels_last)
            with torch.autocast(optical.device.type, dtype=torch.bfloat16, enabled=optical.device.type == "cuda"):
                return self.inner(optical, sar)

    return ChannelsLastAutocast(model)


def measure(settings: Settings, device_name: str, s2: Path, s1: Path, variant: str, scratch: Path) -> dict[str, Any]:
    """One ``predict_scene`` call in this (fresh) process: time, megapixels/s, peak memory."""
    import rasterio
    import torch

    from tdpcr_lib.core.runtime import resolve_device, seed_everything
    from tdpcr_lib.inference.scene import predict_scene
    from tdpcr_lib.models import build_model, named_configs

    device = resolve_device(device_name)
    seed_everything(0)
    model = build_model(named_configs(small=settings.tiny)["tdpcr"]).to(device).eval()
    batch_size = 8 if variant == "batch_size=8" else settings.scene_batch  # None: library default
    if variant == "channels_last+autocast":
        model = _fast_wrapper(model)
    with rasterio.open(s2) as src:
        height, width = src.height, src.width
    bound_calls = max(1, settings.scene_bound_calls // 2)
    bare_before = bare_tiles_per_s(model, settings, batch_size, device, bound_calls)
    out_dir = Path(tempfile.mkdtemp(prefix="predict-", dir=scratch))
    rss_before = current_rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        started = time.perf_counter()
        paths = predict_scene(
            s2,
            s1,
            model,
            out_dir,
            tile=settings.scene_tile,
            overlap=settings.scene_overlap,
            batch_size=batch_size,
            device=device,
            progress=False,
            overlap_io=variant != SEQUENTIAL_VARIANT,
        )
        seconds = time.perf_counter() - started
        summary = json.loads(Path(paths["summary"]).read_text())
        output_mib = sum(p.stat().st_size for p in out_dir.iterdir()) / 2**20
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    peak = peak_rss_bytes()
    bare_after = bare_tiles_per_s(model, settings, summary.get("batch_size") or 1, device, bound_calls)
    bare = (bare_before["tiles_per_s"] + bare_after["tiles_per_s"]) / 2
    bound = bare * (settings.scene_tile - settings.scene_overlap) ** 2 / 1e6
    forward_s = (summary.get("timings") or {}).get("forward_s", 0.0)
    result: dict[str, Any] = {
        "variant": variant,
        "device": str(device),
        "height": height,
        "width": width,
        "megapixels": height * width / 1e6,
        "tile": settings.scene_tile,
        "overlap": settings.scene_overlap,
        "batch_size": summary.get("batch_size"),
        "n_tiles": summary.get("n_tiles"),
        "tile_grid": summary.get("tile_grid"),
        "largest_batch": min(summary.get("batch_size") or 1, (summary.get("tile_grid") or [0, 1])[1]),
        "seconds": seconds,
        "megapixels_per_s": height * width / 1e6 / seconds,
        "bare_tiles_per_s": bare,
        "bare_tiles_per_s_before_after": [bare_before["tiles_per_s"], bare_after["tiles_per_s"]],
        "bound_megapixels_per_s": bound,
        "timings": summary.get("timings"),
        "forward_share": forward_s / seconds,
        "ratio_to_in_run_bound": (height * width / 1e6 / seconds)
        / ((summary.get("n_tiles") or 0) / forward_s * (settings.scene_tile - settings.scene_overlap) ** 2 / 1e6)
        if forward_s
        else None,
        "ratio_to_bound": height * width / 1e6 / seconds / bound,
        "tiles_per_s": (summary.get("n_tiles") or 0) / seconds,
        "peak_rss_mib": mib(peak),
        "rss_before_mib": mib(rss_before),
        "peak_rss_delta_mib": mib(None if peak is None or rss_before is None else peak - rss_before),
        "output_mib": round(output_mib, 2),
        "whole_scene_arrays_mib": mib(height * width * WHOLE_SCENE_BYTES_PER_PIXEL),
    }
    if device.type == "cuda":
        result["cuda_peak_mib"] = mib(torch.cuda.max_memory_allocated(device))
    return result


def bare_tiles_per_s(model, settings: Settings, batch_size: int | None, device, calls: int) -> dict[str, Any]:
    """Tiles/s of the bare model on random tile batches of the scene's tile and batch size,
    through :func:`tdpcr_lib.inference.predictor.predict_tile_batch` (the call the scene loop
    makes: NumPy batch to channels-last tensor, autocast on CUDA), nothing else."""
    import numpy as np
    import torch

    from tdpcr_lib.inference.predictor import predict_tile_batch

    batch = batch_size or (16 if device.type == "cuda" else 2)
    tile = settings.scene_tile
    rng = np.random.default_rng(5)
    optical = rng.random((batch, 13, tile, tile), dtype=np.float32)
    sar = rng.random((batch, 2, tile, tile), dtype=np.float32)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    timing = time_call(
        lambda: predict_tile_batch(model, optical, sar, device),
        warmup=1,
        iterations=1,
        repeats=calls,
        budget_s=600.0,
        synchronize=sync,
    )
    return {"tiles_per_s": batch / timing["seconds_per_call"], "timing": timing}


def run(settings: Settings, work_dir: Path, devices: list[str], log=print) -> dict[str, Any]:
    """Both scene sizes on every device (children), variants, bounded-RAM check, extrapolation."""
    out: dict[str, Any] = {}
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    for device in devices:
        runs: list[dict[str, Any]] = []
        variants: dict[str, Any] = {}
        result: dict[str, Any] = {"runs": runs, "variants": variants}
        sizes = settings.scene_sizes_for(device)
        jobs = [(size, "main") for size in sizes]
        if settings.scene_variants:
            jobs += [
                (sizes[0], SEQUENTIAL_VARIANT),
                (sizes[0], "batch_size=8"),
                (sizes[0], "channels_last+autocast"),
                (sizes[0], GDAL_VARIANT),
                (sizes[1], GDAL_VARIANT),
            ]
        if device == "cuda" and settings.full_scene and not settings.tiny:
            jobs.append(((FULL_SCENE, FULL_SCENE), "main"))
        try:
            for (height, width), variant in jobs:
                s2, s1, generated = ensure_scene(work_dir, height, width)
                log(
                    f"[scene] {height}x{width} {variant} on {device}"
                    + (f" (scene generated in {generated:.0f} s)" if generated else "")
                    + " ..."
                )
                measured = run_child(
                    [
                        "-m",
                        "benchmarks.scene_inference",
                        "--worker",
                        "--device",
                        device,
                        "--s2",
                        str(s2),
                        "--s1",
                        str(s1),
                        "--variant",
                        variant,
                        "--scratch",
                        str(work_dir),
                        "--settings",
                        json.dumps(settings.to_dict()),
                    ],
                    timeout_s=settings.timeout_s,
                    env={**settings.child_env(), **({"GDAL_CACHEMAX": "64"} if variant == GDAL_VARIANT else {})},
                )
                log(
                    f"          {measured['megapixels_per_s']:.3f} Mpx/s "
                    f"({measured['ratio_to_bound']:.2f} of the bare-model bound), "
                    f"{measured['seconds']:.1f} s, peak RSS +{measured['peak_rss_delta_mib']} MiB"
                )
                (runs if variant == "main" else variants.setdefault(variant, [])).append(measured)
        except ChildError as err:
            result["error"] = str(err)
            log("          ERROR " + str(err).splitlines()[-1][:200])
        result.update(summarise(runs, variants, device))
        out[device] = result
    return out


def ram_check(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Peak-RSS growth from the smallest to the largest run vs the whole-scene arrays' growth."""
    runs = sorted((r for r in runs if r["height"] * r["width"] < FULL_SCENE**2), key=lambda r: r["megapixels"])
    if len(runs) < 2 or runs[0]["peak_rss_delta_mib"] is None:
        return None
    small, large = runs[0], runs[-1]
    growth = large["peak_rss_delta_mib"] - small["peak_rss_delta_mib"]
    whole_growth = large["whole_scene_arrays_mib"] - small["whole_scene_arrays_mib"]
    return {
        "small": [small["height"], small["width"]],
        "large": [large["height"], large["width"]],
        "pixel_ratio": large["megapixels"] / small["megapixels"],
        "peak_delta_small_mib": small["peak_rss_delta_mib"],
        "peak_delta_large_mib": large["peak_rss_delta_mib"],
        "peak_growth_mib": round(growth, 1),
        "whole_scene_growth_mib": round(whole_growth, 1),
        "growth_share": growth / whole_growth if whole_growth else None,
        "bounded": bool(whole_growth and growth <= BOUNDED_SHARE * whole_growth),
    }


def summarise(runs: list[dict[str, Any]], variants: dict[str, Any], device: str) -> dict[str, Any]:
    """Bounded-RAM checks (main setting and the bounded-GDAL-cache variant), variant speed-ups
    against the main run of the same size, full-scene estimate."""
    summary: dict[str, Any] = {}
    mains = sorted((r for r in runs if r["height"] * r["width"] < FULL_SCENE**2), key=lambda r: r["megapixels"])
    ram = ram_check(runs)
    if ram:
        summary["ram"] = ram
    gdal = ram_check(variants.get(GDAL_VARIANT, []))
    if gdal:
        summary["ram_" + GDAL_VARIANT] = gdal
    for measured in variants.values():
        for run in measured:
            base = next((r for r in mains if (r["height"], r["width"]) == (run["height"], run["width"])), None)
            if base:
                run["speedup_vs_main"] = run["megapixels_per_s"] / base["megapixels_per_s"]
    if mains and device.startswith("cuda"):
        large = mains[-1]
        full = [r for r in runs if r["height"] * r["width"] >= FULL_SCENE**2]
        summary["full_scene"] = {
            "size": [FULL_SCENE, FULL_SCENE],
            "extrapolated_s": large["seconds"] * FULL_SCENE**2 / (large["height"] * large["width"]),
            "extrapolated_from": [large["height"], large["width"]],
            "measured_s": full[0]["seconds"] if full else None,
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Scene inference benchmark worker (run benchmarks.run_all for the whole benchmark)."
    )
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--s2", required=True)
    parser.add_argument("--s1", required=True)
    parser.add_argument(
        "--variant",
        default="main",
        choices=("main", SEQUENTIAL_VARIANT, "batch_size=8", "channels_last+autocast", GDAL_VARIANT),
    )
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_dict(json.loads(args.settings))
    settings.apply_threads()
    write_child_result(
        args.json, measure(settings, args.device, Path(args.s2), Path(args.s1), args.variant, Path(args.scratch))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
