"""``tdpcr evaluate``: evaluate a checkpoint on a dataset split."""

from __future__ import annotations

import argparse
import errno
import json
from pathlib import Path

from tdpcr_lib.cli.errors import CliParser, UsageError, check_int, check_output_folder, run_command
from tdpcr_lib.core.engine_names import ENGINES
from tdpcr_lib.core.overwrite import refuse_existing, write_target
from tdpcr_lib.metrics.protocol_specs import DEFAULT_PROTOCOL, PROTOCOLS


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="tdpcr evaluate", description="Evaluate a checkpoint on a LuojiaSET-OSFCR split; writes JSON + markdown."
    )
    parser.add_argument("checkpoint", help="checkpoint folder (e.g. runs/phase2/best)")
    parser.add_argument("--data-root", required=True, help="dataset folder")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--out",
        default=None,
        help="output prefix → PREFIX.json and PREFIX.md (default: "
        "<run>/eval_<checkpoint>_<split> beside the checkpoint folder)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing --out files PREFIX.json / PREFIX.md (the default "
        "prefix beside the checkpoint is tdpcr's own and is replaced)",
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--tile", default="auto", help="sliding-window tile: 'auto' (training crop), 'none', or px")
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--max-batches", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--protocol",
        action="append",
        choices=PROTOCOLS,
        default=None,
        metavar="NAME",
        help="also score the same predictions under a named protocol "
        f"({', '.join(PROTOCOLS)}; repeatable; docs/metrics.md); "
        f"the main tables are always '{DEFAULT_PROTOCOL}'",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="torch",
        help="auto: the fastest installed engine on a CPU (onnxruntime), torch "
        "on CUDA; default torch; see docs/engines.md",
    )
    return parser


def _parse_tile(text: str) -> int | str | None:
    if text == "auto":
        return "auto"
    if text.lower() == "none":
        return None
    try:
        tile = int(text)
    except ValueError:
        raise UsageError(f"--tile must be 'auto', 'none' or an int, got {text!r}") from None
    check_int("--tile", tile, 16)
    return tile


def _evaluate(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    # the work modules (torch, rasterio) load only once the arguments parsed: fast --help
    from tdpcr_lib.core.runtime import resolve_device
    from tdpcr_lib.datasets.sources import open_dataset
    from tdpcr_lib.evaluation.evaluate import evaluate
    from tdpcr_lib.models.checkpoint import resolve_checkpoint_dir

    tile = _parse_tile(args.tile)
    check_int("--batch-size", args.batch_size, 1)
    check_int("--overlap", args.overlap, 0)
    check_int("--max-batches", args.max_batches, 1)
    check_int("--num-workers", args.num_workers, 0)
    resolve_device(args.device)
    checkpoint = Path(args.checkpoint)
    if not checkpoint.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            "checkpoint folder does not exist; train one with "
            "`tdpcr train` (or notebooks 01_train_phase1/02_train_phase2)",
            str(checkpoint),
        )
    resolve_checkpoint_dir(checkpoint)  # not a checkpoint: fail before the dataset is opened
    # beside the checkpoint, not inside it (checkpoint folders are replaced as a whole)
    prefix = Path(args.out) if args.out else checkpoint.parent / f"eval_{checkpoint.name}_{args.split}"
    check_output_folder(prefix.parent, "--out")
    json_path = prefix.with_name(prefix.name + ".json")
    md_path = prefix.with_name(prefix.name + ".md")
    if args.out:  # a prefix the user named may be their files: never replaced without the flag
        refuse_existing([json_path, md_path], args.overwrite, what="evaluation")
    dataset = open_dataset(args.data_root, split=args.split)
    result = evaluate(
        args.checkpoint,
        dataset,
        device=args.device,
        batch_size=args.batch_size,
        tile=tile,
        overlap=args.overlap,
        max_batches=args.max_batches,
        num_workers=args.num_workers,
        progress=not args.no_progress,
        engine=args.engine,
        protocols=[DEFAULT_PROTOCOL, *(args.protocol or [])],
    )
    result.write(
        write_target(json_path), write_target(md_path), title=f"Evaluation of {args.checkpoint} ({args.split})"
    )
    print(
        json.dumps(
            {
                "json": str(json_path),
                "markdown": str(md_path),
                "summary": {"n_images": result.n_images},
                "protocols": result.meta["protocols"],
            },
            indent=2,
        )
    )
    print(result.to_markdown(title="Evaluation"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``tdpcr evaluate CHECKPOINT --data-root DIR [--split test] [--out PREFIX]``."""
    return run_command("tdpcr evaluate", _evaluate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
