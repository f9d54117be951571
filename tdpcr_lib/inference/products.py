"""The GeoTIFF products of a prediction: writing COGs and reading them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import rasterio
import rasterio.shutil

from tdpcr_lib.core.bands import S2_BANDS
from tdpcr_lib.core.io import atomic_path
from tdpcr_lib.core.legend import legend_of_tags
from tdpcr_lib.inference.metadata import apply_product_metadata, write_category_sidecar

#: File names of the products inside ``out_dir``.
OUTPUT_FILES: dict[str, str] = {
    "cloud_free": "cloud_free.tif",
    "land_cover": "land_cover.tif",
    "degradation_prompt": "degradation_prompt.tif",
    "summary": "prediction.json",
}


#: Nodata of ``cloud_free.tif`` (valid pixels are clipped to DN >= 1).
CLOUD_FREE_NODATA = 0


#: Block width and height of the streamed intermediate GTiff. The strips are written in whole
#: rows, so 16-row blocks are complete as soon as they are written: a partly written block never
#: waits in GDAL's block cache (a 256-row block row of a 10980 px wide 13-band product is 73 MB,
#: more than the cache), and the cache can stay small (``scene.GDAL_CACHE_MB``).
_INTERMEDIATE_BLOCK = 256
_INTERMEDIATE_BLOCK_ROWS = 16


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------
def intermediate_profile(src: Any, count: int, dtype: str, nodata: float | None) -> dict:
    block = _INTERMEDIATE_BLOCK
    profile = dict(
        driver="GTiff",
        width=src.width,
        height=src.height,
        count=count,
        dtype=dtype,
        crs=src.crs,
        transform=src.transform,
        nodata=nodata,
        compress="deflate",
        zlevel=1,
        bigtiff="if_safer",
    )
    if src.width >= block and src.height >= block:
        profile.update(tiled=True, blockxsize=block, blockysize=_INTERMEDIATE_BLOCK_ROWS)
    return profile


def to_cog(src_path: Path, dst_path: Path, resampling: str, blocksize: int) -> None:
    """Copy a finished intermediate GTiff into a COG at ``dst_path`` atomically.

    The GIS metadata (:mod:`tdpcr_lib.inference.metadata`) is added to the intermediate first
    (a COG must not be edited in place); a land-cover COG gets its category-name side-car.
    """
    apply_product_metadata(src_path, Path(dst_path).stem)
    with atomic_path(dst_path, suffix=".tif") as tmp:
        rasterio.shutil.copy(
            src_path,
            tmp,
            driver="COG",
            compress="DEFLATE",
            predictor="YES",
            blocksize=blocksize,
            overview_resampling=resampling,
            bigtiff="IF_SAFER",
            num_threads="ALL_CPUS",
        )
    write_category_sidecar(dst_path)


# --------------------------------------------------------------------------------------------
# Reading products back (rioxarray)
# --------------------------------------------------------------------------------------------
def open_prediction(outputs: dict[str, Path] | str | Path, load: bool = False) -> dict[str, Any]:
    """Open written products as rioxarray DataArrays with band coordinates and CRS.

    Parameters
    ----------
    outputs : dict or path
        The dict returned by :func:`predict_scene`, or its ``out_dir``.
    load : bool
        Read the data into memory and close the files (otherwise the arrays are lazy and keep
        the files open; call ``.close()`` on them when done).

    Returns
    -------
    dict of str to xarray.DataArray
        ``cloud_free`` (dims ``band, y, x``, ``band`` = ``B01 … B08, B8A, B09 … B12``, uint16 DN),
        ``land_cover`` (``y, x``, uint8; ``attrs["class_names"]``, ``attrs["class_colours"]``),
        ``degradation_prompt`` (``y, x``, float32) — whichever exist.
    """
    import rioxarray  # lazy: heavy (xarray + pyproj), and only the DataArray API needs it

    if not isinstance(outputs, dict):
        folder = Path(outputs)
        outputs = {k: folder / f for k, f in OUTPUT_FILES.items() if k != "summary" and (folder / f).exists()}
    arrays: dict[str, Any] = {}
    for name in ("cloud_free", "land_cover", "degradation_prompt"):
        path = outputs.get(name)
        if path is None:
            continue
        da = rioxarray.open_rasterio(path)
        if load:
            loaded = da.load()
            da.close()
            da = loaded
        if name == "cloud_free":
            da = da.assign_coords(band=list(S2_BANDS))
            da.attrs["units"] = "L1C DN (reflectance x 10000 + S2_OFFSET_DN)"
            # rioxarray maps GDAL scale/offset to attrs; mask_and_scale=True gives reflectance
            da.attrs["s2_offset_dn"] = int(float(da.attrs.get("S2_OFFSET_DN", 0) or 0))
        else:
            da = da.squeeze("band", drop=True)
        if name == "land_cover":
            legend = legend_of_tags(da.attrs)  # rioxarray puts the GeoTIFF tags in attrs
            da.attrs["class_names"] = list(legend.names)
            da.attrs["class_colours"] = [list(c) for c in legend.colours]
        da.name = name
        arrays[name] = da
    return arrays


def read_summary(outputs: dict[str, Path] | str | Path) -> dict[str, Any]:
    """The ``prediction.json`` written by :func:`predict_scene` (from its dict or ``out_dir``)."""
    path = outputs["summary"] if isinstance(outputs, dict) else Path(outputs) / OUTPUT_FILES["summary"]
    return json.loads(Path(path).read_text())


def describe_outputs(outputs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Layout of each written GeoTIFF (dtype, bands, blocks, overviews, compression, size)."""
    table = {}
    for name, path in outputs.items():
        if Path(path).suffix != ".tif":
            continue
        with rasterio.open(path) as src:
            table[name] = {
                "dtype": src.dtypes[0],
                "bands": src.count,
                "size": f"{src.height}x{src.width}",
                "nodata": src.nodata,
                "crs": str(src.crs),
                "block": src.block_shapes[0],
                "overviews": src.overviews(1),
                "layout": src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "GTiff"),
                "compression": src.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION"),
                "MB": round(Path(path).stat().st_size / 2**20, 2),
            }
    return table
