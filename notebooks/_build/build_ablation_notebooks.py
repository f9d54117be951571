"""Generate notebooks/04_ablations.ipynb and notebooks/05_compare_visually.ipynb (without outputs).

Run from the repository root:  ``python notebooks/_build/build_ablation_notebooks.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared cell helpers beside us
from nbcells import PREREQ_HEADER, code, md, notebook  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parent.parent


ABLATIONS_NB = [
    md("""
# 04 · Ablations and baseline comparison

## Overview
The paper makes two quantitative claims: TDP-CR beats a *heavy* cloud-removal baseline by
**+0.18 dB PSNR with 15 % of its parameters**, and beats *multi-task competitors* by **+1.4 mIoU**.
It also motivates two design choices: prompt-guided fusion (PGF) and two-phase training. This
notebook trains every variant on **the same data, crop, step budget and seeds** and lays the
results side by side:

| row | what changes |
|---|---|
| TDP-CR (full) | PGF with the degradation prompt; phase 1 reconstruction, phase 2 prompt + PGF + seg decoder |
| PGF without prompt | the gate sees SAR and optical features only |
| concat fusion | SAR features concatenated, no gate |
| optical only | no SAR at all |
| single-phase joint | everything trained at once from scratch (CE + L_rec) |
| phase 2: seg decoder only | phase 2 freezes the prompt and PGF too |
| DSen2-CR | the heavy SAR-optical CR baseline (≈ 19 M parameters) |
| multi-task competitor | CloudSeg-style U-Net with segmentation + auxiliary CR |

Every run has its own folder `runs/ablations/<name>_seed<k>/`; a finished run with the same
configuration is **reused** when the notebook is rerun, and an interrupted one resumes, so a long
(full-mode) grid can be continued instead of redone.

**What the default budget can and cannot show.** By default (a 2-core CPU, about 3 minutes for the
whole grid) each model gets only 60 optimizer steps (40 + 20 for two-phase runs) of batch 2 on
32² crops, one seed, and is scored on eight test tiles. That is enough to check that the machinery
works end to end and to see gross effects — every model should already beat the cloudy input's
PSNR, and DSen2-CR, whose long skip starts it at the input, tends to lead at this budget — but
**not** to rank close variants or to confirm or refute a 0.18 dB difference: with one seed the
noise is unknown and the table says so. The segmentation heads only start learning in 20 phase-2
steps (mIoU not far above chance), so the mIoU columns and the ΔmIoU claim row say little at this
budget.
Use `FULL=True` on a GPU (≥ 3 seeds, thousands of steps) for a meaningful comparison. Disk: the
default grid's checkpoints take about 0.7 GB (DSen2-CR alone ~0.3 GB with its optimizer state).
"""),
    md("""
## Prerequisites

| needs | from |
|---|---|
| the dataset (synthetic twin by default) | `00_get_data.ipynb` |
| `tdpcr_lib` installed (`make setup`) | README |
| time | ≈ 3 min (default, 2-core CPU) · < 1 min (`SMOKE`) · hours on a GPU (`FULL`) |
"""),
    md("## Imports"),
    code("""
from pathlib import Path

from IPython.display import Markdown, display

from tdpcr_lib import ablations, paths, viz
from tdpcr_lib.reporting import RunRecord
from tdpcr_lib.runtime import resolve_device
"""),
    md("""
## Parameters
`SEEDS` (a list) wins over `N_SEEDS`; by default 1 seed (3 in `FULL` mode). `STEPS` overrides the
total optimizer steps per model (split 2:1 between phase 1 and phase 2). `ABLATIONS` restricts the
grid to some rows (`None` = all). `MODEL_OVERRIDES` changes model sizes per architecture (for a
quick look only: the faithful sizes are the default, and the overrides are part of each run's
configuration hash and of the recorded budget). `FORCE=True` retrains finished runs.
"""),
    code("""
DATA_ROOT = None          # None → the synthetic twin written by 00_get_data
SOURCE = "synthetic"      # "synthetic" | "luojiaset" (recorded; the folder layout is the same)
RUNS_DIR = None           # None → runs/
REPORTS_DIR = None        # None → reports/
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
""", tags=["parameters"]),
    code("""
data_root = Path(DATA_ROOT) if DATA_ROOT else paths.DEFAULT_SYNTHETIC_ROOT
runs_dir = Path(RUNS_DIR) if RUNS_DIR else paths.RUNS_DIR
reports_dir = Path(REPORTS_DIR) if REPORTS_DIR else paths.REPORTS_DIR
figures_dir = reports_dir / "figures"
seeds = list(SEEDS) if SEEDS else ablations.default_seeds(SEED, smoke=SMOKE, full=FULL, n_seeds=N_SEEDS)
budget = ablations.preset_budget(smoke=SMOKE, full=FULL, steps=STEPS)
budget.model_overrides = dict(MODEL_OVERRIDES or {})
device = str(resolve_device(DEVICE))
record = RunRecord("04_ablations", parameters={
    "DATA_ROOT": str(data_root), "SOURCE": SOURCE, "RUNS_DIR": str(runs_dir), "SEEDS": seeds,
    "DEVICE": device, "SMOKE": SMOKE, "FULL": FULL, "STEPS": STEPS, "ABLATIONS": ABLATIONS,
    "budget": budget.to_dict()}, seed=SEED, device=device, metrics_dir=reports_dir / "metrics")
print(f"data: {data_root}\\nseeds: {seeds}\\ndevice: {device}\\nbudget: {budget}")
"""),
    md("""
## Train (or reuse) every run
Each line says whether the run was trained now or reused from an earlier execution with the same
configuration.
"""),
    code("""
results = ablations.run_grid(data_root, runs_dir, seeds, budget, names=ABLATIONS, device=device,
                             force=FORCE)
aggregated = ablations.aggregate(results)
n_reused = sum(r["reused"] for r in results)
print(f"{len(results)} runs, {n_reused} reused")
"""),
    md("""
## Results per model
Mean ± std over seeds (the std appears only with ≥ 2 seeds). *cloudy* = pixels inside the cloud
mask, *clear* = outside. Parameters and FLOPs are for a 256² tile; *phase-2 trainable* counts the
parameters trained in the run's last phase (all of them for single-phase runs) — the
"parameter-efficient" claim.
"""),
    code("""
table = ablations.ablation_table(aggregated)
table
"""),
    md("""
## The paper's claims, recomputed from our runs
The *ours* columns are computed only from the runs above; the paper's numbers sit in the last
column as a reference and are never used in a computation.
"""),
    code("""
claims = ablations.paper_claims_table(aggregated)
claims
"""),
    md("""
## Which differences are within noise
A difference is *within noise* when it is smaller than the combined seed standard deviation of the
two rows (`sqrt(std_a² + std_b²)`); a Welch t-test p-value is given as well. With a single seed
(the default) no difference can be told from noise — every verdict says *unknown (1 seed)*.
"""),
    code("""
for line in ablations.noise_statements(aggregated):
    print("•", line)
"""),
    md("""
## Metrics by cloud cover
PSNR and mIoU per cloud-cover bucket for each model (error bars: std over seeds). Models without a
segmentation head (DSen2-CR) appear only in the PSNR panel. In the default mode each bucket holds
one or two tiles of the evaluation subset, so the curves are indicative at best.
"""),
    code("""
fig = ablations.plot_per_bucket(aggregated)
bucket_png = viz.save_figure(fig, figures_dir / "04_ablations_per_bucket.png")
fig
"""),
    md("## Write the report"),
    code("""
report = ablations.write_report(
    aggregated, reports_dir / "ablations.md", budget=budget, seeds=seeds,
    figures=[str(bucket_png.relative_to(reports_dir))],
    notes="Budget mode: " + ("smoke (plumbing check only)" if SMOKE else "full" if FULL
                             else "default (tiny CPU budget: indicative only, see notebook 04)"))
record.write({**ablations.results_json(aggregated), "n_runs": len(results), "n_reused": n_reused,
              "budget": budget.to_dict(), "figures": [str(bucket_png)]})
display(Markdown(report.read_text()))
"""),
    md("""
## Summary
* Every variant and both baselines were trained with the same budget and seeds; finished runs are
  reused on rerun (see the *reused* count above).
* The table and `reports/ablations.md` give our numbers; the two claim rows compare TDP-CR with
  DSen2-CR (PSNR, parameter ratio) and with the multi-task competitor (mIoU), with the paper's
  values only as a reference column.
* With the default tiny budget and one seed these numbers are a smoke-level comparison; read the
  noise verdicts before reading a ranking into them.

## What's next
* `05_compare_visually.ipynb` puts these models side by side tile by tile (reconstructions, error
  maps, prompt maps, land cover) with zoom, to see *where* they differ.
* Rerun this notebook with `FULL=True` on a GPU (≥ 3 seeds) to make the comparison meaningful.
"""),
]

COMPARE_NB = [
    md("""
# 05 · Compare models visually

## Overview
Numbers average away *where* a model fails. The paper's motivation is that cloud-removal networks
over-smooth textures and boundaries; this notebook puts the models side by side on single test
tiles: SAR (VV, VH, VV−VH), the cloudy input, each model's reconstruction and its absolute-error
map, the target, the cloud mask, the prompt/gate map at each PGF level (where the model decided to
trust SAR), the predicted and true land cover, and the tile's metrics — with a zoom to inspect
texture and edges.

The same figures are written as PNGs to `reports/figures/` for a fixed list of tiles, so readers
without a running kernel (and CI) see them; the interactive viewer at the end needs a live kernel.
"""),
    md("""
## Prerequisites

| needs | from |
|---|---|
| the dataset (synthetic twin by default) | `00_get_data.ipynb` |
| at least one trained model: `runs/phase2/best` and/or finished ablation runs | `02_train_phase2.ipynb`, `04_ablations.ipynb` |
| time | well under a minute (default) |
"""),
    md("## Imports"),
    code("""
from pathlib import Path

from IPython.display import Image, display

from tdpcr_lib import ablations, paths, viz, widgets
from tdpcr_lib.data import LuojiaSETOSFCR
from tdpcr_lib.reporting import RunRecord
from tdpcr_lib.runtime import resolve_device
"""),
    md("""
## Parameters
`CHECKPOINTS` maps display names to checkpoint folders; `None` finds `runs/phase2/best` plus every
finished ablation run of seed `SEED`. `TILE_IDS` lists the tiles written as static PNGs (`None` =
the first test tile of each cloud-cover bucket). `SAMPLE_CROP` centre-crops tiles before the models
run (DSen2-CR needs ~2.5 TFLOP for a 256² tile — slow on a CPU); `None` shows whole tiles.
`ZOOM` also writes a centre zoom of each tile.
"""),
    code("""
DATA_ROOT = None          # None → the synthetic twin written by 00_get_data
SOURCE = "synthetic"
RUNS_DIR = None           # None → runs/
REPORTS_DIR = None        # None → reports/
SEED = 0
DEVICE = "auto"
SMOKE = False
FULL = False
CHECKPOINTS = None
TILE_IDS = None
SAMPLE_CROP = 64
ZOOM = 4
COMPOSITE = "true colour (B04/B03/B02)"
""", tags=["parameters"]),
    code("""
data_root = Path(DATA_ROOT) if DATA_ROOT else paths.DEFAULT_SYNTHETIC_ROOT
runs_dir = Path(RUNS_DIR) if RUNS_DIR else paths.RUNS_DIR
reports_dir = Path(REPORTS_DIR) if REPORTS_DIR else paths.REPORTS_DIR
device = str(resolve_device(DEVICE))
sample_crop = None if FULL else SAMPLE_CROP
checkpoints = dict(CHECKPOINTS) if CHECKPOINTS else ablations.discover_checkpoints(runs_dir, seed=SEED)
if not checkpoints:
    raise FileNotFoundError(f"no trained model under {runs_dir}: run 02_train_phase2 or 04_ablations first")
models = ablations.load_models(checkpoints, device=device)
test_set = LuojiaSETOSFCR(data_root, split="test")
tile_ids = list(TILE_IDS) if TILE_IDS else viz.default_tile_ids(test_set, per_bucket=1)
if SMOKE:
    tile_ids = tile_ids[:2]
record = RunRecord("05_compare_visually", parameters={
    "DATA_ROOT": str(data_root), "SOURCE": SOURCE, "RUNS_DIR": str(runs_dir), "DEVICE": device,
    "SMOKE": SMOKE, "FULL": FULL, "CHECKPOINTS": {k: str(v) for k, v in checkpoints.items()},
    "TILE_IDS": tile_ids, "SAMPLE_CROP": sample_crop, "ZOOM": ZOOM, "COMPOSITE": COMPOSITE},
    seed=SEED, device=device, metrics_dir=reports_dir / "metrics")
print("models:", *checkpoints, sep="\\n  ")
print("tiles:", tile_ids)
"""),
    md("""
## Static comparison figures
One figure per listed tile (and a centre zoom), written to `reports/figures/05_compare_<tile>.png`.
All optical panels share the target's 2–98 % stretch, so clouds saturate to white and colour
differences between panels are real; the error maps share one colour scale across models.
"""),
    code("""
written = viz.save_tile_comparisons(test_set, models, tile_ids, reports_dir / "figures",
                                    composite=COMPOSITE, zoom=ZOOM, device=device,
                                    sample_crop=sample_crop)
for item in written.values():
    for png in item["png"]:
        display(Image(filename=png))
"""),
    md("""
## What the prompt attends to
The prompt/gate maps of a PGF model beside the cloud mask. If the degradation prompt does its job,
high values should follow the clouds (where SAR is needed). With the default tiny training budget
this correspondence may be weak or absent — that is a finding about the budget, not a rendering
bug.
"""),
    code("""
prompt_models = [name for name in models if getattr(models[name].config, "fusion", "") == "pgf"
                 and models[name].config.arch == "tdpcr"]
if prompt_models:
    sample = viz.centre_crop_sample(test_set[viz.index_of_tile(test_set, tile_ids[-1])], sample_crop)
    outputs = viz.predict_outputs({prompt_models[0]: models[prompt_models[0]]}, sample, device=device)
    fig = viz.plot_prompt_maps(outputs[prompt_models[0]], sample, title=f"{prompt_models[0]} · tile {tile_ids[-1]}")
    viz.save_figure(fig, reports_dir / "figures" / "05_prompt_maps.png")
    display(fig)
else:
    print("no PGF model among the checkpoints")
"""),
    md("""
## Interactive viewer
Choose the cloud-cover bucket and tile, the band composite, which models to show, the zoom factor
and its centre. (Needs a live kernel; in an executed copy only the last rendering is visible.)
"""),
    code("""
viewer = widgets.build_viewer(test_set, models, device=device, sample_crop=sample_crop)
viewer.show()
"""),
    code("""
record.write({"tiles": {t: item["metrics"] for t, item in written.items()},
              "figures": [p for item in written.values() for p in item["png"]],
              "models": list(checkpoints), "viewer_renders": viewer.render_count})
"""),
    md("""
## Summary
* Static comparison PNGs for the listed tiles are in `reports/figures/05_compare_*.png`, with
  per-tile metrics recorded in `reports/metrics/05_compare_visually.json`.
* The viewer compares any test tile, composite and zoom across the trained models.

## What's next
* `06_predict_own_scene.ipynb` applies a trained model to your own Sentinel-1/-2 GeoTIFFs.
"""),
]


def main() -> None:
    for name, cells in (("04_ablations.ipynb", ABLATIONS_NB),
                        ("05_compare_visually.ipynb", COMPARE_NB)):
        path = NOTEBOOKS / name
        nbformat.write(notebook(cells, path.stem), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
