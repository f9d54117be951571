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
# # 06 · Predict your own scene
#
# ## Overview
# The earlier notebooks train and evaluate TDP-CR on 256 px tiles. Here a trained checkpoint is
# applied to **a whole scene of any size**, the way you would use it on your own data: a cloudy
# Sentinel-2 L1C GeoTIFF plus a Sentinel-1 GeoTIFF in, georeferenced products out.
#
# 1. Pick the inputs: your own files, or (default) a synthetic scene made on the fly with Sentinel-1
#    on a coarser, shifted grid, as real S1 usually is.
# 2. Pick the checkpoint (`runs/phase2/best` from notebook 02).
# 3. Predict tile by tile with overlapping, smoothly blended tiles, streaming the results to disk.
# 4. Look at the cloudy input, the SAR, the cloud-free result, the land-cover map and the prompt.
# 5. Inspect the GeoTIFFs (Cloud-Optimized GeoTIFF layout) and open them as xarray DataArrays.

# %% [markdown]
# ## Prerequisites
#
# | Concepts | Importance | Notes |
# |---|---|---|
# | [02 · Phase 2](02_train_phase2.ipynb) | Necessary | writes `runs/phase2/best` (or run with `SMOKE = True`) |
# | GeoTIFF, CRS and affine transforms | Helpful | outputs use the Sentinel-2 input's grid |
# | [rioxarray](https://corteva.github.io/rioxarray/) | Helpful | to work with the products as DataArrays |
#
# - **Time to learn**: 5 minutes to read; under a minute to run on a 2-core CPU (default scene).
# - **System requirements**: CPU is enough; a GPU is used automatically when present. Memory is
#   bounded by one strip of tiles, so a full 10980 × 10980 Sentinel-2 tile also works.
# - **From the command line**: `tdpcr predict --s2 S2.tif --s1 S1.tif --checkpoint runs/phase2/best --out out/`.

# %% [markdown]
# ## Imports

# %%
from pathlib import Path

from tdpcr_lib.core import paths
from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.inference.inputs import describe_scene
from tdpcr_lib.inference.products import describe_outputs, open_prediction, read_summary
from tdpcr_lib.inference.scene import predict_scene
from tdpcr_lib.notebook import setup
from tdpcr_lib.notebook.predict import compare_to_reference, prepare_checkpoint
from tdpcr_lib.plot.composites import save_figure
from tdpcr_lib.plot.scene import plot_scene_prediction

# %% [markdown]
# ## Parameters
# `S2_PATH`/`S1_PATH` left at `None` make a synthetic scene (with its clear-sky truth, so the result
# can be scored). In `SMOKE` mode the scene and the tiles are small, and a missing checkpoint is
# replaced by a freshly initialised tiny model so the notebook runs standalone (its output is then
# meaningless, and the notebook says so).

# %% tags=["parameters"]
S2_PATH = None  # cloudy Sentinel-2 L1C GeoTIFF (13 bands, DN), or None for a synthetic scene
S1_PATH = None  # Sentinel-1 GeoTIFF (VV, VH in dB) on any grid overlapping S2, or None
RUNS_DIR = str(paths.RUNS_DIR)  # run folders of notebooks 01/02 (`tdpcr reproduce --runs-dir`)
CHECKPOINT = None  # None: RUNS_DIR/phase2/best, written by 02_train_phase2
OUT_DIR = str(paths.DATA_DIR / "predictions" / "06_predict_own_scene")  # products go here
REPORTS_DIR = None  # None: reports/, or reports/smoke/ when SMOKE (metrics/, figures/, pages)
TILE = 256  # tile size in px (multiples of 16 avoid padding)
OVERLAP = 64  # overlap between tiles in px (blended smoothly)
BATCH_SIZE = 8  # tiles per forward pass
DEVICE = "auto"  # auto: CUDA if available, else CPU
WRITE_PROMPT = True  # also write degradation_prompt.tif (where SAR was injected)
SCENE_SIZE = [600, 700]  # rows, cols of the synthetic scene (odd on purpose)
SMOKE = False  # small scene and tiles; an untrained tiny model if CHECKPOINT is missing
SEED = 0

# %%
if CHECKPOINT is None:
    CHECKPOINT = str(Path(RUNS_DIR) / "phase2" / "best")
# reports (reports/smoke/ when SMOKE), metrics record and device; figures inline
nb = setup("06_predict_own_scene", globals())
record, figures_dir = nb.record, nb.figures_dir
if SMOKE:
    SCENE_SIZE, TILE, OVERLAP = [150, 190], 64, 16

# %% [markdown]
# ## Inputs
# Without paths, `scenes.make_synthetic_scene` writes a scene whose landscape (classes, spectra,
# backscatter, clouds and shadows) follows the synthetic LuojiaSET twin the model was trained on.
# Sentinel-1 is written on a 20 m grid shifted by a fraction of a pixel, so it must be resampled
# (bilinear, through a GDAL warped VRT) onto the 10 m Sentinel-2 grid; a corner of the Sentinel-2
# scene is left as nodata, as at the edge of a swath.

# %%
scene = None
if S2_PATH is None or S1_PATH is None:
    scene = make_synthetic_scene(
        Path(OUT_DIR) / "input_scene",
        *SCENE_SIZE,
        seed=SEED,
        s1_offset=(13.0, -7.0),
        s1_resolution=20.0,
        nodata_corner=SCENE_SIZE[0] // 5,
    )
    S2_PATH, S1_PATH = str(scene.s2_cloudy), str(scene.s1)
describe_scene(S2_PATH, S1_PATH)

# %% [markdown]
# ## Checkpoint
# The phase-2 checkpoint holds the reconstruction network and the segmentation decoder. If it is
# missing, the next cell stops with a message saying how to create it (unless `SMOKE` is set).

# %%
checkpoint, checkpoint_note = prepare_checkpoint(CHECKPOINT, smoke=SMOKE, scratch_dir=OUT_DIR, seed=SEED)
print(checkpoint_note)

# %% [markdown]
# ## Predict
# Tiles of `TILE` px overlap by `OVERLAP` px (rounded so tiles stay on the network's downsampling
# grid); each tile's outputs are weighted by a flat-top window with `sin²` ramps where tiles meet,
# so there are no seams. Rows are written as soon as they are complete; each product is published
# as a Cloud-Optimized GeoTIFF only when the whole scene is done.

# %%
outputs = predict_scene(
    S2_PATH,
    S1_PATH,
    checkpoint,
    OUT_DIR,
    tile=TILE,
    overlap=OVERLAP,
    batch_size=BATCH_SIZE,
    device=DEVICE,
    write_prompt=WRITE_PROMPT,
)
outputs

# %% [markdown]
# ## Does the model know this kind of data?
# The checkpoint records what it was trained on (dataset, source, twin version, per-band statistics
# of its inputs). Prediction compares the scene with that and warns in one line (also stored in
# `prediction.json` under `domain`) when a model trained on the synthetic twin meets real files, or
# when bands of the input lie far outside the training inputs' range. No weights trained on real
# data ship with tdpcr yet: train them with `--source sen12mscr` or `luojiaset` (`--full`, on a GPU).

# %%
domain = read_summary(outputs)["domain"]
print(
    domain["warning"]
    or f"domain check: no warning (input: {domain['input']} data; trained on "
    f"{domain['trained_on']['source'] or 'unrecorded data'})"
)

# %% [markdown]
# ## Before and after
# Cloudy input and cloud-free output share one colour stretch. The land-cover colours are the
# legend's (`tdpcr_lib/resources/legend.json`); the prompt panel shows the PGF injection gate at full
# resolution: bright where the model relied on SAR.

# %%
figure = plot_scene_prediction(S2_PATH, outputs, s1=S1_PATH)
save_figure(figure, figures_dir / f"{record.notebook}.png")
figure

# %% [markdown]
# ## The GeoTIFFs
# All products have the Sentinel-2 input's CRS and transform. `cloud_free.tif` is 13-band uint16 DN
# (bands named `B01 … B12, B8A`, nodata 0), `land_cover.tif` uint8 with the legend's colour table
# and class names in its metadata (nodata 255). As DataArrays they carry `band` coordinates and the
# CRS, ready for `.rio` operations.

# %%
describe_outputs(outputs)

# %%
arrays = open_prediction(outputs)
arrays["cloud_free"]

# %% [markdown]
# ## Score against the truth (synthetic scene only)
# The synthetic scene comes with its clear-sky image and land-cover map. The cloudy input itself is
# the "do nothing" baseline the prediction should beat (with a trained checkpoint).

# %%
scores = {}
if scene is not None:
    scores = compare_to_reference(
        outputs, scene.s2_clear, cloudy_s2=scene.s2_cloudy, reference_land_cover=scene.land_cover
    )
scores

# %% [markdown]
# ## Record the metrics

# %%
summary = read_summary(outputs)
record.write(
    {
        "scene": {
            "height": summary["height"],
            "width": summary["width"],
            "n_tiles": summary["n_tiles"],
            "valid_fraction": summary["valid_fraction"],
            "s1_resampled": summary["s1_resampled"],
        },
        "prediction_wall_time_s": summary["wall_time_s"],
        "class_fractions": summary.get("class_fractions", {}),
        "scores_vs_truth": scores,
        "checkpoint": checkpoint_note,
        "domain": summary.get("domain"),
        "outputs": describe_outputs(outputs),
    }
)
for array in arrays.values():
    array.close()

# %% [markdown]
# ## Summary
# A trained TDP-CR checkpoint turned a cloudy Sentinel-2 scene and a Sentinel-1 scene on another
# grid into georeferenced, seamless products: a 13-band cloud-free image in DN, a land-cover map with
# its colour table, and the map of where SAR was injected, all as Cloud-Optimized GeoTIFFs on the
# Sentinel-2 grid. The same function runs from the command line (`tdpcr predict`) and from xarray
# (`predict.predict_dataarrays`).
#
# ## What's next
# - Point `S2_PATH` and `S1_PATH` at your own scene (L1C DN and S1 GRD in dB; see the README).
# - [04 · Ablations](04_ablations.ipynb) and [05 · Compare visually](05_compare_visually.ipynb)
#   show what the prompt and the SAR branch contribute, tile by tile.
# - Design notes: `docs/decisions.md`, section "Scene prediction".
