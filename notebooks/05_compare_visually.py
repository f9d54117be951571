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
# # 05 · Compare models visually
#
# ## Overview
# Numbers average away *where* a model fails. The paper's motivation is that cloud-removal networks
# over-smooth textures and boundaries; this notebook puts the models side by side on single test
# tiles: SAR (VV, VH, VV−VH), the cloudy input, each model's reconstruction and its absolute-error
# map, the target, the cloud mask, the prompt/gate map at each PGF level (where the model decided to
# trust SAR), the predicted and true land cover, and the tile's metrics — with a zoom to inspect
# texture and edges.
#
# The same figures are written as PNGs to `reports/figures/` for a fixed list of tiles, so readers
# without a running kernel (and CI) see them; the interactive viewer at the end needs a live kernel.

# %% [markdown]
# ## Prerequisites
#
# | needs | from |
# |---|---|
# | the dataset (synthetic twin by default) | `00_get_data.ipynb` |
# | at least one trained model: `runs/phase2/best` and/or finished ablation runs | `02_train_phase2.ipynb`, `04_ablations.ipynb` |
# | time | well under a minute (default) |

# %% [markdown]
# ## Imports

# %%
from IPython.display import Image, display

from tdpcr_lib.core import paths
from tdpcr_lib.datasets.sources import legend_of_data, open_dataset
from tdpcr_lib.evaluation.ablations.budget import untrained_checkpoints
from tdpcr_lib.notebook import discover_checkpoints, load_models, setup
from tdpcr_lib.plot.compare import plot_prompt_maps
from tdpcr_lib.plot.composites import save_figure
from tdpcr_lib.plot.tiles import default_tile_ids, index_of_tile, predict_outputs, row_titles, save_tile_comparisons
from tdpcr_lib.plot.widgets import build_viewer
from tdpcr_lib.transforms import centre_crop_sample

# %% [markdown]
# ## Parameters
# `CHECKPOINTS` maps display names to checkpoint folders; `None` finds `runs/phase2/best` plus every
# finished ablation run of seed `SEED`. `TILE_IDS` lists the tiles written as static PNGs (`None` =
# the first test tile of each cloud-cover bucket). `SAMPLE_CROP` centre-crops tiles before the models
# run (DSen2-CR needs ~2.5 TFLOP for a 256² tile — slow on a CPU); `None` shows whole tiles.
# `ZOOM` also writes a centre zoom of each tile. `SHOW_UNTRAINED=True` also shows models that are
# untrained beside the others (fewer than 10 % of the most-trained model's optimiser steps, e.g.
# DSen2-CR after its single equal-FLOPs step on a CPU), labelled "untrained: N steps"; by default
# they are left out, since their broken output says nothing about the architecture.

# %% tags=["parameters"]
DATA_ROOT = str(paths.DEFAULT_SYNTHETIC_ROOT)  # dataset folder: the synthetic twin or LuojiaSET-OSFCR
SOURCE = "synthetic"  # "synthetic" (generated if missing), "luojiaset" or "sen12mscr" (real data)
RUNS_DIR = str(paths.RUNS_DIR)  # run folders of notebooks 01/02 and 04
REPORTS_DIR = None  # None: reports/, or reports/smoke/ when SMOKE (metrics/, figures/, pages)
SEED = 0
DEVICE = "auto"
SMOKE = False
FULL = False
CHECKPOINTS = None
TILE_IDS = None
SAMPLE_CROP = 64
ZOOM = 4
COMPOSITE = "true colour (B04/B03/B02)"
SHOW_UNTRAINED = False

# %%
# reports (reports/smoke/ when SMOKE), metrics record, device, runs folder and the dataset; figures inline
nb = setup("05_compare_visually", globals())
record, figures_dir, data_root, runs_dir, device = nb.record, nb.figures_dir, nb.data_root, nb.runs_dir, nb.device
sample_crop = None if FULL else SAMPLE_CROP
checkpoints = dict(CHECKPOINTS) if CHECKPOINTS else discover_checkpoints(runs_dir, seed=SEED)
if not checkpoints:
    raise FileNotFoundError(f"no trained model under {runs_dir}: run 02_train_phase2 or 04_ablations first")
untrained = untrained_checkpoints(checkpoints)
if untrained and not SHOW_UNTRAINED:
    print(
        "left out (untrained; SHOW_UNTRAINED=True shows them):",
        ", ".join(f"{name} ({steps} steps)" for name, steps in untrained.items()),
    )
    checkpoints = {k: v for k, v in checkpoints.items() if k not in untrained}
models = load_models(checkpoints, device=device)
test_set = open_dataset(data_root, split="test")
tile_ids = list(TILE_IDS) if TILE_IDS else default_tile_ids(test_set, per_bucket=1)
if SMOKE:
    tile_ids = tile_ids[:2]
record.resolved.update(
    device=device, checkpoints={k: str(v) for k, v in checkpoints.items()}, tile_ids=tile_ids, sample_crop=sample_crop
)
# each row says what the run was trained with: the main run and the ablations differ in budget
titles = row_titles(checkpoints)
titles.update({name: f"{name}\nuntrained: {steps} steps" for name, steps in untrained.items() if name in titles})
legend = legend_of_data(data_root)  # land-cover names and colours of this dataset
print("models:", *(t.replace("\n", " — ") for t in titles.values()), sep="\n  ")
print("tiles:", tile_ids)

# %% [markdown]
# ## Static comparison figures
# One figure per listed tile (and a centre zoom), written to `reports/figures/05_compare_<tile>.png`.
# All optical panels share one stretch taken from the target — one gain for all three channels, so a
# small excess in one band stays a faint tint instead of a saturated colour, clouds saturate to
# white, and colour differences between panels are real; the error maps share one colour scale
# across models, and each row title gives the run's training budget (phase, steps, parameters).

# %%
written = save_tile_comparisons(
    test_set,
    models,
    tile_ids,
    figures_dir,
    composite=COMPOSITE,
    zoom=ZOOM,
    device=device,
    sample_crop=sample_crop,
    row_titles=titles,
    class_names=legend,
)
for item in written.values():
    for png in item["png"]:
        display(Image(filename=png))

# %% [markdown]
# ## What the prompt attends to
# The gate maps of a PGF model beside the cloud mask: at each level, the weight the fusion gives to
# SAR (0 = optical features kept, 1 = SAR fully injected; colour bar). If the degradation prompt does
# its job, high values should follow the clouds (where SAR is needed). With the default tiny training budget
# this correspondence may be weak or absent — that is a finding about the budget, not a rendering
# bug.

# %%
prompt_models = [
    name
    for name in models
    if getattr(models[name].config, "fusion", "") == "pgf" and models[name].config.arch == "tdpcr"
]
if prompt_models:
    sample = centre_crop_sample(test_set[index_of_tile(test_set, tile_ids[-1])], sample_crop)
    outputs = predict_outputs({prompt_models[0]: models[prompt_models[0]]}, sample, device=device)
    fig = plot_prompt_maps(outputs[prompt_models[0]], sample, title=f"{prompt_models[0]} · tile {tile_ids[-1]}")
    save_figure(fig, figures_dir / "05_prompt_maps.png")
    display(fig)
else:
    print("no PGF model among the checkpoints")

# %% [markdown]
# ## Interactive viewer
# Choose the cloud-cover bucket and tile, the band composite, which models to show, the zoom factor
# and its centre. A new tile runs each model once (a busy line shows meanwhile); every other change
# redraws from the cached outputs in about a second. The tile's metrics are the table below the picture (drawn 1:1; scroll sideways where the notebook is narrower).
# (Needs a live kernel; in an executed copy only the last rendering is visible.)

# %%
viewer = build_viewer(test_set, models, device=device, sample_crop=sample_crop, row_titles=titles, class_names=legend)
viewer.show()

# %%
record.write(
    {
        "tiles": {t: item["metrics"] for t, item in written.items()},
        "figures": [p for item in written.values() for p in item["png"]],
        "models": list(checkpoints),
        "viewer_renders": viewer.render_count,
        "untrained": untrained,
        "untrained_shown": bool(SHOW_UNTRAINED),
    }
)

# %% [markdown]
# ## Summary
# * Static comparison PNGs for the listed tiles are in `reports/figures/05_compare_*.png`, with
#   per-tile metrics recorded in `reports/metrics/05_compare_visually.json`.
# * The viewer compares any test tile, composite and zoom across the trained models.
#
# ## What's next
# * `06_predict_own_scene.ipynb` applies a trained model to your own Sentinel-1/-2 GeoTIFFs.
