"""Per-notebook metrics records: ``reports/metrics/<notebook>.json``.

A notebook records its parameters without listing them twice: :meth:`RunRecord.from_parameters_cell`
reads the names its ``parameters``-tagged cell assigns (from the notebook file, ``.ipynb`` or its
jupytext ``.py`` twin) and takes their *current* values from the notebook's namespace, so values
injected by papermill (``tdpcr reproduce``, ``papermill -p``) are what gets recorded.
"""

from __future__ import annotations

import ast
import copy
import json
import platform
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jupytext

from tdpcr_lib.core.io import atomic_write_json, atomic_write_text
from tdpcr_lib.core.paths import METRICS_DIR, NOTEBOOKS_DIR, REPORTS_DIR, SMOKE_REPORTS
from tdpcr_lib.core.revision import git_sha
from tdpcr_lib.core.runtime import device_description, resolve_device

#: Tag of the cell that declares a notebook's parameters (papermill's convention).
PARAMETERS_TAG = "parameters"

_SMOKE_README = """# Smoke-run outputs: not results

Everything in this folder was written by a SMOKE run (`tdpcr reproduce --smoke`,
`papermill ... -p SMOKE True`, or a notebook run with `SMOKE = True`): a few training steps on a
tiny twin, only to check that the pipeline runs. The numbers and figures here mean nothing. The
default run's reports are one folder up, in `reports/`, and a smoke run never touches them.
"""


def resolve_reports_dir(reports_dir: str | Path | None, *, smoke: bool) -> Path:
    """The folder a notebook writes ``metrics/``, ``figures/`` and its pages to.

    ``reports_dir`` given: that folder, whatever the mode (tests and users who chose a folder
    get what they asked for). ``None``: :data:`~tdpcr_lib.core.paths.REPORTS_DIR`, or
    ``REPORTS_DIR/smoke`` in smoke mode — a smoke run's meaningless numbers must never replace
    the default run's ``results.md`` or metrics. The smoke folder gets a ``README.md`` saying so.
    """
    if reports_dir:
        return Path(reports_dir)
    if not smoke:
        return REPORTS_DIR
    folder = REPORTS_DIR / SMOKE_REPORTS
    readme = folder / "README.md"
    if not readme.is_file():
        atomic_write_text(readme, _SMOKE_README)
    return folder


def find_notebook(notebook: str, search: Sequence[str | Path] | None = None) -> Path:
    """The file of notebook ``notebook`` (a stem such as ``"01_train_phase1"``).

    Looks for ``<stem>.ipynb`` then ``<stem>.py`` in ``search`` (default: the current directory —
    papermill, ``tdpcr reproduce`` and JupyterLab run a notebook in its own folder — then
    :data:`~tdpcr_lib.core.paths.NOTEBOOKS_DIR`).

    Raises
    ------
    FileNotFoundError
        When no folder holds it.
    """
    folders = [Path(p) for p in search] if search is not None else [Path.cwd(), NOTEBOOKS_DIR]
    for folder in folders:
        for suffix in (".ipynb", ".py"):
            path = folder / f"{notebook}{suffix}"
            if path.is_file():
                return path
    raise FileNotFoundError(f"notebook {notebook!r} (.ipynb or .py) not found in {[str(f) for f in folders]}")


def parameters_cell_names(path: str | Path) -> list[str]:
    """Names assigned in the ``parameters``-tagged cell of a notebook, in order of first assignment.

    Parameters
    ----------
    path : path
        A notebook: ``.ipynb`` or a jupytext text file (``.py`` percent format).

    Raises
    ------
    ValueError
        When the notebook has no ``parameters`` cell.
    """
    notebook = jupytext.read(str(path))
    for cell in notebook.cells:
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.metadata.get("tags", []):
            return _assigned_names(cell.source)
    raise ValueError(f"{path} has no code cell tagged {PARAMETERS_TAG!r}")


def _assigned_names(source: str) -> list[str]:
    names: list[str] = []

    def add(target: ast.expr) -> None:
        if isinstance(target, ast.Name) and target.id not in names:
            names.append(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                add(element)

    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                add(target)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            add(node.target)
    return names


def _snapshot(value: Any) -> Any:
    """A copy of a parameter's value as it is now (later cells may mutate lists and dicts)."""
    try:
        return copy.deepcopy(value)
    except Exception:  # an uncopyable object: record its text
        return repr(value)


class RunRecord:
    """Collects what a notebook run must record and writes it atomically at the end.

    Examples
    --------
    In a notebook, right after the parameters cell:

    >>> record = RunRecord.from_parameters_cell("00_get_data", globals())  # doctest: +SKIP
    >>> record.write({"n_tiles": 10})  # doctest: +SKIP

    Elsewhere, with explicit parameters:

    >>> record = RunRecord("00_get_data", parameters={"SEED": 0}, seed=0, device="cpu")
    >>> record.write({"n_tiles": 10})  # doctest: +SKIP
    """

    def __init__(
        self,
        notebook: str,
        parameters: Mapping[str, Any],
        seed: int,
        device: str = "auto",
        metrics_dir: str | Path | None = None,
        resolved: Mapping[str, Any] | None = None,
    ) -> None:
        self.notebook = notebook
        self.parameters = dict(parameters)
        self.resolved = dict(resolved or {})
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.metrics_dir = Path(metrics_dir) if metrics_dir else METRICS_DIR
        self.started = time.time()

    @classmethod
    def from_parameters_cell(
        cls,
        notebook: str,
        namespace: Mapping[str, Any],
        *,
        seed: int | None = None,
        device: str | None = None,
        metrics_dir: str | Path | None = None,
        resolved: Mapping[str, Any] | None = None,
        notebook_path: str | Path | None = None,
    ) -> RunRecord:
        """A record whose parameters are those the notebook's ``parameters`` cell declares.

        Parameters
        ----------
        notebook : str
            The notebook's stem, e.g. ``"01_train_phase1"`` (names the record file).
        namespace : mapping
            The notebook's ``globals()``: each declared name's current value is recorded (so
            papermill-injected values are), copied so later changes do not leak in.
        seed, device : optional
            Default: the namespace's ``SEED`` (else 0) and ``DEVICE`` (else ``"cpu"``).
        metrics_dir : path, optional
            Default: ``<REPORTS_DIR>/metrics`` when the namespace has a ``REPORTS_DIR`` that is
            not ``None``, else :data:`~tdpcr_lib.core.paths.METRICS_DIR`.
        resolved : mapping, optional
            Values the notebook derived from its parameters (resolved paths, budgets); recorded
            under ``"resolved"``.
        notebook_path : path, optional
            The notebook file; default :func:`find_notebook`. If no file is found the upper-case
            names of the namespace are recorded instead, with a warning.
        """
        try:
            path = Path(notebook_path) if notebook_path else find_notebook(notebook)
            names = parameters_cell_names(path)
        except FileNotFoundError as err:
            warnings.warn(f"{err}; recording the namespace's upper-case names as parameters", stacklevel=2)
            names = [k for k in namespace if k.isupper() and not k.startswith("_")]
        parameters = {name: _snapshot(namespace[name]) for name in names if name in namespace}
        if seed is None:
            seed = int(namespace.get("SEED", 0) or 0)
        if device is None:
            device = str(namespace.get("DEVICE") or "cpu")
        if metrics_dir is None and namespace.get("REPORTS_DIR") is not None:
            metrics_dir = Path(namespace["REPORTS_DIR"]) / "metrics"
        return cls(notebook, parameters, seed=seed, device=device, metrics_dir=metrics_dir, resolved=resolved)

    @property
    def path(self) -> Path:
        """``<metrics_dir>/<notebook>.json``."""
        return self.metrics_dir / f"{self.notebook}.json"

    def write(self, metrics: dict[str, Any], **extra: Any) -> Path:
        """Write metrics plus provenance (parameters, git SHA, seed, device, wall time)."""
        record = {
            "notebook": self.notebook,
            "metrics": metrics,
            "parameters": self.parameters,
            **({"resolved": self.resolved} if self.resolved else {}),
            "git_sha": git_sha(),
            "seed": self.seed,
            "device": device_description(self.device),
            "python": platform.python_version(),
            "wall_time_s": round(time.time() - self.started, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **extra,
        }
        return atomic_write_json(self.path, record)


def read_metrics(notebook: str, metrics_dir: str | Path | None = None) -> dict[str, Any]:
    """Read a notebook's metrics record back (used by tests and later notebooks)."""
    path = Path(metrics_dir or METRICS_DIR) / f"{notebook}.json"
    return json.loads(path.read_text())
