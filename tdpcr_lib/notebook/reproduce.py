"""``tdpcr reproduce``: run every numbered notebook in order with papermill.

Each ``notebooks/NN_*.ipynb`` is executed with the kernel ``python3`` and written, outputs
included, to ``reports/executed/``. A notebook receives only the parameters it declares in its
``parameters`` cell (``papermill.inspect_notebook``), so notebooks can declare different subsets
of the shared convention (``DATA_ROOT``, ``SOURCE``, ``RUNS_DIR``, ``SEED``, ``DEVICE``,
``SMOKE``, ``FULL``, ...). The first failing notebook stops the run with a message naming it and
the executed copy that holds the traceback.

Each kernel inherits ``TDPCR_HOME`` (set to this process's :data:`~tdpcr_lib.core.paths.HOME`
unless already set), so a notebook run from a folder outside the checkout, e.g. with tdpcr
installed from a wheel and ``--notebooks DIR``, writes ``data/``, ``runs/`` and ``reports/``
where ``tdpcr reproduce`` was started, not beside the notebooks.

Modes: the default run fits a 2-core CPU in about 15 minutes on the synthetic twin; ``--smoke``
only checks the pipeline (a few steps each); ``--full`` uses the recipe's full budget for a GPU.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tdpcr_lib.core.paths import HOME, NOTEBOOKS_DIR

NOTEBOOK_PATTERN = re.compile(r"^\d\d_.+\.ipynb$")


KERNEL = "python3"


class NotebookFailed(RuntimeError):
    """A notebook raised; ``notebook`` and ``executed`` name the source and the executed copy."""

    def __init__(self, notebook: Path, executed: Path, cause: BaseException) -> None:
        self.notebook, self.executed, self.cause = notebook, executed, cause
        summary = str(cause).strip().splitlines()
        detail = next((line for line in reversed(summary) if line.strip()), type(cause).__name__)
        super().__init__(
            f"notebook {notebook.name} failed: {detail[:400]}\n"
            f"  the executed copy with the full traceback is {executed}"
        )


def numbered_notebooks(notebooks_dir: str | Path = NOTEBOOKS_DIR, only: Sequence[str] | None = None) -> list[Path]:
    """``NN_*.ipynb`` files of a folder in name order (optionally only those starting with
    one of the prefixes in ``only``, e.g. ``["01", "02"]``)."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if NOTEBOOK_PATTERN.match(p.name))
    if only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in only)]
    if not paths:
        raise FileNotFoundError(
            f"no numbered notebooks (NN_*.ipynb) in {folder}" + (f" matching {list(only)}" if only else "")
        )
    return paths


def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters`` cell (name → papermill info)."""
    import papermill  # lazily: slow to import, and only needed when notebooks are inspected or run

    return dict(papermill.inspect_notebook(str(notebook)))


def parameters_for(notebook: str | Path, candidates: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``candidates`` that ``notebook`` declares."""
    declared = declared_parameters(notebook)
    return {k: v for k, v in candidates.items() if k in declared}


@contextlib.contextmanager
def _home_for_kernels(home: str | Path) -> Iterator[None]:
    """Set ``TDPCR_HOME`` for the kernels started inside (unless the caller set it already)."""
    if os.environ.get("TDPCR_HOME"):
        yield
        return
    os.environ["TDPCR_HOME"] = str(home)
    try:
        yield
    finally:
        os.environ.pop("TDPCR_HOME", None)


def run_notebooks(
    notebooks: Sequence[Path],
    parameters: dict[str, Any],
    output_dir: str | Path,
    cwd: str | Path | None = None,
    kernel: str = KERNEL,
    progress: bool = True,
    log=print,
    home: str | Path = HOME,
) -> list[dict[str, Any]]:
    """Execute notebooks in order; raise :class:`NotebookFailed` at the first failure.

    Kernels run in ``cwd`` (default: each notebook's folder) with ``TDPCR_HOME=home`` unless
    ``TDPCR_HOME`` is already set.

    Returns
    -------
    list of dict
        Per notebook: ``notebook``, ``executed``, ``parameters``, ``seconds``.
    """
    import papermill  # lazily: slow to import, and only needed when notebooks are run
    from papermill.exceptions import PapermillExecutionError

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for notebook in notebooks:
        passed = parameters_for(notebook, parameters)
        executed = output_dir / notebook.name
        log(f"[tdpcr reproduce] {notebook.name} with {passed or 'its defaults'}")
        started = time.time()
        try:
            with _home_for_kernels(home):
                papermill.execute_notebook(
                    str(notebook),
                    str(executed),
                    parameters=passed,
                    kernel_name=kernel,
                    cwd=str(cwd or notebook.parent),
                    progress_bar=progress,
                    log_output=False,
                )
        except PapermillExecutionError as err:
            raise NotebookFailed(notebook, executed, err) from err
        except Exception as err:  # kernel died, missing kernel, bad notebook JSON, ...
            raise NotebookFailed(notebook, executed, err) from err
        seconds = time.time() - started
        log(f"[tdpcr reproduce] {notebook.name} done in {seconds:.1f} s")
        records.append(
            {"notebook": notebook.name, "executed": str(executed), "parameters": passed, "seconds": round(seconds, 2)}
        )
    return records
