"""Benchmark child processes: each measurement runs in a fresh process and hands back a JSON result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdpcr_lib.core.paths import REPO_ROOT


class ChildError(RuntimeError):
    """A benchmark child process failed; the message holds the end of its output."""


def run_child(argv: Sequence[str], *, timeout_s: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python <argv> --json FILE`` from the repository root and return the JSON it wrote.

    Raises
    ------
    ChildError
        Non-zero exit, timeout, or no JSON written (the message shows the command and the last
        lines of its output).
    """
    with tempfile.TemporaryDirectory(prefix="tdpcr-bench-") as scratch:
        result_path = Path(scratch) / "result.json"
        command = [sys.executable, *argv, "--json", str(result_path)]
        child_env = {**os.environ, **(env or {})}
        child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p)
        try:
            proc = subprocess.run(
                command, cwd=REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired as err:
            raise ChildError(f"{' '.join(command)} timed out after {timeout_s:.0f} s") from err
        if proc.returncode != 0 or not result_path.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise ChildError(f"{' '.join(command)} exited with {proc.returncode}:\n{tail}")
        return json.loads(result_path.read_text())


def write_child_result(path: str | Path, result: dict[str, Any]) -> None:
    """What a child writes for :func:`run_child` (atomically)."""
    from tdpcr_lib.core.io import atomic_write_json

    atomic_write_json(path, result)
