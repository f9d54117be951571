"""``tdpcr predict``: apply a checkpoint to your own Sentinel-1/-2 GeoTIFFs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tdpcr_lib.inference.inputs import PredictionInputError
from tdpcr_lib.inference.scene import predict_scene
from tdpcr_lib.models.checkpoint import CheckpointError


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdpcr predict",
        description="Apply a tdpcr checkpoint to your own Sentinel-2 (cloudy, 13-band L1C DN) "
                    "and Sentinel-1 (VV, VH dB) GeoTIFFs; writes cloud_free.tif, land_cover.tif "
                    "(and degradation_prompt.tif) on the Sentinel-2 grid as Cloud-Optimized "
                    "GeoTIFFs.")
    parser.add_argument("--s2", required=True, type=Path, help="cloudy Sentinel-2 GeoTIFF")
    parser.add_argument("--s1", required=True, type=Path, help="Sentinel-1 GeoTIFF (any grid)")
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="checkpoint folder, e.g. runs/phase2/best")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--tile", type=int, default=256, help="tile size in px (default 256)")
    parser.add_argument("--overlap", type=int, default=None,
                        help="tile overlap in px (default tile // 4)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="tiles per forward pass (default: 2 on CPU, 16 on CUDA)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--write-prompt", action="store_true",
                        help="also write degradation_prompt.tif")
    parser.add_argument("--blocksize", type=int, default=512, help="COG block size (px)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``tdpcr predict --s2 … --s1 … --checkpoint … --out …``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        paths = predict_scene(args.s2, args.s1, args.checkpoint, args.out, tile=args.tile,
                              overlap=args.overlap, batch_size=args.batch_size,
                              device=args.device, write_prompt=args.write_prompt,
                              progress=not args.no_progress, blocksize=args.blocksize)
    except (FileNotFoundError, PredictionInputError, CheckpointError) as err:
        print(f"tdpcr predict: error: {err}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
