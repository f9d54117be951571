"""``tdpcr evaluate``: evaluate a checkpoint on a dataset split."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tdpcr_lib.datasets.luojiaset import LuojiaSETOSFCR
from tdpcr_lib.evaluation.evaluate import evaluate
from tdpcr_lib.models.checkpoint import CheckpointError


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdpcr evaluate",
        description="Evaluate a checkpoint on a LuojiaSET-OSFCR split; writes JSON + markdown.")
    parser.add_argument("checkpoint", help="checkpoint folder (e.g. runs/phase2/best)")
    parser.add_argument("--data-root", required=True, help="dataset folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", default=None,
                        help="output prefix → PREFIX.json and PREFIX.md (default: "
                             "<run>/eval_<checkpoint>_<split> beside the checkpoint folder)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--tile", default="auto",
                        help="sliding-window tile: 'auto' (training crop), 'none', or px")
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--max-batches", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``tdpcr evaluate CHECKPOINT --data-root DIR [--split test] [--out PREFIX]``."""
    args = _parser().parse_args(argv)

    tile: int | str | None
    if args.tile == "auto":
        tile = "auto"
    elif args.tile.lower() == "none":
        tile = None
    else:
        try:
            tile = int(args.tile)
        except ValueError:
            print(f"tdpcr evaluate: --tile must be 'auto', 'none' or an int, got {args.tile!r}",
                  file=sys.stderr)
            return 2
    try:
        dataset = LuojiaSETOSFCR(args.data_root, split=args.split)
        result = evaluate(args.checkpoint, dataset, device=args.device,
                          batch_size=args.batch_size, tile=tile, overlap=args.overlap,
                          max_batches=args.max_batches, num_workers=args.num_workers,
                          progress=not args.no_progress)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"tdpcr evaluate: {err}", file=sys.stderr)
        return 1
    checkpoint = Path(args.checkpoint)
    # beside the checkpoint, not inside it (checkpoint folders are replaced as a whole)
    prefix = Path(args.out) if args.out else checkpoint.parent / f"eval_{checkpoint.name}_{args.split}"
    json_path = prefix.with_name(prefix.name + ".json")
    md_path = prefix.with_name(prefix.name + ".md")
    result.write(json_path, md_path, title=f"Evaluation of {args.checkpoint} ({args.split})")
    print(json.dumps({"json": str(json_path), "markdown": str(md_path),
                      "summary": {"n_images": result.n_images}}, indent=2))
    print(result.to_markdown(title="Evaluation"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
