"""Overview levels built from streamed rows (inference.overviews) against GDAL's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin

from tdpcr_lib.inference.overviews import OverviewPyramid, overview_sizes

BLOCK = 64


def _products(width: int, height: int) -> dict[str, tuple[np.ndarray, float, str]]:
    """Reflectance-like uint16 with nodata holes, labels full of ties, a float map with NaNs."""
    rng = np.random.default_rng(width * height)
    yy, xx = np.mgrid[0:height, 0:width]
    hole = ((xx - width // 3) ** 2 + (yy - height // 4) ** 2 < (width // 6) ** 2) | (rng.random((height, width)) < 0.05)
    dn = np.stack(
        [1000 + 500 * np.sin(xx / 7 + b) + 400 * np.cos(yy / 5) + rng.normal(0, 50, xx.shape) for b in range(3)]
    )
    dn = dn.clip(1, 60000).astype(np.uint16)
    dn[:, hole] = 0
    labels = rng.integers(0, 5, (height, width)).astype(np.uint8)  # 2 x 2 windows tie often
    labels[hole] = 255
    gate = (np.sin(xx / 5) * np.cos(yy / 4)).astype(np.float32)
    gate[hole] = np.nan
    return {
        "cloud_free": (dn, 0, "AVERAGE"),
        "land_cover": (labels[None], 255, "MODE"),
        "degradation_prompt": (gate[None], float("nan"), "AVERAGE"),
    }


def _profile(width: int, height: int, array: np.ndarray, nodata: float) -> dict:
    return dict(
        driver="GTiff",
        width=width,
        height=height,
        count=array.shape[0],
        dtype=str(array.dtype),
        nodata=nodata,
        crs="EPSG:32633",
        transform=from_origin(500000, 6000000, 10, 10),
    )


def _gdal_levels(path: Path, array: np.ndarray, nodata: float, resampling: str) -> list[np.ndarray]:
    """The overview levels GDAL's COG driver computes from the whole raster."""
    height, width = array.shape[1:]
    with rasterio.open(path, "w", **_profile(width, height, array, nodata)) as dst:
        dst.write(array)
    cog = path.with_suffix(".cog.tif")
    rasterio.shutil.copy(path, cog, driver="COG", blocksize=BLOCK, overview_resampling=resampling)
    with rasterio.open(cog) as src:
        n_levels = len(src.overviews(1))
    levels = []
    for level in range(n_levels):
        with rasterio.open(cog, overview_level=level) as src:
            levels.append(src.read())
    return levels


def _streamed_levels(folder: Path, array: np.ndarray, nodata: float, resampling: str, chunks: list[int]) -> list:
    """The levels of an OverviewPyramid fed with ``array``'s rows in chunks of the given heights."""
    height, width = array.shape[1:]
    folder.mkdir()
    paths: list[Path] = []

    def open_level(level: int, w: int, h: int):
        paths.append(folder / f"level{level}.tif")
        return rasterio.open(paths[-1], "w", **_profile(w, h, array, nodata))

    pyramid = OverviewPyramid(width, height, array.dtype, nodata, resampling.lower(), BLOCK, open_level)
    y0, k = 0, 0
    while y0 < height:
        n = chunks[k % len(chunks)]
        pyramid.add_rows(array[:, y0 : y0 + n])
        y0, k = y0 + n, k + 1
    assert pyramid.complete
    pyramid.close()
    levels = []
    for path in paths:
        with rasterio.open(path) as src:
            levels.append(src.read())
    return levels


@pytest.mark.parametrize(("width", "height"), [(256, 192), (251, 203)])  # exact 2 x 2 blocks; fractional windows
def test_levels_built_from_streamed_strips_equal_gdals(tmp_path, width, height):
    for name, (array, nodata, resampling) in _products(width, height).items():
        reference = _gdal_levels(tmp_path / f"{name}.tif", array, nodata, resampling)
        # strips of varying height, as the strip loop writes them (odd chunk heights too)
        streamed = _streamed_levels(tmp_path / name, array, nodata, resampling, [48, 17, 1, 70])
        assert [level.shape for level in streamed] == [level.shape for level in reference], name
        assert len(streamed) >= 2, "the test needs a level computed from another level"
        for ours, gdal in zip(streamed, reference, strict=True):
            if name == "degradation_prompt":
                np.testing.assert_array_equal(np.isnan(ours), np.isnan(gdal))
                np.testing.assert_allclose(ours, gdal, rtol=1e-6, atol=1e-7)
            else:  # the same DN and the same mode label (ties included) as GDAL
                np.testing.assert_array_equal(ours, gdal, err_msg=name)


def test_level_sizes_are_the_cog_drivers():
    assert overview_sizes(10980, 10980, 512) == [(5490, 5490), (2745, 2745), (1372, 1372), (686, 686), (343, 343)]
    assert overview_sizes(512, 300, 512) == []  # one block holds the scene: no overviews
    assert overview_sizes(513, 20, 512) == [(256, 10)]


def test_unknown_resampling_is_refused():
    with pytest.raises(ValueError, match="average' or 'mode"):
        OverviewPyramid(100, 100, np.uint8, 255, "nearest", 32, lambda *a: None)
