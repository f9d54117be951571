"""Does notebook 04's ``WORKERS=2`` (two processes, one torch thread each) beat one process with
two threads on this machine, for the CPU recipe's model?

    python -m benchmarks.ablation_workers            # 4 runs of 50 phase-1 steps each (~2 min quiet)
    python -m benchmarks.ablation_workers --steps 5  # plumbing check

The same independent TDP-CR phase-1 runs (the ablation protocol's recipe: 0.29 M ``default``
model, batch 8, 32² crops, no validation) are trained both ways, interleaved (A B B A) so that
machine noise hits both alike; it prints the wall time of each round and the median ratio
(> 1: the workers are faster).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.synthetic.tiles import make_synthetic_luojiaset
from tdpcr_lib.evaluation.ablations.runs import train_config
from tdpcr_lib.evaluation.ablations.spec import ABLATIONS, model_config_for, preset_budget
from tdpcr_lib.training import run as training_run


def train_one(data_root: str, out_dir: str, seed: int, steps: int, threads: int) -> float:
    """Train one phase-1 run with ``threads`` torch threads; returns its wall time."""
    torch.set_num_threads(threads)
    budget = preset_budget()
    config = train_config("phase1", steps, budget.lr_phase1, budget, seed)
    started = time.perf_counter()
    training_run.train(
        config,
        model_config_for(ABLATIONS["tdpcr_full"], budget),
        LuojiaSETOSFCR(data_root, split="train"),
        None,
        out_dir,
        device="cpu",
        resume=False,
    )
    return time.perf_counter() - started


def sequential(data_root: str, work: Path, runs: int, steps: int) -> float:
    started = time.perf_counter()
    for k in range(runs):
        train_one(data_root, str(work / f"seq{k}"), k, steps, threads=2)
    return time.perf_counter() - started


def workers(data_root: str, work: Path, runs: int, steps: int) -> float:
    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(
            pool.map(
                train_one,
                [data_root] * runs,
                [str(work / f"par{k}") for k in range(runs)],
                range(runs),
                [steps] * runs,
                [1] * runs,
            )
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_root = str(make_synthetic_luojiaset(work / "twin", n_tiles=60))
        times: dict[str, list[float]] = {"1 process x 2 threads": [], "2 workers x 1 thread": []}
        for order in (("seq", "par"), ("par", "seq")):
            for which in order:
                if which == "seq":
                    times["1 process x 2 threads"].append(sequential(data_root, work, args.runs, args.steps))
                else:
                    times["2 workers x 1 thread"].append(workers(data_root, work, args.runs, args.steps))
        for name, values in times.items():
            print(f"{name}: {', '.join(f'{v:.1f} s' for v in values)} for {args.runs} runs of {args.steps} steps")
        ratio = statistics.median(times["1 process x 2 threads"]) / statistics.median(times["2 workers x 1 thread"])
        print(f"speed-up of WORKERS=2 over one 2-thread process: {ratio:.2f}x")


if __name__ == "__main__":
    main()
