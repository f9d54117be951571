"""Cell helpers shared by the notebook generators in this folder.

The generators write the numbered notebooks without outputs; run one from the repository root,
e.g. ``python notebooks/_build/build_data_notebook.py``.
"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PREREQ_HEADER = "## Prerequisites\n\n| Concepts | Importance | Notes |\n|---|---|---|\n"


def md(text: str) -> nbformat.NotebookNode:
    """A markdown cell (surrounding blank lines stripped)."""
    return new_markdown_cell(text.strip("\n"))


def code(text: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    """A code cell, optionally tagged (``["parameters"]`` for papermill)."""
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    return cell


def notebook(cells: list, name: str) -> nbformat.NotebookNode:
    """A notebook on the ``python3`` kernel, with stable cell ids (``<name>-NN``).

    Stable ids make regenerating a notebook give the same file byte for byte.
    """
    nb = new_notebook(cells=cells)
    for index, cell in enumerate(nb.cells):
        cell.id = f"{name}-{index:02d}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb
