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
# # 00 · Get the data: LuojiaSET-OSFCR, its synthetic twin, or the open SEN12MS-CR
#
# ## Overview
# TDP-CR is trained and evaluated on **LuojiaSET-OSFCR**: 20 000 co-registered 256 × 256 px tiles
# at 10 m, each with a cloudy Sentinel-2 image (13 bands), the clear Sentinel-2 target, Sentinel-1
# SAR (VV, VH), a land-cover map and a cloud mask, sorted into five cloud-cover buckets
# (`0-20%` … `80%-100%`). The dataset is **gated**, so by default this notebook builds a
# **synthetic twin** with exactly the same folders, file names, GeoTIFF headers and units, whose
# content is a real (learnable) problem. Every later notebook runs on either. The open
# **SEN12MS-CR** (with SEN12MS land cover, `SOURCE = "sen12mscr"`) works the same way: its patches
# get a computed cloud mask, a cloud-cover bucket and simplified-IGBP labels (10 classes).
#
# 1. Make the twin, or locate / extract / verify your copy of the real data.
# 2. Write the split manifest (the first author's 80/10/10 protocol, with a sha256 per file).
# 3. Count tiles per bucket and split; plot the class histogram and one sample per bucket.
# 4. Twin only: measure how close it is to real samples (`reports/twin_fidelity.md`).
# 5. Record everything in `reports/metrics/00_get_data.json`.

# %% [markdown]
# ## Prerequisites
#
# | Concepts | Importance | Notes |
# |---|---|---|
# | Sentinel-1 / Sentinel-2 basics | Helpful | bands, DN and dB; see the band table in `tdpcr_lib.core.bands` |
# | GeoTIFF and `rasterio` | Helpful | only to look at the files yourself |
# | PyTorch `Dataset` | Helpful | `tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR` is one |
#
# - **Time to learn**: 5 minutes to read; about a minute to run on 2 CPU cores (default twin).
# - **System requirements**: CPU only; the default twin takes about 70 MB of disk.

# %% [markdown]
# ## Imports

# %%
import pandas as pd
from IPython.display import display

from tdpcr_lib.datasets.base import measure_read_speed
from tdpcr_lib.datasets.plot import plot_class_histogram
from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.datasets.sources import DataOptions, data_source
from tdpcr_lib.datasets.synthetic.tiles import SMOKE_N_TILES, SMOKE_TILE_SIZE, read_synthetic_info
from tdpcr_lib.evaluation.fidelity import jsonable, summary_row
from tdpcr_lib.evaluation.fidelity_report import load_before, measure_fidelity, write_fidelity_report
from tdpcr_lib.notebook import setup
from tdpcr_lib.plot.composites import save_figure
from tdpcr_lib.plot.fidelity import plot_fidelity

# %% [markdown]
# ## Parameters
# Papermill (and `tdpcr reproduce`) overrides these. `SOURCE="luojiaset"` or `"sen12mscr"` with
# `DATA_ROOT` pointing at your copy (folder or archive(s)) prepares the real data instead of the twin.

# %% tags=["parameters"]
DATA_ROOT = None  # None: data/synthetic_luojiaset, data/LuojiaSET-OSFCR or data/SEN12MS-CR;
#                   for "luojiaset" also the folder above it, or the .zip/.tar archive you received;
#                   for "sen12mscr" also the folder holding the per-season .tar.gz archives
SOURCE = "synthetic"  # "synthetic" (the twin), "luojiaset" (gated) or "sen12mscr" (open data)
LAND_COVER_ROOT = None  # sen12mscr: SEN12MS land-cover folder (None: look inside DATA_ROOT)
N_TILES = 350  # synthetic: tiles, 70 per cloud-cover bucket (train/val/test 40/10/20 per bucket)
TILE_SIZE = 64  # synthetic: tile side in pixels (the real tiles are 256)
SEED = 0  # synthetic: everything is a deterministic function of the seed
SMOKE = False  # tiny twin (50 tiles of 32 px) / no checksums: checks the pipeline in seconds
MANIFEST_DIR = None  # luojiaset: where the split CSVs go (None: <DATA_ROOT>/manifest/, beside the data)
REPORTS_DIR = None  # None: reports/, or reports/smoke/ when SMOKE (metrics/, figures/, pages)

# %%
source = data_source(SOURCE)  # everything that differs between the sources, in one record
if SMOKE:
    N_TILES, TILE_SIZE = SMOKE_N_TILES, SMOKE_TILE_SIZE
options = DataOptions(
    n_tiles=N_TILES,
    tile_size=TILE_SIZE,
    seed=SEED,
    overwrite=True,
    land_cover_root=LAND_COVER_ROOT,
    manifest_dir=MANIFEST_DIR,
    checksums=not SMOKE,
)
# reports (reports/smoke/ when SMOKE) and metrics record; figures inline. The data are prepared below.
nb = setup("00_get_data", globals(), prepare_data=False, device="cpu")
record, reports_dir, figures_dir = nb.record, nb.reports_dir, nb.figures_dir

# %% [markdown]
# ## The synthetic twin (`SOURCE = "synthetic"`)
# `make_synthetic_luojiaset` writes the real layout: `<bucket>/{s1,s2,s2_cloudy,land_cover_maps,
# cloud_detection_results}/ROIs_XX_..._pN.tif`, S2 as uint16 DN with the +1000 offset and band
# descriptions B01…B12 (with B8A), S1 as float32 dB, land cover as uint8 (every third file without a
# CRS, like the real maps) and the cloud mask as float32 {0, 1}, in UTM with a 10 m grid.
#
# Each tile is a small landscape: smooth land-cover patches with rivers and roads; per-class
# spectra and texture for the clear image; per-class backscatter with speckle for SAR (so SAR still
# sees the land cover under clouds); thick, thin and mixed clouds with shadows from the
# `satellite-cloud-generator` package for the cloudy image, each tile's cloud fraction drawn inside
# its bucket. Spectra, seasons (dark winter, snow, wet soil), haze and cirrus, SAR, texture and the
# change of the ground between the two dates are calibrated to real samples
# (`tdpcr_lib/resources/twin_calibration.json`, twin version in `synthetic.json`; `docs/twin.md`). The split manifest goes to `<DATA_ROOT>/manifest/`. A folder that already holds a twin
# made with the same parameters is reused.

# %% [markdown]
# ## The real data (`SOURCE = "luojiaset"`)
# LuojiaSET-OSFCR cannot be downloaded automatically. Request it through the questionnaire linked
# from the README of [RSIIPAC/LuojiaSET-OSFCR](https://github.com/RSIIPAC/LuojiaSET-OSFCR)
# (contacts: panjun1215@whu.edu.cn, dd_xjg@whu.edu.cn). There is no stated licence; do not
# redistribute it. Then set `DATA_ROOT` to
#
# * the unpacked folder (the one holding `0-20%/`, …, `80%-100%/`) or any folder above it, or
# * the `.zip` / `.tar(.gz)` archive: it is extracted beside itself (safely: no paths outside).
#
# The cell below locates the data and writes the split manifest with a sha256 for every file
# (skipped in `SMOKE` mode; hashing all 84 GB takes a while). The split is the first author's:
# per bucket, the name-sorted file list is shuffled by one `random.Random(42)` and cut 80/10/10;
# `author_split_check` says whether the result starts like the author's published `test.csv`.

# %% [markdown]
# ## The open data (`SOURCE = "sen12mscr"`)
# [SEN12MS-CR](https://mediatum.ub.tum.de/1554803) (Ebel et al. 2021, CC-BY 4.0): 122 218
# triplets of Sentinel-1, cloudy and clear Sentinel-2 (256 × 256 px, 10 m) from 169 regions over
# four seasons; land cover from [SEN12MS](https://mediatum.ub.tum.de/1474000) (same season, scene
# and patch ids; MODIS IGBP, mapped to the 10 simplified-IGBP classes of DFC2020). Download the
# per-season archives with `tdpcr data download data/SEN12MS-CR` (resumable, size/MD5 checked),
# then set `DATA_ROOT` to
#
# * the folder holding the season folders (`ROIs1158_spring_s1/`, …; land cover as
#   `ROIs1158_spring/lc_1/…` in the same folder, or elsewhere: `LAND_COVER_ROOT`), or
# * the folder holding the `.tar.gz` archives: each is checked (land cover against its published
#   MD5) and extracted safely into `<DATA_ROOT>/SEN12MS-CR/`.
#
# SEN12MS-CR ships no cloud masks: the cell computes one per patch with s2cloudless as UnCRtainTS
# does (`tdpcr_lib.datasets.sen12mscr.s2cloudless`; the rule-based detector of DSen2-CR on request,
# `DataOptions(cloud_mask="rule-based")`) for the cloud-cover buckets. The split is the scene-level split of
# UnCRtainTS (train/val/test scenes, matched exactly: no scene in two splits); the manifest records
# the mask, the split and a sha256 per file (skipped in `SMOKE` mode).

# %% [markdown]
# ## Prepare the chosen source
# One call per step, whatever `SOURCE` is: the record of `tdpcr_lib.datasets.sources` knows how
# each source is made ready, where its manifest goes and what there is to say about it.

# %%
root = source.prepare(DATA_ROOT, options)
manifest_dir = source.write_manifest(root, options)
facts = source.facts(root, manifest_dir)
print(f"{source.title} in {root}: {facts.get('indexed_samples')} complete samples; manifest in {manifest_dir}")
{key: value for key, value in facts.items() if value is not None and not isinstance(value, dict)}

# %% [markdown]
# ## Verify the files
# Every file of every split is opened and its band count, data type and size are checked against
# the real format (pixels are not read here; the loader checks NaNs when it reads a tile).

# %%
header_check = source.verify_headers(root, manifest=manifest_dir)
print(f"{header_check['checked']} files checked, {header_check['n_problems']} problem(s)")
for problem in header_check["problems"]:
    print("  -", problem)

# %% [markdown]
# ## Tiles per bucket and split
# The split is stratified by cloud-cover bucket, so every bucket appears in train, val and test in
# the same 80/10/10 proportion.

# %%
stats = source.statistics(root, manifest=manifest_dir, max_tiles_per_split=source.statistics_tiles)
counts = pd.DataFrame(stats["counts"]).loc[list(BUCKETS)]
counts.loc["total"] = counts.sum()
display(counts)
pd.Series(stats["mean_cloud_fraction"], name="mean cloud fraction of the mask")

# %% [markdown]
# ## Class histogram
# Land-cover codes with the names and colours of the dataset's legend (`source.legend(root)`):
# on the twin its own classes (road, water, built-up, cropland, bare soil, grassland, forest:
# `legend_synthetic.json`); on LuojiaSET-OSFCR codes 0–6 (`legend.json`; the real names are not
# published); on SEN12MS-CR the 10 simplified-IGBP classes (`legend_igbp_simplified.json`). Any
# other code is ignored (255) by the loader. On the real data the histogram shows which codes are
# actually present.

# %%
legend = source.legend(root)  # the class names and colours of this dataset
figure = plot_class_histogram(stats["class_histogram"], legend=legend)
save_figure(figure, figures_dir / "00_get_data_class_histogram.png")
figure

# %% [markdown]
# ## One test tile per bucket
# Cloudy input, SAR false colour (VV, VH, VV−VH), clear target (both optical images on the target's
# stretch), land cover and cloud mask, as the dataset class (`LuojiaSETOSFCR` or `SEN12MSCR`)
# delivers them.

# %%
test_set = source.dataset(root, split="test", manifest=manifest_dir)
for bucket in BUCKETS:
    if bucket in test_set.buckets:
        figure = test_set.plot(test_set[test_set.buckets.index(bucket)])
        save_figure(figure, figures_dir / f"00_get_data_sample_{bucket.replace('%', 'pc')}.png")
        display(figure)

# %% [markdown]
# ## How close is the twin to real data? (`SOURCE = "synthetic"`)
# Every number of the main job comes from the twin, so the twin is measured against real samples:
# two SEN12MS-CR triplets that ship with tdpcr (CC-BY 4.0) and statistics derived from the public
# LuojiaSET-OSFCR samples (their files are not redistributable). Five comparisons, each with a
# distance (lower is better) and a figure: reflectance histograms per band, spectra per land-cover
# class, Sentinel-1 dB histograms, radially averaged power spectra (texture) and the cloud cover per
# bucket. The table sets today's twin beside the uncalibrated one (twin 1.x); the full report is
# `reports/twin_fidelity.md`, the method and its limits are in `docs/twin.md`.

# %%
fidelity = None
twin = read_synthetic_info(root) or {}
if SOURCE == "synthetic":
    measured = measure_fidelity(root, max_tiles=100)
    fidelity_figures = plot_fidelity(
        measured["twin"],
        measured["real"],
        measured["distances"],
        class_names=dict(zip(map(str, legend.codes), legend.names, strict=True)),
    )
    figure_links = {}
    for name, figure in fidelity_figures.items():
        path = figures_dir / f"00_get_data_fidelity_{name}.png"
        save_figure(figure, path)
        figure_links[name] = f"figures/{path.name}"
        display(figure)
    before = load_before()
    fidelity_report = write_fidelity_report(
        reports_dir / "twin_fidelity.md", measured["distances"], figure_links, before
    )
    fidelity = jsonable(
        {
            "twin_version": twin.get("twin_version"),
            "distances": measured["distances"],
            "before_calibration": before["distances"],
            "report": str(fidelity_report),
        }
    )
    display(
        pd.DataFrame(
            {"before calibration": summary_row(before["distances"]), "now": summary_row(measured["distances"])}
        ).round(4)
    )

# %% [markdown]
# ## Record the metrics
# Read speed is measured on the training split (single process); later notebooks compare it with
# the training throughput.

# %%
train_set = source.dataset(root, split="train", manifest=manifest_dir)
metrics = {
    "source": SOURCE,
    "data_root": str(root),
    "manifest_dir": str(manifest_dir),
    "manifest_hash": stats["manifest_hash"],
    "n_samples": stats["n_samples"],
    "tile_size": int(train_set[0]["optical"].shape[-1]),
    "counts": stats["counts"],
    "class_histogram": stats["class_histogram"],
    "class_fraction": stats["class_fraction"],
    "mean_cloud_fraction": stats["mean_cloud_fraction"],
    "header_check": {"checked": header_check["checked"], "n_problems": header_check["n_problems"]},
    "read_ms_per_sample": measure_read_speed(train_set, n=32),
    "class_names": list(legend.names),
    "generation_seconds": facts["generation_seconds"],
    "twin_version": twin.get("twin_version"),
    "fidelity": fidelity,
}
record.write(metrics)
{key: metrics[key] for key in ("n_samples", "tile_size", "read_ms_per_sample", "manifest_hash")}

# %% [markdown]
# ## Summary
# The dataset folder (twin or real) is ready: its split manifest lists every tile of train, val and
# test with a sha256 per file, the headers are verified, and the counts, class histogram and sample
# tiles are in `reports/`. `LuojiaSETOSFCR(root, split)` now delivers normalised tensors
# (`optical`, `sar`, `target`, `mask`, `cloud_mask`).
#
# ## What's next
# [01 · Phase 1](01_train_phase1.ipynb) trains the cloud-removal path of TDP-CR on this data.
#
# ## Resources
# - The dataset as the code knows it (layout, headers, units, split): [`docs/dataset.md`](../docs/dataset.md).
# - Normalisation and the +1000 DN offset caveat: `tdpcr_lib/resources/normalisation.json`.
# - Split protocol: `<DATA_ROOT>/manifest/split_config.json` (written above) and
#   `data_manifests/luojiaset_osfcr/README.md`.
