"""``tdpcr data stack-s2``: a fake Sentinel-2 L1C ``.SAFE`` tree with JPEG 2000 bands, made here."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rioxarray
from rasterio.transform import from_origin

from tdpcr_lib.cli import data as data_cli
from tdpcr_lib.core.bands import S2_BANDS
from tdpcr_lib.inference.offset import declared_s2_offset
from tdpcr_lib.inference.stack_s2 import RESOLUTION_M, SafeProductError, stack_s2_safe

WEST, NORTH, SIZE_M = 600000.0, 5000040.0, 600.0  # 60 x 60 px at 10 m
GRANULE = "GRANULE/L1C_T32TQM_A039000_20230101T101411/IMG_DATA"

MTD = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-1C_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd">
  <n1:General_Info><Product_Info>
    <PRODUCT_START_TIME>2023-01-01T10:14:11.024Z</PRODUCT_START_TIME>
    <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
  </Product_Info>
  <Product_Image_Characteristics>
    <QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>
    {offsets}
  </Product_Image_Characteristics></n1:General_Info>
</n1:Level-1C_User_Product>
"""


def field(band: str, resolution: float) -> np.ndarray:
    """A plane in map coordinates at the band's pixel centres (bilinear reproduces it exactly),
    with a per-band level so the band order shows."""
    n = int(SIZE_M / resolution)
    centres = (np.arange(n) + 0.5) * resolution
    level = 1500 + 200 * S2_BANDS.index(band)
    return (level + 2.0 * centres[None, :] + 1.0 * centres[:, None]).astype(np.uint16)


def make_safe(root, baseline="05.09", offset=-1000, bands=S2_BANDS, resolution=None, nodata_corner=False):
    safe = root / "S2A_MSIL1C_20230101T101411_N0509_R022_T32TQM_20230101T121500.SAFE"
    img = safe / GRANULE
    img.mkdir(parents=True)
    offsets = (
        ""
        if offset is None
        else "<Radiometric_Offset_List>"
        + "".join(f'<RADIO_ADD_OFFSET band_id="{i}">{offset}</RADIO_ADD_OFFSET>' for i in range(13))
        + "</Radiometric_Offset_List>"
    )
    (safe / "MTD_MSIL1C.xml").write_text(MTD.format(baseline=baseline, offsets=offsets))
    for band in bands:
        res = (resolution or {}).get(band, RESOLUTION_M[band])
        data = field(band, res)
        if nodata_corner:
            data[: int(120 / res), : int(120 / res)] = 0  # a 120 m no-data corner
        with rasterio.open(
            img / f"T32TQM_20230101T101411_{band}.jp2",
            "w",
            driver="JP2OpenJPEG",
            width=data.shape[1],
            height=data.shape[0],
            count=1,
            dtype="uint16",
            crs="EPSG:32632",
            transform=from_origin(WEST, NORTH, res, res),
            QUALITY=100,
            REVERSIBLE="YES",
        ) as dst:  # lossless
            dst.write(data, 1)
    return safe


def test_jp2_driver_is_available():
    with rasterio.Env() as env:
        assert "JP2OpenJPEG" in env.drivers()


def test_stack_has_the_project_band_order_on_the_10m_grid(tmp_path):
    safe = make_safe(tmp_path)
    out = stack_s2_safe(safe, tmp_path / "s2.tif")
    with rasterio.open(out) as src:
        assert src.count == 13 and src.dtypes == ("uint16",) * 13
        assert src.descriptions == S2_BANDS and src.crs.to_epsg() == 32632
        assert (src.height, src.width) == (60, 60)
        assert src.transform == from_origin(WEST, NORTH, 10, 10)
        stack = src.read().astype(float)
        tags = src.tags()
    for i, band in enumerate(S2_BANDS):
        truth = field(band, 10.0).astype(float)
        if RESOLUTION_M[band] == 10:
            np.testing.assert_array_equal(stack[i], truth, err_msg=band)
        else:  # bilinear: exact for a plane inside the outer half coarse pixel
            margin = RESOLUTION_M[band] // 20 + 1
            inner = (slice(margin, -margin),) * 2
            np.testing.assert_allclose(stack[i][inner], truth[inner], atol=1, err_msg=band)
    assert tags["S2_OFFSET_DN"] == "1000" and tags["PROCESSING_BASELINE"] == "05.09"
    assert tags["BAND_ORDER"] == ",".join(S2_BANDS)


def test_offset_is_kept_for_predict_and_gis(tmp_path):
    out = stack_s2_safe(make_safe(tmp_path), tmp_path / "s2.tif")
    with rasterio.open(out) as src:
        assert declared_s2_offset(src)[0] == 1000
        dn = src.read(2).astype(float)
    with rioxarray.open_rasterio(out, mask_and_scale=True) as da:
        np.testing.assert_allclose(da.values[1], (dn - 1000) / 1e4, atol=1e-6)
    (tmp_path / "old").mkdir()
    old = stack_s2_safe(make_safe(tmp_path / "old", baseline="02.09", offset=None), tmp_path / "old.tif")
    with rasterio.open(old) as src:
        assert declared_s2_offset(src)[0] == 0 and src.tags()["S2_OFFSET_DN"] == "0"


def test_no_data_is_neither_darkened_nor_extended(tmp_path):
    out = stack_s2_safe(make_safe(tmp_path, nodata_corner=True), tmp_path / "s2.tif")
    with rasterio.open(out) as src:
        stack = src.read()
    assert (stack[:, :12, :12] == 0).all()
    for i, band in enumerate(S2_BANDS):
        valid = stack[i] > 0
        valid[:12, :12] = False
        # no valid pixel pulled towards 0 by the no-data corner
        assert stack[i][valid].min() >= field(band, 10.0).min() - 1, band


def _cli(tmp_path, safe, capsys, *extra):
    status = data_cli.main(["stack-s2", str(safe), "--out", str(tmp_path / "s2.tif"), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_writes_and_reports(tmp_path, capsys):
    status, out, err = _cli(tmp_path, make_safe(tmp_path), capsys)
    assert status == 0 and "13 bands" in out and "offset 1000 DN" in out
    status, out, err = _cli(tmp_path, tmp_path / "missing.SAFE", capsys)
    assert status == 3 and "does not exist" in err


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bands": [b for b in S2_BANDS if b != "B10"]}, "_B10.jp2, found 0"),
        ({"resolution": {"B05": 10.0}}, "B05 has 10 m pixels, expected 20 m"),
        ({"baseline": "04.00", "offset": None}, "should state RADIO_ADD_OFFSET"),
    ],
)
def test_bad_products_are_one_line_naming_the_file(tmp_path, capsys, kwargs, match):
    safe = make_safe(tmp_path, **kwargs)
    status, out, err = _cli(tmp_path, safe, capsys)
    assert status == 4 and match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s2.tif").exists()


def test_corrupt_band_and_level2a_are_named(tmp_path, capsys):
    safe = make_safe(tmp_path)
    band = next((safe / GRANULE).glob("*_B11.jp2"))
    band.write_bytes(b"\x00\x00\x00\x0cjP  " + b"garbage" * 10)
    with pytest.raises(SafeProductError, match="B11.jp2"):
        stack_s2_safe(safe, tmp_path / "s2.tif")
    (safe / "MTD_MSIL1C.xml").rename(safe / "MTD_MSIL2A.xml")
    with pytest.raises(SafeProductError, match="Level-2A"):
        stack_s2_safe(safe, tmp_path / "s2.tif")


def test_existing_output_needs_overwrite(tmp_path, capsys):
    safe = make_safe(tmp_path)
    (tmp_path / "s2.tif").write_text("mine")
    status, _, err = _cli(tmp_path, safe, capsys)
    assert status == 2 and "--overwrite" in err
    assert (tmp_path / "s2.tif").read_text() == "mine"
    status, _, _ = _cli(tmp_path, safe, capsys, "--overwrite")
    assert status == 0
