"""Figures render as PNG in IPython; progress bars are tqdm's text bar outside Jupyter."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell
from matplotlib.figure import Figure

from tdpcr_lib.core import progress
from tdpcr_lib.notebook.display import show_figures_inline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_figure_built_without_pyplot_formats_as_png():
    shell = InteractiveShell.instance()
    figure = Figure(figsize=(2, 1))
    figure.subplots().plot([0, 1], [1, 0])
    show_figures_inline(shell)
    data, _ = shell.display_formatter.format(figure)
    assert data["image/png"].startswith(PNG_MAGIC)


def test_the_imports_cell_shows_no_output():
    assert show_figures_inline() is None  # a cell ending in the call prints nothing


def test_progress_bars_are_text_bars_outside_jupyter():
    from tqdm.notebook import tqdm_notebook

    assert not issubclass(progress.tqdm, tqdm_notebook)
    assert list(progress.tqdm(range(3), disable=True)) == [0, 1, 2]
