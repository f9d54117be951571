"""Show the library's figures inline in Jupyter, live and in executed copies.

The plotting layer builds ``matplotlib.figure.Figure`` objects directly, without pyplot, so that
nothing depends on a global backend or leaks open figures. IPython only knows how to draw such a
figure once a PNG formatter is registered for the class (``%matplotlib inline`` does that as a
side effect of switching pyplot's backend); without one, a cell ending in a figure shows
``<Figure size 1200x260 with 5 Axes>``. :func:`show_figures_inline`, called once from each
notebook's imports cell, registers that formatter explicitly, so a cell ending in ``figure`` and
``display(figure)`` both produce an ``image/png`` output — in JupyterLab and under papermill alike.
"""

from __future__ import annotations

from typing import Any

from IPython import get_ipython
from IPython.core.pylabtools import print_figure
from matplotlib.figure import Figure

from tdpcr_lib.core.logs import configure_logging

#: Resolution of inline figures: 100 dpi keeps executed copies small; the PNGs written to
#: ``reports/figures`` by :func:`~tdpcr_lib.plot.composites.save_figure` keep their own dpi.
INLINE_DPI = 100


def _figure_png(figure: Figure) -> bytes | None:
    # bbox_inches="tight" trims the white margin, as the inline backend does.
    return print_figure(figure, fmt="png", bbox_inches="tight", dpi=INLINE_DPI)


def show_figures_inline(shell: Any | None = None) -> None:
    """Register a PNG formatter for ``matplotlib.figure.Figure`` in the running IPython shell.

    Parameters
    ----------
    shell : IPython shell, optional
        Default: the current one (``IPython.get_ipython()``).

    Outside IPython (a plain ``python`` run of a notebook's ``.py`` twin) there is nothing to
    display to, and nothing is done. Returns nothing, so the imports cell shows no output.
    tdpcr's progress messages (:mod:`logging`) are sent to the cell output too
    (:func:`~tdpcr_lib.core.logs.configure_logging`).
    """
    configure_logging()
    shell = shell if shell is not None else get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, _figure_png)
