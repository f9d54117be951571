"""Run every benchmark in one go and write ``reports/benchmarks.md`` and ``reports/benchmarks.json``.

    python -m benchmarks.run_all                 # default sizes (~10 min on a quiet 2-core CPU)
    python -m benchmarks.run_all --tiny          # test-suite sizes (well under a minute)
    python -m benchmarks.run_all --device cuda   # also measure the GPU (bf16, compile, full scene)

Figures are measured in one run with the same inputs, and every target is reported as a ratio
with PASS / FAIL (SKIP in ``--tiny`` mode, whose small models say nothing about the targets; N/A
where the hardware is missing). The exit code is 1 only when a benchmark could not run (ERROR);
a FAIL is a finding, not a crash.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from . import scene_inference, training_report, training_step
from .common import MODEL_NAMES, Settings, machine_info, settings_for

BENCHMARKS: tuple[str, ...] = ("model", "data", "train", "scene", "ddp")

#: The issue's targets (default TDP-CR config).
MAX_PARAMS_SHARE = 0.15
MAX_GFLOPS = 35.0
MIN_CPU_INFERENCE_SPEEDUP = 20.0
MIN_LOADER_RATIO = 3.0
MAX_FULL_SCENE_S = 60.0
#: Issue "Speed where it is spent", targets 3 and 4.
MIN_FLOP_RATE_SHARE = 0.5
MIN_SCENE_BOUND_SHARE = 0.85


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks: --device cuda was requested but CUDA is not available")
    if device not in ("cpu", "cuda"):
        raise SystemExit(f"benchmarks: --device must be cpu, cuda or auto, got {device!r}")
    return device


def _target(
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
        _target(
            "TDP-CR params / DSen2-CR params",
            tdpcr["params"] / dsen2cr["params"] if tdpcr and dsen2cr else None,
            MAX_PARAMS_SHARE,
            False,
            "ratio",
        )
    )
    rows.append(
        _target(
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
        _target(
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
        _target(
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
            _target(
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
            _target(
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
            _target(
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
            _target(
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
                _target(
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
            _target(name, value, threshold, True, "ratio", skip=tiny, error=error)
            for name, value, threshold, error in training_report.target_rows(results.get("training_step"))
        ]
    if "cuda" not in (results.get("scene_inference") or {}):
        rows.append(
            _target("Full 10980x10980 scene on a GPU", None, MAX_FULL_SCENE_S, False, "s", skip="no GPU measured")
        )
    return rows


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable report (sections: Machine, Targets, one per benchmark, Notes)."""
    settings = report["settings"]
    machine = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Mode: **{'tiny' if settings['tiny'] else 'default'}**, accelerator: "
        f"**{settings['device']}**, wall time {report['wall_time_s']:.0f} s. "
        "Produced by `python -m benchmarks.run_all`; method in `docs/performance.md` "
        "§ Performance.",
        "",
    ]
    if settings["tiny"]:
        lines += [
            "> Tiny mode: small models, tiny tiles and one or two iterations. It checks "
            "that the benchmarks run; its figures say nothing about the targets.",
            "",
        ]
    lines += ["## Machine", ""]
    gpu = machine.get("gpu")
    lines += _table(
        ["Item", "Value"],
        [
            ["CPU", machine["cpu_model"]],
            ["Cores (usable)", machine["cpu_cores_usable"]],
            ["Torch threads", machine["torch_threads"]],
            ["Threads per child", settings.get("threads") or "torch default"],
            ["Memory (GiB)", machine["memory_gib"]],
            ["Load average at start", machine["load_average_at_start"]],
            ["GPU", f"{gpu['name']} ({gpu['memory_gib']} GiB, CUDA {gpu['cuda']})" if gpu else "none"],
            ["torch", machine["torch"]],
            ["Python", machine["python"]],
            ["Platform", machine["platform"]],
            ["git", machine["git_sha"]],
            ["Started", machine["started"]],
        ],
    )

    lines += ["## Targets", ""]
    lines += _table(
        ["Target", "Measured", "Threshold", "Status"],
        [
            [
                t["target"],
                f"{_fmt(t['value'])} {t['unit']}",
                f"{t['comparison']} {t['threshold']}",
                t["status"] + (f" ({t['note']})" if t["note"] and t["status"] != "PASS" else ""),
            ]
            for t in report["targets"]
        ],
    )

    lines += ["## Model throughput", ""]
    model = report.get("model_throughput")
    if not model:
        lines += ["Not run.", ""]
    else:
        for device, per_model in model["inference"].items():
            lines += [f"### Inference on {device}", ""]
            rows = []
            for name in MODEL_NAMES:
                r = per_model.get(name, {})
                if "error" in r:
                    rows.append([name, "ERROR: " + r["error"].splitlines()[-1][:80]] + [None] * 6)
                    continue
                rows.append(
                    [
                        name,
                        r["params"] / 1e6,
                        r["gflops_per_tile"],
                        r["tiles_per_s"],
                        r["achieved_gflop_per_s"],
                        r["memory"]["delta_mib"],
                        f"{r['tile']} px x {r['batch']}, {r['precision']}",
                    ]
                )
            lines += _table(
                ["Model", "Params (M)", "GFLOPs/tile", "Tiles/s", "GFLOP/s", "Peak mem (MiB)", "Input"], rows
            )
            variants = per_model.get("tdpcr", {}).get("variants", {})
            if variants:
                lines += [
                    "TDP-CR variants (before/after; main = channels_last"
                    + (", bf16 autocast" if device == "cuda" else "")
                    + "):",
                    "",
                ]
                lines += _table(
                    ["Variant", "Tiles/s", "Speed vs main"],
                    [
                        [k, v.get("tiles_per_s"), v.get("speedup_vs_main")]
                        if "error" not in v
                        else [k, "ERROR: " + v["error"][:80], None]
                        for k, v in variants.items()
                    ],
                )
        for device, per_model in model["training"].items():
            lines += [f"### Training on {device}", ""]
            rows = []
            for name in MODEL_NAMES:
                r = per_model.get(name, {})
                if "error" in r:
                    rows.append([name, "ERROR: " + r["error"].splitlines()[-1][:80]] + [None] * 4)
                    continue
                rows.append(
                    [
                        name,
                        f"{r['phase']} / {r['objective']}",
                        r["samples_per_s"],
                        r["achieved_gflop_per_s"],
                        r["memory"]["delta_mib"],
                        f"{r['crop']} px x {r['batch']}, {r['precision']}",
                    ]
                )
            lines += _table(["Model", "Phase / loss", "Samples/s", "GFLOP/s", "Peak mem (MiB)", "Batch"], rows)
            interleaved = model["inference"].get(device, {}).get("tdpcr", {}).get("interleaved")
            if interleaved:
                lines += [
                    f"Interleaved FLOP rates ({interleaved['rounds']} rounds; each round "
                    f"times TDP-CR with the fused kernels, TDP-CR with the reference "
                    f"kernels and DSen2-CR ({interleaved['dsen2cr_tile']} px tile) back "
                    "to back in one process; medians, ratio spread = min-max over "
                    "rounds):",
                    "",
                ]
                spread = interleaved["ratio_spread"]
                lines += _table(
                    ["Quantity", "Median", "Min", "Max"],
                    [
                        [
                            f"GFLOP/s {k}",
                            v,
                            min(interleaved["gflop_per_s_all"][k]),
                            max(interleaved["gflop_per_s_all"][k]),
                        ]
                        for k, v in interleaved["gflop_per_s"].items()
                    ]
                    + [[f"ratio {k}", v, *spread[k]] for k, v in interleaved["ratios"].items()],
                )
                if interleaved.get("copy_gb_per_s"):
                    lines += [
                        f"Roofline: a {interleaved['copy_gb_per_s']:.2f} GB/s copy "
                        f"bandwidth (median of the rounds) x TDP-CR's "
                        f"{interleaved['tdpcr_flop_per_byte']:.1f} FLOP/byte = "
                        f"**{interleaved['tdpcr_roofline_gflop_per_s']:.1f} GFLOP/s** "
                        "attainable if every operator streams its tensors from memory; "
                        f"measured {interleaved['gflop_per_s']['tdpcr']:.1f}.",
                        "",
                    ]
        complexity = model.get("complexity", {})
        if any("flop_per_byte" in c for c in complexity.values()):
            lines += [
                "Roofline inputs per 13x256x256 tile (every operator reads its inputs and "
                "writes its outputs once; `tdpcr_lib.models.complexity."
                "bytes_moved_per_tile`):",
                "",
            ]
            lines += _table(
                ["Model", "GFLOPs", "GB moved", "FLOP/byte", "FLOP/byte (reference kernels)"],
                [
                    [
                        name,
                        c["gflops_per_tile_256"],
                        c.get("gb_moved_per_tile_256"),
                        c.get("flop_per_byte"),
                        c.get("flop_per_byte_reference_kernels"),
                    ]
                    for name, c in complexity.items()
                ],
            )
        lines += ["### Ratios (TDP-CR / competitor)", ""]
        lines += _table(["Ratio", "Value"], [[k, v] for k, v in model["ratios"].items()])
        lines += [
            "Peak memory: CUDA `max_memory_allocated`; on the CPU the child process's peak "
            "RSS minus its RSS before the model was built. Training FLOP/s count 3x the "
            "forward FLOPs.",
            "",
        ]

    lines += ["## Data pipeline", ""]
    pipeline = report.get("data_pipeline")
    if not pipeline:
        lines += ["Not run.", ""]
    for device, result in (pipeline or {}).items():
        lines += [f"### Loader on {device}", ""]
        if "error" in result:
            lines += ["ERROR: " + result["error"].splitlines()[-1], ""]
            continue
        ratio = (report.get("loader_vs_training") or {}).get(device, {})
        per = result["per_sample"]
        lines += [
            f"Synthetic twin of {result['train_tiles']} training tiles of {result['tile']} "
            f"px (repeated to {result['epoch_samples']} samples/epoch, "
            f"{result['epochs']} epoch(s)), crop {result['crop']}, batch {result['batch']}. "
            f"Per sample (one process): decode GeoTIFFs {per['decode_geotiffs_ms']:.1f} ms, "
            f"dataset item {per['getitem_ms']:.1f} ms, item + augmentation "
            f"{per['getitem_and_augment_ms']:.1f} ms (decoding = "
            f"{100 * per['decode_share_of_sample']:.0f} %); dataset item from the "
            f"memory-mapped cache {_fmt(per.get('cache_getitem_ms'))} ms. "
            "TDP-CR training consumes "
            f"{_fmt(ratio.get('consumed_samples_per_s'))} samples/s on {device}.",
            "",
        ]
        lines += _table(
            ["Loader", "Samples/s", "Loader / training", "First batch (s)"],
            [
                [
                    name,
                    loader["samples_per_s"],
                    (ratio.get("ratios") or {}).get(name),
                    ", ".join(f"{v:.2f}" for v in loader["first_batch_s"]),
                ]
                for name, loader in result["loaders"].items()
            ],
        )

    lines += ["## Scene inference", ""]
    scenes = report.get("scene_inference")
    if not scenes:
        lines += ["Not run.", ""]
    for device, result in (scenes or {}).items():
        lines += [f"### predict_scene on {device}", ""]
        if "error" in result:
            lines += ["ERROR: " + result["error"].splitlines()[-1], ""]
        rows = [
            [
                f"{r['height']}x{r['width']}",
                r["variant"],
                r["megapixels"],
                r["n_tiles"],
                r["largest_batch"],
                r["seconds"],
                r["megapixels_per_s"],
                r.get("bound_megapixels_per_s"),
                r.get("ratio_to_bound"),
                r.get("ratio_to_in_run_bound"),
                r.get("forward_share"),
                r["peak_rss_delta_mib"],
                r["whole_scene_arrays_mib"],
            ]
            for r in result["runs"] + [v for vs in result["variants"].values() for v in vs]
        ]
        lines += [
            f"`predict_scene` with {settings['scene_tile']} px tiles, overlap "
            f"{settings['scene_overlap']}; default TDP-CR with segmentation decoder.",
            "",
        ]
        lines += _table(
            [
                "Scene",
                "Variant",
                "Mpx",
                "Tiles",
                "Batch",
                "Seconds",
                "Mpx/s",
                "Bound Mpx/s",
                "Share of bound",
                "Share of in-run bound",
                "Forward share",
                "Peak RSS delta (MiB)",
                "Whole-scene arrays (MiB)",
            ],
            rows,
        )
        lines += [
            "Bound: bare-model tiles/s (`predict_tile_batch` on random batches of the "
            "same tile and batch size, timed in the same process just before and after "
            "the prediction) x (tile - overlap)^2. Forward share: the time "
            "`predict_scene` itself spent in forward passes (prediction.json `timings`) / "
            "its wall time, measured inside the run, so it does not drift with the "
            "machine's load as the bound can.",
            "",
        ]
        for key, label in (
            ("ram", "RAM"),
            ("ram_" + scene_inference.GDAL_VARIANT, f"RAM with {scene_inference.GDAL_VARIANT}"),
        ):
            ram = result.get(key)
            if ram:
                lines += [
                    f"{label}: {ram['pixel_ratio']:.1f}x the pixels raised the peak by "
                    f"{ram['peak_growth_mib']} MiB; whole-scene float32 arrays would grow "
                    f"by {ram['whole_scene_growth_mib']} MiB (share "
                    f"{_fmt(ram['growth_share'])}; bounded: {ram['bounded']}).",
                    "",
                ]
        for name, measured in result["variants"].items():
            for run in measured:
                if "speedup_vs_main" in run:
                    lines += [
                        f"- Variant `{name}` ({run['height']}x{run['width']}): "
                        f"{run['speedup_vs_main']:.2f}x the main setting's Mpx/s."
                    ]
        full = result.get("full_scene")
        if full:
            lines += [
                f"- Full 10980x10980 scene: {_fmt(full['measured_s'])} s measured, "
                f"{_fmt(full['extrapolated_s'])} s extrapolated from "
                f"{full['extrapolated_from']}."
            ]
        lines += [""]

    lines += training_report.markdown(report.get("training_step"), _fmt, _table)
    lines += ["## Distributed", ""]
    ddp = report.get("distributed")
    if not ddp:
        lines += ["Not run.", ""]
    else:
        rows = []
        for n, r in ddp["runs"].items():
            if "error" in r:
                rows.append([n, "ERROR: " + r["error"].splitlines()[-1][:80], None, None, None])
            else:
                rows.append(
                    [
                        n,
                        r["backend"] or "none",
                        r["threads_per_process"],
                        f"{r['global_batch']} ({r['local_batch']}/process)",
                        r["samples_per_s"],
                    ]
                )
        lines += [
            f"TDP-CR joint training step on {ddp['device']}; {ddp['total_threads']} "
            "intra-op thread(s) split over the processes (at least one each).",
            "",
        ]
        lines += _table(["Processes", "Backend", "Threads/process", "Global batch", "Samples/s"], rows)
        lines += [f"2 processes / 1 process: **{_fmt(ddp['speedup_2_vs_1'])}x**.", ""]

    lines += ["## Notes", ""]
    lines += [f"- {note}" for note in report.get("notes", [])] or ["- none"]
    return "\n".join(lines) + "\n"


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


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from tdpcr_lib.core.paths import DATA_DIR, REPORTS_DIR

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run_all",
        description="Run the tdpcr performance benchmarks and write reports/benchmarks.{md,json}.",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="tiny models, sizes and iterations (test suite; no target verdicts)"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA if present)")
    parser.add_argument("--out", default=str(REPORTS_DIR), help="folder for the report files")
    parser.add_argument(
        "--work-dir",
        default=str(DATA_DIR / "benchmarks"),
        help="folder for the generated twin and scenes (reused between runs)",
    )
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {','.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="intra-op threads per child process (default: torch's default)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile on the CPU (slow to compile; always tried on CUDA)",
    )
    parser.add_argument("--no-compile", action="store_true", help="never time torch.compile")
    parser.add_argument(
        "--full-scene", action="store_true", help="on CUDA, also generate and predict a real 10980x10980 scene"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    selected = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        print(f"benchmarks: unknown --only {unknown}; choose from {BENCHMARKS}", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("benchmarks: --threads must be >= 1", file=sys.stderr)
        return 2
    device = _resolve_device(args.device)
    settings = settings_for(args.tiny, device)
    settings.threads = args.threads
    settings.compile_cpu = args.compile
    settings.no_compile = args.no_compile
    settings.full_scene = args.full_scene
    work_dir = Path(args.work_dir) / ("tiny" if args.tiny else "default")
    out_dir = Path(args.out)

    from . import data_pipeline, distributed, model_throughput

    started = time.perf_counter()
    report: dict[str, Any] = {"settings": settings.to_dict(), "machine": machine_info(device), "selected": selected}
    print(
        f"benchmarks: {'tiny' if args.tiny else 'default'} mode, devices "
        f"{model_throughput.devices_of(settings)}, {report['machine']['cpu_model']} "
        f"({report['machine']['cpu_cores_usable']} cores), torch {report['machine']['torch']}",
        flush=True,
    )

    def log(message: str) -> None:
        print(message, flush=True)

    devices = model_throughput.devices_of(settings)
    steps = {
        "model": ("model_throughput", lambda: model_throughput.run(settings, log=log)),
        "data": ("data_pipeline", lambda: data_pipeline.run(settings, work_dir, devices, log=log)),
        "train": ("training_step", lambda: training_step.run(settings, work_dir, log=log)),
        "scene": ("scene_inference", lambda: scene_inference.run(settings, work_dir, devices, log=log)),
        "ddp": ("distributed", lambda: distributed.run(settings, log=log)),
    }
    for key in BENCHMARKS:
        name, step = steps[key]
        if key not in selected:
            report[name] = None
            continue
        try:
            report[name] = step()
        except Exception as err:  # one broken benchmark must not hide the others' figures
            report[name] = {"error": f"{type(err).__name__}: {err}"}
            log(f"[{key}] ERROR {type(err).__name__}: {err}")
    if report.get("data_pipeline") and report.get("model_throughput") and "error" not in report["data_pipeline"]:
        report["loader_vs_training"] = data_pipeline.consumption_ratios(
            report["data_pipeline"], report["model_throughput"]
        )
    if report.get("model_throughput") and "error" in report["model_throughput"]:
        report["model_throughput"] = None
    report["targets"] = evaluate_targets(report, settings)
    report["wall_time_s"] = time.perf_counter() - started
    report["notes"] = notes_for(report)
    failures = _child_errors(report)

    from tdpcr_lib.core.io import atomic_write_json, atomic_write_text

    json_path = atomic_write_json(out_dir / "benchmarks.json", report)
    md_path = atomic_write_text(out_dir / "benchmarks.md", render_markdown(report))
    print("\nTargets:")
    for t in report["targets"]:
        print(
            f"  {t['status']:5s} {t['target']}: {_fmt(t['value'])} {t['unit']} "
            f"(target {t['comparison']} {t['threshold']})"
        )
    print(f"\nwrote {md_path} and {json_path} in {report['wall_time_s']:.0f} s")
    if failures:
        print(f"{len(failures)} benchmark(s) failed:", *failures, sep="\n  ", file=sys.stderr)
        return 1
    return 0


def _child_errors(report: dict[str, Any]) -> list[str]:
    """Messages of every ``{"error": ...}`` left in the report by a failed child."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("error"), str) and path.split(".")[-1] != "torch.compile":
                found.append(f"{path}: {node['error'].splitlines()[-1][:200]}")
                return
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    for name in ("model_throughput", "data_pipeline", "training_step", "scene_inference", "distributed"):
        walk(report.get(name), name)
    return found


if __name__ == "__main__":
    sys.exit(main())
