"""Scene prediction for xarray DataArrays (rioxarray)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tdpcr_lib.inference.products import open_prediction
from tdpcr_lib.inference.scene import predict_scene


def predict_dataarrays(
    s2_cloudy: Any,
    s1: Any,
    checkpoint: str | Path | nn.Module,
    *,
    tile: int = 256,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    include_prompt: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Like :func:`predict_scene`, but returns in-memory DataArrays (for notebook users).

    Inputs may be rioxarray DataArrays (dims ``band, y, x``, with a CRS) or GeoTIFF paths. The
    products are written to a scratch folder with the same code path as :func:`predict_scene`
    (so grid, nodata and blending are identical) and read back with :func:`open_prediction`.

    Returns
    -------
    dict of str to xarray.DataArray
        ``cloud_free`` (``band`` coordinate in ``S2_BANDS`` order, ``B01 … B08, B8A, B09 … B12``), ``land_cover`` and, with
        ``include_prompt``, ``degradation_prompt``; all carry the S2 CRS (``da.rio.crs``) and
        transform.
    """
    with tempfile.TemporaryDirectory(prefix="tdpcr-predict-xr-") as tmp:
        paths = predict_scene(
            s2_cloudy,
            s1,
            checkpoint,
            tmp,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            device=device,
            write_prompt=include_prompt,
            progress=progress,
        )
        return open_prediction(paths, load=True)
