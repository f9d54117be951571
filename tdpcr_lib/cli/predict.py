"""``tdpcr predict``: apply a checkpoint to your own Sentinel-1/-2 GeoTIFFs.

Every numeric argument, the device and the output folder are checked before the checkpoint is
loaded or a pixel is read; failures are one line and an exit code (:mod:`tdpcr_lib.cli.errors`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tdpcr_lib.cli.errors import CliParser, UsageError, check_int, check_output_folder, run_command
from tdpcr_lib.core.engine_names import ENGINES
from tdpcr_lib.inference.offset import S2_OFFSET_CHOICES
from tdpcr_lib.inference.options import BLOCKSIZE_MULTIPLE, MAX_BLOCKSIZE, PRECISIONS, check_tiling

#: Smallest tile: the largest ``pad_multiple`` of the package's networks (DSen2-CR 16, TDP-CR 8),
#: so every tile holds at least one aligned block whatever the checkpoint.
MIN_TILE = 16


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="tdpcr predict",
        description="Apply a tdpcr checkpoint to your own Sentinel-2 (cloudy, 13-band L1C DN) "
        "and Sentinel-1 (VV, VH dB) GeoTIFFs; writes cloud_free.tif, land_cover.tif "
        "(and degradation_prompt.tif) on the Sentinel-2 grid as Cloud-Optimized "
        "GeoTIFFs.",
    )
    parser.add_argument("--s2", required=True, type=Path, help="cloudy Sentinel-2 GeoTIFF")
    parser.add_argument("--s1", required=True, type=Path, help="Sentinel-1 GeoTIFF (any grid)")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder, e.g. runs/phase2/best")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--tile", type=int, default=256, help=f"tile size in px, >= {MIN_TILE} (default 256)")
    parser.add_argument(
        "--overlap", type=int, default=None, help="tile overlap in px, 0 <= overlap < tile (default tile // 4)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="tiles per forward pass (default: 2 on CPU, 16 on CUDA)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--write-prompt", action="store_true", help="also write degradation_prompt.tif")
    parser.add_argument(
        "--blocksize",
        type=int,
        default=512,
        help=f"COG block size in px, a multiple of {BLOCKSIZE_MULTIPLE} up to {MAX_BLOCKSIZE} (default 512)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto", help="auto: bf16 autocast on CUDA, fp32 on the CPU (default)"
    )
    parser.add_argument(
        "--s2-offset",
        choices=S2_OFFSET_CHOICES,
        default="auto",
        help="radiometric offset of the Sentinel-2 DN: 1000 for processing "
        "baseline >= 04.00 (from 25 Jan 2022), 0 before; auto (default): "
        "the offset the file declares, else the checkpoint's training-data "
        "convention (said in one line)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="torch",
        help="auto: the fastest installed engine on a CPU (onnxruntime), torch on "
        "CUDA; default torch; see docs/engines.md",
    )
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse bad numbers, an unknown or absent device and an unusable ``--out`` up front.

    Raises
    ------
    UsageError
        Naming the option and the rule it breaks.
    tdpcr_lib.core.runtime.DeviceError
        ``--device`` is not a device of this machine (the message lists those there are).
    PermissionError
        ``--out`` cannot be created or written.
    """
    check_int("--tile", args.tile, MIN_TILE)
    try:
        check_tiling(args.tile, args.overlap)
    except ValueError:
        raise UsageError(
            f"--overlap must satisfy 0 <= overlap < tile (--tile {args.tile}), got {args.overlap}"
        ) from None
    check_int("--batch-size", args.batch_size, 1)
    check_int("--blocksize", args.blocksize, BLOCKSIZE_MULTIPLE, BLOCKSIZE_MULTIPLE, MAX_BLOCKSIZE)
    from tdpcr_lib.core.runtime import resolve_device  # torch: only once the arguments parsed

    resolve_device(args.device)
    check_output_folder(args.out, "--out")


def _predict(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    check_arguments(args)
    from tdpcr_lib.inference.scene import predict_scene  # torch and rasterio: only for a valid command

    paths = predict_scene(
        args.s2,
        args.s1,
        args.checkpoint,
        args.out,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        device=args.device,
        write_prompt=args.write_prompt,
        progress=not args.no_progress,
        blocksize=args.blocksize,
        precision=args.precision,
        s2_offset=args.s2_offset,
        engine=args.engine,
    )
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``tdpcr predict --s2 … --s1 … --checkpoint … --out …``; returns the exit status."""
    return run_command("tdpcr predict", _predict, argv)


if __name__ == "__main__":
    raise SystemExit(main())
