"""The human-readable benchmark report, ``reports/benchmarks.md``, rendered from the JSON report."""

from __future__ import annotations

from typing import Any

from . import scene_inference, training_report
from .common import MODEL_NAMES


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
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
    lines += table(
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
    lines += table(
        ["Target", "Measured", "Threshold", "Status"],
        [
            [
                t["target"],
                f"{fmt(t['value'])} {t['unit']}",
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
            lines += table(
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
                lines += table(
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
            lines += table(["Model", "Phase / loss", "Samples/s", "GFLOP/s", "Peak mem (MiB)", "Batch"], rows)
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
                lines += table(
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
            lines += table(
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
        lines += table(["Ratio", "Value"], [[k, v] for k, v in model["ratios"].items()])
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
            f"memory-mapped cache {fmt(per.get('cache_getitem_ms'))} ms. "
            "TDP-CR training consumes "
            f"{fmt(ratio.get('consumed_samples_per_s'))} samples/s on {device}.",
            "",
        ]
        lines += table(
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
        lines += table(
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
                    f"{fmt(ram['growth_share'])}; bounded: {ram['bounded']}).",
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
                f"- Full 10980x10980 scene: {fmt(full['measured_s'])} s measured, "
                f"{fmt(full['extrapolated_s'])} s extrapolated from "
                f"{full['extrapolated_from']}."
            ]
        lines += [""]

    lines += training_report.markdown(report.get("training_step"), fmt, table)
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
        lines += table(["Processes", "Backend", "Threads/process", "Global batch", "Samples/s"], rows)
        lines += [f"2 processes / 1 process: **{fmt(ddp['speedup_2_vs_1'])}x**.", ""]

    lines += ["## Notes", ""]
    lines += [f"- {note}" for note in report.get("notes", [])] or ["- none"]
    return "\n".join(lines) + "\n"
