"""``reports/twin_fidelity.md``: the twin beside the real samples, before and after calibration."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from tdpcr_lib.core.io import atomic_write_text
from tdpcr_lib.datasets.synthetic.calibration import twin_version
from tdpcr_lib.evaluation.fidelity import (
    fidelity_distances,
    real_statistics,
    statistics_from_arrays,
    summary_row,
    twin_tiles,
)

#: Distances of the uncalibrated twin (1.x), measured once with this module on a twin made by
#: tdpcr at commit 2bc0f6b (the generator before calibration); shipped so every report can show
#: them beside the current twin's.
BEFORE_FILE = "twin_fidelity_before.json"


def measure_fidelity(root: str | Path, max_tiles: int = 100) -> dict[str, Any]:
    """Statistics of the twin at ``root`` (up to ``max_tiles`` tiles) and of the real samples,
    and their distances (:func:`~tdpcr_lib.evaluation.fidelity.fidelity_distances`)."""
    twin = statistics_from_arrays(twin_tiles(root, max_tiles))
    real = real_statistics()
    return {"twin": twin, "real": real, "distances": fidelity_distances(twin, real)}


def load_before() -> dict[str, Any]:
    """The shipped distances of the uncalibrated twin (see :data:`BEFORE_FILE`)."""
    return json.loads(resources.files("tdpcr_lib.resources").joinpath(BEFORE_FILE).read_text())


def _fmt(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def fidelity_markdown(
    distances: Mapping[str, Any],
    before: Mapping[str, Any] | None,
    figures: Mapping[str, str],
    version: str | None = None,
) -> str:
    """The report's text: headline table (before / after), per-band table, figure links."""
    version = version or twin_version()
    now = summary_row(distances)
    then = summary_row(before["distances"]) if before else {}
    lines = [
        "# How close is the synthetic twin to real data?",
        "",
        f"Twin version {version} (calibration: `tdpcr_lib/resources/twin_calibration.json`), "
        f"{distances['twin_tiles']} tiles, against the real samples: "
        + ", ".join(f"{k} {v} tiles" for k, v in distances["real_tiles"].items())
        + " (SEN12MS-CR: the crops shipped in `tdpcr_lib/resources/real_samples/`; LuojiaSET: "
        "statistics derived from its public samples). All reflectances are TOA without the DN "
        "offset. Lower is better everywhere. How it is measured and what the numbers can and "
        "cannot say: `docs/twin.md`.",
        "",
        "| distance | before calibration (twin "
        f"{before.get('twin_version', '1.x') if before else '-'}) | now (twin {version}) |",
        "|---|---|---|",
    ]
    for key, value in now.items():
        lines.append(f"| {key} | {_fmt(then.get(key)) if then else '-'} | {_fmt(value)} |")
    lines += [
        "",
        "## Per band (Wasserstein-1 in reflectance / KS)",
        "",
        "| band | before W1 | now W1 | before KS | now KS |",
        "|---|---|---|---|---|",
    ]
    for band, w in distances["band_wasserstein"].items():
        bw = before["distances"]["band_wasserstein"].get(band) if before else None
        bk = before["distances"]["band_ks"].get(band) if before else None
        lines.append(f"| {band} | {_fmt(bw)} | {_fmt(w)} | {_fmt(bk)} | {_fmt(distances['band_ks'][band])} |")
    lines += ["", "## Figures", ""]
    for title, path in figures.items():
        lines.append(f"![{title}]({path})")
    if before:
        lines += ["", f"Before: {before.get('measured', '')}"]
    return "\n".join(lines) + "\n"


def write_fidelity_report(
    path: str | Path, distances: Mapping[str, Any], figures: Mapping[str, str], before: Mapping[str, Any] | None = None
) -> Path:
    """Write :func:`fidelity_markdown` to ``path`` atomically (``before`` default: shipped)."""
    path = Path(path)
    atomic_write_text(path, fidelity_markdown(distances, before or load_before(), figures))
    return path
