"""The kill-and-resume harness shared by the training tests (test_resume, test_async_checkpoint).

A run is 2 epochs of the small model on ``tiny_luojiaset_root``: 40 training tiles / batch 4 = 10
steps per epoch, ``last/`` every 4 steps. ``train_process`` runs it in a fresh process, either as
the CLI or as a ``python -c`` script (a harness that kills itself); ``uninterrupted_run`` is the
same run never interrupted, the reference a resumed run must match weight for weight.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

#: The run's CLI arguments (after ``--data-root`` and ``--out``).
TRAIN_ARGS = [
    "--phase",
    "phase1",
    "--small-model",
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--crop-size",
    "16",
    "--lr",
    "2e-3",
    "--checkpoint-every",
    "4",
    "--seed",
    "7",
    "--set",
    "val_max_batches=1",
    "--set",
    "warmup_steps=2",
    "--device",
    "cpu",
    "--no-progress",
]

#: Put before a killer script: the CLI's own parsing and configuration, so the script trains
#: exactly what ``tdpcr train`` would. It leaves ``script_args`` (the script's own arguments),
#: ``args``, ``config``, ``model_config`` and ``train_on_folder`` to the script.
PRELUDE = textwrap.dedent("""
    import sys
    from tdpcr_lib.cli import train as cli
    from tdpcr_lib.training.run import train_on_folder

    _cli_start = sys.argv.index("--data-root")
    script_args, args = sys.argv[1:_cli_start], cli._parser().parse_args(sys.argv[_cli_start:])
    config, model_config = cli.build_configs(args)
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # the same kernels in every process
    return env


TrainProcess = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def train_process() -> TrainProcess:
    """``train_process(root, out, script=None, *script_args)``: the run on ``root`` into ``out`` in
    a fresh process, ``tdpcr train`` itself, or ``script`` (after :data:`PRELUDE`) with
    ``script_args``; returns the finished process (output captured as text)."""

    def run(root: Path, out: Path, script: str | None = None, *script_args: str) -> subprocess.CompletedProcess:
        head = ["-m", "tdpcr_lib.cli.train"] if script is None else ["-c", PRELUDE + textwrap.dedent(script)]
        return subprocess.run(
            [sys.executable, *head, *script_args, "--data-root", str(root), "--out", str(out), *TRAIN_ARGS],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=600,
        )

    return run


@pytest.fixture(scope="session")
def uninterrupted_run(train_process, tiny_luojiaset_root, tmp_path_factory) -> Path:
    """The run's folder after it trained to the end uninterrupted. Read-only."""
    out = tmp_path_factory.mktemp("straight") / "run"
    done = train_process(tiny_luojiaset_root, out)
    assert done.returncode == 0, done.stderr
    return out
