"""What the numbered notebooks need: their set-up call, checkpoint discovery, records and pages.

Each notebook starts with ``nb = setup("<its name>", globals())`` right after its parameters cell
(:mod:`tdpcr_lib.notebook.session`).
"""

from tdpcr_lib.notebook.checkpoints import discover_checkpoints, load_models
from tdpcr_lib.notebook.session import NotebookSession, setup

__all__ = ["NotebookSession", "discover_checkpoints", "load_models", "setup"]
