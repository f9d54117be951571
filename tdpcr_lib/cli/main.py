"""The ``tdpcr`` command line: one entry point, subcommands owned by their modules.

Each subcommand is implemented by a ``main(argv)`` function in the module that owns the concept,
so ``tdpcr train ...`` and ``python -m tdpcr_lib.cli.train ...`` are the same thing.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand → (module with ``main(argv) -> int``, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "data": ("tdpcr_lib.cli.data", "make the synthetic twin (synth) or a split manifest (manifest)"),
    "train": ("tdpcr_lib.cli.train", "train a model (phase 1, phase 2, joint, baselines); torchrun-aware"),
    "evaluate": ("tdpcr_lib.cli.evaluate", "evaluate a checkpoint; writes JSON + markdown tables"),
    "predict": ("tdpcr_lib.cli.predict", "apply a checkpoint to your own Sentinel-1/-2 GeoTIFFs"),
    "reproduce": ("tdpcr_lib.cli.reproduce", "run every numbered notebook in order with papermill"),
}


def _usage() -> str:
    lines = ["usage: tdpcr <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run 'tdpcr <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"tdpcr: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
