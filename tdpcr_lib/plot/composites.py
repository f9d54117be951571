"""Band composites, crops and per-pixel maps used by every figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from tdpcr_lib.core.arrays import Window, percentile_stretch, spatial_shape, stretch_limits, to_numpy
from tdpcr_lib.core.bands import COMPOSITES
from tdpcr_lib.core.io import atomic_path
from tdpcr_lib.core.legend import Legend, load_legend
from tdpcr_lib.core.normalisation import load_normalisation

#: Short names accepted wherever a composite is asked for.
COMPOSITE_ALIASES: dict[str, str] = {
    "true": "true colour (B04/B03/B02)",
    "rgb": "true colour (B04/B03/B02)",
    "nir": "NIR false colour (B08/B04/B03)",
    "swir": "SWIR (B12/B8A/B04)",
}


DEFAULT_COMPOSITE = "true colour (B04/B03/B02)"


def resolve_composite(name: str) -> str:
    """Accept a full :data:`tdpcr_lib.core.bands.COMPOSITES` key, an alias or a unique prefix."""
    if name in COMPOSITES:
        return name
    key = name.strip().lower()
    if key in COMPOSITE_ALIASES:
        return COMPOSITE_ALIASES[key]
    matches = [k for k in COMPOSITES if k.lower().startswith(key)]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(
        f"unknown band composite {name!r}; choose one of {list(COMPOSITES)} or an alias {list(COMPOSITE_ALIASES)}"
    )


def band_composite(
    image: Any,
    composite: str = DEFAULT_COMPOSITE,
    reference: Any | None = None,
    low: float = 2.0,
    high: float = 98.0,
    common: bool = True,
) -> np.ndarray:
    """A 13-band S2 image → a stretched RGB composite ``(H, W, 3)`` in [0, 1].

    ``reference`` (another 13-band image, typically the clear target) supplies the stretch limits
    so that input, reconstructions and target are displayed identically. ``common=True`` (the
    default) gives all three channels one gain and offset (:func:`stretch_limits` with
    ``common=True``): a per-channel stretch multiplied a 0.02 excess in the narrow-range blue
    band of a clear target into a saturated cyan/blue blob; ``common=False`` restores it.
    """
    bands = list(COMPOSITES[resolve_composite(composite)])
    image = to_numpy(image)
    if image.ndim != 3 or image.shape[0] <= max(bands):
        raise ValueError(f"expected a 13-band image (13, H, W), got shape {image.shape}")
    source = to_numpy(reference)[bands] if reference is not None else image[bands]
    lo, hi = stretch_limits(source, (low, high), common=common)
    return percentile_stretch(image[bands], lo, hi).astype(np.float32)


def sar_false_colour(sar: Any, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """SAR in network units (2, H, W) → RGB (R = VV, G = VH, B = VV − VH, in dB), 2-98 % stretched."""
    sar = to_numpy(sar)
    if sar.ndim != 3 or sar.shape[0] != 2:
        raise ValueError(f"expected SAR (2, H, W) with VV, VH, got shape {sar.shape}")
    db = load_normalisation().s1_to_db(sar)
    stack = np.stack([db[0], db[1], db[0] - db[1]])
    return percentile_stretch(stack, percentiles=(low, high)).astype(np.float32)


def absolute_error_map(prediction: Any, target: Any) -> np.ndarray:
    """Mean over bands of ``|prediction − target|`` (reflectance units), shape ``(H, W)``.

    The prediction is clamped to [0, 1] first, as in the metrics.
    """
    prediction, target = to_numpy(prediction), to_numpy(target)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    return np.abs(np.clip(prediction, 0.0, 1.0) - target).mean(axis=0).astype(np.float32)


def predicted_labels(segmentation: Any) -> np.ndarray:
    """Segmentation logits ``(K, H, W)`` → class codes ``(H, W)`` (int64, argmax over classes)."""
    logits = to_numpy(segmentation)
    if logits.ndim != 3:
        raise ValueError(f"expected logits (K, H, W), got shape {logits.shape}")
    return logits.argmax(axis=0).astype(np.int64)


def prompt_maps(output: Mapping[str, Any], shape: tuple[int, int], normalise: bool = False) -> list[np.ndarray]:
    """The model's per-level gate maps, channel-averaged and upsampled to ``shape``.

    The models' ``prompts`` output is the PGF injection gate ``A`` (channel mean), in [0, 1]:
    the weight given to the SAR features at that pixel (0 = optics only, 1 = SAR fully
    injected). It is shown on that absolute 0–1 scale (so levels and models are comparable);
    ``normalise=True`` min-max scales each level instead. Returns one ``(H, W)`` float array
    per PGF level (an empty list when the model has no gate, e.g. the baselines).
    """
    prompts = output.get("prompts") or []
    height, width = shape
    maps = []
    for level in prompts:
        arr = to_numpy(level)
        arr = arr.mean(axis=0) if arr.ndim == 3 else arr
        h, w = arr.shape
        rows = np.minimum(np.arange(height) * h // height, h - 1)
        cols = np.minimum(np.arange(width) * w // width, w - 1)
        up = arr[np.ix_(rows, cols)].astype(np.float64)
        if normalise:
            lo, hi = float(np.nanmin(up)), float(np.nanmax(up))
            up = (up - lo) / (hi - lo) if hi > lo else np.zeros_like(up)
        maps.append(np.clip(up, 0.0, 1.0).astype(np.float32))
    return maps


#: Colour-bar label of every gate map (what 0 and 1 mean).
GATE_LABEL = "gate: weight given to SAR (0 optics … 1 SAR)"


def sar_db_limits(sar: Any, low: float = 2.0, high: float = 98.0) -> dict[str, tuple[float, float]]:
    """The dB range each channel of :func:`sar_false_colour` is stretched over (for captions)."""
    db = load_normalisation().s1_to_db(to_numpy(sar))
    stack = {"VV": db[0], "VH": db[1], "VV−VH": db[0] - db[1]}
    return {k: (float(np.percentile(v, low)), float(np.percentile(v, high))) for k, v in stack.items()}


def sar_caption(sar: Any) -> str:
    """``"SAR R=VV −18…−5 dB, G=VH …, B=VV−VH …"`` for a figure title."""
    limits = sar_db_limits(sar)
    parts = [f"{c}={k} {lo:.0f}…{hi:.0f}" for c, (k, (lo, hi)) in zip("RGB", limits.items(), strict=True)]
    return "SAR " + ", ".join(parts) + " dB"


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG atomically (temp file + rename) and return the path."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


class ComparisonSetup(NamedTuple):
    """What every comparison figure resolves first from its arguments."""

    models: list[str]
    legend: Legend
    names: list[str]
    shape: tuple[int, int]
    window: Window | None
    target: np.ndarray
    composite: str


def comparison_setup(
    sample: Mapping[str, Any],
    outputs: Mapping[str, Any],
    models: Sequence[str] | None,
    window: Window | None,
    composite: str,
    class_names: Sequence[str] | Legend | None,
) -> ComparisonSetup:
    """Check the requested models, clip the window, resolve class names and the composite.

    Shared by :func:`tdpcr_lib.plot.compare.plot_comparison` and the viewer's mosaic, so both
    read their arguments the same way (``KeyError`` names models without outputs).
    """
    models = list(outputs) if models is None else list(models)
    unknown = [m for m in models if m not in outputs]
    if unknown:
        raise KeyError(f"no outputs for model(s) {unknown}; available: {list(outputs)}")
    # a Legend (e.g. SEN12MS-CR's 10 classes) brings its colours too; bare names use the default's
    legend = class_names if isinstance(class_names, Legend) else load_legend()
    names = list(
        class_names.names
        if isinstance(class_names, Legend)
        else class_names
        if class_names is not None
        else legend.names
    )
    shape = spatial_shape(sample["target"])
    clipped = Window(*window).clip(shape) if window is not None else None
    return ComparisonSetup(
        models, legend, names, shape, clipped, to_numpy(sample["target"]), resolve_composite(composite)
    )
