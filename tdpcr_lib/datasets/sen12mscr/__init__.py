"""SEN12MS-CR with SEN12MS land cover: layout, download, extraction, computed cloud masks, the
scene-level split manifest, summaries and the torch ``Dataset``."""

from tdpcr_lib.datasets.sen12mscr.dataset import SEN12MSCR
from tdpcr_lib.datasets.sen12mscr.layout import DEFAULT_SEN12MSCR_ROOT

__all__ = ["DEFAULT_SEN12MSCR_ROOT", "SEN12MSCR"]
