"""Publishing a prediction's products as one unit, and recovering after a crash.

The products (``cloud_free.tif``, ``land_cover.tif``, ``degradation_prompt.tif``,
``prediction.json``) share ``--out`` with whatever else the user keeps there, so the folder itself
cannot be swapped. Instead:

1. everything is written into a hidden staging folder ``<out>/.tdpcr-predict-<id>.staging``,
   ``prediction.json`` last (a staging folder without it is incomplete and is discarded);
2. the complete staging folder is renamed to ``<out>/.tdpcr-publish`` (one atomic rename: from
   here on the new set *will* be published, even after a crash);
3. :func:`roll_forward` then removes the old ``prediction.json``, removes the old products the
   new set does not contain, renames the new products in, renames the new ``prediction.json`` in
   (last) and removes ``.tdpcr-publish``.

Step 3 is idempotent and driven by the new ``prediction.json`` still inside ``.tdpcr-publish``;
the next prediction into the same folder finishes it before doing anything else
(:func:`recover_products`). So ``prediction.json`` is either absent (mid-publish) or describes
exactly the products beside it. Only files carrying tdpcr's own marks are ever deleted: a product
name held by a file tdpcr did not write makes the run refuse before any work
(:func:`check_replaceable`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import rasterio

from tdpcr_lib.inference.inputs import PredictionInputError
from tdpcr_lib.inference.products import OUTPUT_FILES

#: The staging folder that is being published (the roll-forward record).
PUBLISH_DIR = ".tdpcr-publish"


STAGING_PREFIX = ".tdpcr-predict-"


STAGING_SUFFIX = ".staging"


#: TIFF tag every product carries (``scene.py`` writes it).
PRODUCT_TAG = "TDPCR_VERSION"
#: GDAL writes metadata it cannot keep inside a GeoTIFF (category names) to ``<file>.aux.xml``.
SIDECAR_SUFFIX = ".aux.xml"


RASTER_PRODUCTS = tuple(k for k in OUTPUT_FILES if k != "summary")


def written_by_tdpcr(path: Path) -> bool:
    """Whether an existing product file was written by tdpcr (its tag or JSON field)."""
    if path.name == OUTPUT_FILES["summary"]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and "tdpcr_version" in data
    try:
        with rasterio.open(path) as src:
            return PRODUCT_TAG in src.tags()
    except (OSError, rasterio.errors.RasterioError):
        return False


def check_replaceable(out_dir: Path) -> None:
    """Refuse (before any work) when a product name in ``out_dir`` is taken by a foreign file."""
    for name in OUTPUT_FILES.values():
        path = out_dir / name
        if (path.exists() or path.is_symlink()) and not (path.is_file() and written_by_tdpcr(path)):
            raise PredictionInputError(
                f"{path} exists and was not written by tdpcr; it would be replaced by this "
                "prediction. Move it away or choose another output folder (--out)"
            )


def new_staging(out_dir: Path) -> Path:
    """A fresh hidden staging folder inside ``out_dir`` (same file system: renames are atomic)."""
    staging = out_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}{STAGING_SUFFIX}"
    staging.mkdir(parents=True)
    return staging


def publish(staging: Path, out_dir: Path) -> None:
    """Publish a complete staging folder (``prediction.json`` inside) as ``out_dir``'s products."""
    if not (staging / OUTPUT_FILES["summary"]).is_file():
        raise RuntimeError(f"{staging}: incomplete staging folder (no prediction.json)")
    if (out_dir / PUBLISH_DIR).is_dir():
        roll_forward(out_dir)  # an older interrupted publish is finished first
    os.rename(staging, out_dir / PUBLISH_DIR)
    roll_forward(out_dir)


def roll_forward(out_dir: Path) -> None:
    """Finish publishing ``out_dir/.tdpcr-publish`` (idempotent; see the module docstring)."""
    pending = out_dir / PUBLISH_DIR
    summary = pending / OUTPUT_FILES["summary"]
    if summary.is_file():
        new = set(json.loads(summary.read_text()).get("outputs", {}))
        old_summary = out_dir / OUTPUT_FILES["summary"]
        if old_summary.is_file() and written_by_tdpcr(old_summary):
            old_summary.unlink()  # first: no prediction.json may describe a mixed set
        for name in RASTER_PRODUCTS:
            target = out_dir / OUTPUT_FILES[name]
            # GDAL's side file (category names of land_cover.tif) travels with its raster
            sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
            if (pending / OUTPUT_FILES[name]).is_file():
                if (pending / sidecar.name).is_file():
                    os.replace(pending / sidecar.name, sidecar)
                elif sidecar.is_file():
                    sidecar.unlink()
                os.replace(pending / OUTPUT_FILES[name], target)
            elif name not in new and target.is_file() and written_by_tdpcr(target):
                target.unlink()  # a product of an earlier run the new one does not write
                sidecar.unlink(missing_ok=True)
        os.replace(summary, out_dir / OUTPUT_FILES["summary"])  # last: the set is complete
    shutil.rmtree(pending, ignore_errors=True)


def recover_products(out_dir: Path) -> list[str]:
    """Finish an interrupted publish and remove leftovers of killed runs; returns what was done.

    Removed: staging folders of runs killed before publishing, and hidden temporaries of product
    files (``.cloud_free.*.partial.tif`` and the like, also from tdpcr versions that wrote them
    beside the products). Call with one prediction per folder at a time.
    """
    actions: list[str] = []
    if not out_dir.is_dir():
        return actions
    if (out_dir / PUBLISH_DIR).is_dir():
        roll_forward(out_dir)
        actions.append("finished publishing the products of an interrupted run")
    for staging in out_dir.glob(f"{STAGING_PREFIX}*{STAGING_SUFFIX}"):
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
            actions.append(f"removed the staging folder {staging.name} of an interrupted run")
    for name in OUTPUT_FILES.values():
        stem = Path(name).stem
        # scene.py's ".<product>.<random>.partial.tif" and core.io.atomic_path's
        # ".<file>.<random><suffix>" temporaries
        for tmp in [*out_dir.glob(f".{stem}.*.partial.tif"), *out_dir.glob(f".{name}.*")]:
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                actions.append(f"removed the temporary {tmp.name}")
    return actions
