"""``tdpcr data``: make the synthetic twin, download SEN12MS-CR, or write a split manifest.

Examples
--------
::

    tdpcr data synth                                          # → data/synthetic_luojiaset
    tdpcr data synth /tmp/twin --n-tiles 20 --size 32 --seed 1
    tdpcr data manifest /data/LuojiaSET-OSFCR                 # → /data/LuojiaSET-OSFCR/manifest/
    tdpcr data manifest /readonly/LuojiaSET-OSFCR --out manifests/luojiaset
    tdpcr data download data/SEN12MS-CR                         # SEN12MS-CR + land cover archives
    tdpcr data manifest data/SEN12MS-CR --source sen12mscr --land-cover /data/SEN12MS
    tdpcr data stack-s2 S2A_MSIL1C_….SAFE --out s2.tif          # 13-band L1C GeoTIFF for predict

Default folders are relative to the tdpcr home (:mod:`tdpcr_lib.core.paths`): the checkout, or
the current directory when tdpcr is installed from a wheel. ``synth`` needs the optional
``satellite-cloud-generator`` (``pip install --no-deps satellite-cloud-generator==0.4``).
"""

from __future__ import annotations

import argparse
import sys
import time

from tdpcr_lib.cli.errors import CliParser, UsageError, check_int, check_output_folder, run_command
from tdpcr_lib.core.paths import DEFAULT_SYNTHETIC_ROOT
from tdpcr_lib.datasets.sen12mscr.cloudmask import CLOUD_MASKS
from tdpcr_lib.datasets.sen12mscr.layout import DEFAULT_SEN12MSCR_ROOT, SEASONS
from tdpcr_lib.datasets.sen12mscr.splits import DEFAULT_SPLIT_PROTOCOL, SPLIT_PROTOCOLS

# The work modules (torch, rasterio) are imported only once a command runs, so `--help`, usage
# errors and an early Ctrl-C answer at once. The synthetic twin's defaults are repeated here for
# the same reason (tests/cli/test_hostile_cli.py checks they equal datasets.synthetic.tiles').
DEFAULT_N_TILES = 350
DEFAULT_TILE_SIZE = 64
LOCAL_MANIFEST = "manifest"


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="tdpcr data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)

    synth = sub.add_parser("synth", help="write a synthetic LuojiaSET-OSFCR twin (real layout)")
    synth.add_argument(
        "root", nargs="?", default=str(DEFAULT_SYNTHETIC_ROOT), help=f"output folder (default {DEFAULT_SYNTHETIC_ROOT})"
    )
    synth.add_argument(
        "--n-tiles",
        type=int,
        default=DEFAULT_N_TILES,
        help=f"number of tiles, spread evenly over 5 buckets (default {DEFAULT_N_TILES})",
    )
    synth.add_argument(
        "--size",
        type=int,
        default=DEFAULT_TILE_SIZE,
        help=f"tile side in pixels (default {DEFAULT_TILE_SIZE}; real tiles are 256)",
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a twin made with other parameters (an interrupted "
        "generation with the same parameters is resumed, with or without "
        "this flag; a folder that is not a twin is never touched)",
    )

    manifest = sub.add_parser(
        "manifest", help="write train/val/test.csv + sha256 for a dataset (author's 80/10/10 protocol, seed 42)"
    )
    manifest.add_argument(
        "root",
        help="LuojiaSET-OSFCR folder (holding the five bucket folders) "
        "or, with --source sen12mscr, the SEN12MS-CR folder or the "
        "folder holding its archives (extracted first)",
    )
    manifest.add_argument(
        "--source",
        choices=("luojiaset", "sen12mscr"),
        default="luojiaset",
        help="dataset layout (default luojiaset; sen12mscr: UnCRtainTS's scene-level split, computed cloud masks)",
    )
    manifest.add_argument(
        "--land-cover", default=None, metavar="DIR", help="sen12mscr: SEN12MS land-cover folder (default: inside ROOT)"
    )
    manifest.add_argument(
        "--out",
        default=None,
        help=f"manifest folder (default ROOT/{LOCAL_MANIFEST}/, beside the data, "
        "where LuojiaSETOSFCR(ROOT) looks first; give another folder for a "
        "read-only dataset and pass it as manifest=DIR)",
    )
    manifest.add_argument("--seed", type=int, default=42, help="split seed (default 42, author's)")
    manifest.add_argument(
        "--no-checksums", action="store_true", help="skip hashing every file (hashing the full dataset takes minutes)"
    )
    manifest.add_argument("--workers", type=int, default=4, help="hashing threads (default 4)")
    manifest.add_argument(
        "--split",
        choices=SPLIT_PROTOCOLS,
        default=None,
        help="sen12mscr: split protocol (default scene-exact, leak-proof; "
        "legacy-substring: the peers' leaky substring match, labelled as "
        "such in the manifest and every report; docs/dataset.md)",
    )
    manifest.add_argument(
        "--cloud-mask",
        choices=CLOUD_MASKS,
        default=None,
        help="sen12mscr: cloud mask behind cloud cover and buckets (default s2cloudless, as UnCRtainTS; or rule-based)",
    )
    manifest.add_argument(
        "--overwrite",
        action="store_true",
        help="replace manifest files tdpcr did not write or that were edited, "
        "and delete checksums.sha256 with --no-checksums (without it such "
        "files are never touched)",
    )

    download = sub.add_parser(
        "download", help="download the open SEN12MS-CR archives (+ SEN12MS land cover) from mediaTUM; resumable"
    )
    download.add_argument(
        "root",
        nargs="?",
        default=str(DEFAULT_SEN12MSCR_ROOT),
        help=f"folder for the .tar.gz archives (default {DEFAULT_SEN12MSCR_ROOT})",
    )
    download.add_argument(
        "--seasons",
        nargs="+",
        choices=SEASONS,
        default=list(SEASONS),
        help="which seasons (default all four; about 470 GB once extracted)",
    )
    download.add_argument(
        "--no-land-cover", action="store_true", help="skip the SEN12MS land-cover archives (no segmentation labels)"
    )
    download.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")

    stack = sub.add_parser(
        "stack-s2",
        help="stack a Sentinel-2 L1C .SAFE product into the 13-band GeoTIFF `tdpcr predict --s2` reads (10 m grid)",
    )
    stack.add_argument("safe", metavar="SAFE_DIR", help="unzipped S2 L1C product folder (.SAFE)")
    stack.add_argument("--out", required=True, help="output GeoTIFF, e.g. s2.tif")
    stack.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return parser


def _data(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from tdpcr_lib.datasets.sen12mscr.download import download_sen12mscr
    from tdpcr_lib.datasets.sources import DataOptions, data_source
    from tdpcr_lib.datasets.synthetic.tiles import make_synthetic_luojiaset

    started = time.perf_counter()
    if args.action == "synth":
        check_int("--n-tiles", args.n_tiles, 1)
        check_int("--size", args.size, 8)
        check_output_folder(args.root, "ROOT")
        root = make_synthetic_luojiaset(
            args.root, n_tiles=args.n_tiles, size=args.size, seed=args.seed, overwrite=args.overwrite
        )
        print(
            f"synthetic twin: {root} ({args.n_tiles} tiles of {args.size} px, seed "
            f"{args.seed}) in {time.perf_counter() - started:.1f} s; manifest in "
            f"{root / 'manifest'}"
        )
    elif args.action == "stack-s2":
        import rasterio

        from tdpcr_lib.inference.offset import OFFSET_TAG
        from tdpcr_lib.inference.stack_s2 import stack_s2_safe

        out = stack_s2_safe(args.safe, args.out, overwrite=args.overwrite)
        with rasterio.open(out) as src:
            print(
                f"{out}: 13 bands ({', '.join(src.descriptions)}), {src.height} x {src.width} "
                f"px at 10 m, {src.crs}, offset {src.tags()[OFFSET_TAG]} DN, in "
                f"{time.perf_counter() - started:.1f} s"
            )
    elif args.action == "download":
        check_output_folder(args.root, "ROOT")
        paths = download_sen12mscr(
            args.root, seasons=args.seasons, land_cover=not args.no_land_cover, progress=not args.no_progress
        )
        print(
            f"{len(paths)} archive(s) in {args.root} in {time.perf_counter() - started:.0f} s; "
            f"next: `tdpcr data manifest {args.root} --source sen12mscr` (extracts them)"
        )
    else:
        check_int("--workers", args.workers, 1)
        if args.out is not None:
            check_output_folder(args.out, "--out")
        if args.source != "sen12mscr" and (args.split or args.cloud_mask):
            raise UsageError("--split and --cloud-mask apply to --source sen12mscr only")
        source = data_source(args.source)
        options = DataOptions(
            split_seed=args.seed,
            land_cover_root=args.land_cover,
            manifest_dir=args.out,
            checksums=not args.no_checksums,
            workers=args.workers,
            cloud_mask=args.cloud_mask,
            split_protocol=args.split or DEFAULT_SPLIT_PROTOCOL,
            overwrite_manifest=args.overwrite,
        )
        out = source.write_manifest(source.prepare(args.root, options), options)
        if args.source == "sen12mscr" and options.split_protocol == "legacy-substring":
            print(
                "note: legacy-substring is the peers' LEAKY split (training holds test "
                "scenes); use it only to measure the leak (docs/dataset.md)"
            )
        print(
            f"split manifest: {out} (train.csv, val.csv, test.csv"
            f"{', checksums.sha256' if not args.no_checksums else ''}, split_config.json) "
            f"in {time.perf_counter() - started:.1f} s"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tdpcr data``; returns a process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    action = next((a for a in argv if a in ("synth", "manifest", "download", "stack-s2")), "")
    return run_command(f"tdpcr data {action}".rstrip(), _data, argv)


if __name__ == "__main__":
    raise SystemExit(main())
