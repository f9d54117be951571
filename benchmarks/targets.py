"""The benchmark targets: each measured figure against its threshold, as PASS / FAIL / SKIP / ERROR / N/A.

A row is SKIP in ``--tiny`` mode (its small models say nothing about the targets) and N/A where the
hardware is missing; rendered by :mod:`benchmarks.render`.
"""

from __future__ import annotations

from typing import Any

from . import training_report
from .common import Settings

#: The issue's targets (default TDP-CR config).
MAX_PARAMS_SHARE = 0.15
MAX_GFLOPS = 35.0
MIN_CPU_INFERENCE_SPEEDUP = 20.0
MIN_LOADER_RATIO = 3.0
MAX_FULL_SCENE_S = 60.0
#: Issue "Speed where it is spent", targets 3 and 4.
MIN_FLOP_RATE_SHARE = 0.5
MIN_SCENE_BOUND_SHARE = 0.85


def target_row(
    name: str,
    value: float | None,
    threshold: float,
    higher_is_better: bool,
    unit: str,
    *,
    skip: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One target row: the measured value, the threshold and PASS/FAIL/SKIP/ERROR/N/A."""
    if error:
        status = "ERROR"
    elif value is None:
        status = "N/A"
    elif skip:
        status = "SKIP"
    else:
        ok = value >= threshold if higher_is_better else value <= threshold
        status = "PASS" if ok else "FAIL"
    return {
        "target": name,
        "value": value,
        "threshold": threshold,
        "comparison": ">=" if higher_is_better else "<=",
        "unit": unit,
        "status": status,
        "note": error or skip,
    }


def evaluate_targets(results: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Every target of the issue as a row (see :func:`_target`)."""
    tiny = "tiny mode: small models and sizes" if settings.tiny else None
    rows = []
    model = results.get("model_throughput") or {}
    complexity = model.get("complexity", {})
    tdpcr, dsen2cr = complexity.get("tdpcr"), complexity.get("dsen2cr")
    rows.append(
        target_row(
            "TDP-CR params / DSen2-CR params",
            tdpcr["params"] / dsen2cr["params"] if tdpcr and dsen2cr else None,
            MAX_PARAMS_SHARE,
            False,
            "ratio",
        )
    )
    rows.append(
        target_row(
            "TDP-CR GFLOPs per 13x256x256 tile",
            tdpcr["gflops_per_tile_256"] if tdpcr else None,
            MAX_GFLOPS,
            False,
            "GFLOPs",
        )
    )
    cpu = model.get("inference", {}).get("cpu", {})
    errors = [cpu[m]["error"].splitlines()[0] for m in ("tdpcr", "dsen2cr") if "error" in cpu.get(m, {})]
    rows.append(
        target_row(
            "CPU inference tiles/s, TDP-CR / DSen2-CR",
            model.get("ratios", {}).get("inference speed tdpcr/dsen2cr (cpu)"),
            MIN_CPU_INFERENCE_SPEEDUP,
            True,
            "x",
            skip=tiny,
            error=errors[0] if errors else None,
        )
    )
    interleaved = cpu.get("tdpcr", {}).get("interleaved", {})
    rows.append(
        target_row(
            "CPU inference GFLOP/s, TDP-CR / DSen2-CR (interleaved, one process)",
            interleaved.get("ratios", {}).get("tdpcr/dsen2cr"),
            MIN_FLOP_RATE_SHARE,
            True,
            "ratio",
            skip=tiny,
            error=errors[0] if errors else None,
        )
    )
    pipeline = results.get("data_pipeline") or {}
    ratios = results.get("loader_vs_training") or {}
    for device, result in pipeline.items():
        ratio = ratios.get(device, {})
        rows.append(
            target_row(
                f"Loader / training samples/s ({device}, {ratio.get('target_loader')})",
                ratio.get("target_ratio"),
                MIN_LOADER_RATIO,
                True,
                "x",
                skip=tiny,
                error=result.get("error", "").splitlines()[0] if "error" in result else None,
            )
        )
    for device, result in (results.get("scene_inference") or {}).items():
        ram = result.get("ram", {})
        rows.append(
            target_row(
                f"Scene peak-RAM growth / whole-scene arrays growth ({device})",
                ram.get("growth_share"),
                0.25,
                False,
                "ratio",
                skip=tiny,
                error=result.get("error", "").splitlines()[0] if "error" in result else None,
            )
        )
        large = max(result.get("runs", []), key=lambda r: r["megapixels"], default={})
        rows.append(
            target_row(
                f"Scene Mpx/s / bare-model bound ({device}, largest scene)",
                large.get("ratio_to_bound"),
                MIN_SCENE_BOUND_SHARE,
                True,
                "ratio",
                skip=tiny,
                error=result.get("error", "").splitlines()[0] if "error" in result else None,
            )
        )
        rows.append(
            target_row(
                f"Scene Mpx/s / in-run forward-pass bound ({device}, largest scene)",
                large.get("ratio_to_in_run_bound"),
                MIN_SCENE_BOUND_SHARE,
                True,
                "ratio",
                skip=tiny,
            )
        )
        if device == "cuda":
            full = result.get("full_scene", {})
            seconds = full.get("measured_s") or full.get("extrapolated_s")
            gpu = (results.get("machine") or {}).get("gpu") or {}
            rows.append(
                target_row(
                    f"Full 10980x10980 scene on {gpu.get('name', 'GPU')} "
                    f"({'measured' if full.get('measured_s') else 'extrapolated'})",
                    seconds,
                    MAX_FULL_SCENE_S,
                    False,
                    "s",
                    skip=tiny,
                )
            )
    if "training_step" in results:  # training pipeline vs bare step (benchmarks/training_step.py)
        rows += [
            target_row(name, value, threshold, True, "ratio", skip=tiny, error=error)
            for name, value, threshold, error in training_report.target_rows(results.get("training_step"))
        ]
    if "cuda" not in (results.get("scene_inference") or {}):
        rows.append(
            target_row("Full 10980x10980 scene on a GPU", None, MAX_FULL_SCENE_S, False, "s", skip="no GPU measured")
        )
    return rows
