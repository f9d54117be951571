"""QGIS styles published with the products: ``land_cover.qml`` and ``degradation_prompt.qml``.

QGIS applies ``<name>.qml`` beside ``<name>.tif`` as the layer's default style, so the land-cover
map opens with the legend's class names and colours and the prompt map with the viridis ramp
the notebooks use (0 = optical kept, 1 = SAR fully injected). The files carry
:data:`STYLE_MARK`: a style without it is the user's (e.g. saved from QGIS) and is never replaced
(:mod:`tdpcr_lib.inference.publish`).
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from tdpcr_lib import __version__
from tdpcr_lib.core.io import atomic_path
from tdpcr_lib.core.legend import Legend

#: Comment that marks a style file as written by tdpcr (replaceable by the next prediction).
STYLE_MARK = "<!-- written by tdpcr"

#: Style file of each product that has one.
STYLE_FILES: dict[str, str] = {"land_cover": "land_cover.qml", "degradation_prompt": "degradation_prompt.qml"}

#: matplotlib's viridis at 0, 0.25, 0.5, 0.75, 1 (the prompt map's colours in the notebooks).
_VIRIDIS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")


def _document(renderer: str) -> str:
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f"{STYLE_MARK} {__version__}; QGIS applies it to the .tif of the same name -->\n"
        '<qgis version="3.28.0" styleCategories="Symbology">\n  <pipe>\n'
        f"{renderer}  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n"
    )


def land_cover_qml(legend: Legend) -> str:
    """A paletted QGIS style: one entry per class (code, colour, name); no-data transparent."""
    entries = "".join(
        f'        <paletteEntry value="{code}" color="#{r:02x}{g:02x}{b:02x}" alpha="255" label={quoteattr(name)}/>\n'
        for code, name, (r, g, b) in zip(legend.codes, legend.names, legend.colours, strict=True)
    )
    renderer = (
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" '
        'nodataColor="">\n      <rasterTransparency/>\n      <colorPalette>\n'
        f"{entries}      </colorPalette>\n    </rasterrenderer>\n"
    )
    return _document(renderer)


def prompt_qml() -> str:
    """A pseudocolour QGIS style for the gate map: viridis over the fixed range 0–1."""
    labels = ("0 optical kept", "0.25", "0.5", "0.75", "1 SAR fully injected")
    items = "".join(
        f'          <item value="{i / 4:g}" color="{colour}" alpha="255" label={quoteattr(label)}/>\n'
        for i, (colour, label) in enumerate(zip(_VIRIDIS, labels, strict=True))
    )
    renderer = (
        '    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" '
        'alphaBand="-1" classificationMin="0" classificationMax="1" nodataColor="">\n'
        "      <rasterTransparency/>\n      <rastershader>\n"
        '        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" '
        'clip="0" minimumValue="0" maximumValue="1">\n'
        f"{items}        </colorrampshader>\n      </rastershader>\n"
        "    </rasterrenderer>\n"
    )
    return _document(renderer)


def write_styles(folder: Path, products: list[str], legend: Legend) -> list[Path]:
    """Write the styles of ``products`` into ``folder`` (atomically, each); returns the paths."""
    written = []
    for product in products:
        if product not in STYLE_FILES:
            continue
        text = land_cover_qml(legend) if product == "land_cover" else prompt_qml()
        path = Path(folder) / STYLE_FILES[product]
        with atomic_path(path, suffix=".qml") as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        written.append(path)
    return written


def written_by_tdpcr_style(path: Path) -> bool:
    """Whether an existing ``.qml`` carries tdpcr's mark (else it is the user's own style)."""
    try:
        return STYLE_MARK in Path(path).read_text(encoding="utf-8", errors="replace")[:400]
    except OSError:
        return False
