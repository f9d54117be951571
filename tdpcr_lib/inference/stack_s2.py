"""A Sentinel-2 L1C ``.SAFE`` product → the 13-band GeoTIFF ``tdpcr predict`` reads.

``tdpcr data stack-s2 SAFE_DIR --out s2.tif`` (and :func:`stack_s2_safe`):

* reads ``MTD_MSIL1C.xml``: the processing baseline, ``QUANTIFICATION_VALUE`` (must be 10000)
  and ``RADIO_ADD_OFFSET`` (−1000 for every band from baseline 04.00; none before);
* finds the one granule's 13 band files ``GRANULE/*/IMG_DATA/*_B01.jp2 … *_B12.jp2`` and checks
  each: readable, one band, uint16, the CRS of the 10 m bands, the band's nominal resolution
  (10, 20 or 60 m) and the 10 m footprint;
* resamples the 20 m and 60 m bands onto the 10 m grid of B02 (bilinear: reflectance is
  continuous; GDAL's warper leaves L1C no-data (0) out of the kernel, so the swath edge is
  neither darkened nor extended) and writes the bands in the project's order
  (:data:`tdpcr_lib.core.bands.S2_BANDS`, B8A after B08) as a tiled, deflate-compressed uint16
  GeoTIFF, atomically;
* keeps the offset: tags ``S2_OFFSET_DN`` and ``RADIO_ADD_OFFSET`` and GDAL scale 1e-4 / offset
  ``−offset × 1e-4``, so ``tdpcr predict --s2-offset auto`` and GIS readers use it
  (:mod:`tdpcr_lib.inference.offset`).

A full tile (10980 × 10980 px) needs about 0.5 GB of memory (one band at a time) and writes
about 2 GB.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from tdpcr_lib.core.bands import S2_BANDS
from tdpcr_lib.core.io import atomic_path
from tdpcr_lib.inference.inputs import PredictionInputError
from tdpcr_lib.inference.offset import OFFSET_TAG, QUANTIFICATION

#: Nominal resolution (m) of each L1C band.
RESOLUTION_M: dict[str, int] = {
    "B01": 60,
    "B02": 10,
    "B03": 10,
    "B04": 10,
    "B05": 20,
    "B06": 20,
    "B07": 20,
    "B08": 10,
    "B8A": 20,
    "B09": 60,
    "B10": 60,
    "B11": 20,
    "B12": 20,
}

#: The band whose grid the stack takes (a 10 m band).
REFERENCE_BAND = "B02"

#: The first processing baseline with the +1000 DN offset.
OFFSET_BASELINE = 4.0


class SafeProductError(PredictionInputError):
    """A ``.SAFE`` folder is not a usable Sentinel-2 L1C product (the message says why)."""


def _text(root: ET.Element, tag: str) -> str | None:
    """Text of the first element named ``tag`` (namespace ignored)."""
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == tag and element.text:
            return element.text.strip()
    return None


def read_l1c_metadata(safe: Path) -> dict[str, Any]:
    """Baseline, quantification, per-band offsets and product id from ``MTD_MSIL1C.xml``."""
    mtd = safe / "MTD_MSIL1C.xml"
    if not mtd.is_file():
        if list(safe.glob("MTD_MSIL2A.xml")):
            raise SafeProductError(
                f"{safe} is a Level-2A product; tdpcr models take Level-1C "
                "(13 bands with B10): download the L1C product of the scene"
            )
        raise SafeProductError(
            f"{safe}: no MTD_MSIL1C.xml; not a Sentinel-2 L1C .SAFE folder (unzip the downloaded product first)"
        )
    try:
        root = ET.parse(mtd).getroot()
    except ET.ParseError as err:
        raise SafeProductError(f"{mtd}: not valid XML ({err})") from None
    baseline_text = _text(root, "PROCESSING_BASELINE")
    quantification = _text(root, "QUANTIFICATION_VALUE")
    try:
        baseline = float(baseline_text) if baseline_text else None
        quant = float(quantification) if quantification else None
    except ValueError:
        raise SafeProductError(
            f"{mtd}: unreadable PROCESSING_BASELINE {baseline_text!r} or QUANTIFICATION_VALUE {quantification!r}"
        ) from None
    if quant is not None and quant != QUANTIFICATION:
        raise SafeProductError(
            f"{mtd}: QUANTIFICATION_VALUE is {quant:g}; tdpcr expects {QUANTIFICATION:g} (reflectance x 10000)"
        )
    offsets = {}
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "RADIO_ADD_OFFSET":
            try:
                offsets[int(element.get("band_id", "-1"))] = int(float(element.text or ""))
            except ValueError:
                raise SafeProductError(f"{mtd}: unreadable RADIO_ADD_OFFSET {element.text!r}") from None
    if offsets:
        if set(offsets.values()) != {next(iter(offsets.values()))}:
            raise SafeProductError(
                f"{mtd}: RADIO_ADD_OFFSET differs between bands "
                f"({sorted(set(offsets.values()))}); tdpcr supports one "
                "offset for all bands"
            )
        offset = -next(iter(offsets.values()))
    elif baseline is not None and baseline >= OFFSET_BASELINE:
        raise SafeProductError(
            f"{mtd}: processing baseline {baseline_text} should state "
            "RADIO_ADD_OFFSET (introduced with 04.00) but does not"
        )
    else:
        offset = 0
    return {
        "baseline": baseline_text,
        "offset": offset,
        "product": safe.name.removesuffix(".SAFE"),
        "sensing": _text(root, "PRODUCT_START_TIME"),
    }


def find_band_files(safe: Path) -> dict[str, Path]:
    """The JP2 file of each band in the product's single granule."""
    granules = sorted(p for p in (safe / "GRANULE").glob("*") if p.is_dir())
    if len(granules) != 1:
        raise SafeProductError(
            f"{safe}: expected one granule in GRANULE/, found "
            f"{len(granules)} (products before 2016 held several tiles; "
            "tdpcr stacks single-tile products)"
        )
    img = granules[0] / "IMG_DATA"
    files = {}
    for band in S2_BANDS:
        found = sorted(img.glob(f"*_{band}.jp2"))
        if len(found) != 1:
            raise SafeProductError(f"{img}: expected one *_{band}.jp2, found {len(found)}")
        files[band] = found[0]
    return files


def _resolution(src: Any) -> float:
    return float(abs(src.transform.a))


def _check_band(src: Any, band: str, path: Path, reference: Any) -> None:
    if src.count != 1 or src.dtypes[0] != "uint16":
        raise SafeProductError(
            f"{path}: expected one uint16 band for {band}, found {src.count} band(s) of {src.dtypes[0]}"
        )
    if src.crs != reference.crs:
        raise SafeProductError(f"{path}: CRS {src.crs} differs from {REFERENCE_BAND}'s {reference.crs}")
    if abs(_resolution(src) - RESOLUTION_M[band]) > 1e-6:
        raise SafeProductError(f"{path}: {band} has {_resolution(src):g} m pixels, expected {RESOLUTION_M[band]} m")
    if not all(abs(a - b) < _resolution(src) for a, b in zip(src.bounds, reference.bounds, strict=True)):
        raise SafeProductError(
            f"{path}: {band} covers {tuple(src.bounds)}, not the footprint "
            f"of {REFERENCE_BAND} {tuple(reference.bounds)}"
        )


def _open(path: Path) -> Any:
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioError as err:
        raise SafeProductError(f"{path}: cannot be read as JPEG 2000 ({err})") from None


def stack_s2_safe(safe_dir: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Write the 13-band L1C GeoTIFF of a ``.SAFE`` product (see the module docstring).

    Raises
    ------
    FileNotFoundError
        ``safe_dir`` does not exist.
    FileExistsError
        ``out`` exists and ``overwrite`` is not set.
    SafeProductError
        The product is not a readable single-tile L1C product (the message names the file).
    """
    safe, out = Path(safe_dir), Path(out)
    if not safe.exists():
        raise FileNotFoundError(f"Sentinel-2 product {safe} does not exist")
    if not safe.is_dir():
        raise SafeProductError(f"{safe} is not a folder; unzip the .SAFE product first")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    meta = read_l1c_metadata(safe)
    files = find_band_files(safe)
    with _open(files[REFERENCE_BAND]) as reference:
        profile = dict(
            driver="GTiff",
            width=reference.width,
            height=reference.height,
            count=len(S2_BANDS),
            dtype="uint16",
            crs=reference.crs,
            transform=reference.transform,
            nodata=0,
            tiled=True,
            blockxsize=512,
            blockysize=512,
            compress="deflate",
            predictor=2,
            bigtiff="if_safer",
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out, suffix=".tif") as tmp, rasterio.open(tmp, "w", **profile) as dst:
            for index, band in enumerate(S2_BANDS, start=1):
                with _open(files[band]) as src:
                    _check_band(src, band, files[band], reference)
                    dst.write(_read_on_grid(src, files[band], reference), index)
                dst.set_band_description(index, band)
                dst.update_tags(index, BAND=band, NATIVE_RESOLUTION_M=str(RESOLUTION_M[band]))
            dst.scales = (1 / QUANTIFICATION,) * len(S2_BANDS)
            dst.offsets = (-meta["offset"] / QUANTIFICATION,) * len(S2_BANDS)
            dst.update_tags(
                **{
                    OFFSET_TAG: str(meta["offset"]),
                    "RADIO_ADD_OFFSET": str(-meta["offset"]),
                    "PROCESSING_BASELINE": meta["baseline"] or "unknown",
                    "PRODUCT": meta["product"],
                    "SENSING_TIME": meta["sensing"] or "",
                    "BAND_ORDER": ",".join(S2_BANDS),
                    "RESAMPLING": "20 m and 60 m bands: bilinear onto the 10 m grid",
                    "UNITS": "L1C DN = reflectance x 10000 + S2_OFFSET_DN",
                }
            )
    return out


def _read_on_grid(src: Any, path: Path, reference: Any) -> np.ndarray:
    """One band on the 10 m grid of ``reference``: bilinear, L1C no-data (0) left out.

    GDAL's warper with source no-data 0 leaves no-data pixels out of the bilinear kernel, so the
    edge of the swath is neither darkened nor extended.
    """
    try:
        if (src.height, src.width) == (reference.height, reference.width):
            return src.read(1)
        with WarpedVRT(
            src,
            crs=reference.crs,
            transform=reference.transform,
            width=reference.width,
            height=reference.height,
            resampling=Resampling.bilinear,
            src_nodata=0,
            nodata=0,
        ) as vrt:
            return vrt.read(1)
    except rasterio.errors.RasterioError as err:
        raise SafeProductError(f"{path}: cannot be decoded ({err})") from None
