"""Checks on executed notebooks shared by the notebook tests: figures render, bars finish.

A figure that IPython cannot draw is shown as its ``repr``, ``<Figure size 1200x260 with 5
Axes>``; a cell that draws a figure must carry an ``image/png`` output instead. A tqdm widget bar
whose plain-text fallback was never refreshed shows a frozen ``0%|`` line in the executed copy.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

#: Calls that make a figure in a notebook cell (the plotting API's names, the dataset's
#: ``.plot`` and ``save_figure``, which always follows a figure).
FIGURE_CALL = re.compile(r"\bplot_\w+\(|\.plot\(|save_figure\(|save_tile_comparisons\(")
FROZEN_BAR = re.compile(r"(^|\s)0%\|")


def _texts(output: nbformat.NotebookNode) -> list[str]:
    if output.get("output_type") == "stream":
        return [output.get("text", "")]
    return [str(output.get("data", {}).get("text/plain", ""))]


def figure_problems(path: str | Path) -> list[str]:
    """What is wrong with the figures and progress bars of an executed notebook (empty: fine)."""
    nb = nbformat.read(str(path), as_version=4)
    problems = []
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"{Path(path).name} cell {number} ({cell.source.strip().splitlines()[0][:60]!r})"
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        for output in cell.outputs:
            for text in _texts(output):
                if "<Figure size" in text and "image/png" not in output.get("data", {}):
                    problems.append(f"{where}: figure shown as text {text.strip()[:60]!r}")
                if FROZEN_BAR.search(text.split("\r")[-1]):
                    problems.append(f"{where}: progress bar frozen at {text.strip()[:60]!r}")
        if FIGURE_CALL.search(cell.source) and not images:
            problems.append(f"{where}: draws a figure but has no image/png output")
    return problems


def assert_figures_inline(*paths: str | Path) -> None:
    """Fail listing every figure or progress-bar problem of the executed notebooks."""
    problems = [p for path in paths for p in figure_problems(path)]
    assert not problems, "\n".join(problems)
