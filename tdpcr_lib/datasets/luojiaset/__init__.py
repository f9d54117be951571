"""LuojiaSET-OSFCR (and its synthetic twin, which shares this layout): layout, split manifest,
acquisition of the gated data, summaries and the torch ``Dataset``."""

from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.datasets.luojiaset.layout import DEFAULT_LUOJIASET_ROOT, luojiaset_legend

__all__ = ["DEFAULT_LUOJIASET_ROOT", "LuojiaSETOSFCR", "luojiaset_legend"]
