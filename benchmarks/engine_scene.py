"""Scene prediction with the torch engine and with the fusing runtime, side by side in one run.

``python -m benchmarks.engine_scene [--tiny] [--threads N]`` (also run by ``make bench``):

* builds the full-size TDP-CR with its segmentation decoder (random weights: speed does not
  depend on them; ``--tiny``: the tiny preset on a small scene, for the test suite);
* exports it once (``export_s``) through :func:`tdpcr_lib.inference.engines.engine_model`;
* predicts the same synthetic scene (1024², tile 256, overlap 64, the CPU default batch) with
  ``engine="torch"`` (*before*) and with the chosen engine (*after*), alternating A/B
  ``--repeats`` times in this one process so that load on a shared machine hits both alike;
* times the chosen engine's bare tile throughput on random batches of the same tile and batch
  size, before and after the predictions, and turns it into the scene's **bound**
  (tiles/s × (tile − overlap)², as :mod:`benchmarks.scene_inference` does).

It prints and writes (``--out``, JSON) ``ratio_after_before`` = after Mpx/s / before Mpx/s
(target >= 1.6) and ``ratio_to_bound`` = after Mpx/s / bound (target >= 0.85), with the
*after* run's own timings (forward, waits, COG conversion) to show where the rest goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tdpcr_lib.core.paths import DATA_DIR

#: Targets of the issue "Fast CPU inference through a fusing runtime".
TARGET_RATIO, TARGET_BOUND = 1.6, 0.85


def _sizes(tiny: bool) -> dict[str, Any]:
    if tiny:
        return {"preset": "tiny", "height": 128, "width": 160, "tile": 64, "overlap": 16, "batch": 2}
    return {"preset": "full", "height": 1024, "width": 1024, "tile": 256, "overlap": 64, "batch": 2}


def _bare_mpx_s(model: Any, sizes: dict[str, Any], calls: int) -> float:
    """Mpx/s bound from the engine's bare tile throughput (random tiles, same batch)."""
    import numpy as np
    import torch

    from tdpcr_lib.inference.predictor import predict_tile_batch

    rng = np.random.default_rng(0)
    shape = (sizes["batch"], sizes["tile"], sizes["tile"])
    optical = rng.random((shape[0], 13, *shape[1:]), dtype=np.float32)
    sar = rng.random((shape[0], 2, *shape[1:]), dtype=np.float32)
    predict_tile_batch(model, optical, sar, torch.device("cpu"), "fp32")  # warm-up
    started = time.perf_counter()
    for _ in range(calls):
        predict_tile_batch(model, optical, sar, torch.device("cpu"), "fp32")
    tiles_s = calls * shape[0] / (time.perf_counter() - started)
    return tiles_s * (sizes["tile"] - sizes["overlap"]) ** 2 / 1e6


def profile_pipeline(s2: Path, products: dict[str, Path], repeats: int = 3) -> dict[str, Any]:
    """The content check and the COG conversion, before and after, A/B in this process.

    * check: the decimated whole-scene read it replaced (256 px a side, nearest) against
      :func:`tdpcr_lib.inference.inputs.content_sample`;
    * COG: the products converted one after another against side by side (the *after*
      prediction's products, copied once to plain GTiffs, serve as sources; same GDAL
      settings as ``predict_scene``).
    """
    from concurrent.futures import ThreadPoolExecutor

    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling

    from tdpcr_lib.inference.inputs import content_sample
    from tdpcr_lib.inference.products import to_cog

    def old_check() -> None:
        with rasterio.open(s2) as src:
            src.read(out_shape=(src.count, min(src.height, 256), min(src.width, 256)), resampling=Resampling.nearest)

    def new_check() -> None:
        with rasterio.open(s2) as src:
            content_sample(src, s2)

    resampling = {"cloud_free": "AVERAGE", "land_cover": "MODE"}
    names = [n for n in resampling if n in products]

    def cogs(parallel: bool, scratch: Path) -> None:
        jobs = [(scratch / f"source_{n}.tif", scratch / f"{n}.tif", resampling[n], 512) for n in names]
        if parallel:
            with ThreadPoolExecutor(len(jobs)) as pool:
                for done in [pool.submit(to_cog, *job) for job in jobs]:
                    done.result()
        else:
            for job in jobs:
                to_cog(*job)

    times: dict[str, list[float]] = {k: [] for k in ("check_before", "check_after", "cog_serial", "cog_parallel")}
    with tempfile.TemporaryDirectory(prefix="tdpcr-bench-cog-") as scratch:
        for n in names:  # plain GTiff sources, like predict_scene's intermediates
            rasterio.shutil.copy(
                products[n], Path(scratch) / f"source_{n}.tif", driver="GTiff", tiled=True, compress="deflate", zlevel=1
            )
        for _ in range(repeats):
            for key, fn in (
                ("check_before", old_check),
                ("check_after", new_check),
                ("cog_serial", lambda: cogs(False, Path(scratch))),
                ("cog_parallel", lambda: cogs(True, Path(scratch))),
            ):
                started = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - started)
    return {k: statistics.median(v) for k, v in times.items()}


def run(tiny: bool, work_dir: Path, engine: str = "auto", repeats: int = 1) -> dict[str, Any]:
    """Measure before/after/bound in this process (see the module docstring)."""
    import torch

    from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
    from tdpcr_lib.inference.engines import engine_model
    from tdpcr_lib.inference.scene import predict_scene
    from tdpcr_lib.models.build import build_model
    from tdpcr_lib.models.config import ModelConfig

    sizes = _sizes(tiny)
    torch.manual_seed(0)
    config = ModelConfig.preset(sizes["preset"])
    config.with_seg_decoder = True
    model = build_model(config).eval()
    scene_dir = work_dir / f"engine_scene_{sizes['height']}x{sizes['width']}"
    if not (scene_dir / "s2_cloudy.tif").is_file():
        make_synthetic_scene(scene_dir, sizes["height"], sizes["width"], seed=0, s1_offset=(3.0, -4.0))
    s2, s1 = scene_dir / "s2_cloudy.tif", scene_dir / "s1.tif"
    started = time.perf_counter()
    fast, _, chosen = engine_model(model, engine, "cpu")
    export_s = time.perf_counter() - started
    mpx = sizes["height"] * sizes["width"] / 1e6
    calls = 2 if tiny else 3
    bounds = [_bare_mpx_s(fast, sizes, calls)]
    runs: dict[str, list[float]] = {"before": [], "after": []}
    timings: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tdpcr-bench-") as scratch:
        for rep in range(repeats):
            for label, which in (("before", "torch"), ("after", chosen)):
                out = Path(scratch) / f"{label}{rep}"
                started = time.perf_counter()
                paths = predict_scene(
                    s2,
                    s1,
                    model,
                    out,
                    tile=sizes["tile"],
                    overlap=sizes["overlap"],
                    batch_size=sizes["batch"],
                    progress=False,
                    engine=which,
                )
                runs[label].append(mpx / (time.perf_counter() - started))
                timings[label] = json.loads(paths["summary"].read_text())["timings"]
        pipeline = profile_pipeline(s2, paths, repeats=1 if tiny else 3)
    bounds.append(_bare_mpx_s(fast, sizes, calls))
    before, after = statistics.median(runs["before"]), statistics.median(runs["after"])
    bound = statistics.median(bounds)
    return {
        "tiny": tiny,
        "engine": chosen,
        "sizes": sizes,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "export_s": round(export_s, 1),
        "before_mpx_s": before,
        "after_mpx_s": after,
        "bound_mpx_s": bound,
        "bound_samples_mpx_s": bounds,
        "runs_mpx_s": runs,
        "timings": timings,
        "pipeline_s": pipeline,
        "ratio_after_before": after / before,
        "ratio_to_bound": after / bound,
    }


def render(result: dict[str, Any]) -> str:
    """The lines ``make bench`` prints."""
    status = "SKIP (tiny)" if result["tiny"] else None

    def verdict(value: float, target: float) -> str:
        return status or ("PASS" if value >= target else "FAIL")

    return "\n".join(
        [
            f"scene prediction, {result['sizes']['preset']} TDP-CR, "
            f"{result['sizes']['height']}x{result['sizes']['width']}, tile "
            f"{result['sizes']['tile']}/{result['sizes']['overlap']}, {result['threads']} threads, "
            f"A/B x{result['repeats']} in one process (export {result['export_s']} s once)",
            f"  before (torch):  {result['before_mpx_s']:.4f} Mpx/s",
            f"  after ({result['engine']}): {result['after_mpx_s']:.4f} Mpx/s",
            f"  ratio after/before: {result['ratio_after_before']:.2f} (target >= {TARGET_RATIO}) "
            f"{verdict(result['ratio_after_before'], TARGET_RATIO)}",
            f"  engine tile bound: {result['bound_mpx_s']:.4f} Mpx/s; ratio to bound "
            f"{result['ratio_to_bound']:.2f} (target >= {TARGET_BOUND}) "
            f"{verdict(result['ratio_to_bound'], TARGET_BOUND)}",
            f"  after's timings: {result['timings'].get('after')}",
            "  content check {check_before:.3f} s -> {check_after:.3f} s; COG conversion serial "
            "{cog_serial:.3f} s -> side by side {cog_parallel:.3f} s".format(**result["pipeline_s"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_scene")
    parser.add_argument("--tiny", action="store_true", help="tiny model and scene (tests)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: OMP_NUM_THREADS, else all cores)"
    )
    parser.add_argument("--engine", default="auto", help="the engine measured as 'after'")
    parser.add_argument("--repeats", type=int, default=1, help="A/B pairs (median)")
    parser.add_argument(
        "--work-dir", type=Path, default=DATA_DIR / "benchmarks", help="where the synthetic scene is kept between runs"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    args = parser.parse_args(argv)
    import torch

    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    torch.set_num_threads(threads)
    result = run(args.tiny, args.work_dir, args.engine, args.repeats)
    print(render(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
