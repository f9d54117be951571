# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Ablations and baseline comparison
#
# ## Overview
# The paper makes two quantitative claims: TDP-CR beats a *heavy* cloud-removal baseline by
# **+0.18 dB PSNR with 15 % of its parameters**, and beats *multi-task competitors* by **+1.4 mIoU**.
# It also motivates two design choices: prompt-guided fusion (PGF) and two-phase training. This
# notebook trains every variant on **the same data, crop, step budget and seeds** and lays the
# results side by side:
#
# | row | what changes |
# |---|---|
# | TDP-CR (full) | PGF with the degradation prompt; phase 1 reconstruction, phase 2 prompt + PGF + seg decoder |
# | PGF without prompt | the gate sees SAR and optical features only |
# | concat fusion | SAR features concatenated, no gate |
# | optical only | no SAR at all |
# | single-phase joint | everything trained at once from scratch (CE + L_rec) |
# | phase 2: seg decoder only | phase 2 freezes the prompt and PGF too |
# | DSen2-CR | the heavy SAR-optical CR baseline (≈ 19 M parameters) |
# | multi-task competitor | CloudSeg-style U-Net with segmentation + auxiliary CR |
#
# Every run has its own folder `runs/ablations/<name>_seed<k>/`; a finished run with the same
# configuration is **reused** when the notebook is rerun, and an interrupted one resumes, so a long
# (full-mode) grid can be continued instead of redone.
#
# **What the default budget can and cannot show.** By default (a 2-core CPU, about 3 minutes for the
# whole grid) each model gets only 60 optimizer steps (40 + 20 for two-phase runs) of batch 2 on
# 32² crops, one seed, and is scored on eight test tiles. That is enough to check that the machinery
# works end to end and to see gross effects — every model should already beat the cloudy input's
# PSNR, and DSen2-CR, whose long skip starts it at the input, tends to lead at this budget — but
# **not** to rank close variants or to confirm or refute a 0.18 dB difference: with one seed the
# noise is unknown and the table says so. The segmentation heads only start learning in 20 phase-2
# steps (mIoU not far above chance), so the mIoU columns and the ΔmIoU claim row say little at this
# budget.
# Use `FULL=True` on a GPU (≥ 3 seeds, thousands of steps) for a meaningful comparison. Disk: the
# default grid's checkpoints take about 0.7 GB (DSen2-CR alone ~0.3 GB with its optimizer state).

# %% [markdown]
# ## Prerequisites
#
# | needs | from |
# |---|---|
# | the dataset (synthetic twin by default) | `00_get_data.ipynb` |
# | `tdpcr_lib` installed (`make setup`) | README |
# | time | ≈ 3 min (default, 2-core CPU) · < 1 min (`SMOKE`) · hours on a GPU (`FULL`) |

# %% [markdown]
# ## Imports

# %%
from pathlib import Path

from IPython.display import Markdown, display

from tdpcr_lib.core import paths
from tdpcr_lib.core.runtime import resolve_device
from tdpcr_lib.evaluation.ablations.grid import run_grid
from tdpcr_lib.evaluation.ablations.report import (
    ablation_table,
    aggregate,
    noise_statements,
    paper_claims_table,
    results_json,
    write_report,
)
from tdpcr_lib.evaluation.ablations.spec import default_seeds, preset_budget
from tdpcr_lib.notebook.display import show_figures_inline
from tdpcr_lib.notebook.record import RunRecord, resolve_reports_dir
from tdpcr_lib.plot.composites import save_figure
from tdpcr_lib.plot.curves import plot_per_bucket

show_figures_inline()  # figures show as images, live and in executed copies

# %% [markdown]
# ## Parameters
# `SEEDS` (a list) wins over `N_SEEDS`; by default 1 seed (3 in `FULL` mode). `STEPS` overrides the
# total optimizer steps per model (split 2:1 between phase 1 and phase 2). `ABLATIONS` restricts the
# grid to some rows (`None` = all). `MODEL_OVERRIDES` changes model sizes per architecture (for a
# quick look only: the faithful sizes are the default, and the overrides are part of each run's
# configuration hash and of the recorded budget). `FORCE=True` retrains finished runs.

# %% tags=["parameters"]
DATA_ROOT = None          # None → the synthetic twin written by 00_get_data
SOURCE = "synthetic"      # "synthetic" | "luojiaset" | "sen12mscr" (recorded; the layout is recognised)
RUNS_DIR = None           # None → runs/
REPORTS_DIR = None  # None: reports/, or reports/smoke/ when SMOKE (metrics/, figures/, pages)
SEED = 0
DEVICE = "auto"
SMOKE = False
FULL = False
SEEDS = None
N_SEEDS = None
STEPS = None
ABLATIONS = None
MODEL_OVERRIDES = None    # e.g. {"dsen2cr": {"dsen2cr_blocks": 4}}: ModelConfig fields per arch
FORCE = False

# %%
data_root = Path(DATA_ROOT) if DATA_ROOT else paths.DEFAULT_SYNTHETIC_ROOT
runs_dir = Path(RUNS_DIR) if RUNS_DIR else paths.RUNS_DIR
reports_dir = resolve_reports_dir(REPORTS_DIR, smoke=SMOKE)
figures_dir = reports_dir / "figures"
seeds = list(SEEDS) if SEEDS else default_seeds(SEED, smoke=SMOKE, full=FULL, n_seeds=N_SEEDS)
budget = preset_budget(smoke=SMOKE, full=FULL, steps=STEPS)
budget.model_overrides = dict(MODEL_OVERRIDES or {})
device = str(resolve_device(DEVICE))
record = RunRecord.from_parameters_cell(
    "04_ablations", globals(), device=device, metrics_dir=reports_dir / "metrics",
    resolved={"data_root": data_root, "runs_dir": runs_dir, "seeds": seeds, "device": device,
              "budget": budget.to_dict()})
print(f"data: {data_root}\nseeds: {seeds}\ndevice: {device}\nbudget: {budget}")

# %% [markdown]
# ## Train (or reuse) every run
# Each line says whether the run was trained now or reused from an earlier execution with the same
# configuration.

# %%
results = run_grid(data_root, runs_dir, seeds, budget, names=ABLATIONS, device=device,
                             force=FORCE)
aggregated = aggregate(results)
n_reused = sum(r["reused"] for r in results)
print(f"{len(results)} runs, {n_reused} reused")

# %% [markdown]
# ## Results per model
# Mean ± std over seeds (the std appears only with ≥ 2 seeds). *cloudy* = pixels inside the cloud
# mask, *clear* = outside. Parameters and FLOPs are for a 256² tile; *phase-2 trainable* counts the
# parameters trained in the run's last phase (all of them for single-phase runs) — the
# "parameter-efficient" claim.

# %%
table = ablation_table(aggregated)
table

# %% [markdown]
# ## The paper's claims, recomputed from our runs
# The *ours* columns are computed only from the runs above; the paper's numbers sit in the last
# column as a reference and are never used in a computation.

# %%
claims = paper_claims_table(aggregated)
claims

# %% [markdown]
# ## Which differences are within noise
# A difference is *within noise* when it is smaller than the combined seed standard deviation of the
# two rows (`sqrt(std_a² + std_b²)`); a Welch t-test p-value is given as well. With a single seed
# (the default) no difference can be told from noise — every verdict says *unknown (1 seed)*.

# %%
for line in noise_statements(aggregated):
    print("•", line)

# %% [markdown]
# ## Metrics by cloud cover
# PSNR and mIoU per cloud-cover bucket for each model (error bars: std over seeds). Models without a
# segmentation head (DSen2-CR) appear only in the PSNR panel. In the default mode each bucket holds
# one or two tiles of the evaluation subset, so the curves are indicative at best.

# %%
fig = plot_per_bucket(aggregated)
bucket_png = save_figure(fig, figures_dir / "04_ablations_per_bucket.png")
fig

# %% [markdown]
# ## Write the report

# %%
report = write_report(
    aggregated, reports_dir / "ablations.md", budget=budget, seeds=seeds,
    figures=[str(bucket_png.relative_to(reports_dir))],
    notes="Budget mode: " + ("smoke (plumbing check only)" if SMOKE else "full" if FULL
                             else "default (tiny CPU budget: indicative only, see notebook 04)"))
record.write({**results_json(aggregated), "n_runs": len(results), "n_reused": n_reused,
              "budget": budget.to_dict(), "figures": [str(bucket_png)]})
display(Markdown(report.read_text()))

# %% [markdown]
# ## Summary
# * Every variant and both baselines were trained with the same budget and seeds; finished runs are
#   reused on rerun (see the *reused* count above).
# * The table and `reports/ablations.md` give our numbers; the two claim rows compare TDP-CR with
#   DSen2-CR (PSNR, parameter ratio) and with the multi-task competitor (mIoU), with the paper's
#   values only as a reference column.
# * With the default tiny budget and one seed these numbers are a smoke-level comparison; read the
#   noise verdicts before reading a ranking into them.
#
# ## What's next
# * `05_compare_visually.ipynb` puts these models side by side tile by tile (reconstructions, error
#   maps, prompt maps, land cover) with zoom, to see *where* they differ.
# * Rerun this notebook with `FULL=True` on a GPU (≥ 3 seeds) to make the comparison meaningful.
