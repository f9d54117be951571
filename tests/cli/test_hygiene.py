"""Project hygiene: LICENSE, CITATION.cff, ``tdpcr --version``, QGIS styles published with products."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import tdpcr_lib
from tdpcr_lib.cli import main as cli_main
from tdpcr_lib.core.legend import load_legend
from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.inference import scene as P
from tdpcr_lib.inference.styles import STYLE_MARK

ROOT = Path(__file__).resolve().parents[2]


def test_license_is_the_mit_text_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_citation_cites_the_package_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert str(cff["version"]) == project["version"] == tdpcr_lib.__version__
    assert cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert [a["family-names"] for a in paper["authors"]] == ["Zhang", "Li", "Shi", "Yuan"]
    assert "IGARSS 2026" in paper["collection-title"] and paper["year"] == 2026
    assert paper["identifiers"][0]["value"] == "arXiv:2601.12052"


def test_version_flag(capsys):
    assert cli_main.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tdpcr {tdpcr_lib.__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "tdpcr_lib.cli.main", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert re.fullmatch(r"tdpcr \d+\.\d+\.\d+\S*\n", out)


class Segmenter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv2d(15, 13 + 7 + 1, 1)

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict:
        y = self.mix(torch.cat([optical, sar], dim=1))
        gate = torch.sigmoid(y[:, -1:])
        return {
            "reconstruction": torch.sigmoid(y[:, :13]),
            "segmentation": y[:, 13:-1],
            "prompts": [gate, gate[..., ::2, ::2], gate[..., ::4, ::4], gate[..., ::8, ::8]],
        }


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_synthetic_scene(tmp_path_factory.mktemp("scene"), 64, 80, seed=2)


def _predict(scene, out, write_prompt):
    return P.predict_scene(
        scene.s2_cloudy,
        scene.s1,
        Segmenter(),
        out,
        tile=64,
        overlap=16,
        progress=False,
        device="cpu",
        write_prompt=write_prompt,
    )


def test_qgis_styles_are_published_with_the_products(scene, tmp_path):
    out = tmp_path / "out"
    _predict(scene, out, write_prompt=True)
    legend = load_legend()
    land = ET.parse(out / "land_cover.qml").getroot()  # well-formed XML
    entries = land.findall(".//rasterrenderer[@type='paletted']/colorPalette/paletteEntry")
    assert [int(e.get("value")) for e in entries] == list(legend.codes)
    assert [e.get("label") for e in entries] == list(legend.names)
    assert [e.get("color") for e in entries] == ["#{:02x}{:02x}{:02x}".format(*c) for c in legend.colours]
    prompt = ET.parse(out / "degradation_prompt.qml").getroot()
    shader = prompt.find(".//rasterrenderer[@type='singlebandpseudocolor']//colorrampshader")
    assert (shader.get("minimumValue"), shader.get("maximumValue")) == ("0", "1")
    assert len(shader.findall("item")) >= 2
    assert not list(out.glob(".*")), "no staging or temporaries left"
    # the next set has no prompt map: its style goes with it, the land-cover style stays
    _predict(scene, out, write_prompt=False)
    assert (out / "land_cover.qml").is_file() and not (out / "degradation_prompt.qml").exists()


def test_a_users_own_style_is_kept(scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mine = '<qgis version="3.34"><pipe/></qgis>\n'
    (out / "land_cover.qml").write_text(mine)
    _predict(scene, out, write_prompt=False)
    assert (out / "land_cover.qml").read_text() == mine
    assert STYLE_MARK not in mine and (out / "land_cover.tif").is_file()
