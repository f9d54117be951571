"""One synthetic tile's content: the cloud-cover range of each bucket and :func:`generate_tile`,
which draws a calibrated scene, its clouds and its SAR (see :mod:`.tiles` for the files)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.datasets.synthetic.calibration import draw_conditions
from tdpcr_lib.datasets.synthetic.clouds import simulate_clouds
from tdpcr_lib.datasets.synthetic.landscape import (
    change_ground,
    make_clear_reflectance,
    make_land_cover,
    make_sar_db,
    reflectance_to_dn,
)


# --------------------------------------------------------------------------------------------
# Tiles
# --------------------------------------------------------------------------------------------
def bucket_fraction_range(bucket: str, margin: float = 0.02) -> tuple[float, float]:
    """Cloud-fraction interval a bucket's tiles are drawn from (bucket range shrunk by ``margin``)."""
    index = BUCKETS.index(bucket)
    return 0.2 * index + margin, 0.2 * (index + 1) - margin


def generate_tile(
    size: int, seed: int | np.random.SeedSequence, cloud_fraction: float, cloud_kind: str | None = None
) -> dict[str, Any]:
    """All five modalities of one synthetic tile, in file units.

    Returns
    -------
    dict
        ``s2`` (13, H, W) uint16, ``s2_cloudy`` (13, H, W) uint16, ``s1`` (2, H, W) float32 dB,
        ``land_cover_maps`` (1, H, W) uint8, ``cloud_detection_results`` (1, H, W) float32, and
        ``info`` (cloud parameters).
    """
    rng = np.random.default_rng(seed)
    labels = make_land_cover(size, rng)
    conditions = draw_conditions(rng)
    clear = make_clear_reflectance(labels, rng, conditions)
    sar = make_sar_db(labels, rng)
    ground = change_ground(clear, labels, rng)
    cloudy, mask, info = simulate_clouds(
        clear, cloud_fraction, rng, kind=cloud_kind, ground=ground, conditions=conditions
    )
    info = {**info, **conditions}
    return {
        "s2": reflectance_to_dn(clear),
        "s2_cloudy": reflectance_to_dn(cloudy),
        "s1": sar,
        "land_cover_maps": labels[None],
        "cloud_detection_results": mask[None],
        "info": info,
    }
