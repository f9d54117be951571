"""The radiometric offset of Sentinel-2 L1C DN: what an input declares, what a model expects.

Sentinel-2 products of processing baseline >= 04.00 (acquisitions from 25 Jan 2022) store
``DN = reflectance x 10000 + 1000``; ESA's metadata states it as ``RADIO_ADD_OFFSET = -1000``
(L1C) or ``BOA_ADD_OFFSET`` (L2A). Older products, and SEN12MS-CR, have no offset. A model
keeps the convention of the data it was trained on (LuojiaSET-OSFCR and its synthetic twin:
+1000; SEN12MS-CR: 0), so prediction

1. finds the input's offset (:func:`declared_s2_offset`, or the user's ``--s2-offset``; a file
   that declares nothing is judged by its content, :func:`offset_from_content`, and only a
   file whose content cannot tell falls back on the model's convention);
2. shifts the input into the model's convention before normalising (``+ model - input`` DN);
3. shifts the reconstruction back into the input's convention, and declares it in
   ``cloud_free.tif`` as GDAL scale 1e-4 and offset ``-offset x 1e-4``, so GDAL, QGIS and
   ``rioxarray.open_rasterio(mask_and_scale=True)`` read reflectance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tdpcr_lib.core.bands import S2_BANDS

#: ``--s2-offset`` choices (DN); ``auto`` reads the input's metadata, else the model's convention.
S2_OFFSET_CHOICES: tuple[str, ...] = ("auto", "0", "1000")

#: DN offset of the data each packaged legend's dataset was published with.
OFFSET_OF_LEGEND: dict[str, int] = {"luojiaset": 1000, "igbp_simplified": 0}

#: Dataset named in messages, per legend.
DATASET_OF_LEGEND: dict[str, str] = {
    "luojiaset": "LuojiaSET-OSFCR (and its synthetic twin)",
    "igbp_simplified": "SEN12MS-CR",
}

#: GeoTIFF tag in which tdpcr (``cloud_free.tif``, ``tdpcr data stack-s2``) states the offset.
OFFSET_TAG = "S2_OFFSET_DN"

#: Tags in ESA's convention (value = -offset DN), as GDAL's SENTINEL2 driver and SNAP export them.
_ESA_TAGS: tuple[str, ...] = ("RADIO_ADD_OFFSET", "BOA_ADD_OFFSET")

#: Reflectance per DN.
QUANTIFICATION = 10000.0


def _as_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def offset_from_tags(tags: Mapping[str, str]) -> int | None:
    """The DN offset one tag set states (tdpcr's :data:`OFFSET_TAG` or ESA's), or ``None``."""
    value = _as_number(tags.get(OFFSET_TAG))
    if value is not None:
        return int(round(value))
    for key, raw in tags.items():
        # per-band variants: RADIO_ADD_OFFSET_B02, BOA_ADD_OFFSET_B8A, ...
        if any(key.upper().startswith(esa) for esa in _ESA_TAGS):
            value = _as_number(raw)
            if value is not None:
                return int(round(-value))
    return None


def declared_s2_offset(src: Any) -> tuple[int | None, str]:
    """The offset (DN) an open Sentinel-2 dataset declares, and where it was found.

    Looks at the dataset's tags, then each band's tags, then GDAL band scale/offset (a scale of
    1e-4 with a non-zero offset, as GDAL's SENTINEL2 driver and tdpcr's products write it).
    Returns ``(None, "")`` when the file says nothing.
    """
    found = offset_from_tags(src.tags())
    if found is not None:
        return found, "dataset tags"
    for band in range(1, src.count + 1):
        found = offset_from_tags(src.tags(band))
        if found is not None:
            return found, f"band {band} tags"
    scales, offsets = src.scales, src.offsets
    if scales and offsets and abs(scales[0] - 1 / QUANTIFICATION) < 1e-9 and offsets[0]:
        return int(round(-offsets[0] * QUANTIFICATION)), "GDAL band offset"
    return None, ""


#: Position of B10 (cirrus, 1375 nm) in the 13-band order.
B10_INDEX = S2_BANDS.index("B10")
#: Below this 1st-percentile DN a file cannot carry the +1000 offset (its darkest pixels would be
#: at reflectance < -0.05, far beyond sensor noise); at or above ``OFFSET_FLOOR_DN`` in every band
#: it looks offset. In between, the content cannot tell.
NO_OFFSET_BELOW_DN, OFFSET_FLOOR_DN = 500.0, 1000.0


def offset_from_content(sample: Any) -> tuple[int | None, str]:
    """The offset a Sentinel-2 scene's pixel values imply, and the evidence, or ``(None, ...)``.

    ``sample`` is ``(13, n)`` DN of valid pixels (nodata removed). The water-vapour band B10
    sees almost no ground: its clear-sky reflectance is about 0.001-0.02, so without the offset
    its darkest pixels sit at tens of DN, with it at >= 1000. The 1st percentile of each band
    (robust to a few odd pixels) decides: any band below 500 DN means no offset; every band at
    1000 DN or above means +1000 (a scene entirely under thick high cloud can look the same,
    hence the fallback on ``--s2-offset``).
    """
    import numpy as np

    values = np.asarray(sample)  # no float copy: this runs inside prediction's memory bound
    if values.shape[1] < 100:
        return None, "too few valid pixels to judge"
    floor = np.percentile(values, 1, axis=1)  # one value per band, in S2_BANDS order
    darkest = int(np.argmin(floor))
    if float(floor[darkest]) < NO_OFFSET_BELOW_DN:
        return 0, f"the 1st percentile of {S2_BANDS[darkest]} is {floor[darkest]:.0f} DN, impossible with +1000"
    if float(floor[darkest]) >= OFFSET_FLOOR_DN:
        return 1000, f"every band's 1st percentile is >= 1000 DN (B10: {floor[B10_INDEX]:.0f} DN)"
    return None, f"1st percentiles {floor.min():.0f}-{floor.max():.0f} DN do not tell"


def model_s2_offset(legend: str | None) -> int:
    """The DN offset of the data a model with ``legend`` was trained on (default LuojiaSET's)."""
    return OFFSET_OF_LEGEND.get(legend or "luojiaset", 1000)


def resolve_s2_offset(
    requested: str | int, src: Any, path: Any, legend: str | None, content: tuple[int | None, str] | None = None
) -> tuple[int, str]:
    """The input offset to use and one line saying why.

    Parameters
    ----------
    requested : {"auto", 0, 1000}
        ``--s2-offset``. An explicit value wins over the file's metadata (a conflict is said).
    src, path
        The open Sentinel-2 dataset and its path (for the message).
    legend
        The model's legend name (its training data's convention).
    content
        What the scene's pixels imply, ``(offset or None, evidence)`` from
        :func:`offset_from_content`, used when the file declares nothing; ``None`` skips it.
    """
    declared, where = declared_s2_offset(src)
    model = model_s2_offset(legend)
    dataset = DATASET_OF_LEGEND.get(legend or "luojiaset", str(legend))
    if str(requested) != "auto":
        offset = int(requested)
        note = f"Sentinel-2 offset: {offset} DN (--s2-offset)"
        if declared is not None and declared != offset:
            note += f"; note that {path} declares {declared} DN ({where})"
        return offset, note
    if declared is not None:
        return declared, f"Sentinel-2 offset: {declared} DN, declared by {path} ({where})"
    measured, evidence = content if content is not None else (None, "")
    if measured is not None:
        note = f"Sentinel-2 offset: {path} declares none; its content says {measured} DN ({evidence})"
        if measured != model:
            note += f", unlike the {model} DN of the checkpoint's training data ({dataset})"
        return measured, note + "; pass --s2-offset 0 or 1000 to state it"
    return model, (
        f"Sentinel-2 offset: {path} declares none{' and ' + evidence if evidence else ''}; assuming {model} DN, the "
        f"convention of the checkpoint's training data ({dataset}); pass "
        "--s2-offset 0 or 1000 to state it"
    )


def check_s2_offset(value: Any) -> str | int:
    """``value`` if it is an allowed ``s2_offset``; ``ValueError`` otherwise."""
    if str(value) not in S2_OFFSET_CHOICES or isinstance(value, bool):
        raise ValueError(f"s2_offset must be one of {', '.join(S2_OFFSET_CHOICES)}, got {value!r}")
    return value if str(value) == "auto" else int(value)
