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

from . import scene_inference, training_step
from .common import settings_for
from .machine import machine_info
from .notes import notes_for
from .render import fmt, render_markdown
from .targets import evaluate_targets

BENCHMARKS: tuple[str, ...] = ("model", "data", "train", "scene", "ddp")


def _resolve_device(device: str) -> str:
    """``--device`` as ``"cpu"`` or ``"cuda"`` (``"auto"``: CUDA if present), through the library's resolution."""
    from tdpcr_lib.core.runtime import DeviceError, resolve_device

    if device not in ("cpu", "cuda", "auto"):
        raise SystemExit(f"benchmarks: --device must be cpu, cuda or auto, got {device!r}")
    try:
        return resolve_device(device).type
    except DeviceError:
        raise SystemExit("benchmarks: --device cuda was requested but CUDA is not available") from None


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
            f"  {t['status']:5s} {t['target']}: {fmt(t['value'])} {t['unit']} "
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
