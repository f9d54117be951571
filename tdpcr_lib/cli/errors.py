"""How every ``tdpcr`` command fails: one line on stderr and a documented exit code.

:func:`run_command` wraps a subcommand's body. Whatever goes wrong inside, the user reads a single
line ``tdpcr <command>: error: <what, naming the file or argument>`` and the process exits with
the code of :data:`EXIT_CODES` (also in the README and ``docs/errors.md``). ``--debug`` anywhere
on the command line, or ``TDPCR_DEBUG=1`` in the environment, prints the traceback first.
Warnings are printed as one line each (``tdpcr <command>: warning: ...``) for the same reason.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from tdpcr_lib.core.logs import configure_logging
from tdpcr_lib.core.runtime import DeviceError
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.inference.inputs import PredictionInputError
from tdpcr_lib.models.checkpoint import CheckpointError
from tdpcr_lib.models.config import ModelConfigError
from tdpcr_lib.training.config import TrainConfigError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_BAD_INPUT = 4
EXIT_CHECKPOINT = 5
EXIT_OS = 6
EXIT_DIVERGED = 7
EXIT_INTERRUPTED = 130

#: Exit code → meaning (the table of the README's "Exit codes" section and docs/errors.md).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILURE: "any other failure (a notebook failed, an optional package is missing, an unexpected error)",
    EXIT_USAGE: "bad command line: unknown option, invalid or out-of-range value, unknown "
    "device, invalid config field, or an existing output that needs --overwrite",
    EXIT_NOT_FOUND: "a file or folder that was named does not exist (dataset, split manifest, scene, checkpoint)",
    EXIT_BAD_INPUT: "input data exist but are unusable (corrupt or truncated file, wrong bands, "
    "dtype or CRS, no valid pixel, failed checksum)",
    EXIT_CHECKPOINT: "a checkpoint folder is incomplete, corrupt or does not fit the model",
    EXIT_OS: "the operating system refused: permission denied, disk full, a path component that is not a folder",
    EXIT_DIVERGED: "training diverged (non-finite loss): lower the learning rate",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C / SIGINT)",
}


#: Flags every command takes, anywhere on the line: tracebacks on failure, fewer or more messages.
GLOBAL_FLAGS: tuple[str, ...] = ("--debug", "--quiet", "--verbose")


class UsageError(ValueError):
    """A command-line argument is invalid (exit code 2)."""


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (usage text only on ``--help``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


# --------------------------------------------------------------------------------------------
# Argument checks shared by the subcommands (before any work is done)
# --------------------------------------------------------------------------------------------
def check_int(name: str, value: int | None, minimum: int, multiple_of: int = 1, maximum: int | None = None) -> None:
    """Raise :class:`UsageError` unless ``value`` is ``None`` or an int in range (and multiple)."""
    if value is None:
        return
    if value < minimum or (maximum is not None and value > maximum) or value % multiple_of:
        rule = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        if multiple_of > 1:
            rule += f" and a multiple of {multiple_of}"
        raise UsageError(f"{name} must be {rule}, got {value}")


def check_output_folder(path: str | Path, option: str) -> None:
    """Refuse an output folder that cannot be created or written, before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{option} exists and is not a folder", str(path))
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, f"{parent} is a file, so {option} cannot be created below it", str(path)
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"permission denied; choose a writable folder for {option}", str(parent))


# --------------------------------------------------------------------------------------------
# Errors → (exit code, one line)
# --------------------------------------------------------------------------------------------
def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _os_message(err: OSError, fallback: str) -> str:
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror[0].lower()}{err.strerror[1:]}"
    return _one_line(err) or fallback


def _is_disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    # GDAL/rasterio report a full disk as text ("No space left on device") in their own types
    return any("no space left" in _one_line(e).lower() for e in (err, err.__cause__) if e)


def classify(err: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for an exception escaping a command."""
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted; rerun the same command to continue or start again"
    if _is_disk_full(err):
        where = f" writing {err.filename}" if getattr(err, "filename", None) else ""
        return (
            EXIT_OS,
            f"no space left on device{where} ({_one_line(err)}); free some space or choose another output folder",
        )
    if isinstance(err, UsageError | DeviceError | ModelConfigError | TrainConfigError):
        return EXIT_USAGE, _one_line(err)
    if isinstance(err, CheckpointError):
        return EXIT_CHECKPOINT, _one_line(err)
    if isinstance(err, DataIntegrityError | PredictionInputError):
        return EXIT_BAD_INPUT, _one_line(err)
    if isinstance(err, FloatingPointError):
        return EXIT_DIVERGED, f"training diverged: {_one_line(err)}"
    if isinstance(err, FileExistsError):
        return EXIT_USAGE, _os_message(err, "file exists")
    if isinstance(err, DatasetNotFoundError | FileNotFoundError):
        return EXIT_NOT_FOUND, _os_message(err, "not found")
    if isinstance(err, PermissionError):
        return EXIT_OS, _os_message(err, "permission denied") + (
            "" if "choose a writable" in str(err) else "; choose a writable location"
        )
    if isinstance(err, IsADirectoryError | NotADirectoryError):
        return EXIT_OS, _os_message(err, "not a file/folder")
    if type(err).__module__.startswith("rasterio"):
        # GDAL errors not caught by an input check: a raster could not be read or written
        return EXIT_BAD_INPUT, f"raster error: {_one_line(err.__cause__ or err)}"
    if isinstance(err, OSError):
        return EXIT_OS, _os_message(err, type(err).__name__)
    if isinstance(err, ImportError | ValueError):
        # an optional package is missing (the message says how to install it), or a value the
        # command's own checks did not foresee: the package's messages name what is wrong
        return EXIT_FAILURE, _one_line(err)
    if isinstance(err, MemoryError):
        return EXIT_FAILURE, "out of memory; lower --batch-size or --tile"
    return EXIT_FAILURE, f"{type(err).__name__}: {_one_line(err)} (rerun with --debug for the traceback)"


# --------------------------------------------------------------------------------------------
# Running a command
# --------------------------------------------------------------------------------------------
def debug_requested(argv: Sequence[str] = ()) -> bool:
    """``--debug`` on the command line or ``TDPCR_DEBUG`` set to a true value."""
    env = os.environ.get("TDPCR_DEBUG", "").strip().lower()
    return "--debug" in argv or env not in ("", "0", "false", "no")


@contextmanager
def _one_line_warnings(prog: str) -> Iterator[None]:
    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001, ARG001 - warnings.showwarning's signature
        print(f"{prog}: warning: {_one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def run_command(prog: str, body: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``body(argv)`` and turn any failure into one stderr line and an exit code.

    Parameters
    ----------
    prog
        The command's name in messages (``"tdpcr predict"``).
    body
        Parses its arguments and does the work; returns an exit code (``None`` = 0).
    argv
        The arguments (default ``sys.argv[1:]``); the :data:`GLOBAL_FLAGS` are taken out of
        them: ``--debug``, and ``--quiet`` / ``--verbose``, which set the level of tdpcr's
        messages (:func:`tdpcr_lib.core.logs.configure_logging`).

    Returns
    -------
    int
        0, or a code of :data:`EXIT_CODES`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    configure_logging(("--verbose" in args) - ("--quiet" in args))
    args = [a for a in args if a not in GLOBAL_FLAGS]
    with _one_line_warnings(prog):
        try:
            return int(body(args) or 0)
        except SystemExit as exc:  # --help, or a body that exits itself
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except (Exception, KeyboardInterrupt) as err:
            code, message = classify(err)
            if debug:
                traceback.print_exc()
            print(f"{prog}: error: {message}", file=sys.stderr)
            return code
