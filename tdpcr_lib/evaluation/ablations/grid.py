"""The ablation grid: every variant and baseline trained on the same data, crop, budget and seeds.

Each (variant, seed) is one *run* with its own folder ``<runs>/ablations/<name>_seed<k>/``. The run
is keyed by a hash of everything that determines its result (variant spec, budget, seed, model
config, data manifest hash); a run whose ``results.json`` is present with the same hash is reused
on rerun instead of retrained (the hash includes a fingerprint of the model's parameter names and
shapes, so a change of architecture in the code forces a retrain), and a run interrupted
mid-training resumes from its ``last/``
checkpoint (the trainer's exact resume). A folder holding a run of a *different* config is
cleared before retraining, so a result never mixes two configs.

Design choices (the paper publishes no ablation protocol; these are ours, detailed in
``docs/decisions.md`` § Ablation protocol):

* **The main run's recipe for every run** (:mod:`tdpcr_lib.evaluation.ablations.runs`): the
  notebooks' training presets, validation every epoch, best checkpoint, plateau-based stopping;
  TDP-CR's seed 0 is the main run, and ``seg_decoder_only`` shares TDP-CR's phase 1.
* **Paired seeds**: seed ``k`` of every model has the same data order, augmentation stream and
  initialisation seed, and all are scored on the same test tiles.
* **Workers**: independent runs train in ``workers`` processes with ``threads_per_worker`` torch
  threads each (one by default).
* **Statistics** (:mod:`tdpcr_lib.evaluation.ablations.stats`): paired differences over seeds
  with Student-t 95 % intervals and verdicts.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tdpcr_lib import __version__
from tdpcr_lib.core.arrays import nan_if_none
from tdpcr_lib.core.io import atomic_write_json, atomic_write_text, sha256_file
from tdpcr_lib.core.processes import die_with_parent, stop_pool
from tdpcr_lib.datasets.sources import open_dataset
from tdpcr_lib.evaluation.ablations.report import headline_metrics
from tdpcr_lib.evaluation.ablations.runs import train_run
from tdpcr_lib.evaluation.ablations.spec import (
    ABLATIONS,
    REFERENCE,
    RESULTS_FILE,
    AblationBudget,
    AblationSpec,
    config_hash,
    model_config_for,
    run_config,
    run_dir_for,
)
from tdpcr_lib.evaluation.evaluate import evaluate
from tdpcr_lib.metrics.results import to_records
from tdpcr_lib.models.checkpoint import load_model
from tdpcr_lib.models.complexity import count_parameters, flops_per_tile
from tdpcr_lib.samplers import IndexSubset
from tdpcr_lib.training.plateau import describe_metric
from tdpcr_lib.transforms import centre_crop_sample


def read_completed(run_dir: str | Path, expected_hash: str) -> dict[str, Any] | None:
    """The run's results if it finished with this config hash and its checkpoint is unchanged.

    The weights' sha256 is compared too: TDP-CR's seed 0 scores the main run's checkpoint
    (``runs/phase2``), which a rerun of notebooks 01/02 may replace.
    """
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if results.get("config_hash") != expected_hash:
        return None
    checkpoint = Path(run_dir) / results.get("checkpoint", "")
    if not (checkpoint / "model.safetensors").is_file():
        return None
    recorded = results.get("checkpoint_sha256")
    if recorded is not None and recorded != sha256_file(checkpoint / "model.safetensors"):
        return None
    return results


# --------------------------------------------------------------------------------------------
# Training and evaluation of one run
# --------------------------------------------------------------------------------------------
def eval_indices(n: int, max_tiles: int | None) -> list[int]:
    """``max_tiles`` evenly spaced indices of ``range(n)`` (all when ``None`` or ≥ n).

    Splits are stored bucket by bucket, so even spacing keeps every bucket represented.
    """
    if max_tiles is None or max_tiles >= n:
        return list(range(n))
    if max_tiles < 1:
        raise ValueError(f"max_eval_tiles must be >= 1, got {max_tiles}")
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, max_tiles)})


def build_eval_dataset(
    data_root: str | Path, budget: AblationBudget, split: str = "test", max_tiles: int | None = None
) -> IndexSubset:
    """The evaluation set of a grid: the split, centre-cropped and thinned per the budget
    (``max_tiles``, when given, thins it further)."""
    transform = partial(centre_crop_sample, size=budget.eval_crop) if budget.eval_crop else None
    base = open_dataset(data_root, split=split, transforms=transform)
    limits = [n for n in (budget.max_eval_tiles, max_tiles) if n is not None]
    return IndexSubset(base, eval_indices(len(base), min(limits) if limits else None))


def run_plateau(phases: Sequence[Mapping[str, Any]]) -> bool | None:
    """A run is on its plateau when every validated phase is (``None``: nothing validated)."""
    flags = [p["plateau"]["reached"] for p in phases if p.get("plateau")]
    return all(flags) if flags else None


def run_ablation(
    spec: AblationSpec,
    budget: AblationBudget,
    seed: int,
    *,
    data_root: str | Path,
    runs_dir: str | Path,
    device: str = "auto",
    force: bool = False,
    main_runs: str | Path | None = None,
) -> dict[str, Any]:
    """Train and evaluate one (variant, seed), or reuse it when it already finished.

    Returns the run's results dict (as written to ``results.json``) with ``"reused"`` set to
    whether it was read back instead of trained. ``main_runs`` (``runs/``): TDP-CR's run of the
    main seed reuses ``runs/phase1``/``runs/phase2`` when they were trained with this recipe.
    """
    train_set = open_dataset(data_root, split="train")
    config = run_config(spec, budget, seed, getattr(train_set, "manifest_hash", None))
    digest = config_hash(config)
    run_dir = run_dir_for(runs_dir, spec.name, seed)
    if not force:
        done = read_completed(run_dir, digest)
        if done is not None:
            return {**done, "reused": True}
    marker = run_dir / "config_hash.txt"
    if run_dir.exists() and (force or not marker.is_file() or marker.read_text().strip() != digest):
        shutil.rmtree(run_dir)  # a different config lived here: never resume across configs
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, digest + "\n")
    atomic_write_json(run_dir / "run_config.json", config)
    val_set = open_dataset(data_root, split="val") if budget.validate else None
    if val_set is not None and len(val_set) == 0:
        val_set = None

    started = time.time()
    checkpoint, train_params, phases = train_run(
        spec,
        budget,
        seed,
        run_dir,
        train_set,
        val_set,
        device,
        main_runs=Path(main_runs) if main_runs is not None else None,
    )
    train_seconds = time.time() - started
    started = time.time()
    equal = model_config_for(spec, budget).arch in budget.equal_compute
    tiles = budget.equal_compute_eval_tiles if equal else None
    evaluation = evaluate(
        checkpoint,
        build_eval_dataset(data_root, budget, max_tiles=tiles),
        device=device,
        batch_size=budget.eval_batch_size,
        tile=None,
        progress=False,
        model_name=spec.name,
        seed=int(seed),
    )
    eval_seconds = time.time() - started
    model, _ = load_model(checkpoint, device="cpu")
    counts = count_parameters(model)
    with torch.no_grad():
        flops = flops_per_tile(model, size=256)
    results = {
        "name": spec.name,
        "label": spec.label,
        "seed": int(seed),
        "config_hash": digest,
        "config": config,
        "checkpoint": os.path.relpath(checkpoint, run_dir),
        "checkpoint_sha256": sha256_file(Path(checkpoint) / "model.safetensors"),
        "metrics": to_records(evaluation.frame),
        "headline": headline_metrics(evaluation.frame),
        "complexity": {
            "params": int(counts["total"]),
            "trainable_last_phase": int(train_params.get("trainable", counts["total"])),
            "flops_256": int(flops),
        },
        "phases": phases,
        "steps": sum(int(p["steps"]) for p in phases),
        "train_flops": int(phases[-1]["train_flops"]),
        "plateau": run_plateau(phases),
        "n_eval_images": evaluation.n_images,
        "torch_threads": torch.get_num_threads(),
        "train_seconds": round(train_seconds, 2),
        "eval_seconds": round(eval_seconds, 2),
        "tdpcr_version": __version__,
    }
    atomic_write_json(run_dir / RESULTS_FILE, results)
    return {**json.loads((run_dir / RESULTS_FILE).read_text()), "reused": False}


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def fit_workers(workers: int, threads_per_worker: int, cores: int | None = None) -> int:
    """The number of grid workers whose torch threads fit the cores (at least 1).

    Oversubscribing is far worse than idle cores: 2 workers x 2 threads on 2 cores trained
    ~6x slower than 2 x 1 (measured: 200 steps of one run in ~10 min instead of a whole
    450-step run in 132 s), because the threads of each worker spin while waiting for a core.
    """
    cores = usable_cores() if cores is None else cores
    workers, threads = max(1, int(workers)), max(1, int(threads_per_worker))
    return workers if workers * threads <= cores else max(1, cores // threads)


def _init_worker(threads: int, parent_pid: int) -> None:
    die_with_parent(parent_pid)  # a killed notebook or `tdpcr reproduce` leaves no training behind
    torch.set_num_threads(threads)


def run_grid(
    data_root: str | Path,
    runs_dir: str | Path,
    seeds: Sequence[int],
    budget: AblationBudget,
    *,
    names: Sequence[str] | None = None,
    specs: Mapping[str, AblationSpec] | None = None,
    device: str = "auto",
    force: bool = False,
    log: Callable[[str], None] | None = print,
    workers: int = 1,
    threads_per_worker: int = 1,
    main_runs: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run (or reuse) every (variant, seed) of the grid; returns their results in grid order.

    ``workers > 1`` trains independent runs in that many processes with ``threads_per_worker``
    torch threads each (a run's result does not depend on which worker trains it; its thread
    count is recorded).
    Runs that share TDP-CR's phase 1 start after the TDP-CR run of their seed.
    """
    specs = dict(specs or ABLATIONS)
    names = list(names) if names is not None else list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise KeyError(f"unknown ablation(s) {unknown}; choose from {list(specs)}")
    jobs = [(name, seed) for seed in seeds for name in names]
    after = {
        (n, s): (REFERENCE, s)
        for n, s in jobs
        if n != REFERENCE
        and (REFERENCE, s) in jobs
        and specs[n].schedule == "two_phase"
        and specs[n].trainable != specs[REFERENCE].trainable
        and dict(specs[n].model) == dict(specs[REFERENCE].model)
    }
    kwargs = {"data_root": data_root, "runs_dir": runs_dir, "device": device, "force": force, "main_runs": main_runs}
    done: dict[tuple[str, int], dict[str, Any]] = {}

    def report(job: tuple[str, int], result: dict[str, Any], _waited: float) -> None:
        done[job] = result
        if log is not None:
            spent = float(result.get("train_seconds", 0)) + float(result.get("eval_seconds", 0))
            how = "reused" if result["reused"] else f"trained + evaluated in {spent:.0f} s"
            # per phase, worded by the same function as results.json's plateau records
            plateau = (
                "; ".join(f"{p['phase']} {describe_metric(p.get('plateau'))}" for p in result.get("phases", []))
                or "not validated"
            )
            log(
                f"{job[0]} seed {job[1]}: {how}, {result.get('steps')} steps ({plateau}); PSNR "
                f"{nan_if_none(result['headline'].get('psnr')):.2f} dB, mIoU "
                f"{100 * nan_if_none(result['headline'].get('miou')):.1f}"
            )

    if device == "cpu" or not str(device).startswith("cuda"):
        fitted = fit_workers(workers, threads_per_worker)
        if fitted != workers and log is not None:
            log(
                f"{workers} workers x {threads_per_worker} threads exceed the {usable_cores()} CPU cores: "
                f"using {fitted} worker(s)"
            )
        workers = fitted
    if workers <= 1:
        for job in jobs:
            started = time.time()
            report(job, run_ablation(specs[job[0]], budget, job[1], **kwargs), time.time() - started)
        return [done[job] for job in jobs]
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(max(1, int(threads_per_worker)), os.getpid())
    )
    try:
        pending: dict[Any, tuple[tuple[str, int], float]] = {}

        def submit(job: tuple[str, int]) -> None:
            future = pool.submit(run_ablation, specs[job[0]], budget, job[1], **kwargs)
            pending[future] = (job, time.time())

        # the dearest runs first keeps both workers busy to the end
        for job in sorted((j for j in jobs if j not in after), key=lambda j: _cost_rank(specs[j[0]])):
            submit(job)
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                job, started = pending.pop(future)
                report(job, future.result(), time.time() - started)
                for waiting, needed in after.items():
                    if needed == job:
                        submit(waiting)
    except BaseException:  # an interrupt or a failed run: stop the other workers' runs now
        stop_pool(pool)
        raise
    pool.shutdown()
    return [done[job] for job in jobs]


def _cost_rank(spec: AblationSpec) -> int:
    """Order of submission: two-phase and joint runs before the cheap phase-2-only ones."""
    return {"baseline": 1, "joint": 0, "two_phase": 0}[spec.schedule]
