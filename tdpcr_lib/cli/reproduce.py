"""``tdpcr reproduce``: run every numbered notebook in order with papermill.

The notebooks live in a checkout's ``notebooks/`` folder; a wheel does not ship them, so from an
installed package pass ``--notebooks DIR`` (a folder holding ``NN_*.ipynb``).

``--budget long`` runs the default recipe with 4× the steps (``LONG=True``) into ``runs/long/``
and ``reports/long/``, so the default budget's runs and reports are kept; rerun after an
interruption, it resumes the unfinished training runs and reuses the finished ones (the
notebooks' and the ablation grid's resume/reuse). ``tdpcr report verdicts`` then reports both
budgets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tdpcr_lib.cli.errors import CliParser, UsageError, run_command
from tdpcr_lib.core.io import atomic_write_json
from tdpcr_lib.core.paths import IN_CHECKOUT, METRICS_DIR, NOTEBOOKS_DIR, REPORTS_DIR, RUNS_DIR, SMOKE_REPORTS
from tdpcr_lib.core.revision import git_sha
from tdpcr_lib.evaluation.ablations.verdicts import LONG_REPORTS


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="tdpcr reproduce",
        description="Run every numbered notebook (notebooks/NN_*.ipynb) in order with papermill; "
        "executed copies go to reports/executed/ (reports/smoke/executed/ with --smoke).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="a few steps per notebook (minutes)")
    mode.add_argument("--full", action="store_true", help="the recipe's full budget (GPU)")
    mode.add_argument(
        "--quick", action="store_true", help="a quarter of the default training budget (≤ 10 min; indicative)"
    )
    mode.add_argument(
        "--budget",
        choices=["default", "long"],
        default="default",
        help="'long': 4× the default steps into runs/long/ and reports/long/ "
        "(hours on 2 cores; resumable, finished runs are reused)",
    )
    parser.add_argument(
        "--data-root", default=None, help="dataset folder (default: each notebook's own, the synthetic twin)"
    )
    parser.add_argument(
        "--source", default=None, help="data source passed as SOURCE: synthetic, luojiaset or sen12mscr"
    )
    parser.add_argument("--runs-dir", default=None, help="RUNS_DIR for the training notebooks and notebook 06")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="DEVICE (auto, cpu, cuda)")
    parser.add_argument(
        "--only", nargs="+", default=None, metavar="NN", help="run only notebooks whose names start with these prefixes"
    )
    parser.add_argument(
        "--notebooks",
        "--notebooks-dir",
        dest="notebooks_dir",
        metavar="DIR",
        default=str(NOTEBOOKS_DIR),
        help=f"folder holding the NN_*.ipynb notebooks (default {NOTEBOOKS_DIR}; "
        "a wheel ships none: point this at a checkout's notebooks/)",
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help=f"where the executed copies go (default {REPORTS_DIR / 'executed'}; "
        f"with --smoke {REPORTS_DIR / SMOKE_REPORTS / 'executed'}, so a smoke "
        "run never overwrites the default run's copies)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra parameter for the notebooks that declare it (JSON value)",
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the notebooks; returns 0, or 1 naming the failed notebook (see :mod:`.errors`)."""
    return run_command("tdpcr reproduce", _reproduce, argv)


def _reproduce(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    # nbformat (3-4 s: jsonschema's format checkers) and papermill load only for a valid command
    from tdpcr_lib.notebook.html_report import write_html_report
    from tdpcr_lib.notebook.reproduce import NotebookFailed, numbered_notebooks, run_notebooks

    parameters: dict[str, Any] = {"SMOKE": bool(args.smoke), "FULL": bool(args.full)}
    if args.quick:
        parameters["QUICK"] = True
    long = args.budget == "long"
    if long:  # its own folders: the default budget's runs and reports stay as they are
        parameters.update(LONG=True, RUNS_DIR=str(RUNS_DIR / LONG_REPORTS), REPORTS_DIR=str(REPORTS_DIR / LONG_REPORTS))
    for name, value in (
        ("DATA_ROOT", args.data_root),
        ("SOURCE", args.source),
        ("RUNS_DIR", args.runs_dir),
        ("SEED", args.seed),
        ("DEVICE", args.device),
    ):
        if value is not None:
            parameters[name] = value
    for item in args.parameter:
        if "=" not in item:
            raise UsageError(f"-p expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        try:
            parameters[name] = json.loads(value)
        except json.JSONDecodeError:
            parameters[name] = value
    if not Path(args.notebooks_dir).is_dir():
        where = "this checkout has" if IN_CHECKOUT else "tdpcr installed from a wheel ships"
        print(
            f"tdpcr reproduce: no notebooks folder at {args.notebooks_dir} ({where} no "
            "notebooks/); pass --notebooks DIR, a folder holding the NN_*.ipynb notebooks "
            "of a tdpcr checkout",
            file=sys.stderr,
        )
        return 1
    try:
        notebooks = numbered_notebooks(args.notebooks_dir, args.only)
    except FileNotFoundError as err:
        print(f"tdpcr reproduce: {err}", file=sys.stderr)
        return 1
    # Smoke runs keep to reports/smoke/ (the notebooks do the same with their metrics, figures
    # and pages), so the default run's reports are never replaced by meaningless numbers.
    output_dir = args.output_dir or str(
        REPORTS_DIR / SMOKE_REPORTS / "executed"
        if args.smoke
        else REPORTS_DIR / LONG_REPORTS / "executed"
        if long
        else REPORTS_DIR / "executed"
    )
    started = time.time()
    try:
        records = run_notebooks(notebooks, parameters, output_dir, progress=not args.no_progress)
    except NotebookFailed as err:
        print(f"tdpcr reproduce: {err}", file=sys.stderr)
        return 1
    total = time.time() - started
    print(f"[tdpcr reproduce] {len(records)} notebooks in {total / 60:.1f} min:")
    for record in records:
        print(f"  {record['notebook']:<40} {record['seconds']:8.1f} s")
    if not args.smoke:  # the README's verdicts name these times (tdpcr report verdicts)
        timings = REPORTS_DIR / LONG_REPORTS / "metrics" if long else METRICS_DIR
        path = atomic_write_json(
            timings / "reproduce.json",
            {
                "total_seconds": round(total, 1),
                "git_sha": git_sha(),
                "parameters": parameters,
                "notebooks": [{"notebook": r["notebook"], "seconds": round(r["seconds"], 1)} for r in records],
            },
        )
        print(f"  timings: {path}")
    # beside the executed copies: reports/html (reports/smoke/html for --smoke, DIR/../html for
    # --output-dir DIR), with the .md reports of that folder
    reports = Path(output_dir).parent
    try:  # the notebooks ran; a report that cannot be rendered is said, not fatal
        print(f"  report: {write_html_report(reports, executed_dir=output_dir)}")
    except Exception as err:  # noqa: BLE001 (one line, whatever nbconvert raises)
        print(f"tdpcr reproduce: warning: HTML report not written: {err}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
