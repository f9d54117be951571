"""``tdpcr report verdicts|html``: regenerate the verdicts, or the browsable HTML report.

``tdpcr report html`` (``make report``) renders the executed notebooks and the markdown reports
into ``reports/html/index.html`` (:mod:`tdpcr_lib.notebook.html_report`).

The README's "What our runs show" section is never typed: this command writes it from
``reports/metrics/04_ablations.json`` (beside ``reports/long/metrics/04_ablations.json``, the long
budget's, when present; and the per-notebook times of the last ``tdpcr reproduce``
in ``reports/metrics/reproduce.json``, when present).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tdpcr_lib.cli.errors import CliParser, run_command
from tdpcr_lib.core.overwrite import refuse_existing, write_target
from tdpcr_lib.core.paths import METRICS_DIR, REPO_ROOT, REPORTS_DIR
from tdpcr_lib.evaluation.ablations.verdicts import load_record, load_timings, update_readme, write_verdicts

DEFAULT_OUT = REPORTS_DIR / "verdicts.md"


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="tdpcr report", description="Regenerate reports from the recorded metrics.")
    parser.add_argument(
        "what", choices=["verdicts", "html"], help="verdicts: reports/verdicts.md (+ README); html: reports/html/"
    )
    parser.add_argument(
        "--reports", default=str(REPORTS_DIR), help="html: folder with executed/ and the .md reports (default reports/)"
    )
    parser.add_argument(
        "--metrics",
        default=str(METRICS_DIR / "04_ablations.json"),
        help="the ablation record (default: reports/metrics/04_ablations.json)",
    )
    parser.add_argument(
        "--long-metrics",
        default=str(REPORTS_DIR / "long" / "metrics" / "04_ablations.json"),
        help="the long budget's ablation record (`tdpcr reproduce --budget long`;"
        " reported beside the default one when present)",
    )
    parser.add_argument(
        "--timings",
        default=str(METRICS_DIR / "reproduce.json"),
        help="per-notebook times of `tdpcr reproduce` (used when present)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help=f"verdicts: the page (default {DEFAULT_OUT}, regenerated in place; "
        "another existing file needs --overwrite); html: the folder "
        "(default REPORTS/html)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
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
    if args.what == "html":
        from tdpcr_lib.notebook.html_report import write_html_report  # nbconvert: only when asked

        print(f"wrote {write_html_report(args.reports, args.out)}")
        return 0
    record = load_record(args.metrics)  # inputs first: their errors name the input file
    others = [load_record(args.long_metrics)] if Path(args.long_metrics).is_file() else []
    timings = load_timings(args.timings)
    out = Path(args.out) if args.out is not None else DEFAULT_OUT
    if args.out is not None:  # the default page is tdpcr's own; a named file may be the user's
        refuse_existing([out], args.overwrite, what="verdicts page")
    write_verdicts(record, write_target(out), timings, others)
    print(f"wrote {out}")
    if args.readme:
        print(f"updated {update_readme(args.readme, record, timings, others)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("tdpcr report", _report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
