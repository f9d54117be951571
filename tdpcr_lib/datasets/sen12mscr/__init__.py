"""SEN12MS-CR with SEN12MS land cover: layout, download, extraction, computed cloud masks, the
scene-level split manifest, summaries and the torch ``Dataset``.

The exports load on first use (PEP 562): importing a light submodule such as ``.layout`` (as the
CLI's argument parsers do) must not import torch and rasterio through the ``Dataset``.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy exports are, for type checkers and linters
    from tdpcr_lib.datasets.sen12mscr.dataset import SEN12MSCR
    from tdpcr_lib.datasets.sen12mscr.layout import DEFAULT_SEN12MSCR_ROOT

_EXPORTS = {"SEN12MSCR": ".dataset", "DEFAULT_SEN12MSCR_ROOT": ".layout"}

__all__ = ["DEFAULT_SEN12MSCR_ROOT", "SEN12MSCR"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
