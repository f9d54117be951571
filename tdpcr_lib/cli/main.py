"""The ``tdpcr`` command line: one entry point, subcommands owned by their modules.

Each subcommand is implemented by a ``main(argv)`` function in the module that owns the concept,
so ``tdpcr train ...`` and ``python -m tdpcr_lib.cli.train ...`` are the same thing. Every failure
is one line on stderr and an exit code of :data:`tdpcr_lib.cli.errors.EXIT_CODES`; the global
``--debug`` flag (``tdpcr --debug predict ...``, or ``TDPCR_DEBUG=1``) also prints the traceback;
``--quiet`` shows only warnings and ``--verbose`` adds details to tdpcr's progress messages.
"""

from __future__ import annotations

import importlib
import sys

from tdpcr_lib.cli.errors import EXIT_USAGE, GLOBAL_FLAGS, run_command

#: subcommand → (module with ``main(argv) -> int``, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "data": ("tdpcr_lib.cli.data", "make the synthetic twin (synth) or a split manifest (manifest)"),
    "train": ("tdpcr_lib.cli.train", "train a model (phase 1, phase 2, joint, baselines); torchrun-aware"),
    "evaluate": ("tdpcr_lib.cli.evaluate", "evaluate a checkpoint; writes JSON + markdown tables"),
    "predict": ("tdpcr_lib.cli.predict", "apply a checkpoint to your own Sentinel-1/-2 GeoTIFFs"),
    "reproduce": ("tdpcr_lib.cli.reproduce", "run every numbered notebook in order with papermill"),
    "report": ("tdpcr_lib.cli.report", "regenerate reports/verdicts.md and the README's verdicts"),
}


def _usage() -> str:
    lines = ["usage: tdpcr [--debug] [--quiet | --verbose] <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += [
        "",
        "Run 'tdpcr <command> --help' for a command's options. --debug (or TDPCR_DEBUG=1)",
        "prints the traceback of a failure; exit codes are listed in docs/errors.md.",
        "--quiet shows warnings only; --verbose adds details to the progress messages.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``tdpcr [--debug] <command> ...``; returns the exit code of the subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = [a for a in argv if a in GLOBAL_FLAGS]  # passed on to the subcommand
    argv = [a for a in argv if a not in GLOBAL_FLAGS]
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:] + debug  # the subcommand's own handler reads --debug
    if name not in SUBCOMMANDS:
        print(
            f"tdpcr: error: unknown command {name!r}; choose one of {', '.join(SUBCOMMANDS)} (see tdpcr --help)",
            file=sys.stderr,
        )
        return EXIT_USAGE

    def run(_: list[str]) -> int:
        # importing a subcommand can fail too (a broken install): same one-line handling
        return int(importlib.import_module(SUBCOMMANDS[name][0]).main(rest) or 0)

    return run_command("tdpcr", run, debug)


if __name__ == "__main__":
    raise SystemExit(main())
