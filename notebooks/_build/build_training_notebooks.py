"""Generate notebooks 01-03 (training and evaluation) without outputs.

Run from the repository root:  ``python notebooks/_build/build_training_notebooks.py``.
The notebooks are thin: every code cell only imports and calls ``tdpcr_lib``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared cell helpers beside us
from nbcells import PREREQ_HEADER, code, md, notebook  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1]

PARAMETERS = '''\
DATA_ROOT = str(paths.DEFAULT_SYNTHETIC_ROOT)  # dataset folder: the synthetic twin or LuojiaSET-OSFCR
SOURCE = "synthetic"  # "synthetic" (generated if missing) or "luojiaset" (the real data)
RUNS_DIR = str(paths.RUNS_DIR)  # run folders and checkpoints
REPORTS_DIR = str(paths.REPORTS_DIR)  # metrics/, figures/ (and results.md) go here
SEED = 0
DEVICE = "auto"  # auto: CUDA if available, else CPU
SMOKE = False  # a few steps only: checks the pipeline
FULL = False  # the recipe's full budget (GPU)
'''

TRAIN_PARAMETERS = PARAMETERS + '''\
EPOCHS = None  # None: the preset of the mode (SMOKE, default or FULL)
MAX_STEPS = None  # stop after this many optimizer steps (None: no limit)
CONFIG = {}  # TrainConfig overrides and a "model" dict of ModelConfig overrides
'''

def phase1() -> nbformat.NotebookNode:
    return notebook([
        md("""
# 01 · Train TDP-CR, phase 1: cloud removal

## Overview
TDP-CR is trained in two phases. In **phase 1** the network learns *reconstruction only*: the
Prompt Generator, the SAR and optical encoders with their Prompt-Guided Fusion (PGF) blocks, the
shared decoder and the reconstruction head; the segmentation decoder does not exist yet. The loss is
the first author's cloud-removal recipe, `L_rec = 0.9·L1 + 0.1·(1 − SSIM)` over all 13 bands.

1. Load the training and validation splits.
2. Pick the run configuration (preset for CPU, `SMOKE` or `FULL`, plus `CONFIG` overrides).
3. Train, validating every epoch; the best epoch by validation PSNR is kept in `runs/phase1/best`.
4. Plot the training curves and record the metrics.
"""),
        md(PREREQ_HEADER + """\
| [00 · Get the data](00_get_data.ipynb) | Helpful | writes the synthetic twin; 01 also makes it if missing |
| Cloud-removal metrics (PSNR, SSIM, SAM) | Helpful | computed by `tdpcr_lib.metrics` |
| PyTorch training loops | Helpful | all of it lives in `tdpcr_lib.training` |

- **Time to learn**: 5 minutes to read; about 3 minutes to run on a 2-core CPU (default).
- **System requirements**: CPU is enough; a GPU is used automatically (bf16) when present.
"""),
        md("## Imports"),
        code("""
from pathlib import Path

from IPython.display import display

from tdpcr_lib import paths, training
from tdpcr_lib.reporting import RunRecord
from tdpcr_lib.viz import save_figure
"""),
        md("""
## Parameters
Papermill (and `tdpcr reproduce`) overrides these. Changing only `DATA_ROOT` and `SOURCE` runs
the same pipeline on the real LuojiaSET-OSFCR: its 256 px tiles are then trained on random crops
and validated with a sliding window.
"""),
        code(TRAIN_PARAMETERS, tags=["parameters"]),
        code("""
record = RunRecord("01_train_phase1", parameters={"DATA_ROOT": DATA_ROOT, "SOURCE": SOURCE,
                   "RUNS_DIR": RUNS_DIR, "SEED": SEED, "DEVICE": DEVICE, "SMOKE": SMOKE,
                   "FULL": FULL, "EPOCHS": EPOCHS, "MAX_STEPS": MAX_STEPS, "CONFIG": CONFIG},
                   seed=SEED, device=DEVICE, metrics_dir=Path(REPORTS_DIR) / "metrics")
figures_dir = Path(REPORTS_DIR) / "figures"
run_dir = Path(RUNS_DIR) / "phase1"
"""),
        md("""
## Data
The splits come from the dataset's manifest (the first author's 80/10/10 protocol).
"""),
        code("""
data_root = training.ensure_dataset(DATA_ROOT, SOURCE)
train_config, model_config = training.notebook_configs(
    "phase1", smoke=SMOKE, full=FULL, epochs=EPOCHS, max_steps=MAX_STEPS, seed=SEED,
    config=CONFIG)
train_set, val_set = training.build_datasets(data_root, train_config)
print(train_set, val_set, sep="\\n")
"""),
        md("""
## Configuration
The training settings (`TrainConfig`) and the architecture (`ModelConfig`). The default preset
uses a slimmer TDP-CR so that both phases fit a few CPU minutes; `FULL` uses the full-width model.
"""),
        code("""
display(train_config.to_dict())
display(model_config)
"""),
        md("""
## Train
`training.train` resumes `runs/phase1/last` when it holds a compatible, unfinished run (and does
not retrain a finished one); otherwise it starts afresh. The progress bar shows the live loss,
learning rate and throughput.
"""),
        code("""
result = training.train(train_config, data_root, run_dir, model_config=model_config,
                        device=DEVICE, source=SOURCE, datasets=(train_set, val_set))
result.history_frame()
"""),
        md("""
## Training curves
Loss per logged step (log scale) and, per epoch, the validation PSNR over all pixels and inside
clouds, next to the PSNR of the cloudy input itself: reconstruction must beat it.
"""),
        code("""
figure = training.plot_training_curves(run_dir)
save_figure(figure, figures_dir / "01_train_phase1_curves.png")
figure
"""),
        md("## Record the metrics"),
        code("""
summary = training.run_summary(result)
record.write(summary)
summary["validation"]
"""),
        md("""
## Summary
Phase 1 trained the reconstruction path of TDP-CR; its best checkpoint (by validation PSNR) is in
`runs/phase1/best` with the full configuration, data-manifest hash and metrics in `config.json`.

## What's next
[02 · Phase 2](02_train_phase2.ipynb) attaches the segmentation decoder to this checkpoint and
trains it (with the prompts and PGF) for land-cover segmentation.
"""),
    ], "01_train_phase1")


def phase2() -> nbformat.NotebookNode:
    return notebook([
        md("""
# 02 · Train TDP-CR, phase 2: attach the segmentation decoder

## Overview
Phase 2 starts from the phase-1 checkpoint, **attaches the segmentation decoder** to four scales
of the shared decoder and trains with `CE (ignore 255) + λ·L_rec` (λ = 1). Only part of the
network is trainable; by default the segmentation decoder, the Prompt Generator and the PGF blocks
(`trainable="prompt_pgf_seg"`), so the segmentation task *drives* the degradation prompts while the
encoders, the shared decoder and the reconstruction head stay frozen. This is the paper's
"parameter-efficient" two-phase training; `CONFIG={"trainable": "seg_decoder_only"}` or `"all"`
are the variants.

1. Load `runs/phase1/best` and attach the decoder.
2. Count total and trainable parameters.
3. Train, keeping the best epoch by validation mIoU in `runs/phase2/best`.
"""),
        md(PREREQ_HEADER + """\
| [01 · Phase 1](01_train_phase1.ipynb) | Necessary | writes `runs/phase1/best` |
| Semantic segmentation (CE, mIoU) | Helpful | |

- **Time to learn**: 5 minutes to read; about 2–3 minutes to run on a 2-core CPU (default).
"""),
        md("## Imports"),
        code("""
from pathlib import Path

import pandas as pd
from IPython.display import display

from tdpcr_lib import paths, training
from tdpcr_lib.reporting import RunRecord
from tdpcr_lib.viz import save_figure
"""),
        md("## Parameters"),
        code(TRAIN_PARAMETERS, tags=["parameters"]),
        code("""
record = RunRecord("02_train_phase2", parameters={"DATA_ROOT": DATA_ROOT, "SOURCE": SOURCE,
                   "RUNS_DIR": RUNS_DIR, "SEED": SEED, "DEVICE": DEVICE, "SMOKE": SMOKE,
                   "FULL": FULL, "EPOCHS": EPOCHS, "MAX_STEPS": MAX_STEPS, "CONFIG": CONFIG},
                   seed=SEED, device=DEVICE, metrics_dir=Path(REPORTS_DIR) / "metrics")
figures_dir = Path(REPORTS_DIR) / "figures"
phase1_best = Path(RUNS_DIR) / "phase1" / "best"
run_dir = Path(RUNS_DIR) / "phase2"
"""),
        md("## Data and configuration"),
        code("""
data_root = training.ensure_dataset(DATA_ROOT, SOURCE)
train_config, _ = training.notebook_configs(
    "phase2", smoke=SMOKE, full=FULL, epochs=EPOCHS, max_steps=MAX_STEPS, seed=SEED,
    init_from=phase1_best, config=CONFIG)
train_set, val_set = training.build_datasets(data_root, train_config)
display(train_config.to_dict())
"""),
        md("""
## Trainable parameters
The parameter count of each module group, and how many of them phase 2 trains.
"""),
        code("""
report = training.trainable_parameter_table(train_config)
report
"""),
        md("## Train"),
        code("""
result = training.train(train_config, data_root, run_dir, device=DEVICE, source=SOURCE,
                        datasets=(train_set, val_set))
result.history_frame()
"""),
        md("""
## Training curves
CE + λ·L_rec per step; per epoch the validation mIoU (right axis) and PSNR, which should stay
close to phase 1's because the reconstruction term is kept.
"""),
        code("""
figure = training.plot_training_curves(run_dir)
save_figure(figure, figures_dir / "02_train_phase2_curves.png")
figure
"""),
        md("## Record the metrics"),
        code("""
summary = training.run_summary(result)
record.write(summary)
pd.Series(summary["validation"])
"""),
        md("""
## Summary
The phase-2 model (phase-1 network + segmentation decoder) is in `runs/phase2/best`. Only the
trainable fraction shown above was updated.

## What's next
[03 · Evaluate](03_evaluate.ipynb) scores it on the test split, per cloud-cover bucket and inside
and outside clouds, and writes `reports/results.md`.
"""),
    ], "02_train_phase2")


def evaluate() -> nbformat.NotebookNode:
    return notebook([
        md("""
# 03 · Evaluate TDP-CR on the test split

## Overview
The phase-2 checkpoint is scored on the **test** split with the project's metric definitions
(`tdpcr_lib.metrics`): PSNR, SSIM, SAM, MAE, RMSE of the 13-band reconstruction and OA, mean
class accuracy, FWIoU and mIoU of the land-cover map, for all pixels, cloudy pixels and clear
pixels, and per cloud-cover bucket. Two references we compute ourselves frame the numbers:

* the **cloudy input** scored as if it were a reconstruction (what doing nothing gives);
* the **majority-class baseline** (the most frequent training class predicted everywhere).

Tiles larger than the training crop are predicted with an overlapping sliding window.
The paper's own claims are listed separately in `reports/results.md`, never mixed with ours.
"""),
        md(PREREQ_HEADER + """\
| [02 · Phase 2](02_train_phase2.ipynb) | Necessary | writes `runs/phase2/best` |
| Metric definitions | Helpful | `docs/design.md` |

- **Time to learn**: 5 minutes; about 1 minute to run on a 2-core CPU (default).
"""),
        md("## Imports"),
        code("""
from pathlib import Path

from tdpcr_lib import evaluation, paths, training, viz
from tdpcr_lib.checkpoint import load_model
from tdpcr_lib.data import LuojiaSETOSFCR
from tdpcr_lib.reporting import RunRecord
"""),
        md("## Parameters"),
        code(PARAMETERS + 'CHECKPOINT = None  # None: RUNS_DIR/phase2/best\n'
              'BATCH_SIZE = 8\n', tags=["parameters"]),
        code("""
record = RunRecord("03_evaluate", parameters={"DATA_ROOT": DATA_ROOT, "SOURCE": SOURCE,
                   "RUNS_DIR": RUNS_DIR, "SEED": SEED, "DEVICE": DEVICE, "SMOKE": SMOKE,
                   "FULL": FULL, "CHECKPOINT": CHECKPOINT, "BATCH_SIZE": BATCH_SIZE},
                   seed=SEED, device=DEVICE, metrics_dir=Path(REPORTS_DIR) / "metrics")
figures_dir = Path(REPORTS_DIR) / "figures"
checkpoint = Path(CHECKPOINT) if CHECKPOINT else Path(RUNS_DIR) / "phase2" / "best"
"""),
        md("## Data"),
        code("""
data_root = training.ensure_dataset(DATA_ROOT, SOURCE)
test_set = LuojiaSETOSFCR(data_root, split="test")
train_set = LuojiaSETOSFCR(data_root, split="train")
test_set
"""),
        md("""
## Evaluate
`max_batches` limits a `SMOKE` run to a couple of batches.
"""),
        code("""
result = evaluation.evaluate(checkpoint, test_set, device=DEVICE, batch_size=BATCH_SIZE,
                             max_batches=2 if SMOKE else None)
result.tables["summary"]
"""),
        md("""
### Reconstruction and segmentation tables
One row per subset: all pixels, cloudy pixels, clear pixels, then each cloud-cover bucket.
"""),
        code("""
result.tables["cr"]
"""),
        code("""
result.tables["seg"]
"""),
        md("""
## Majority-class baseline
Predicting the most frequent training class everywhere; a segmentation model must beat it.
"""),
        code("""
majority = evaluation.majority_class_baseline(train_set, test_set,
                                              max_batches=2 if SMOKE else None)
evaluation.majority_table(majority)
"""),
        md("""
## Per-bucket figures
Reconstruction PSNR (ours vs the cloudy input) and mIoU (ours vs the majority class) against cloud
cover.
"""),
        code("""
figure = viz.plot_bucket_metrics(evaluation.bucket_curves(result, majority),
                                 title="Test split, per cloud-cover bucket")
viz.save_figure(figure, figures_dir / "03_evaluate_buckets.png")
figure
"""),
        md("""
## An example tile
The cloudiest test tile among the first batch: input, target, our reconstruction and error,
predicted land cover and the PGF prompt maps.
"""),
        code("""
model, _ = load_model(checkpoint, device="cpu")
index = evaluation.cloudiest_index(test_set, limit=8)
sample = test_set[index]
outputs = viz.predict_outputs({"TDP-CR": model}, sample)
figure = viz.plot_comparison(sample, outputs)
viz.save_figure(figure, figures_dir / "03_evaluate_example.png")
figure
"""),
        md("""
## Results page and metrics record
`reports/results.md` holds our numbers per bucket and for cloudy/clear pixels, and — in a separate
table — the paper's claims for reference.
"""),
        code("""
results_path = evaluation.write_results(result, majority, Path(REPORTS_DIR) / "results.md",
                                        checkpoint=checkpoint)
headline = evaluation.headline_metrics(result, majority)
record.write({**headline, "evaluation": result.metrics, "majority": majority},
             meta=result.meta)
headline
"""),
        md("""
## Summary
The reconstruction is compared with the cloudy input inside clouds (`psnr_gain_cloudy > 0` means
it removes clouds rather than copying them) and the segmentation with the majority class
(`miou_gain_over_majority > 0`).

## What's next
The following notebooks run the ablations and baselines behind the paper's claims, compare models
tile by tile, and apply a checkpoint to your own GeoTIFFs.
"""),
    ], "03_evaluate")


def main() -> None:
    for name, build in (("01_train_phase1", phase1), ("02_train_phase2", phase2),
                        ("03_evaluate", evaluate)):
        path = NOTEBOOKS / f"{name}.ipynb"
        nb = build()
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
