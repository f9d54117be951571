"""Distributed: 2-process DDP training throughput vs 1 process on the same machine.

Both runs are launched with PyTorch's own launcher (``python -m torch.distributed.run
--standalone --nproc_per_node=N -m benchmarks.distributed --worker``) and set up exactly as
``tdpcr train`` does under torchrun (:func:`tdpcr_lib.cli.train.init_distributed`: gloo on CPUs,
NCCL on GPUs; :class:`tdpcr_lib.training.trainer.Trainer` wraps the model in
``DistributedDataParallel`` and splits the *global* batch over the ranks). Each rank times
``Trainer.train_step`` on its share of a fixed random batch (the same samples for N = 1 and 2),
between barriers; global samples/s = global batch × steps / time of the slowest rank.

The model is TDP-CR with its segmentation decoder trained ``joint`` (all parameters), the
heaviest gradient all-reduce of our runs. The machine's cores are split evenly (``threads / N``
intra-op threads per process), so the comparison is at equal hardware. DDP runs on CUDA only
when there are at least two GPUs (two NCCL ranks cannot share one GPU); otherwise on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

from .children import ChildError, run_child, write_child_result
from .common import RandomTiles, Settings


def worker(settings: Settings, device_name: str, json_path: str) -> None:
    """One rank: DDP set-up as ``tdpcr train`` does it, timed train steps, rank 0 writes JSON."""
    import torch
    import torch.distributed as dist
    from torch.utils.data import default_collate

    from tdpcr_lib.cli.train import init_distributed
    from tdpcr_lib.models import build_model, named_configs
    from tdpcr_lib.training.config import TrainConfig
    from tdpcr_lib.training.trainer import Trainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed, device_name = init_distributed(device_name)
    rank = dist.get_rank() if distributed else 0
    config = TrainConfig(
        phase="joint", batch_size=settings.ddp_batch, crop_size=None, epochs=1, max_steps=10_000, progress=False
    )
    data = RandomTiles(settings.ddp_batch, settings.ddp_crop, seed=11)
    model = build_model(named_configs(small=settings.tiny)["tdpcr"])
    try:
        with tempfile.TemporaryDirectory(prefix=f"tdpcr-bench-ddp-{rank}-") as out_dir:
            trainer = Trainer(model, config, data, None, out_dir, device=device_name)
            trainer._set_train_mode()
            # This rank's share of the global batch: positions rank, rank+W, ... (as the sampler).
            local = default_collate([data[i] for i in range(rank, settings.ddp_batch, world)])
            device = trainer.device

            def sync():
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if distributed:
                    dist.barrier()

            for _ in range(settings.ddp_warmup):
                trainer.train_step(local)
            sync()
            started = time.perf_counter()
            for _ in range(settings.ddp_steps):
                trainer.train_step(local)
            sync()
            seconds = time.perf_counter() - started
            if distributed:  # the slowest rank sets the pace
                packed = torch.tensor([seconds], dtype=torch.float64)
                dist.all_reduce(packed, op=dist.ReduceOp.MAX)
                seconds = float(packed[0])
            if rank == 0:
                write_child_result(
                    json_path,
                    {
                        "processes": world,
                        "distributed": distributed,
                        "backend": dist.get_backend() if distributed else None,
                        "device": str(device),
                        "threads_per_process": torch.get_num_threads(),
                        "global_batch": settings.ddp_batch,
                        "local_batch": trainer.local_batch,
                        "crop": settings.ddp_crop,
                        "steps": settings.ddp_steps,
                        "seconds": seconds,
                        "samples_per_s": settings.ddp_batch * settings.ddp_steps / seconds,
                    },
                )
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


def ddp_device(settings: Settings) -> str:
    """CUDA with at least two GPUs, else the CPU (gloo)."""
    if settings.accelerator == "cuda":
        import torch

        if torch.cuda.device_count() >= 2:
            return "cuda"
    return "cpu"


def run(settings: Settings, log=print) -> dict[str, Any]:
    """1 and 2 processes under torchrun; throughput of each and their ratio."""
    device = ddp_device(settings)
    total_threads = settings.threads or os.cpu_count() or 1
    out: dict[str, Any] = {"device": device, "total_threads": total_threads, "runs": {}}
    for processes in (1, 2):
        log(f"[ddp] {processes} process(es) on {device} ...")
        try:
            # --json is appended by run_child and reaches the worker (after the module name).
            result = run_child(
                [
                    "-m",
                    "torch.distributed.run",
                    "--standalone",
                    f"--nproc_per_node={processes}",
                    "-m",
                    "benchmarks.distributed",
                    "--worker",
                    "--device",
                    device,
                    "--settings",
                    json.dumps(settings.to_dict()),
                ],
                timeout_s=settings.timeout_s,
                env={"OMP_NUM_THREADS": str(max(1, total_threads // processes))},
            )
            log(f"          {result['samples_per_s']:.3f} samples/s")
        except ChildError as err:
            result = {"error": str(err)}
            log("          ERROR " + str(err).splitlines()[-1][:200])
        out["runs"][str(processes)] = result
    one, two = (out["runs"].get(k, {}).get("samples_per_s") for k in ("1", "2"))
    out["speedup_2_vs_1"] = two / one if one and two else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="DDP benchmark worker (launched by torchrun from benchmarks.run_all).")
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    worker(Settings.from_dict(json.loads(args.settings)), args.device, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
