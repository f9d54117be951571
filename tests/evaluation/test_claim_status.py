"""Claim status and direction (settled / budget-dependent / not comparable) and claims against
budget, on constructed runs whose validation curves are known."""

from __future__ import annotations

import json

import pytest

from tdpcr_lib.evaluation.ablations import budget, stats, verdicts
from tdpcr_lib.training.presets import STEP_BUDGETS

P1, P2 = 600, 300  # a constructed 600 + 300-step budget, validated every 25 steps


def _two_phase(model, seed, psnr, miou, plateau=True, stop1=P1, test_psnr=None, test_miou=None):
    """A two-phase run: ``psnr(global_step)`` over both phases, ``miou(phase2_step)``."""
    s1 = list(range(25, stop1 + 1, 25))
    s2 = list(range(25, P2 + 1, 25))
    return {
        "model": model,
        "seed": seed,
        "steps": stop1 + P2,
        "plateau": plateau,
        "metrics": {
            "psnr": test_psnr if test_psnr is not None else psnr(P1 + P2),
            "miou": test_miou if test_miou is not None else miou(P2),
        },
        "phases": [
            {
                "phase": "phase1",
                "steps": stop1,
                "budget_steps": P1,
                "metric": "psnr",
                "curves": {"psnr": [[s, psnr(s)] for s in s1]},
            },
            {
                "phase": "phase2",
                "steps": P2,
                "budget_steps": P2,
                "metric": "miou",
                "curves": {"psnr": [[s, psnr(P1 + s)] for s in s2], "miou": [[s, miou(s)] for s in s2]},
            },
        ],
    }


def _grid(ref_psnr, other_psnr, **kwargs):
    runs = []
    for seed in range(3):
        jitter = 0.05 * seed
        runs.append(_two_phase("tdpcr_full", seed, lambda s, j=jitter: ref_psnr(s) + j, lambda s: 0.5, **kwargs))
        runs.append(
            _two_phase("concat_fusion", seed, lambda s, j=jitter: other_psnr(s) + 2 * j, lambda s: 0.5, **kwargs)
        )
    return runs


def _claim(runs, name="pgf_vs_concat_psnr"):
    return next(c for c in stats.claims(runs) if c["name"] == name)


def test_value_at_fraction_reads_the_curves_of_the_phases_that_validate_the_metric():
    run = _two_phase("tdpcr_full", 0, lambda s: float(s), lambda s: s / 1000, stop1=400)
    # PSNR over both phases (900 steps): 25 % = step 225 of phase 1
    assert budget.value_at_fraction(run, "psnr", 0.25) == 225.0
    # 50 % = step 450, after phase 1 stopped on its plateau at 400: its last value stays
    assert budget.value_at_fraction(run, "psnr", 0.5) == 400.0
    assert budget.value_at_fraction(run, "psnr", 0.75) == P1 + 75.0  # phase 2, step 75
    # mIoU exists in phase 2 only: its budget is phase 2's 300 steps
    assert budget.value_at_fraction(run, "miou", 0.5) == pytest.approx(0.15)
    assert budget.value_at_fraction(run, "ssim", 0.5) is None


def test_a_lead_kept_from_half_the_budget_on_plateaued_runs_is_settled():
    runs = _grid(lambda s: 25 + s / 900, lambda s: 24 + s / 900)  # 1 dB ahead throughout
    claim = _claim(runs)
    assert claim["status"] == stats.SETTLED and claim["direction"] == stats.AHEAD
    assert claim["verdict"] == stats.SUPPORTS
    assert [p["fraction"] for p in claim["by_budget"]] == [0.25, 0.5, 0.75, 1.0]
    half = claim["by_budget"][1]
    assert half["delta_mean"] == pytest.approx(1.0 - 0.05)  # jitter 0.05·seed vs 0.1·seed
    assert half["ci95_low"] < half["delta_mean"] < half["ci95_high"]


def test_a_ranking_that_changes_with_budget_is_budget_dependent_not_a_verdict():
    # the other model leads early, TDP-CR overtakes after 60 % of the budget (as in the issue)
    runs = _grid(lambda s: 20 + s / 100, lambda s: 23 + s / 200)
    claim = _claim(runs)
    assert claim["direction"] == stats.AHEAD and claim["status"] == stats.BUDGET_DEPENDENT
    assert claim["verdict"] == "ahead at this budget (not settled)"
    assert claim["by_budget"][1]["ci95_high"] < 0 < claim["by_budget"][3]["ci95_low"]
    assert "behind" in claim["status_reason"]


def test_runs_off_their_plateau_are_never_settled():
    runs = _grid(lambda s: 25 + s / 900, lambda s: 24 + s / 900, plateau=False)
    claim = _claim(runs)
    assert claim["status"] == stats.BUDGET_DEPENDENT and "0/6 runs on their plateau" in claim["status_reason"]


def test_an_untrained_baseline_is_not_comparable_and_has_no_direction():
    runs = [_two_phase("tdpcr_full", seed, lambda s, k=seed: 28.0 + 0.1 * k, lambda s: 0.5) for seed in range(3)]
    runs += [
        {
            "model": "dsen2cr",
            "seed": seed,
            "steps": 1,
            "plateau": None,
            "metrics": {"psnr": 15.6},
            "phases": [{"phase": "baseline", "steps": 1}],
        }
        for seed in range(3)
    ]
    claim = _claim(runs, "delta_psnr_vs_dsen2cr")
    assert claim["status"] == stats.NOT_COMPARABLE and claim["direction"] is None
    assert claim["by_budget"] == [] and claim["verdict"] == stats.NOT_COMPARABLE_TEXT
    assert "made 1 optimiser step (" in claim["status_reason"]
    assert claim["delta_mean"] == pytest.approx(28.1 - 15.6)  # same tiles: Δ is still shown
    for run in runs:  # DSen2-CR scored on a subset of the test tiles: no paired Δ at all
        run["n_eval_images"] = 25 if run["model"] == "dsen2cr" else 100
    claim = _claim(runs, "delta_psnr_vs_dsen2cr")
    assert claim["delta_mean"] is None and claim["ci95_low"] is None
    assert claim["status"] == stats.NOT_COMPARABLE
    assert "supports" not in claim["verdict"] and "ahead" not in claim["verdict"]
    # its line in verdicts.md / the README reports no difference rather than "Δ = n/a"
    line = verdicts.claim_line(claim, "default budget")
    assert "no Δ over 3 seeds" in line and "n/a" not in line and "run `--full`" in line


def test_readme_section_leads_with_settled_claims_and_names_each_budget(tmp_path):
    runs = _grid(lambda s: 25 + s / 900, lambda s: 24 + s / 900)  # settled
    runs += [
        _two_phase("optical_only", seed, lambda s: 20 + s / 100, lambda s: 0.5) for seed in range(3)
    ]  # TDP-CR's cloudy PSNR rises later: budget-dependent
    for run in runs:
        run["metrics"]["psnr_cloudy"] = run["metrics"]["psnr"]
        for phase in run["phases"]:
            phase["curves"]["psnr_cloudy"] = phase["curves"]["psnr"]
        run["complexity"] = {"params": 286_478}
    record = {
        "runs": runs,
        "claims": stats.claims(runs),
        "git_sha": "abc",
        "resolved": {"budget": {"mode": "default", "phase1_steps": P1, "phase2_steps": P2}},
    }
    long = json.loads(
        json.dumps({**record, "resolved": {"budget": {"mode": "long", "phase1_steps": 4 * P1, "phase2_steps": 4 * P2}}})
    )
    path = tmp_path / "04.json"
    path.write_text(json.dumps(record))
    record = verdicts.load_record(path)
    text = verdicts.verdicts_markdown(record, others=[long])
    settled, dependent = text.index("**Settled"), text.index("**Budget-dependent")
    assert settled < dependent
    assert text.index("PGF vs concat fusion") < dependent
    assert text.index("SAR + optical vs optical only") > dependent
    assert "default budget (600 + 300 steps)" in text and "long budget (2400 + 1200 steps)" in text
    # the long preset is 4x the default one (what --budget long promises)
    assert STEP_BUDGETS["long"] == tuple(4 * s for s in STEP_BUDGETS["default"])
    assert "Indicative" not in text


def test_a_record_with_an_unknown_status_is_refused(tmp_path):
    runs = _grid(lambda s: 25 + s / 900, lambda s: 24 + s / 900)
    claims = stats.claims(runs)
    claims[0]["status"] = "supports"
    path = tmp_path / "04.json"
    path.write_text(json.dumps({"runs": runs, "claims": claims}))
    with pytest.raises(verdicts.VerdictsError, match="status 'supports'"):
        verdicts.load_record(path)


def test_claims_figure_has_one_panel_per_claim_with_a_zero_line():
    from tdpcr_lib.plot.claims import plot_claims_vs_budget

    runs = _grid(lambda s: 25 + s / 900, lambda s: 24 + s / 900)
    runs += [
        {"model": "dsen2cr", "seed": seed, "steps": 1, "plateau": None, "metrics": {"psnr": 15.6}, "phases": []}
        for seed in range(3)
    ]
    claims = stats.claims(runs)
    figure = plot_claims_vs_budget(claims, budgets={"long (4×)": (claims, 4.0)})
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(visible) == len(claims) == 2
    for ax in visible:
        assert any(list(line.get_ydata()) == [0.0, 0.0] for line in ax.get_lines())
    assert "not comparable" in " ".join(t.get_text() for t in visible[1].texts)
    # each budget's status is named under the panel's title; one legend for the whole figure
    # (budgets by marker, statuses by colour) instead of one inside each panel, over the bars
    assert "this budget: settled" in visible[0].get_title()
    assert "long (4×): settled" in visible[0].get_title()
    assert all(ax.get_legend() is None for ax in visible)
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["this budget", "long (4×)", "settled"]


def test_untrained_checkpoints_are_those_with_under_a_tenth_of_the_steps(tmp_path):
    found = {}
    for name, step in (("TDP-CR", 300), ("joint", 900), ("DSen2-CR", 1), ("early", 89)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(
            json.dumps({"format_version": 1, "step": step, "model_config": {}, "phase": "p", "epoch": 1})
        )
        found[name] = folder
    assert budget.untrained_checkpoints(found) == {"DSen2-CR": 1, "early": 89}
