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
# # 03 · Evaluate TDP-CR on the test split
#
# ## Overview
# The phase-2 checkpoint is scored on the **test** split with the project's metric definitions
# (`tdpcr_lib.metrics.functional`): PSNR, SSIM, SAM, MAE, RMSE of the 13-band reconstruction and OA, mean
# class accuracy, FWIoU and mIoU of the land-cover map, for all pixels, cloudy pixels and clear
# pixels, and per cloud-cover bucket. Two references we compute ourselves frame the numbers:
#
# * the **cloudy input** scored as if it were a reconstruction (what doing nothing gives);
# * the **majority-class baseline** (the most frequent training class predicted everywhere).
#
# Tiles larger than the training crop are predicted with an overlapping sliding window.
# The same predictions are also scored under the field's named protocols (`PROTOCOLS`: UnCRtainTS,
# GLF-CR, DSen2-CR, AllClear; `docs/metrics.md`), so our numbers can be set beside published tables
# that use each convention; every table names the protocol behind its numbers.
# The paper's own claims are listed separately in `reports/results.md`, never mixed with ours.

# %% [markdown]
# ## Prerequisites
#
# | Concepts | Importance | Notes |
# |---|---|---|
# | [02 · Phase 2](02_train_phase2.ipynb) | Necessary | writes `runs/phase2/best` |
# | Metric definitions | Helpful | `docs/decisions.md` |
#
# - **Time to learn**: 5 minutes; about 1 minute to run on a 2-core CPU (default).

# %% [markdown]
# ## Imports

# %%
from pathlib import Path

from IPython.display import display

from tdpcr_lib.core import paths
from tdpcr_lib.core.io import atomic_write_text
from tdpcr_lib.datasets.sources import legend_of_data, open_dataset
from tdpcr_lib.evaluation.evaluate import evaluate
from tdpcr_lib.evaluation.intervals import intervals_table
from tdpcr_lib.evaluation.majority import majority_class_baseline, majority_table
from tdpcr_lib.evaluation.protocols import protocol_display
from tdpcr_lib.evaluation.report import bucket_curves, cloudiest_index, headline_metrics, write_results
from tdpcr_lib.evaluation.tables import (
    BAND_ERROR_SHOWN,
    band_error_under_clouds,
    normalised_confusion,
    per_class_iou_table,
    readable,
    readable_record,
)
from tdpcr_lib.evaluation.transfer import transfer_check, transfer_display, transfer_markdown
from tdpcr_lib.metrics.results import CR_METRICS, to_records, value, wide
from tdpcr_lib.models.checkpoint import load_model, read_meta
from tdpcr_lib.notebook import setup
from tdpcr_lib.plot.compare import plot_comparison
from tdpcr_lib.plot.composites import save_figure
from tdpcr_lib.plot.curves import plot_bucket_metrics
from tdpcr_lib.plot.diagnostics import plot_band_error, plot_confusion
from tdpcr_lib.plot.tiles import predict_outputs
from tdpcr_lib.plot.transfer import plot_transfer

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
CHECKPOINT = None  # None: RUNS_DIR/phase2/best
BATCH_SIZE = 8
PROTOCOLS = ["tdpcr", "uncrtaints", "glfcr", "dsen2cr", "allclear"]  # named metric protocols

# %%
# reports (reports/smoke/ when SMOKE), metrics record, device, runs folder and the dataset; figures inline
nb = setup("03_evaluate", globals())
record, reports_dir, figures_dir, data_root = nb.record, nb.reports_dir, nb.figures_dir, nb.data_root
checkpoint = Path(CHECKPOINT) if CHECKPOINT else nb.runs_dir / "phase2" / "best"

# %% [markdown]
# ## Data

# %%
test_set = open_dataset(data_root, split="test")
train_set = open_dataset(data_root, split="train")
test_set

# %% [markdown]
# ## Evaluate
# `max_batches` limits a `SMOKE` run to a couple of batches.

# %%
result = evaluate(
    checkpoint,
    test_set,
    device=DEVICE,
    batch_size=BATCH_SIZE,
    max_batches=2 if SMOKE else None,
    protocols=PROTOCOLS,
    tile_intervals=True,
)
readable(result.tables["summary"])  # units in the headings, rounded; result.frame keeps the raw numbers

# %% [markdown]
# ### The same predictions under named protocols
# One row per protocol (`docs/metrics.md` lays them side by side); the tables above are `tdpcr`.

# %%
protocol_display(result.meta["protocols"])

# %% [markdown]
# ### The result frame
# Every number above comes from one tidy table, `result.frame`: one row per (region, bucket,
# metric) with the columns `model, seed, split, region, bucket, metric, value`. `value` reads one
# number from it, `wide` pivots it for display.

# %%
print(f"{len(result.frame)} rows; PSNR inside clouds: {value(result.frame, 'psnr', region='cloudy'):.2f} dB")
readable(wide(result.frame[result.frame["bucket"] == "all"], index="region", metrics=CR_METRICS))

# %% [markdown]
# ### Reconstruction and segmentation tables
# One row per subset: all pixels, cloudy pixels, clear pixels, then each cloud-cover bucket.

# %%
readable(result.tables["cr"])

# %%
readable(result.tables["seg"])

# %% [markdown]
# ### Per-class IoU and confusion matrix
# Class names are the dataset's legend: the twin's own classes on the twin, the simplified IGBP
# classes on SEN12MS-CR, "class N" on LuojiaSET-OSFCR (whose class names are not published). IoU in percent; the confusion
# matrix is normalised per true class (rows sum to 100 %), so its diagonal is each class's recall.

# %%
legend = legend_of_data(data_root)  # land-cover names and colours of this dataset
names = list(legend.names)
readable(per_class_iou_table(result.frame, names))

# %%
confusion = normalised_confusion(result.meta["confusion"], names)
figure = plot_confusion(confusion, title="Test split, all pixels: normalised confusion matrix")
save_figure(figure, figures_dir / "03_evaluate_confusion.png")
figure

# %% [markdown]
# ## Majority-class baseline
# Predicting the most frequent training class everywhere; a segmentation model must beat it.

# %%
majority = majority_class_baseline(train_set, test_set, max_batches=2 if SMOKE else None)
readable(majority_table(majority))

# %% [markdown]
# ## Per-bucket figures
# Reconstruction PSNR (ours vs the cloudy input) and mIoU (ours vs the majority class) against cloud
# cover.

# %%
figure = plot_bucket_metrics(bucket_curves(result, majority), title="Test split, per cloud-cover bucket")
save_figure(figure, figures_dir / "03_evaluate_buckets.png")
figure

# %% [markdown]
# ## An example tile
# The cloudiest test tile among the first batch: input, target, our reconstruction and error,
# predicted land cover and the PGF prompt maps.

# %%
model, _ = load_model(checkpoint, device="cpu")
index = cloudiest_index(test_set, limit=8)
sample = test_set[index]
outputs = predict_outputs({"TDP-CR": model}, sample)
figure = plot_comparison(sample, outputs, class_names=legend)
save_figure(figure, figures_dir / "03_evaluate_example.png")
figure

# %% [markdown]
# ## Which bands are wrong under clouds
# Mean error (bias: reconstruction − target) and mean absolute error per band inside the cloud mask
# over a few test tiles, beside each band's 2–98 % range in the target. A positive bias in the
# short-wavelength bands (B01–B03) is haze the model leaves behind; under a per-channel stretch the
# narrow blue range turned it into saturated cyan/blue blobs, so the figures above share one gain for
# all three channels instead (`tdpcr_lib.core.arrays.stretch_limits(common=True)`).

# %%
tiles = [test_set[i] for i in range(min(len(test_set), 4 if SMOKE else 16))]
pairs = [(tile, predict_outputs({"TDP-CR": model}, tile)["TDP-CR"]) for tile in tiles]
band_error = band_error_under_clouds(pairs)
figure = plot_band_error(band_error, title="Test tiles: reconstruction error under clouds, per band")
save_figure(figure, figures_dir / "03_evaluate_band_error.png")
figure

# %%
readable(band_error, BAND_ERROR_SHOWN)

# %% [markdown]
# ## 95 % intervals over test tiles
# How much the headline numbers depend on which tiles are in the test split: the evaluation above
# also scored each tile alone (from the same predictions); PSNR (all, cloudy) a t interval over
# tiles, mIoU a bootstrap over tiles of the pooled confusion matrix
# (`tdpcr_lib.evaluation.intervals`).

# %%
intervals = result.meta["intervals"]
intervals_table(headline_metrics(result), intervals)

# %% [markdown]
# ## Transfer check: the model on real cloudy images
# Everything above is measured on the data the model was trained on (by default the synthetic twin).
# Here the model meets the real SEN12MS-CR samples that ship with tdpcr: a thick-cloud autumn scene
# and a dark, hazy winter scene. For each, the PSNR of the cloudy input and of the prediction
# against the clear image (another date); a model that helps beats the cloudy input. It runs on the
# files' DN as they are (as `tdpcr predict` reads them) and with the +1000 DN offset the training
# data carry. The domain column is the warning `tdpcr predict` gives for these files.

# %%
transfer_table, transfer_images = transfer_check(model, read_meta(checkpoint).get("training_data"))
figure = plot_transfer(transfer_table, transfer_images)
save_figure(figure, figures_dir / "03_evaluate_transfer.png")
atomic_write_text(
    reports_dir / "transfer_check.md",
    transfer_markdown(transfer_table, str(checkpoint), "figures/03_evaluate_transfer.png"),
)
display(figure)
for sample, warning in transfer_table["domain_warning"].items():
    print(f"Domain check, {sample}: {warning or 'no warning'}")
transfer_display(transfer_table)

# %% [markdown]
# ## Results page and metrics record
# `reports/results.md` holds our numbers per bucket and for cloudy/clear pixels with their 95 %
# intervals over test tiles, and — in a separate table — the paper's claims for reference.

# %%
results_path = write_results(
    result, majority, reports_dir / "results.md", checkpoint=checkpoint, class_names=names, intervals=intervals
)
headline = {**headline_metrics(result, majority), **intervals}
record.write(
    {
        **headline,
        "protocol": result.meta["protocol"],
        "protocols": result.meta["protocols"],
        "split_protocol": result.meta.get("split_protocol"),
        "evaluation": to_records(result.frame),
        "majority": majority.to_dict(),
        "class_names": names,
        "band_error_under_clouds": band_error.to_dict(orient="index"),
        "transfer_check": transfer_table.reset_index().to_dict(orient="records"),
    },
    meta=result.meta,
)
readable_record(headline)  # the record above keeps the raw numbers

# %% [markdown]
# ## Summary
# The reconstruction is compared with the cloudy input inside clouds (`psnr_gain_cloudy > 0` means
# it removes clouds rather than copying them) and the segmentation with the majority class
# (`miou_gain_over_majority > 0`).
#
# ## What's next
# The following notebooks run the ablations and baselines behind the paper's claims, compare models
# tile by tile, and apply a checkpoint to your own GeoTIFFs.
