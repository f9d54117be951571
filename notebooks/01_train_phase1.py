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
# # 01 · Train TDP-CR, phase 1: cloud removal
#
# ## Overview
# TDP-CR is trained in two phases. In **phase 1** the network learns *reconstruction only*: the
# Prompt Generator, the SAR and optical encoders with their Prompt-Guided Fusion (PGF) blocks, the
# shared decoder and the reconstruction head; the segmentation decoder does not exist yet. The loss is
# the first author's cloud-removal recipe, `L_rec = 0.9·L1 + 0.1·(1 − SSIM)` over all 13 bands.
#
# 1. Load the training and validation splits.
# 2. Pick the run configuration (preset for CPU, `SMOKE` or `FULL`, plus `CONFIG` overrides).
# 3. Train, validating every epoch; the best epoch by validation PSNR is kept in `runs/phase1/best`.
#    The run stops early once validation PSNR is on its plateau (fitted gain over the last 20 % of
#    its steps within max(0.1 dB, 2σ of the validation noise), judged on ≥ 5 validations;
#    docs/verdicts.md); the default budget is at most 600 steps of batch 8
#    on 32² crops. This run is also seed 0 of TDP-CR in the ablation grid (notebook 04 reuses it).
# 4. Plot the training curves and record the metrics.

# %% [markdown]
# ## Prerequisites
#
# | Concepts | Importance | Notes |
# |---|---|---|
# | [00 · Get the data](00_get_data.ipynb) | Helpful | writes the synthetic twin; 01 also makes it if missing |
# | Cloud-removal metrics (PSNR, SSIM, SAM) | Helpful | computed by `tdpcr_lib.metrics.functional` |
# | PyTorch training loops | Helpful | all of it lives in `tdpcr_lib.training.trainer` |
#
# - **Time to learn**: 5 minutes to read; about 1–2 minutes to run on a 2-core CPU (default).
# - **System requirements**: CPU is enough; a GPU is used automatically (bf16) when present.

# %% [markdown]
# ## Imports

# %%
from IPython.display import display

from tdpcr_lib.core import paths
from tdpcr_lib.notebook import setup
from tdpcr_lib.notebook.training import run_summary
from tdpcr_lib.plot.composites import save_figure
from tdpcr_lib.plot.curves import plot_training_curves
from tdpcr_lib.training.plateau import PlateauStop, describe_metric, phase_plateau
from tdpcr_lib.training.presets import notebook_configs
from tdpcr_lib.training.run import build_datasets, train

# %% [markdown]
# ## Parameters
# Papermill (and `tdpcr reproduce`) overrides these. Changing only `DATA_ROOT` and `SOURCE` runs
# the same pipeline on the real LuojiaSET-OSFCR: its 256 px tiles are then trained on random crops
# and validated with a sliding window.

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
# reports (reports/smoke/ when SMOKE), metrics record, device, runs folder and the dataset (the twin is
# generated if missing); figures show inline
nb = setup("01_train_phase1", globals())
record, figures_dir, data_root = nb.record, nb.figures_dir, nb.data_root
run_dir = nb.runs_dir / "phase1"

# %% [markdown]
# ## Data
# The splits come from the dataset's manifest (the first author's 80/10/10 protocol).

# %%
train_config, model_config = notebook_configs(
    "phase1",
    smoke=SMOKE,
    full=FULL,
    quick=QUICK,
    long=LONG,
    epochs=EPOCHS,
    max_steps=MAX_STEPS,
    seed=SEED,
    config=CONFIG,
)
train_set, val_set = build_datasets(data_root, train_config)
print(train_set, val_set, sep="\n")

# %% [markdown]
# ## Configuration
# The training settings (`TrainConfig`) and the architecture (`ModelConfig`). The default preset
# uses a slimmer TDP-CR so that both phases fit a few CPU minutes; `FULL` uses the full-width model.

# %%
display(train_config.to_dict())
display(model_config.to_dict())

# %% [markdown]
# ## Train
# `training.train` resumes `runs/phase1/last` when it holds a compatible, unfinished run (and does
# not retrain a finished one); otherwise it starts afresh. The progress bar shows the live loss,
# learning rate and throughput.

# %%
result = train(
    train_config, model_config, train_set, val_set, run_dir, device=DEVICE, source=SOURCE, stop_rule=PlateauStop()
)
# the same judgement (noise-aware rule) as early stopping and notebook 04's reports
plateau = phase_plateau(result, train_config.max_steps)
print(f"{train_config.phase}: {describe_metric(plateau)}")
result.compact_history()  # every column: result.history_frame()

# %% [markdown]
# ## Training curves
# Loss per logged step (log scale) and, per epoch, the validation PSNR over all pixels and inside
# clouds, next to the PSNR of the cloudy input itself: reconstruction must beat it.

# %%
figure = plot_training_curves(run_dir)
save_figure(figure, figures_dir / "01_train_phase1_curves.png")
figure

# %% [markdown]
# ## Record the metrics

# %%
summary = run_summary(result)
record.write({**summary, "plateau": plateau})
summary["validation"]

# %% [markdown]
# ## Summary
# Phase 1 trained the reconstruction path of TDP-CR; its best checkpoint (by validation PSNR) is in
# `runs/phase1/best` with the full configuration, data-manifest hash and metrics in `config.json`.
#
# ## What's next
# [02 · Phase 2](02_train_phase2.ipynb) attaches the segmentation decoder to this checkpoint and
# trains it (with the prompts and PGF) for land-cover segmentation.
