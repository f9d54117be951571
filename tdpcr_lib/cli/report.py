"""``tdpcr report verdicts``: regenerate ``reports/verdicts.md`` and the README's verdicts.

The README's "What our runs show" section is never typed: this command writes it from
``reports/metrics/04_ablations.json`` (and the per-notebook times of the last ``tdpcr reproduce``
in ``reports/metrics/reproduce.json``, when present).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tdpcr_lib.cli.errors import CliParser, run_command
from tdpcr_lib.core.paths import METRICS_DIR, REPO_ROOT, REPORTS_DIR
from tdpcr_lib.evaluation.ablations.verdicts import load_record, update_readme, write_verdicts


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="tdpcr report", description="Regenerate reports from the recorded metrics.")
    parser.add_argument("what", choices=["verdicts"], help="which report")
    parser.add_argument(
        "--metrics",
        default=str(METRICS_DIR / "04_ablations.json"),
        help="the ablation record (default: reports/metrics/04_ablations.json)",
    )
    parser.add_argument(
        "--timings",
        default=str(METRICS_DIR / "reproduce.json"),
        help="per-notebook times of `tdpcr reproduce` (used when present)",
    )
    parser.add_argument("--out", default=str(REPORTS_DIR / "verdicts.md"))
    parser.add_argument(
        "--readme",
        nargs="?",
        const=str((REPO_ROOT or Path.cwd()) / "README.md"),
        default=None,
        help="also rewrite this README's 'What our runs show' section (default: the checkout's README.md)",
    )
    return parser


def _report(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    record = load_record(args.metrics)
    timings_path = Path(args.timings)
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else None
    print(f"wrote {write_verdicts(record, args.out, timings)}")
    if args.readme:
        print(f"updated {update_readme(args.readme, record, timings)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("tdpcr report", _report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
