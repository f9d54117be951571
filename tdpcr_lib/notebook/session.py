"""The one set-up call of every numbered notebook: :func:`setup`.

Right after its ``parameters`` cell (which papermill and ``tdpcr reproduce`` override), each
notebook calls ``nb = setup("<its name>", globals())``. From the parameters it finds in the
namespace, the call resolves, the same way in every notebook:

* ``REPORTS_DIR`` / ``SMOKE`` → the reports folder (``reports/``, or ``reports/smoke/`` for a smoke
  run, so a smoke run never overwrites the default run's results), its ``figures/`` folder and the
  metrics record ``<reports>/metrics/<name>.json`` (:class:`~tdpcr_lib.notebook.record.RunRecord`,
  listing the parameters cell's current values);
* ``DEVICE`` → the device (``"auto"``: CUDA if there is one, else the CPU);
* ``RUNS_DIR`` → the runs folder (``None``: ``runs/``);
* ``DATA_ROOT`` / ``SOURCE`` → the dataset folder, made ready
  (:func:`~tdpcr_lib.datasets.sources.ensure_dataset`: the synthetic twin is generated if missing,
  real data are located or extracted); ``DATA_ROOT=None`` means the source's default folder.

It also makes figures show inline (:func:`~tdpcr_lib.notebook.display.show_figures_inline`). A
notebook without one of these parameters gets ``None`` for what it would resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tdpcr_lib.core.paths import RUNS_DIR
from tdpcr_lib.datasets.sources import data_source, ensure_dataset
from tdpcr_lib.datasets.synthetic.tiles import read_synthetic_info
from tdpcr_lib.notebook.display import show_figures_inline
from tdpcr_lib.notebook.record import RunRecord, resolve_reports_dir


@dataclass
class NotebookSession:
    """What :func:`setup` resolved for one notebook run.

    Attributes
    ----------
    name
        The notebook's stem, e.g. ``"01_train_phase1"``.
    reports_dir, figures_dir
        Where the notebook writes its pages and metrics, and its figures (``<reports_dir>/figures``).
    record
        The metrics record, written at the end with ``record.write(metrics)``; values derived later
        in the notebook can be added to ``record.resolved``.
    device
        The resolved device, e.g. ``"cpu"`` or ``"cuda"``.
    runs_dir
        The runs folder (None when the notebook has no ``RUNS_DIR`` parameter).
    data_root
        The dataset folder, ready to open (None when the notebook has no ``DATA_ROOT`` parameter or
        prepares the data itself).
    """

    name: str
    reports_dir: Path
    figures_dir: Path
    record: RunRecord
    device: str
    runs_dir: Path | None
    data_root: Path | None


def setup(
    name: str,
    namespace: Mapping[str, Any],
    *,
    prepare_data: bool = True,
    device: str | None = None,
    resolved: Mapping[str, Any] | None = None,
) -> NotebookSession:
    """Resolve a notebook's reports, record, device, runs and data folders from its parameters.

    Parameters
    ----------
    name : str
        The notebook's stem, e.g. ``"01_train_phase1"`` (names its metrics record).
    namespace : mapping
        The notebook's ``globals()``: ``REPORTS_DIR``, ``SMOKE``, ``DEVICE``, ``RUNS_DIR``,
        ``DATA_ROOT`` and ``SOURCE`` are read from it where present.
    prepare_data : bool
        Whether to make the dataset ready (False for notebook 00, which prepares it itself).
    device : str, optional
        The device to record instead of ``DEVICE`` (notebook 00 works on the CPU).
    resolved : mapping, optional
        Further derived values to record under ``"resolved"`` (the paths resolved here are added).

    Returns
    -------
    NotebookSession
        The resolved folders, device and record.

    Raises
    ------
    tdpcr_lib.core.runtime.DeviceError
        ``DEVICE`` names no device of this machine.
    ValueError
        ``SOURCE`` is not a known data source.
    """
    show_figures_inline()
    reports_dir = resolve_reports_dir(namespace.get("REPORTS_DIR"), smoke=bool(namespace.get("SMOKE")))
    runs_dir = None
    if "RUNS_DIR" in namespace:
        runs_dir = Path(namespace["RUNS_DIR"]).expanduser() if namespace["RUNS_DIR"] else RUNS_DIR
    data_root = None
    if prepare_data and "DATA_ROOT" in namespace:
        source = namespace.get("SOURCE", "synthetic")
        data_root = ensure_dataset(namespace["DATA_ROOT"] or data_source(source).default_root, source)
    paths = {"data_root": data_root, "runs_dir": runs_dir}
    derived: dict[str, Any] = {k: str(v) for k, v in paths.items() if v is not None}
    twin = read_synthetic_info(data_root) if data_root is not None else None
    if twin:  # numbers on the twin depend on its calibration: every record names the version
        derived["twin_version"] = twin.get("twin_version")
    record = RunRecord.from_parameters_cell(
        name, namespace, device=device, metrics_dir=reports_dir / "metrics", resolved={**derived, **(resolved or {})}
    )
    return NotebookSession(
        name=name,
        reports_dir=reports_dir,
        figures_dir=reports_dir / "figures",
        record=record,
        device=str(record.device),
        runs_dir=runs_dir,
        data_root=data_root,
    )
