"""Statistics, verdicts, plateau detection, the 04_ablations.json schema and README generation."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tdpcr_lib.evaluation.ablations import stats, verdicts


# --------------------------------------------------------------------------------------------
# Paired differences and verdicts
# --------------------------------------------------------------------------------------------
def test_paired_difference_is_the_t_interval_of_the_seed_differences():
    reference = {0: 30.0, 1: 31.0, 2: 29.5}
    other = {0: 29.0, 1: 30.6, 2: 29.4, 3: 50.0}  # seed 3 has no pair: ignored
    out = stats.paired_difference(reference, other)
    deltas = np.array([1.0, 0.4, 0.1])
    half = scipy_stats.t.ppf(0.975, 2) * deltas.std(ddof=1) / math.sqrt(3)
    assert out["n_seeds"] == 3 and out["deltas"] == pytest.approx({0: 1.0, 1: 0.4, 2: 0.1})
    assert out["delta_mean"] == pytest.approx(deltas.mean())
    assert out["ci95_low"] == pytest.approx(deltas.mean() - half)
    assert out["ci95_high"] == pytest.approx(deltas.mean() + half)
    # the same interval scipy's one-sample t-test gives
    low, high = scipy_stats.ttest_1samp(deltas, 0).confidence_interval(0.95)
    assert (out["ci95_low"], out["ci95_high"]) == (pytest.approx(low), pytest.approx(high))


def test_paired_difference_drops_missing_values_and_needs_two_seeds():
    out = stats.paired_difference({0: 1.0, 1: float("nan")}, {0: 0.5, 1: 0.2})
    assert out["n_seeds"] == 1 and out["delta_mean"] == 0.5
    assert math.isnan(out["ci95_low"]) and math.isnan(out["ci95_high"])
    assert stats.direction(out["ci95_low"], out["ci95_high"]) == stats.WITHIN_NOISE


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (0.1, 0.5, stats.AHEAD),
        (-0.5, -0.1, stats.BEHIND),
        (-0.1, 0.3, stats.WITHIN_NOISE),
        (0.0, 0.3, stats.WITHIN_NOISE),
        (float("nan"), float("nan"), stats.WITHIN_NOISE),
    ],
)
def test_direction_reads_the_interval(low, high, expected):
    assert stats.direction(low, high) == expected
    # a difference below the resolution (0.1 dB) is within noise even when the CI excludes 0
    assert stats.direction(0.01, 0.09, 0.05, resolution=0.1) == stats.WITHIN_NOISE


def _runs(values: dict[str, list[float]], metric: str = "psnr") -> list[dict]:
    return [
        {"model": model, "seed": seed, "steps": 10, "plateau": True, "metrics": {metric: v}}
        for model, vs in values.items()
        for seed, v in enumerate(vs)
    ]


def test_claims_scale_units_and_skip_models_that_did_not_run():
    runs = _runs({"tdpcr_full": [0.50, 0.52, 0.55], "multitask": [0.40, 0.41, 0.46]}, "miou")
    claims = stats.claims(runs)
    assert [c["name"] for c in claims] == ["delta_miou_vs_multitask"]
    claim = claims[0]
    assert claim["unit"] == "points" and claim["delta_mean"] == pytest.approx(10.0)
    # no validation curves: the direction stands, but nothing is settled
    assert claim["direction"] == stats.AHEAD and claim["n_seeds"] == 3
    assert claim["status"] == stats.BUDGET_DEPENDENT
    assert claim["verdict"] == "ahead at this budget (not settled)"
    noisy = stats.claims(_runs({"tdpcr_full": [30, 31, 29], "dsen2cr": [30.5, 29.5, 30.2]}))
    assert noisy[0]["direction"] == stats.WITHIN_NOISE and noisy[0]["equal_compute"]
    worse = stats.claims(_runs({"tdpcr_full": [29, 29.1, 29.2], "dsen2cr": [30, 30.05, 30.3]}))
    assert worse[0]["direction"] == stats.BEHIND
    assert "contradicts" not in worse[0]["verdict"]  # only settled claims may say so


# --------------------------------------------------------------------------------------------
# 04_ablations.json schema, verdicts page and README section
# --------------------------------------------------------------------------------------------
def _record(tmp_path, **changes):
    runs = _runs({"tdpcr_full": [30.0, 30.4, 30.2], "pgf_no_prompt": [29.0, 29.5, 29.1]})
    for run in runs:
        run["complexity"] = {"params": 286_478}
    record = {
        "runs": runs,
        "claims": stats.claims(runs),
        "git_sha": "abc1234",
        "device": "cpu",
        "machine": "x86_64, 2 CPU cores",
        "wall_time_s": 600.0,
        "resolved": {
            "budget": {
                "mode": "default",
                "model_size": "default",
                "phase1_steps": 400,
                "phase2_steps": 200,
                "batch_size": 8,
                "crop_size": 32,
            }
        },
    }
    record.update(changes)
    path = tmp_path / "04_ablations.json"
    path.write_text(json.dumps(record))
    return path


def test_record_schema_is_checked_with_one_line_errors(tmp_path):
    record = verdicts.load_record(_record(tmp_path))
    run, claim = record["runs"][0], record["claims"][0]
    assert set(verdicts.REQUIRED_RUN_KEYS) <= set(run)
    assert set(verdicts.REQUIRED_CLAIM_KEYS) <= set(claim)
    assert claim["status"] in stats.STATUSES and claim["direction"] in stats.DIRECTIONS
    with pytest.raises(verdicts.VerdictsError, match="no ablation record"):
        verdicts.load_record(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(verdicts.VerdictsError, match="not valid JSON"):
        verdicts.load_record(bad)
    with pytest.raises(verdicts.VerdictsError, match=r"runs\[0\] lacks plateau"):
        runs = [{"model": "a", "seed": 0, "steps": 1, "metrics": {}}]
        verdicts.load_record(_record(tmp_path, runs=runs))


def test_verdicts_page_states_provenance_and_each_claim(tmp_path):
    text = verdicts.verdicts_markdown(verdicts.load_record(_record(tmp_path)))
    assert "synthetic twin" in text and "0.29 M" in text and "abc1234" in text
    assert "x86_64, 2 CPU cores" in text and "10.0 min" in text and "Indicative" not in text
    assert "PGF with vs without its prompt: ΔPSNR" in text
    assert "ahead at this budget (not settled)" in text and "default budget (400 + 200" in text
    assert stats.SUPPORTS not in text
    quick = _record(tmp_path, resolved={"budget": {"mode": "quick"}})
    assert "Indicative only" in verdicts.verdicts_markdown(verdicts.load_record(quick))
    assert "synthetic twin** (not" in text  # a record without the twin's version claims none
    versioned = _record(tmp_path, resolved={"budget": {"mode": "default"}, "twin_version": "2.1"})
    assert "synthetic twin, version 2.1** (not" in verdicts.verdicts_markdown(verdicts.load_record(versioned))


def test_readme_table_puts_each_claims_budgets_side_by_side_settled_rows_first(tmp_path):
    default = verdicts.load_record(_record(tmp_path))
    long = json.loads(json.dumps(default))
    long["resolved"]["budget"].update(mode="long", phase1_steps=1600, phase2_steps=800)
    long["claims"][0].update(
        status="settled", direction="behind", verdict="contradicts the paper's direction (settled)"
    )
    default["claims"][0]["caveat"] = default["claims"][-1]["caveat"] = "an equal-sample comparison"
    rows = verdicts.claims_table(default, [long])
    assert rows[0] == "| claim | default budget (400 + 200 steps) | long budget (1600 + 800 steps) |"
    body = [r for r in rows[2:] if r.startswith("| **")]
    assert len(body) == len(default["claims"])  # one row per claim, not one per claim and budget
    # the claim settled at the long budget leads, even though the default budget did not settle it
    assert body[0].startswith(f"| **{default['claims'][0]['label']}** [1] |")
    assert body[0].endswith("→ *contradicts the paper's direction (settled)* |")
    assert "(not settled)" in body[0].split(" | ")[1]
    assert rows.count("- [1] an equal-sample comparison.") == 1  # one note however many rows share it
    text = verdicts.verdicts_markdown(default, others=[long], table=True)
    assert "Each cell:" in text and "\n| claim |" in text


def test_readme_section_is_replaced_in_place_and_the_rest_is_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\nintro\n\n## Citation\n\ncite me\n")
    record = verdicts.load_record(_record(tmp_path))
    verdicts.update_readme(readme, record)
    first = readme.read_text()
    assert first.index(verdicts.START) < first.index("## Citation")
    assert first.startswith("# title\n\nintro\n") and first.endswith("## Citation\n\ncite me\n")
    verdicts.update_readme(readme, record)
    assert readme.read_text() == first  # idempotent
    timings = {
        "total_seconds": 1500.0,
        "git_sha": "abc1234",
        "notebooks": [{"notebook": "01_train_phase1", "seconds": 90.0}],
    }
    verdicts.update_readme(readme, record, timings)
    assert "25.0 min (01 90 s" in readme.read_text()
    assert readme.read_text().count(verdicts.START) == 1


def test_report_command_regenerates_readme_and_fails_in_one_line(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# t\n")
    out = tmp_path / "verdicts.md"
    command = [
        sys.executable,
        "-m",
        "tdpcr_lib.cli.main",
        "report",
        "verdicts",
        "--metrics",
        str(_record(tmp_path)),
        "--out",
        str(out),
        "--readme",
        str(readme),
        "--timings",
        str(tmp_path / "none.json"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "## What our runs show" in readme.read_text() and out.is_file()
    command[command.index("--metrics") + 1] = str(tmp_path / "missing.json")
    failed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert failed.returncode != 0 and len(failed.stderr.strip().splitlines()) == 1
    assert "missing.json" in failed.stderr
