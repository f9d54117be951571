"""``tdpcr data``: make the synthetic twin or the split manifest of a LuojiaSET-OSFCR folder.

Examples
--------
::

    tdpcr data synth                                          # → data/synthetic_luojiaset
    tdpcr data synth /tmp/twin --n-tiles 20 --size 32 --seed 1
    tdpcr data manifest /data/LuojiaSET-OSFCR                 # → /data/LuojiaSET-OSFCR/manifest/
    tdpcr data manifest /readonly/LuojiaSET-OSFCR --out manifests/luojiaset

Default folders are relative to the tdpcr home (:mod:`tdpcr_lib.core.paths`): the checkout, or
the current directory when tdpcr is installed from a wheel. ``synth`` needs the optional
``satellite-cloud-generator`` (``pip install --no-deps satellite-cloud-generator==0.4``).
"""

from __future__ import annotations

import argparse
import sys
import time

from tdpcr_lib.cli.errors import CliParser, check_int, check_output_folder, run_command
from tdpcr_lib.core.paths import DEFAULT_SYNTHETIC_ROOT
from tdpcr_lib.datasets.manifest import LOCAL_MANIFEST, write_manifest
from tdpcr_lib.datasets.synthetic.tiles import (
    DEFAULT_N_TILES,
    DEFAULT_TILE_SIZE,
    make_synthetic_luojiaset,
)


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="tdpcr data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)

    synth = sub.add_parser("synth", help="write a synthetic LuojiaSET-OSFCR twin (real layout)")
    synth.add_argument("root", nargs="?", default=str(DEFAULT_SYNTHETIC_ROOT),
                       help=f"output folder (default {DEFAULT_SYNTHETIC_ROOT})")
    synth.add_argument("--n-tiles", type=int, default=DEFAULT_N_TILES,
                       help=f"number of tiles, spread evenly over 5 buckets (default {DEFAULT_N_TILES})")
    synth.add_argument("--size", type=int, default=DEFAULT_TILE_SIZE,
                       help=f"tile side in pixels (default {DEFAULT_TILE_SIZE}; real tiles are 256)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace a twin made with other parameters (an interrupted "
                            "generation with the same parameters is resumed, with or without "
                            "this flag; a folder that is not a twin is never touched)")

    manifest = sub.add_parser("manifest", help="write train/val/test.csv + sha256 for a dataset "
                                                "(author's 80/10/10 protocol, seed 42)")
    manifest.add_argument("root", help="LuojiaSET-OSFCR folder (holding the five bucket folders)")
    manifest.add_argument("--out", default=None,
                          help=f"manifest folder (default ROOT/{LOCAL_MANIFEST}/, beside the data, "
                               "where LuojiaSETOSFCR(ROOT) looks first; give another folder for a "
                               "read-only dataset and pass it as manifest=DIR)")
    manifest.add_argument("--seed", type=int, default=42, help="split seed (default 42, author's)")
    manifest.add_argument("--no-checksums", action="store_true",
                          help="skip hashing every file (hashing the full dataset takes minutes)")
    manifest.add_argument("--workers", type=int, default=4, help="hashing threads (default 4)")
    return parser


def _data(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    if args.action == "synth":
        check_int("--n-tiles", args.n_tiles, 1)
        check_int("--size", args.size, 8)
        check_output_folder(args.root, "ROOT")
        root = make_synthetic_luojiaset(args.root, n_tiles=args.n_tiles, size=args.size,
                                        seed=args.seed, overwrite=args.overwrite)
        print(f"synthetic twin: {root} ({args.n_tiles} tiles of {args.size} px, seed "
              f"{args.seed}) in {time.perf_counter() - started:.1f} s; manifest in "
              f"{root / 'manifest'}")
    else:
        check_int("--workers", args.workers, 1)
        if args.out is not None:
            check_output_folder(args.out, "--out")
        out = write_manifest(args.root, out=args.out, seed=args.seed,
                             checksums=not args.no_checksums, workers=args.workers)
        print(f"split manifest: {out} (train.csv, val.csv, test.csv"
              f"{', checksums.sha256' if not args.no_checksums else ''}, split_config.json) "
              f"in {time.perf_counter() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tdpcr data``; returns a process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    action = next((a for a in argv if a in ("synth", "manifest")), "")
    return run_command(f"tdpcr data {action}".rstrip(), _data, argv)


if __name__ == "__main__":
    raise SystemExit(main())
