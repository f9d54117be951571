"""Progress bars that suit where they run: a widget in Jupyter, text in a terminal.

``from tdpcr_lib.core.progress import tqdm`` is :mod:`tqdm.auto`'s bar, with one change in
Jupyter: the widget bar is displayed with a display id and re-displayed when it closes. tqdm's
widget writes its plain-text fallback (what papermill's executed copies, GitHub and nbviewer show)
once, when the bar appears — so an executed notebook otherwise keeps a frozen ``0%| 0/12`` line;
re-displaying on close replaces it with the final state (``100%| 12/12 [...]``).
"""

from __future__ import annotations

from typing import Any

from IPython.display import display
from tqdm.auto import tqdm as _auto_tqdm
from tqdm.notebook import tqdm_notebook

__all__ = ["tqdm"]


class _NotebookBar(tqdm_notebook):
    """tqdm's widget bar whose output is refreshed (text fallback included) when it closes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["display"] = False  # displayed below, with a handle to update it on close
        super().__init__(*args, **kwargs)
        self._handle = None
        if not self.disable and getattr(self, "container", None) is not None:
            self._handle = display(self.container, display_id=True)
            self.displayed = True

    def close(self) -> None:
        if self.disable:
            return
        super().close()
        handle = getattr(self, "_handle", None)  # absent if __init__ failed early
        if handle is not None:
            handle.update(self.container)
            self._handle = None


#: The bar to use everywhere in the package.
tqdm = _NotebookBar if issubclass(_auto_tqdm, tqdm_notebook) else _auto_tqdm
