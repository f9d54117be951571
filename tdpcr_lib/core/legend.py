"""The land-cover class legend shared by the loader, the metrics, the plots and the GeoTIFF writer."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Legend:
    """Class codes, names and colours (``the packaged tdpcr_lib/resources/legend.json``)."""

    codes: tuple[int, ...]
    names: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]
    ignore_index: int = 255
    ignore_colour: tuple[int, int, int] = (255, 255, 255)
    #: The packaged name (a key of :data:`PACKAGED_LEGENDS`) stored in model configs.
    name: str = "luojiaset"

    @property
    def num_classes(self) -> int:
        return len(self.codes)

    @classmethod
    def from_json(cls, path: str | Path) -> Legend:
        spec = json.loads(Path(path).read_text())
        classes = sorted(spec["classes"], key=lambda c: c["code"])
        codes = tuple(int(c["code"]) for c in classes)
        if codes != tuple(range(len(codes))):
            raise ValueError(f"{path}: class codes must be 0..K-1 without gaps, got {codes}")
        return cls(
            codes=codes,
            names=tuple(c["name"] for c in classes),
            colours=tuple(tuple(int(v) for v in c["colour"]) for c in classes),
            ignore_index=int(spec.get("ignore_index", 255)),
            ignore_colour=tuple(spec.get("ignore_colour", (255, 255, 255))),
            name=str(spec.get("name", Path(path).stem)),
        )

    def sanitise(self, labels: np.ndarray, source: str | Path | None = None) -> np.ndarray:
        """Map any code outside ``0..K-1`` to ``ignore_index``; returns int64.

        Parameters
        ----------
        labels : array
            Class codes.
        source : path, optional
            The file the labels came from. When given, pixels with a code that is neither a
            class nor ``ignore_index`` are counted and reported once per file with
            :func:`warnings.warn` (they are ignored by the loss and the metrics, which silently
            shrinks the evaluated area).
        """
        labels = np.asarray(labels).astype(np.int64)
        known = (labels >= 0) & (labels < self.num_classes)
        if source is not None:
            unknown = ~known & (labels != self.ignore_index)
            if unknown.any():
                _report_unknown_codes(str(source), labels[unknown], self)
        return np.where(known, labels, self.ignore_index)

    def colourise(self, labels: np.ndarray) -> np.ndarray:
        """Label map (H, W) → uint8 RGB image (H, W, 3); ignored pixels get ``ignore_colour``."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[:] = self.ignore_colour
        lut[: self.num_classes] = self.colours
        return lut[np.clip(np.asarray(labels), 0, 255).astype(np.uint8)]

    def cmap(self):
        """A matplotlib colormap/norm pair for ``imshow(labels, cmap=..., norm=...)``."""
        from matplotlib.colors import BoundaryNorm, ListedColormap

        cmap = ListedColormap(np.asarray(self.colours) / 255.0, name="tdpcr_landcover")
        cmap.set_over(np.asarray(self.ignore_colour) / 255.0)
        norm = BoundaryNorm(np.arange(-0.5, self.num_classes + 0.5), cmap.N)
        return cmap, norm

    def rasterio_colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """Colour table for a uint8 GeoTIFF (``dataset.write_colormap(1, ...)``)."""
        table = {code: (*colour, 255) for code, colour in zip(self.codes, self.colours, strict=True)}
        table[self.ignore_index] = (*self.ignore_colour, 0)
        return table


#: Files whose unknown land-cover codes were already reported (once per file and process).
_REPORTED_SOURCES: set[str] = set()


def _report_unknown_codes(source: str, codes: np.ndarray, legend: Legend) -> None:
    if source in _REPORTED_SOURCES:
        return
    _REPORTED_SOURCES.add(source)
    values = np.unique(codes)
    shown = ", ".join(str(v) for v in values[:8]) + (", ..." if values.size > 8 else "")
    warnings.warn(
        f"{source}: {codes.size} pixel(s) with land-cover code(s) outside the legend "
        f"0..{legend.num_classes - 1} ({shown}) are ignored (set to "
        f"{legend.ignore_index}, not counted by the loss or the metrics)",
        stacklevel=3,
    )


#: Legends shipped with the package, by the name a :class:`ModelConfig` stores: LuojiaSET-OSFCR's
#: 7 classes, the synthetic twin's names for the same 7 codes, and the 10-class simplified IGBP
#: scheme (DFC2020) of SEN12MS land cover.
PACKAGED_LEGENDS: dict[str, str] = {
    "luojiaset": "legend.json",
    "synthetic": "legend_synthetic.json",
    "igbp_simplified": "legend_igbp_simplified.json",
}

#: Legends that name the codes of another one: the twin's classes are LuojiaSET-OSFCR's codes
#: 0-6 under the twin's own names, so models, labels and products of the two interchange.
_SAME_CODES_AS: dict[str, str] = {"synthetic": "luojiaset"}


def class_scheme(name: str | None) -> str:
    """The code scheme a legend name follows (``"synthetic"`` → ``"luojiaset"``): two legends with
    the same scheme label the same classes with the same codes."""
    name = name or "luojiaset"
    return _SAME_CODES_AS.get(name, name)


def legend_of(model_or_config: object) -> Legend:
    """The packaged legend a model was trained for: its ``config.legend`` (a ``ModelConfig`` or
    its dict also work); models and checkpoints from before legends travelled → LuojiaSET's."""
    config = getattr(model_or_config, "config", model_or_config)
    name = config.get("legend") if isinstance(config, dict) else getattr(config, "legend", None)
    return load_legend(name=name or "luojiaset")


#: GeoTIFF tag naming the packaged legend of a land-cover product (see :func:`legend_of_tags`).
LEGEND_NAME_TAG = "LEGEND_NAME"


def legend_of_tags(tags: dict[str, str]) -> Legend:
    """The legend of a land-cover GeoTIFF from its tags (:data:`LEGEND_NAME_TAG`; LuojiaSET's when
    the file predates the tag)."""
    return load_legend(name=tags.get(LEGEND_NAME_TAG) or "luojiaset")


def packaged_resource(filename: str) -> dict:
    """A JSON file shipped in ``tdpcr_lib/resources`` (works from a wheel too)."""
    return json.loads((files("tdpcr_lib.resources") / filename).read_text())


@lru_cache(maxsize=8)
def load_legend(path: str | Path | None = None, *, name: str | None = None) -> Legend:
    """Load a legend: a JSON file, a packaged one by ``name`` (:data:`PACKAGED_LEGENDS`), or by
    default the packaged LuojiaSET-OSFCR ``tdpcr_lib/resources/legend.json``."""
    if path is not None:
        return Legend.from_json(path)
    name = name or "luojiaset"
    if name not in PACKAGED_LEGENDS:
        raise ValueError(f"unknown legend {name!r}; packaged legends: {sorted(PACKAGED_LEGENDS)}")
    # importlib.resources: the file ships inside the package, so this works from a wheel too.
    with as_file(files("tdpcr_lib.resources") / PACKAGED_LEGENDS[name]) as packaged:
        return Legend.from_json(packaged)
