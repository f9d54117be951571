"""GIS metadata of the prediction products: what QGIS/GDAL need to show them without our code.

Applied to each finished intermediate GTiff just before it is copied into a COG
(:func:`apply_product_metadata`), so the COG carries it in its own tags and directory:

* ``cloud_free.tif``: band descriptions (``B01`` … ``B12``, ``B8A`` as band 9), GDAL colour
  interpretation red/green/blue on B04/B03/B02 (the RGB hint QGIS uses for its default
  multiband rendering), GDAL scale 1e-4 per band and tags stating the unit and the offset
  (reflectance = (DN − offset) / 10000).
* ``land_cover.tif``: colour table (written by the writer) and GDAL *category names*. GTiff keeps
  category names only in a PAM side-car, so :func:`write_category_sidecar` writes
  ``land_cover.tif.aux.xml`` next to the COG; GDAL and QGIS read it automatically, and it must be
  copied with the ``.tif`` (the class names are also in the ``CLASS_<code>`` tags inside the file).
* ``degradation_prompt.tif``: what the values mean (gate: weight given to SAR, 0–1).
* every product: absolute local paths in tags are replaced by portable ones
  (:func:`portable_path`) — a file name, or the last two path parts of a checkpoint (its run id,
  e.g. ``phase2/best``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any
from xml.sax.saxutils import escape

import rasterio
from rasterio.enums import ColorInterp

from tdpcr_lib.core.bands import RGB_INDICES, S2_BANDS

#: GDAL scale of ``cloud_free.tif`` (DN × scale = reflectance, before removing the offset).
REFLECTANCE_SCALE = 1e-4

#: Tags of ``cloud_free.tif`` that state its scale and offset in words.
CLOUD_FREE_TAGS: dict[str, str] = {
    "UNITS": "L1C digital number (DN)",
    "REFLECTANCE": "reflectance = (DN - OFFSET) / 10000",
    "OFFSET": "the input's radiometric offset, kept by the model: 1000 DN for Sentinel-2 "
    "processing baseline >= 04.00 (acquisitions from 25 Jan 2022), else 0",
    "SCALE": "1e-4 (GDAL band scale; GDAL band offset left 0 because the input's offset is not known to the writer)",
    "RGB_BANDS": "4,3,2 (B04 red, B03 green, B02 blue; GDAL colour interpretation set)",
    "BAND_ORDER": ",".join(S2_BANDS),
}

#: Tags of ``degradation_prompt.tif``.
GATE_TAGS: dict[str, str] = {
    "UNITS": "dimensionless, 0-1",
    "MEANING": "PGF injection gate (channel mean, finest level): weight given to SAR features; "
    "0 = optical features kept, 1 = SAR fully injected",
}

#: Tags whose values are paths (rewritten by :func:`portable_path`).
PATH_TAGS: tuple[str, ...] = ("SOURCE_S2", "SOURCE_S1", "CHECKPOINT")


def portable_path(value: Any, base: str | Path | None = None) -> Any:
    """An absolute local path → a portable one; anything else unchanged.

    Inside ``base`` (default: the working directory) the path relative to it; elsewhere its
    last two parts (``runs/phase2/best`` → ``phase2/best``: the run id of a checkpoint,
    ``/data/scene/s2.tif`` → ``scene/s2.tif``), so no product names a user's directory layout.
    """
    if not isinstance(value, str | PurePath) or not os.path.isabs(str(value)):
        return value
    path = Path(value)
    try:
        return str(path.relative_to(Path(base) if base is not None else Path.cwd()))
    except ValueError:
        return str(PurePath(*path.parts[-2:]))


def portable(obj: Any, base: str | Path | None = None) -> Any:
    """:func:`portable_path` applied to every string of a nested dict/list (e.g. a summary)."""
    if isinstance(obj, Mapping):
        return {k: portable(v, base) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [portable(v, base) for v in obj]
    return portable_path(obj, base)


def _product(path: Path) -> str:
    """``cloud_free`` / ``land_cover`` / ``degradation_prompt`` from an intermediate's name."""
    name = path.name.lstrip(".")
    for product in ("cloud_free", "land_cover", "degradation_prompt"):
        if name.startswith(product):
            return product
    return ""


def apply_product_metadata(path: str | Path, product: str | None = None) -> None:
    """Add the GIS metadata of ``product`` to a finished (intermediate, non-COG) GTiff in place.

    ``product`` defaults to the one named by the file name (``.cloud_free.xxxx.partial.tif``).
    Must run before the COG copy: updating a COG in place would move its header and break
    the COG layout.
    """
    path = Path(path)
    product = product or _product(path)
    with rasterio.open(path, "r+") as dst:
        tags = dst.tags()
        dst.update_tags(**{k: str(portable_path(tags[k])) for k in PATH_TAGS if k in tags})
        if product == "cloud_free":
            interp = [ColorInterp.undefined] * dst.count
            for colour, index in zip((ColorInterp.red, ColorInterp.green, ColorInterp.blue), RGB_INDICES, strict=True):
                interp[index] = colour
            # GTiff wants band 1 to be gray/undefined unless the photometric is RGB; the hint is
            # stored in GDAL's own metadata and survives the COG copy.
            dst.colorinterp = interp
            dst.scales = (REFLECTANCE_SCALE,) * dst.count
            dst.offsets = (0.0,) * dst.count
            dst.update_tags(**CLOUD_FREE_TAGS)
            for i, band in enumerate(S2_BANDS, start=1):
                dst.set_band_description(i, band)
                dst.update_tags(i, BAND=band, UNITS="DN")
        elif product == "degradation_prompt":
            dst.update_tags(**GATE_TAGS)
            dst.update_tags(1, **GATE_TAGS)


def category_sidecar_xml(names: Sequence[str], band: int = 1) -> str:
    """A GDAL PAM document with the category names of one band (codes 0 … K−1, then 255)."""
    categories = "".join(f"<Category>{escape(n)}</Category>" for n in names)
    return (
        f'<PAMDataset>\n  <PAMRasterBand band="{band}">\n'
        f"    <CategoryNames>{categories}</CategoryNames>\n"
        "  </PAMRasterBand>\n</PAMDataset>\n"
    )


def write_category_sidecar(cog_path: str | Path, names: Sequence[str] | None = None) -> Path | None:
    """Write ``<cog>.aux.xml`` with GDAL category names for a land-cover COG.

    ``names`` default to the file's ``LEGEND`` tag (code → name JSON written by the product
    writer); returns ``None`` (nothing written) for a file without one. Only codes 0 … K−1 are
    named (the no-data code 255 is declared as the band's nodata; padding the list to 255 would
    make GDAL print 250 empty categories).
    """
    cog_path = Path(cog_path)
    if names is None:
        with rasterio.open(cog_path) as src:
            legend = src.tags().get("LEGEND")
        if not legend:
            return None
        by_code = {int(k): v for k, v in json.loads(legend).items()}
        names = [by_code.get(code, "") for code in range(max(by_code) + 1)]
    names = list(names)
    sidecar = cog_path.with_name(cog_path.name + ".aux.xml")
    tmp = sidecar.with_name(f".{sidecar.name}.partial")
    tmp.write_text(category_sidecar_xml(names))
    os.replace(tmp, sidecar)
    return sidecar
