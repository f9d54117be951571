"""LuojiaSET-OSFCR (and its synthetic twin, which shares this layout): layout, split manifest,
acquisition of the gated data, summaries and the torch ``Dataset``.

The exports load on first use (PEP 562), so importing a light submodule does not import torch.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy exports are, for type checkers and linters
    from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
    from tdpcr_lib.datasets.luojiaset.layout import DEFAULT_LUOJIASET_ROOT, luojiaset_legend

_EXPORTS = {"LuojiaSETOSFCR": ".dataset", "DEFAULT_LUOJIASET_ROOT": ".layout", "luojiaset_legend": ".layout"}

__all__ = ["DEFAULT_LUOJIASET_ROOT", "LuojiaSETOSFCR", "luojiaset_legend"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
