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
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Train TDP-CR, phase 2: attach the segmentation decoder
#
# ## Overview
# Phase 2 starts from the phase-1 checkpoint, **attaches the segmentation decoder** to four scales
# of the shared decoder and trains with `CE (ignore 255) + λ·L_rec` (λ = 1). Only part of the
# network is trainable; by default the segmentation decoder, the Prompt Generator and the PGF blocks
# (`trainable="prompt_pgf_seg"`), so the segmentation task *drives* the degradation prompts while the
# encoders, the shared decoder and the reconstruction head stay frozen. This is the paper's
# "parameter-efficient" two-phase training; `CONFIG={"trainable": "seg_decoder_only"}` or `"all"`
# are the variants.
#
# 1. Load `runs/phase1/best` and attach the decoder.
# 2. Count total and trainable parameters.
# 3. Train, keeping the best epoch by validation mIoU in `runs/phase2/best`; the run stops early
#    once validation mIoU is on its plateau (fitted gain over the last 20 % of its steps within
#    max(1 point, 2σ), ≥ 5 validations; docs/verdicts.md; at most 300 steps by default). Seed 0 of TDP-CR in notebook 04's ablation grid is this run.

# %% [markdown]
# ## Prerequisites
#
# | Concepts | Importance | Notes |
# |---|---|---|
# | [01 · Phase 1](01_train_phase1.ipynb) | Necessary | writes `runs/phase1/best` |
# | Semantic segmentation (CE, mIoU) | Helpful | |
#
# - **Time to learn**: 5 minutes to read; about 1 minute to run on a 2-core CPU (default).

# %% [markdown]
# ## Imports

# %%
import pandas as pd
from IPython.display import display

from tdpcr_lib.core import paths
from tdpcr_lib.notebook import setup
from tdpcr_lib.notebook.training import run_summary
from tdpcr_lib.plot.composites import save_figure
from tdpcr_lib.plot.curves import plot_training_curves
from tdpcr_lib.training.plateau import PlateauStop, describe_metric, phase_plateau
from tdpcr_lib.training.presets import notebook_configs
from tdpcr_lib.training.run import build_datasets, train, trainable_parameter_table

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
DATA_ROOT = str(paths.DEFAULT_SYNTHETIC_ROOT)  # dataset folder: the synthetic twin or LuojiaSET-OSFCR
SOURCE = "synthetic"  # "synthetic" (generated if missing), "luojiaset" or "sen12mscr" (real data)
RUNS_DIR = str(paths.RUNS_DIR)  # run folders and checkpoints
REPORTS_DIR = None  # None: reports/, or reports/smoke/ when SMOKE (metrics/, figures/, pages)
SEED = 0
DEVICE = "auto"  # auto: CUDA if available, else CPU
SMOKE = False  # a few steps only: checks the pipeline
FULL = False  # the recipe's full budget (GPU)
QUICK = False  # a quarter of the default steps (make reproduce in ≤ 10 min; indicative only)
LONG = False  # 4× the default steps (`tdpcr reproduce --budget long`; hours, resumable)
EPOCHS = None  # None: the preset of the mode (SMOKE, default or FULL)
MAX_STEPS = None  # stop after this many optimizer steps (None: no limit)
CONFIG = {}  # TrainConfig overrides and a "model" dict of ModelConfig overrides

# %%
# reports (reports/smoke/ when SMOKE), metrics record, device, runs folder and the dataset; figures inline
nb = setup("02_train_phase2", globals())
record, figures_dir, data_root = nb.record, nb.figures_dir, nb.data_root
phase1_best = nb.runs_dir / "phase1" / "best"
run_dir = nb.runs_dir / "phase2"

# %% [markdown]
# ## Data and configuration

# %%
train_config, _ = notebook_configs(
    "phase2",
    smoke=SMOKE,
    full=FULL,
    quick=QUICK,
    long=LONG,
    epochs=EPOCHS,
    max_steps=MAX_STEPS,
    seed=SEED,
    init_from=phase1_best,
    config=CONFIG,
)
train_set, val_set = build_datasets(data_root, train_config)
display(train_config.to_dict())

# %% [markdown]
# ## Trainable parameters
# The parameter count of each module group, and how many of them phase 2 trains.

# %%
report = trainable_parameter_table(train_config)
report

# %% [markdown]
# ## Train

# %%
result = train(train_config, None, train_set, val_set, run_dir, device=DEVICE, source=SOURCE, stop_rule=PlateauStop())
# the same judgement (noise-aware rule) as early stopping and notebook 04's reports
plateau = phase_plateau(result, train_config.max_steps)
print(f"{train_config.phase}: {describe_metric(plateau)}")
result.compact_history()  # every column: result.history_frame()

# %% [markdown]
# ## Training curves
# CE + λ·L_rec per step; per epoch the validation mIoU (right axis) and PSNR, which should stay
# close to phase 1's because the reconstruction term is kept.

# %%
figure = plot_training_curves(run_dir)
save_figure(figure, figures_dir / "02_train_phase2_curves.png")
figure

# %% [markdown]
# ## Record the metrics

# %%
summary = run_summary(result)
record.write({**summary, "plateau": plateau})
pd.Series(summary["validation"])

# %% [markdown]
# ## Summary
# The phase-2 model (phase-1 network + segmentation decoder) is in `runs/phase2/best`. Only the
# trainable fraction shown above was updated.
#
# ## What's next
# [03 · Evaluate](03_evaluate.ipynb) scores it on the test split, per cloud-cover bucket and inside
# and outside clouds, and writes `reports/results.md`.
