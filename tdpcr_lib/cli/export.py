"""``tdpcr export onnx``: write a checkpoint as an ONNX model any ONNX runtime can run.

The file carries the legend, normalisation, band order, input/output names and shapes, the
weights' sha256 and the opset in its metadata; it is verified against the torch model before it
is published (``docs/engines.md``).
"""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

from tdpcr_lib.cli.errors import CliParser, UsageError, check_output_folder, run_command
from tdpcr_lib.inference.export import VERIFY_ATOL, default_export_path, export_onnx
from tdpcr_lib.models.checkpoint import resolve_checkpoint_dir

FORMATS = ("onnx",)


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="tdpcr export", description="Export a checkpoint for deployment outside tdpcr.")
    parser.add_argument("format", choices=FORMATS, help="output format (onnx)")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder, e.g. runs/phase2/best")
    parser.add_argument(
        "--out", type=Path, default=None, help="file to write (default: <checkpoint>.onnx beside the folder)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return parser


def _export(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not args.checkpoint.exists():
        raise FileNotFoundError(errno.ENOENT, "checkpoint folder does not exist", str(args.checkpoint))
    resolve_checkpoint_dir(args.checkpoint)  # not a checkpoint: one line before any work
    out = args.out or default_export_path(args.checkpoint)
    if out.suffix != ".onnx":
        raise UsageError(f"--out must end in .onnx, got {out}")
    if out.exists() and not args.overwrite:
        raise FileExistsError(errno.EEXIST, "exists; pass --overwrite to replace it", str(out))
    check_output_folder(out.parent, "--out")
    report = export_onnx(args.checkpoint, out)
    worst = max(report.max_abs_diff.values(), default=0.0)
    print(f"onnx: {report.path}")
    print(
        f"outputs: {', '.join(report.outputs)}; weights sha256 {report.weights_sha256[:16]}…; "
        f"max |onnx - torch| {worst:.2e} (tolerance {VERIFY_ATOL:g})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``tdpcr export onnx --checkpoint DIR [--out FILE]``; returns the exit status."""
    return run_command("tdpcr export", _export, argv)


if __name__ == "__main__":
    raise SystemExit(main())
