"""The benchmark runner works end to end in tiny mode and its helpers behave as documented.

No test asserts a timing: figures depend on the machine. The tiny run checks that the command
runs, writes both report files with every section and key, and that the deterministic figures
(parameter and FLOP targets) match what ``tdpcr_lib.models.complexity`` computes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from tdpcr_lib.core.paths import REPO_ROOT

if str(REPO_ROOT) not in sys.path:  # ``benchmarks`` is a top-level folder, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import children, common, data_pipeline, flops, measure, scene_inference, targets  # noqa: E402

MD_SECTIONS = (
    "# Benchmarks",
    "## Machine",
    "## Targets",
    "## Model throughput",
    "### Inference on cpu",
    "### Training on cpu",
    "## Data pipeline",
    "## Training step and pipeline",
    "## Scene inference",
    "## Distributed",
    "## Notes",
)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> tuple[dict, str]:
    """Run ``python -m benchmarks.run_all --tiny`` once (CPU, one thread per child)."""
    root = tmp_path_factory.mktemp("bench")
    out = root / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run_all",
            "--tiny",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--out",
            str(out),
            "--work-dir",
            str(root / "work"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return (json.loads((out / "benchmarks.json").read_text()), (out / "benchmarks.md").read_text())


def _positive_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow  # the whole tiny benchmark run: ~2 min
def test_tiny_run_writes_markdown_with_every_section(tiny_report):
    _, markdown = tiny_report
    for section in MD_SECTIONS:
        assert f"\n{section}\n" in "\n" + markdown, section
    assert "Tiny mode" in markdown
    assert "Interleaved FLOP rates" in markdown and "Roofline: a " in markdown
    assert "Share of in-run bound" in markdown


@pytest.mark.slow  # the whole tiny benchmark run: ~2 min
def test_tiny_run_records_machine_and_settings(tiny_report):
    report, _ = tiny_report
    machine = report["machine"]
    for key in ("cpu_model", "cpu_cores", "torch", "git_sha", "python", "platform"):
        assert machine[key], key
    assert machine["gpu"] is None
    assert report["settings"]["tiny"] is True and report["settings"]["threads"] == 1


@pytest.mark.slow  # the whole tiny benchmark run: ~2 min
def test_tiny_run_measures_every_model_task_and_benchmark(tiny_report):
    report, _ = tiny_report
    model = report["model_throughput"]
    for name in common.MODEL_NAMES:
        inference = model["inference"]["cpu"][name]
        training = model["training"]["cpu"][name]
        assert "error" not in inference and "error" not in training, name
        for key in ("tiles_per_s", "achieved_gflop_per_s", "flops_per_tile", "params"):
            assert _positive_number(inference[key]), (name, key)
        for key in ("samples_per_s", "achieved_gflop_per_s", "flops_per_sample"):
            assert _positive_number(training[key]), (name, key)
        assert inference["memory"]["kind"] == "cpu_peak_rss"
        assert training["three_x_forward_flops_per_sample"] % 3 == 0  # the old convention
        assert "FlopCounterMode" in training["flop_method"]
    assert "contiguous (NCHW)" in model["inference"]["cpu"]["tdpcr"]["variants"]
    assert "reference kernels (before)" in model["inference"]["cpu"]["tdpcr"]["variants"]
    interleaved = model["inference"]["cpu"]["tdpcr"]["interleaved"]
    assert set(interleaved["ratios"]) == {"tdpcr/dsen2cr", "tdpcr_reference/dsen2cr", "fused/reference"}
    assert all(_positive_number(v) for v in interleaved["ratios"].values())
    complexity = model["complexity"]
    # the roofline fact behind the FLOP-rate gap: TDP-CR does far fewer FLOPs per byte moved
    assert complexity["tdpcr"]["flop_per_byte"] < complexity["dsen2cr"]["flop_per_byte"] / 10
    assert model["training"]["cpu"]["tdpcr"]["objective"] == "seg_rec"
    assert model["training"]["cpu"]["multitask_unet"]["objective"] == "multitask"

    loaders = report["data_pipeline"]["cpu"]["loaders"]
    assert {"num_workers=0", "num_workers=1", "num_workers=1, persistent", "num_workers=0, memory-mapped cache"} <= set(
        loaders
    )
    assert all(loader["samples"] > 0 for loader in loaders.values())
    ratio = report["loader_vs_training"]["cpu"]
    assert ratio["same_crop_and_batch"] is True
    assert ratio["target_loader"] == "num_workers=0"

    scene = report["scene_inference"]["cpu"]
    assert [(r["height"], r["width"]) for r in scene["runs"]] == [(64, 128), (160, 128)]
    assert all(r["largest_batch"] == 4 for r in scene["runs"])  # full batches in both scenes
    assert scene["runs"][1]["n_tiles"] > scene["runs"][0]["n_tiles"]
    assert set(scene["ram"]) >= {"peak_growth_mib", "whole_scene_growth_mib", "bounded"}
    assert all(_positive_number(r["ratio_to_bound"]) for r in scene["runs"])

    train = report["training_step"]
    assert {"before", "after", "L1 only (no SSIM)"} <= set(train["variants"])
    assert all(_positive_number(v["ms_per_step"]) for v in train["variants"].values())
    for version in ("before", "after"):
        assert _positive_number(train["ratios"][version]["pipeline_over_bare"]), version
        assert [r["epochs"] for r in train["pipeline"][version]["runs"]] == [1, 2]
    assert train["profile"] and all(_positive_number(r["self_ms_per_step"]) for r in train["profile"])
    assert _positive_number(train["flops"]["counted_training_flops_per_sample"])

    ddp = report["distributed"]
    assert ddp["runs"]["2"]["backend"] == "gloo" and ddp["runs"]["2"]["local_batch"] == 1
    assert ddp["runs"]["1"]["distributed"] is False
    assert _positive_number(ddp["speedup_2_vs_1"])


@pytest.mark.slow  # the whole tiny benchmark run: ~2 min
def test_tiny_run_targets_use_the_default_model_sizes(tiny_report):
    """Parameter/FLOP targets are about the *default* configs even in tiny mode; speed targets
    are skipped there."""
    import torch

    from tdpcr_lib.models import build_model, named_configs
    from tdpcr_lib.models.complexity import count_parameters, flops_per_tile

    report, _ = tiny_report
    targets = {t["target"]: t for t in report["targets"]}
    with torch.device("meta"):
        tdpcr = build_model(named_configs()["tdpcr"])
        dsen2cr = build_model(named_configs()["dsen2cr"])
    share = count_parameters(tdpcr)["total"] / count_parameters(dsen2cr)["total"]
    params = targets["TDP-CR params / DSen2-CR params"]
    assert params["value"] == pytest.approx(share)
    assert params["status"] == ("PASS" if share <= 0.15 else "FAIL")
    gflops = targets["TDP-CR GFLOPs per 13x256x256 tile"]
    assert gflops["value"] == pytest.approx(flops_per_tile(tdpcr, size=256) / 1e9)
    speed = targets["CPU inference tiles/s, TDP-CR / DSen2-CR"]
    assert speed["status"] == "SKIP"
    assert targets["Full 10980x10980 scene on a GPU"]["status"] == "N/A"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
class FakeClock:
    """``time.perf_counter`` stand-in; each timed call advances it by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.calls = 0.0, step, 0

    def perf_counter(self) -> float:
        return self.now

    def call(self) -> None:
        self.calls += 1
        self.now += self.step


def test_flop_counter_counts_a_depthwise_weight_gradient_once():
    # torch's formula ignores groups (16x here); input and weight gradients = 2 x forward
    conv = torch.nn.Conv2d(16, 16, 7, padding=3, groups=16, bias=False)
    image = torch.rand(2, 16, 12, 12, requires_grad=True)
    with flops.flop_counter() as counter:
        output = conv(image)
    forward = counter.get_total_flops()
    assert forward == 2 * 2 * 16 * 12 * 12 * 49
    with flops.flop_counter() as counter:
        output.sum().backward()
    assert counter.get_total_flops() == 2 * forward


def test_time_call_reports_the_median_per_call(monkeypatch):
    clock = FakeClock(step=0.5)
    monkeypatch.setattr(measure.time, "perf_counter", clock.perf_counter)
    timing = measure.time_call(clock.call, warmup=2, iterations=3, repeats=3, budget_s=100)
    assert timing["seconds_per_call"] == pytest.approx(0.5)
    assert (timing["iterations"], timing["repeats"]) == (3, 3)
    assert clock.calls == 2 + 3 * 3
    assert timing["block_seconds"] == [1.5, 1.5, 1.5]


@pytest.mark.parametrize(
    ("step", "budget", "expected"),
    [
        (1.0, 2.5, (1, 2)),  # 2 calls fit: one per block, two blocks
        (10.0, 2.5, (1, 1)),  # not even one call fits: still one block of one call
        (1.0, 6.0, (2, 3)),  # 6 calls fit: 2 per block x 3 blocks
    ],
)
def test_time_call_cuts_iterations_to_the_budget(monkeypatch, step, budget, expected):
    clock = FakeClock(step=step)
    monkeypatch.setattr(measure.time, "perf_counter", clock.perf_counter)
    timing = measure.time_call(clock.call, warmup=1, iterations=3, repeats=3, budget_s=budget)
    assert (timing["iterations"], timing["repeats"]) == expected
    assert clock.calls == 1 + expected[0] * expected[1]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(iterations=0, repeats=1, warmup=0),
        dict(iterations=1, repeats=0, warmup=0),
        dict(iterations=1, repeats=1, warmup=-1),
    ],
)
def test_time_call_rejects_bad_counts(kwargs):
    with pytest.raises(ValueError, match="iterations"):
        measure.time_call(lambda: None, budget_s=1.0, **kwargs)


def test_peak_rss_sees_a_large_allocation():
    before = measure.peak_rss_bytes()
    if before is None:
        pytest.skip("no peak-RSS source on this platform")
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    current = measure.current_rss_bytes()
    after = measure.peak_rss_bytes()
    assert block.sum() > 0
    assert after >= before
    if current is not None:  # the block is resident now, so the peak includes it
        assert after >= current >= 64 * 2**20


def test_run_child_raises_with_the_command_on_failure():
    with pytest.raises(children.ChildError, match="exited with 3"):
        children.run_child(["-c", "import sys; sys.exit(3)"], timeout_s=60)


def test_settings_round_trip_through_json():
    settings = common.settings_for(tiny=False, device="cpu")
    settings.threads = 3
    again = common.Settings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    assert again.scene_sizes == ((448, 1664), (1344, 1664))
    assert again.child_env(processes=2) == {"OMP_NUM_THREADS": "1"}
    assert again.train_shape("cuda") == (128, 16) and again.train_shape("cpu") == (64, 4)


@pytest.mark.parametrize(
    ("value", "higher", "skip", "error", "status"),
    [
        (0.10, False, None, None, "PASS"),
        (0.20, False, None, None, "FAIL"),
        (25.0, True, None, None, "PASS"),
        (19.9, True, None, None, "FAIL"),
        (19.9, True, "tiny", None, "SKIP"),
        (None, True, None, None, "N/A"),
        (None, True, None, "boom", "ERROR"),
    ],
)
def test_target_status(value, higher, skip, error, status):
    threshold = 0.15 if not higher else 20.0
    row = targets.target_row("t", value, threshold, higher, "x", skip=skip, error=error)
    assert row["status"] == status
    assert row["comparison"] == (">=" if higher else "<=")


def _scene_run(height: int, width: int, delta_mib: float, seconds: float = 1.0) -> dict:
    return {
        "height": height,
        "width": width,
        "megapixels": height * width / 1e6,
        "seconds": seconds,
        "megapixels_per_s": height * width / 1e6 / seconds,
        "peak_rss_delta_mib": delta_mib,
        "whole_scene_arrays_mib": height * width * scene_inference.WHOLE_SCENE_BYTES_PER_PIXEL / 2**20,
    }


def test_scene_summary_bounded_check_and_extrapolation():
    runs = [_scene_run(1024, 1024, 100.0, seconds=2.0), _scene_run(2048, 2048, 110.0)]
    summary = scene_inference.summarise(runs, {}, "cuda")
    whole_growth = (2048**2 - 1024**2) * 140 / 2**20  # 420 MiB
    assert summary["ram"]["whole_scene_growth_mib"] == pytest.approx(whole_growth, abs=0.1)
    assert summary["ram"]["growth_share"] == pytest.approx(10.0 / whole_growth, rel=1e-3)
    assert summary["ram"]["bounded"] is True
    assert summary["full_scene"]["extrapolated_s"] == pytest.approx(10980**2 / 2048**2)

    capped = {scene_inference.GDAL_VARIANT: [_scene_run(1024, 1024, 90.0, seconds=1.0), _scene_run(2048, 2048, 90.0)]}
    summary = scene_inference.summarise(runs, capped, "cpu")
    assert summary["ram_" + scene_inference.GDAL_VARIANT]["peak_growth_mib"] == 0.0
    assert capped[scene_inference.GDAL_VARIANT][0]["speedup_vs_main"] == pytest.approx(2.0)

    growing = [_scene_run(1024, 1024, 100.0), _scene_run(2048, 2048, 100.0 + whole_growth)]
    assert scene_inference.summarise(growing, {}, "cpu")["ram"]["bounded"] is False
    assert "full_scene" not in scene_inference.summarise(growing, {}, "cpu")


def test_loader_ratio_uses_the_preset_of_the_device():
    pipeline = {
        "cpu": {
            "crop": 64,
            "batch": 4,
            "presets": {"default": 0, "full": 4},
            "loaders": {"num_workers=0": {"samples_per_s": 30.0}, "num_workers=4": {"samples_per_s": 60.0}},
        }
    }
    models = {"training": {"cpu": {"tdpcr": {"samples_per_s": 10.0, "crop": 64, "batch": 4}}}}
    ratios = data_pipeline.consumption_ratios(pipeline, models)["cpu"]
    assert ratios["ratios"] == {"num_workers=0": 3.0, "num_workers=4": 6.0}
    assert ratios["target_loader"] == "num_workers=0" and ratios["target_ratio"] == 3.0
    assert ratios["same_crop_and_batch"] is True
