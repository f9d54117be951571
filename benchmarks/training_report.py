"""The training-step section of ``reports/benchmarks.md`` and its targets (``training_step``)."""

from __future__ import annotations

from typing import Any

#: Targets: pipeline ÷ bare step with the same loss, and ÷ a bare L1 step.
MIN_PIPELINE_RATIO = 0.9
MIN_PIPELINE_RATIO_L1 = 0.8


def target_rows(result: dict[str, Any] | None) -> list[tuple[str, float | None, float, str | None]]:
    """``(name, value, threshold, error)`` of the training-pipeline targets."""
    error = (result or {}).get("error")
    after = ((result or {}).get("ratios") or {}).get("after", {})
    return [
        ("Training pipeline / bare step, same loss (cpu)", after.get("pipeline_over_bare"), MIN_PIPELINE_RATIO, error),
        ("Training pipeline / bare L1 step (cpu)", after.get("pipeline_over_bare_l1"), MIN_PIPELINE_RATIO_L1, error),
    ]


def markdown(result: dict[str, Any] | None, fmt, table) -> list[str]:
    """The report section (``fmt``/``table``: the report's number and table formatters)."""
    lines = ["## Training step and pipeline", ""]
    if not result:
        return lines + ["Not run.", ""]
    if "error" in result:
        return lines + ["ERROR: " + result["error"].splitlines()[-1][:200], ""]
    spec = result["recipe"]
    lines += [
        f"TDP-CR `{spec['preset']}` preset, phase 1 (`L_rec`), batch {spec['batch']}, "
        f"crop {spec['crop']}, {result['torch_threads']} thread(s); bare steps on a fixed "
        f"in-memory batch, variants interleaved over {spec['repeats']} rounds of "
        f"{spec['iterations']} steps (median; per-round figures in the JSON show the "
        "noise).",
        "",
    ]
    rows = []
    for name, row in result["variants"].items():
        if "error" in row:
            rows.append([name, "ERROR: " + row["error"][:80], None, None, None])
        else:
            rows.append(
                [name, row["ms_per_step"], row["samples_per_s"], row.get("speedup_vs_after"), row.get("warmup_s")]
            )
    lines += table(["Bare step", "ms/step", "Samples/s", "Speed vs after", "Warm-up (s)"], rows)
    pipeline = result["pipeline"]
    lines += [
        f"Pipeline: `training.run.train` on a synthetic twin of {pipeline['twin_tiles']} "
        f"tiles of {pipeline['tile']} px, {spec['epochs'][0]} and {spec['epochs'][1]} "
        "epochs (per-step time from the difference, so start-up cancels; validation and "
        "checkpoints included). `before` = samples decoded from GeoTIFF at every read, "
        "the convolution SSIM, the cloudy input re-scored at every validation and "
        "every checkpoint file hashed afresh.",
        "",
    ]
    rows = []
    for version in ("before", "after"):
        ratio, run = result["ratios"][version], pipeline[version]
        rows.append(
            [
                version,
                run["train_step_ms"],
                run["ms_per_step"],
                run["samples_per_s"],
                ratio["pipeline_over_bare"],
                run["validation_share"],
                run["checkpoint_share"],
                ratio["bare_ms_per_step_separate"],
            ]
        )
    lines += table(
        [
            "Version",
            "train_step ms (in run)",
            "Pipeline ms/step",
            "Pipeline samples/s",
            "Pipeline / bare",
            "Validation share",
            "Checkpoint share",
            "Bare ms/step (timed apart)",
        ],
        rows,
    )
    lines += [
        "Pipeline / bare = time in `Trainer.train_step` ÷ wall time, per step, in the same "
        "runs (robust to load changes); the L1 target scales it by the interleaved bare "
        "L1 / same-loss step times. Phase speed-up after vs before = bare-step speed-up × "
        "the change of that ratio: "
        f"**{fmt(result['ratios']['after'].get('pipeline_speedup_vs_before'))}x** "
        "(the pipelines' own samples/s come from runs minutes apart and carry the "
        "machine's load changes).",
        "",
    ]
    flops = result["flops"]
    lines += [
        f"FLOPs per training sample: {fmt(flops['counted_training_flops_per_sample'] / 1e9)}"
        f" G counted ({flops['method']}); torch's counter as is: "
        f"{fmt(flops['torch_counter_uncorrected_per_sample'] / 1e9)} G; the 3 × forward "
        f"convention: {fmt(flops['three_x_forward_per_sample'] / 1e9)} G (counted = "
        f"{fmt(flops['counted_over_three_x_forward'])} × it). Achieved: "
        f"{fmt(flops['counted_training_flops_per_sample'] * result['variants']['after'].get('samples_per_s', 0) / 1e9)}"
        " GFLOP/s in the `after` bare step.",
        "",
    ]
    lines += ["Top operators of the `after` bare step (torch.profiler, self CPU time):", ""]
    lines += table(
        ["Operator", "ms/step", "Share", "Calls/step"],
        [[r["op"], r["self_ms_per_step"], r["share"], r["calls_per_step"]] for r in result["profile"]],
    )
    return lines
