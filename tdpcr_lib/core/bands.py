"""Sentinel-1 and Sentinel-2 band names and the RGB composites."""

from __future__ import annotations

#: Sentinel-2 L1C band order as stored in LuojiaSET-OSFCR (same as SEN12MS-CR): B8A after B08.
S2_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


#: Sentinel-1 GRD polarisations, in dB.
S1_BANDS: tuple[str, ...] = ("VV", "VH")


#: Band composites for display, as indices into ``S2_BANDS``.
COMPOSITES: dict[str, tuple[int, int, int]] = {
    "true colour (B04/B03/B02)": (3, 2, 1),
    "NIR false colour (B08/B04/B03)": (7, 3, 2),
    "SWIR (B12/B8A/B04)": (12, 8, 3),
}


RGB_INDICES: tuple[int, int, int] = COMPOSITES["true colour (B04/B03/B02)"]
