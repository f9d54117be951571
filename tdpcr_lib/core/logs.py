"""tdpcr's messages go through :mod:`logging` (logger ``tdpcr_lib``); who runs the library
decides where they show.

The library never prints: the CLI calls :func:`configure_logging` (``--quiet`` / ``--verbose``
set the level) and so do the notebooks (through :func:`tdpcr_lib.notebook.display.show_figures_inline`),
so progress lines appear in the terminal or the cell output. A program embedding tdpcr keeps
its own logging configuration.
"""

from __future__ import annotations

import logging
import sys

#: The parent logger of every tdpcr module (``logging.getLogger(__name__)`` below it).
LOGGER_NAME = "tdpcr_lib"


class _CurrentStdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (notebook cells and pytest swap it)."""

    @property
    def stream(self):  # noqa: D102 - logging.StreamHandler's attribute
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


def configure_logging(verbosity: int = 0) -> logging.Logger:
    """Show tdpcr's messages on stdout, one plain line each; returns the ``tdpcr_lib`` logger.

    ``verbosity``: -1 warnings only (``--quiet``), 0 progress (INFO, the default), 1 details
    (DEBUG, ``--verbose``). Calling it again only changes the level.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG)
    if not any(isinstance(h, _CurrentStdout) for h in logger.handlers):
        handler = _CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger
