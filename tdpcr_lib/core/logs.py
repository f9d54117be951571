"""Where the library's ``logging`` goes when the application has not said.

Modules log through ``logging.getLogger(__name__)``. A notebook or a terminal with no logging
set up would show none of the INFO lines (Python's last-resort handler prints warnings only), so
:func:`console_logging` attaches one plain ``message``-only handler on stdout to the ``tdpcr_lib``
logger — only when neither it nor the root logger has a handler: an application that configures
logging keeps full control.
"""

from __future__ import annotations

import logging
import sys

#: The package's logger (parent of every module's logger).
PACKAGE_LOGGER = "tdpcr_lib"


def console_logging(level: int = logging.INFO) -> logging.Logger:
    """Make the package's INFO lines visible on stdout unless logging is configured already."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(level)
    return logger
