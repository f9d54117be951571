"""``tdpcr train`` / ``python -m tdpcr_lib.cli.train``: one training run from the command line.

Single process::

    tdpcr train --phase phase1 --data-root data/synthetic_luojiaset --out runs/phase1
    tdpcr train --phase phase2 --init-from runs/phase1/best --data-root ... --out runs/phase2

Several processes / GPUs / nodes (PyTorch's own launcher; the script reads ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` from the environment torchrun sets)::

    torchrun --nproc_per_node=4 -m tdpcr_lib.cli.train --phase phase1 --data-root ... --out ...
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 \\
        --nproc_per_node=8 -m tdpcr_lib.cli.train ...

The process group uses NCCL on GPUs and gloo on CPUs. ``--batch-size`` is the *global* batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tdpcr_lib.cli.errors import CliParser, UsageError, check_output_folder, run_command
from tdpcr_lib.core.locking import exclusive
from tdpcr_lib.training.phases import PHASES, TRAINABLE_SETS

if TYPE_CHECKING:
    from tdpcr_lib.models.config import ModelConfig
    from tdpcr_lib.training.config import TrainConfig

# torch, the configurations and the trainer are imported in the functions that use them, once the
# arguments parsed: `tdpcr train --help` and usage errors answer at once (docs/errors.md).


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="tdpcr train",
        description="Train TDP-CR (phase 1/2, joint) or a baseline.",
        epilog="Any TrainConfig field can be set with --set field=value (JSON values), any "
        "ModelConfig field with --model field=value. Under torchrun the run is "
        "distributed (DDP); --batch-size is the global batch.",
    )
    parser.add_argument("--phase", choices=PHASES, default="phase1")
    parser.add_argument("--data-root", required=True, help="LuojiaSET-OSFCR folder")
    parser.add_argument("--source", default=None, help="data source label (recorded only)")
    parser.add_argument("--out", required=True, help="run folder (last/, best/, logs)")
    parser.add_argument("--init-from", default=None, help="checkpoint to start from (phase 2: the phase-1 best)")
    parser.add_argument(
        "--preset",
        choices=("default", "smoke", "full"),
        default=None,
        help="start from a notebook preset (see training.preset_config)",
    )
    parser.add_argument("--arch", default=None, help="tdpcr | dsen2cr | multitask_unet")
    parser.add_argument("--small-model", action="store_true", help="use ModelConfig.small() sizes (tests, smoke runs)")
    parser.add_argument("--trainable", choices=tuple(TRAINABLE_SETS), default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--crop-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="any TrainConfig field")
    parser.add_argument("--model", action="append", default=[], metavar="FIELD=VALUE", help="any ModelConfig field")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="start afresh even if OUT/last holds a run (it is replaced); by "
        "default a compatible run is continued and an incompatible one is "
        "an error",
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _key_values(items: list[str], what: str) -> dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"{what} expects FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip().replace("-", "_")] = _parse_value(value)
    return out


def build_configs(args: argparse.Namespace) -> tuple[TrainConfig, ModelConfig | None]:
    """The TrainConfig and ModelConfig described by parsed CLI arguments.

    The model config is ``None`` (the default ``ModelConfig()``) unless ``--small-model``,
    ``--arch`` or ``--model`` say otherwise.
    """
    from tdpcr_lib.models.config import ModelConfig
    from tdpcr_lib.training.config import TrainConfig
    from tdpcr_lib.training.presets import preset_config

    overrides: dict[str, Any] = {}
    for name in (
        "trainable",
        "epochs",
        "max_steps",
        "batch_size",
        "crop_size",
        "lr",
        "seed",
        "checkpoint_every",
        "init_from",
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    overrides.update(_key_values(args.set, "--set"))
    if args.no_progress:
        overrides["progress"] = False
    if args.preset:
        config = preset_config(
            args.phase,
            smoke=args.preset == "smoke",
            full=args.preset == "full",
            seed=overrides.pop("seed", 0),
            init_from=overrides.pop("init_from", None),
            overrides=overrides,
        )
    else:
        config = TrainConfig.from_dict({"phase": args.phase, **overrides})
    model_overrides = _key_values(args.model, "--model")
    if args.arch:
        model_overrides["arch"] = args.arch
    if not (model_overrides or args.small_model):
        return config, None
    base = ModelConfig.small() if args.small_model else ModelConfig()
    # from_dict validates the --model fields (unknown names, bad values) with a clear message;
    # with_seg_decoder is re-resolved for the chosen arch unless given.
    model_config = ModelConfig.from_dict({**base.to_dict(), "with_seg_decoder": None, **model_overrides})
    return config, model_config


def init_distributed(device: str) -> tuple[bool, str]:
    """Initialise torch.distributed when launched by torchrun; returns (distributed, device)."""
    import torch
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or (dist.is_available() and dist.is_initialized()):
        return dist.is_available() and dist.is_initialized(), device
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    elif device == "auto":
        device = "cpu"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True, device


def _train(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from tdpcr_lib.core.runtime import resolve_device  # torch: only once the arguments parsed

    # Everything about the command line is checked before a process group, a dataset or a model
    # exists: config fields (types, ranges, NaN), the device and the run folder.
    try:
        config, model_config = build_configs(args)
    except ValueError as err:  # config validation (TrainConfig, ModelConfig, presets): exit 2
        raise UsageError(str(err)) from err
    if args.device != "auto":
        resolve_device(args.device)
    check_output_folder(args.out, "--out")
    # one training per folder: rank 0 (or the only process) holds the folder's lock
    rank = int(os.environ.get("RANK", "0"))
    folder_lock = exclusive(args.out) if rank == 0 else contextlib.nullcontext()
    with folder_lock:
        return _train_locked(args, config, model_config)


def _train_locked(args: argparse.Namespace, config: TrainConfig, model_config: ModelConfig) -> int:
    import torch.distributed as dist

    from tdpcr_lib.plot.curves import write_loss_curve
    from tdpcr_lib.training.run import train_on_folder

    distributed, device = init_distributed(args.device)
    try:
        result = train_on_folder(
            config,
            model_config,
            args.data_root,
            Path(args.out),
            device=device,
            resume=not args.no_resume,
            source=args.source,
            log_callbacks=[write_loss_curve],
        )
        if not distributed or dist.get_rank() == 0:
            print(json.dumps(result.summary(), indent=2, default=str))
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train, print a JSON summary (rank 0). Returns the exit code."""
    return run_command("tdpcr train", _train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
