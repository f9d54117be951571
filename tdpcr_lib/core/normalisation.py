"""Normalisation of Sentinel-2 DN and Sentinel-1 dB to network inputs, and the inverse.

The numbers live in ``the packaged tdpcr_lib/resources/normalisation.json`` (normalisation is data, not code).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Normalisation:
    """Forward and inverse transforms between raw sensor units and the [0, 1] network range.

    Parameters
    ----------
    s2_clip : tuple of float
        Clip range of Sentinel-2 DN before scaling.
    s2_scale : float
        Divisor that maps DN to [0, 1].
    s1_min_db, s1_max_db : tuple of float
        Per-band (VV, VH) clip range in dB; the range is rescaled to [0, 1].
    nonfinite_value : float
        Replacement for NaN and infinities after normalisation.
    """

    s2_clip: tuple[float, float]
    s2_scale: float
    s1_min_db: tuple[float, ...]
    s1_max_db: tuple[float, ...]
    nonfinite_value: float = 0.0
    offset_caveat: str = ""

    @classmethod
    def from_json(cls, path: str | Path) -> Normalisation:
        """Read a ``normalisation.json`` file."""
        spec = json.loads(Path(path).read_text())
        return cls(
            s2_clip=(float(spec["s2"]["clip_min"]), float(spec["s2"]["clip_max"])),
            s2_scale=float(spec["s2"]["scale"]),
            s1_min_db=tuple(float(v) for v in spec["s1"]["clip_min_db"]),
            s1_max_db=tuple(float(v) for v in spec["s1"]["clip_max_db"]),
            nonfinite_value=float(spec["nonfinite"]["value"]),
            offset_caveat=spec["s2"].get("offset_caveat", ""),
        )

    def _finite(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num(x, nan=self.nonfinite_value, posinf=self.nonfinite_value, neginf=self.nonfinite_value)

    def _nonfinite_to_value(self, x: np.ndarray, raw: np.ndarray) -> np.ndarray:
        # Decided on the *raw* values: clipping first would turn +inf into the clip maximum
        # (1.0 after scaling) and -inf into 0, whereas NaN/inf must become ``nonfinite_value``.
        if np.issubdtype(raw.dtype, np.floating):
            x = np.where(np.isfinite(raw), x, np.float32(self.nonfinite_value))
        return self._finite(x)

    def s2_to_unit(self, dn: np.ndarray) -> np.ndarray:
        """Sentinel-2 DN (bands first) → float32 in [0, 1]; NaN and ±inf → ``nonfinite_value``."""
        raw = np.asarray(dn)
        x = np.clip(raw.astype(np.float32, copy=False), *self.s2_clip) / self.s2_scale
        return self._nonfinite_to_value(x, raw).astype(np.float32, copy=False)

    def s2_to_dn(self, x: np.ndarray) -> np.ndarray:
        """[0, 1] reflectance (bands first) → uint16 DN (inverse of :meth:`s2_to_unit`)."""
        dn = np.clip(np.asarray(x, dtype=np.float32) * self.s2_scale, *self.s2_clip)
        return np.rint(self._finite(dn)).astype(np.uint16)

    def _s1_bounds(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (-1,) + (1,) * (ndim - 1)
        lo = np.asarray(self.s1_min_db, dtype=np.float32).reshape(shape)
        hi = np.asarray(self.s1_max_db, dtype=np.float32).reshape(shape)
        return lo, hi

    def s1_to_unit(self, db: np.ndarray) -> np.ndarray:
        """Sentinel-1 (VV, VH) in dB, bands first → float32 in [0, 1]; NaN/±inf → ``nonfinite_value``."""
        raw = np.asarray(db)
        db = raw.astype(np.float32, copy=False)
        lo, hi = self._s1_bounds(db.ndim)
        x = (np.clip(db, lo, hi) - lo) / (hi - lo)
        return self._nonfinite_to_value(x, raw).astype(np.float32, copy=False)

    def s1_to_db(self, x: np.ndarray) -> np.ndarray:
        """[0, 1] SAR (bands first) → dB (inverse of :meth:`s1_to_unit` inside the clip range)."""
        x = np.asarray(x, dtype=np.float32)
        lo, hi = self._s1_bounds(x.ndim)
        return (x * (hi - lo) + lo).astype(np.float32)


#: Normalisations shipped with the package, by dataset. Both hold the same numbers today (the
#: SAR-optical cloud-removal convention); each file says where its numbers come from.
PACKAGED_NORMALISATIONS: dict[str, str] = {
    "luojiaset": "normalisation.json",
    "sen12mscr": "normalisation_sen12mscr.json",
}


@lru_cache(maxsize=8)
def load_normalisation(path: str | Path | None = None, *, name: str | None = None) -> Normalisation:
    """Load a normalisation: a JSON file, a packaged one by ``name``
    (:data:`PACKAGED_NORMALISATIONS`), or by default ``tdpcr_lib/resources/normalisation.json``."""
    if path is not None:
        return Normalisation.from_json(path)
    name = name or "luojiaset"
    if name not in PACKAGED_NORMALISATIONS:
        raise ValueError(f"unknown normalisation {name!r}; packaged: {sorted(PACKAGED_NORMALISATIONS)}")
    # importlib.resources: the file ships inside the package, so this works from a wheel too.
    with as_file(files("tdpcr_lib.resources") / PACKAGED_NORMALISATIONS[name]) as packaged:
        return Normalisation.from_json(packaged)
