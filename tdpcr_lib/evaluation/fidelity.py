"""How far the synthetic twin is from real data: statistics and distances.

The twin decides whether the main job's numbers mean anything, so it is measured against real
samples: the SEN12MS-CR crops that ship with tdpcr (``tdpcr_lib/resources/real_samples/``, read
live) and statistics derived from the public LuojiaSET-OSFCR samples
(``tdpcr_lib/resources/twin_reference_luojiaset.json``; the files themselves are not
redistributable). Everything is compared as TOA reflectance: each source's DN offset (+1000 for
LuojiaSET and the twin, 0 for SEN12MS-CR) is removed first, otherwise the offset alone looks like
a brightness difference of 0.1 in every band.

Statistics of a set of tiles (:func:`statistics_from_arrays`):

* ``band_quantiles``: per band, 101 quantiles of clear-S2 reflectance per tile;
* ``class_spectra``: mean clear reflectance per land-cover code;
* ``s1_quantiles``: per polarisation, 101 quantiles of dB per tile;
* ``psd``: radially averaged power spectrum (shape: normalised to unit total power, 64 px windows)
  of B02, B04, B08 and B11;
* ``cloud_fraction``: cloud-mask fraction per cloud-cover bucket.

Distances (:func:`fidelity_distances`): Wasserstein-1 and Kolmogorov-Smirnov between the pooled
per-tile quantiles (each tile weighs the same), mean absolute difference of class spectra, mean
absolute difference of log10 power spectra, and Wasserstein-1 of the cloud fractions per bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from scipy.stats import ks_2samp, wasserstein_distance

from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.datasets.luojiaset.layout import discover_samples, read_modality
from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.datasets.sen12mscr.cloudmask import cloud_mask

#: Quantile levels stored per tile.
QUANTILES = np.linspace(0.0, 1.0, 101)

#: Bands whose power spectra are compared (blue, red, NIR, SWIR).
PSD_BANDS = ("B02", "B04", "B08", "B11")

#: Window (px) of the power spectra: the twin's default tile size.
PSD_WINDOW = 64

#: A real class spectrum is compared only when the samples hold at least this many pixels of it.
MIN_CLASS_PIXELS = 1000

LUOJIASET_REFERENCE = "twin_reference_luojiaset.json"

REAL_SAMPLES = "real_samples"

#: DN offset per source (processing baseline >= 04.00 adds 1000; SEN12MS-CR predates it).
DN_OFFSET = {"synthetic": 1000.0, "luojiaset": 1000.0, "sen12mscr": 0.0}


def radial_power_spectrum(image: np.ndarray, window: int = PSD_WINDOW) -> np.ndarray:
    """Radially averaged power spectrum of a 2-D image, averaged over ``window``-px windows and
    normalised to unit total power (its shape only: brightness is measured elsewhere)."""
    h, w = image.shape
    hann = np.outer(np.hanning(window), np.hanning(window))
    yy, xx = np.indices((window, window))
    radius = np.hypot(yy - window // 2, xx - window // 2).astype(int)
    n_bins = window // 2
    spectra = []
    for y in range(0, h - window + 1, window):
        for x in range(0, w - window + 1, window):
            patch = image[y : y + window, x : x + window].astype(np.float64)
            patch = (patch - patch.mean()) * hann
            power = np.abs(np.fft.fftshift(np.fft.fft2(patch))) ** 2
            radial = np.bincount(radius.ravel(), power.ravel(), minlength=n_bins + 1)
            radial = radial / np.maximum(np.bincount(radius.ravel(), minlength=n_bins + 1), 1)
            radial = radial[1:n_bins]
            spectra.append(radial / max(radial.sum(), 1e-20))
    return np.mean(spectra, axis=0) if spectra else np.full(n_bins - 1, np.nan)


def statistics_from_arrays(tiles: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Statistics of tiles given as dicts of arrays.

    Each tile: ``s2`` (13, H, W) clear S2 in DN, ``dn_offset`` (float), optionally ``s1``
    (2, H, W) dB, ``land_cover`` (H, W) codes, ``cloud_mask`` (H, W) in {0, 1} and ``bucket``.
    """
    band_q: list[np.ndarray] = []
    s1_q: list[np.ndarray] = []
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    psd: list[np.ndarray] = []
    fractions: dict[str, list[float]] = {}
    cloud_sum, cloud_pixels = np.zeros(13), 0
    for tile in tiles:
        refl = (np.asarray(tile["s2"], dtype=np.float64) - tile["dn_offset"]) / 10000.0
        band_q.append(np.quantile(refl.reshape(13, -1), QUANTILES, axis=1).T)
        psd.append(np.stack([radial_power_spectrum(refl[S2_BANDS.index(b)]) for b in PSD_BANDS]))
        if tile.get("s1") is not None:
            s1 = np.asarray(tile["s1"], dtype=np.float64).reshape(2, -1)
            s1_q.append(np.nanquantile(s1, QUANTILES, axis=1).T)
        if tile.get("land_cover") is not None:
            labels = np.asarray(tile["land_cover"])
            for code in np.unique(labels):
                if code > 20:
                    continue
                pick = labels == code
                sums[int(code)] = sums.get(int(code), 0) + refl[:, pick].sum(axis=1)
                counts[int(code)] = counts.get(int(code), 0) + int(pick.sum())
        if tile.get("cloud_mask") is not None and tile.get("bucket"):
            fractions.setdefault(tile["bucket"], []).append(float(np.mean(tile["cloud_mask"])))
        if tile.get("s2_cloudy") is not None and tile.get("cloud_mask") is not None:
            cloudy = (np.asarray(tile["s2_cloudy"], dtype=np.float64) - tile["dn_offset"]) / 10000.0
            pick = np.asarray(tile["cloud_mask"]) > 0.5
            cloud_sum = cloud_sum + cloudy[:, pick].sum(axis=1)
            cloud_pixels += int(pick.sum())
    return {
        "n_tiles": len(band_q),
        "band_quantiles": np.stack(band_q).tolist() if band_q else [],
        "s1_quantiles": np.stack(s1_q).tolist() if s1_q else [],
        "class_spectra": {str(c): (sums[c] / counts[c]).tolist() for c in sorted(sums)},
        "class_pixels": {str(c): counts[c] for c in sorted(counts)},
        "psd": np.mean(psd, axis=0).tolist() if psd else [],
        "cloud_fraction": fractions,
        # mean TOA spectrum of the cloudy image inside the cloud mask: what a cloud looks like per
        # band (B09/B10 tell low clouds from high ones)
        "cloud_spectrum": (cloud_sum / cloud_pixels).tolist() if cloud_pixels else [],
    }


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def sen12mscr_sample_tiles() -> list[dict[str, Any]]:
    """The real SEN12MS-CR sample crops that ship with tdpcr, as tiles for the statistics.

    Each also carries ``s2_cloudy`` (DN), ``name`` and the paths (``paths``) of its three files.
    They have no land cover; their cloud mask is computed from the cloudy image (DSen2-CR rule).
    """
    folder = Path(str(resources.files("tdpcr_lib.resources").joinpath(REAL_SAMPLES))) / "sen12mscr"
    tiles = []
    for clear in sorted((folder / "s2_cloudfree").glob("*.tif")):
        paths = {"s2": clear, "s2_cloudy": folder / "s2_cloudy" / clear.name, "s1": folder / "s1" / clear.name}
        cloudy = _read(paths["s2_cloudy"])
        mask = cloud_mask(cloudy.astype(np.float32))
        bucket = BUCKETS[min(int(mask.mean() * 5), 4)]
        tiles.append(
            {
                "name": clear.stem,
                "s2": _read(clear),
                "s2_cloudy": cloudy,
                "s1": _read(paths["s1"]),
                "cloud_mask": mask,
                "bucket": bucket,
                "dn_offset": DN_OFFSET["sen12mscr"],
                "paths": paths,
            }
        )
    return tiles


def luojiaset_reference() -> dict[str, Any]:
    """Statistics derived from the public LuojiaSET-OSFCR samples (shipped as numbers only)."""
    text = resources.files("tdpcr_lib.resources").joinpath(LUOJIASET_REFERENCE).read_text()
    return json.loads(text)


def twin_tiles(root: str | Path, max_tiles: int = 100) -> list[dict[str, Any]]:
    """Up to ``max_tiles`` tiles of a twin (or any LuojiaSET-layout folder), spread over buckets."""
    samples, _ = discover_samples(root)
    root = Path(root)
    if not samples:
        raise FileNotFoundError(f"{root}: no complete tiles found (is it a twin folder?)")
    step = max(1, len(samples) // max_tiles)
    tiles = []
    for record in samples[::step][:max_tiles]:
        files = {m: root / p for m, p in record.paths.items()}
        tiles.append(
            {
                "s2": read_modality(files["s2"], "s2"),
                "s1": read_modality(files["s1"], "s1"),
                "land_cover": read_modality(files["land_cover_maps"], "land_cover_maps")[0],
                "cloud_mask": read_modality(files["cloud_detection_results"], "cloud_detection_results")[0],
                "s2_cloudy": read_modality(files["s2_cloudy"], "s2_cloudy"),
                "bucket": record.bucket,
                "dn_offset": DN_OFFSET["synthetic"],
            }
        )
    return tiles


def real_statistics() -> dict[str, dict[str, Any]]:
    """Statistics of each real source: ``sen12mscr`` (live, shipped crops) and ``luojiaset``."""
    return {
        "sen12mscr": statistics_from_arrays(sen12mscr_sample_tiles()),
        "luojiaset": luojiaset_reference()["statistics"],
    }


def _pooled(sources: Iterable[Mapping[str, Any]], key: str) -> np.ndarray | None:
    parts = [np.asarray(s[key]) for s in sources if len(s.get(key, [])) > 0]
    return np.concatenate(parts, axis=0) if parts else None


def _distances_1d(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return float(wasserstein_distance(a, b)), float(ks_2samp(a, b).statistic)


def fidelity_distances(twin: Mapping[str, Any], real: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Distances between the twin's statistics and the pooled real sources' (see module doc).

    Returns
    -------
    dict
        ``band_wasserstein`` / ``band_ks`` (per band, reflectance), ``band_wasserstein_mean``,
        ``band_ks_mean``, ``class_spectra_mae`` (per code present in both), ``s1_wasserstein_db``
        / ``s1_ks`` (per polarisation), ``psd_log10_mae`` (per band), ``psd_log10_mae_mean``,
        ``cloud_fraction_wasserstein`` (per bucket with real samples), ``cloud_spectrum_mae``
        (mean spectra of the cloudy images inside their cloud masks; None without real clouds),
        ``real_tiles``, ``twin_tiles``.
    """
    sources = list(real.values())
    out: dict[str, Any] = {"twin_tiles": twin["n_tiles"], "real_tiles": {k: v["n_tiles"] for k, v in real.items()}}
    tq, rq = np.asarray(twin["band_quantiles"]), _pooled(sources, "band_quantiles")
    w, k = {}, {}
    for i, band in enumerate(S2_BANDS):
        w[band], k[band] = _distances_1d(tq[:, i].ravel(), rq[:, i].ravel())
    out.update(
        band_wasserstein=w,
        band_ks=k,
        band_wasserstein_mean=float(np.mean(list(w.values()))),
        band_ks_mean=float(np.mean(list(k.values()))),
    )
    spectra: dict[str, list[np.ndarray]] = {}
    for source in sources:
        for code, spectrum in source.get("class_spectra", {}).items():
            if source.get("class_pixels", {}).get(code, 0) >= MIN_CLASS_PIXELS:
                spectra.setdefault(code, []).append(np.asarray(spectrum))
    out["class_spectra_mae"] = {
        code: float(np.mean(np.abs(np.asarray(twin["class_spectra"][code]) - np.mean(spectra[code], axis=0))))
        for code in sorted(spectra)
        if code in twin.get("class_spectra", {})
    }
    tq1, rq1 = np.asarray(twin["s1_quantiles"]), _pooled(sources, "s1_quantiles")
    s1w, s1k = {}, {}
    for i, band in enumerate(S1_BANDS):
        s1w[band], s1k[band] = _distances_1d(tq1[:, i].ravel(), rq1[:, i].ravel())
    out.update(s1_wasserstein_db=s1w, s1_ks=s1k)
    real_psd = np.mean([np.asarray(s["psd"]) for s in sources if len(s.get("psd", []))], axis=0)
    diff = np.abs(np.log10(np.asarray(twin["psd"])) - np.log10(real_psd)).mean(axis=1)
    out["psd_log10_mae"] = {b: float(d) for b, d in zip(PSD_BANDS, diff, strict=True)}
    out["psd_log10_mae_mean"] = float(diff.mean())
    cover: dict[str, float] = {}
    for bucket in BUCKETS:
        real_f = [f for s in sources for f in s.get("cloud_fraction", {}).get(bucket, [])]
        twin_f = twin.get("cloud_fraction", {}).get(bucket, [])
        if real_f and twin_f:
            cover[bucket] = float(wasserstein_distance(twin_f, real_f))
    out["cloud_fraction_wasserstein"] = cover
    real_clouds = [np.asarray(s["cloud_spectrum"]) for s in sources if len(s.get("cloud_spectrum", []))]
    twin_clouds = np.asarray(twin.get("cloud_spectrum", []))
    out["cloud_spectrum_mae"] = (
        float(np.mean(np.abs(twin_clouds - np.mean(real_clouds, axis=0)))) if real_clouds and twin_clouds.size else None
    )
    return out


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by None (strict JSON; e.g. no power spectrum for tiles
    smaller than :data:`PSD_WINDOW`)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def summary_row(distances: Mapping[str, Any]) -> dict[str, float]:
    """The headline numbers of :func:`fidelity_distances` (one row of the before/after table)."""
    s1 = distances["s1_wasserstein_db"]
    spectra = distances["class_spectra_mae"]
    cover = distances["cloud_fraction_wasserstein"]
    return {
        "S2 band W1 (reflectance, mean of 13)": distances["band_wasserstein_mean"],
        "S2 band KS (mean of 13)": distances["band_ks_mean"],
        "B10 W1 (reflectance)": distances["band_wasserstein"]["B10"],
        "class spectra MAE (reflectance)": float(np.mean(list(spectra.values()))) if spectra else float("nan"),
        "S1 VV W1 (dB)": s1["VV"],
        "S1 VH W1 (dB)": s1["VH"],
        "S1 KS (mean VV, VH)": float(np.mean(list(distances["s1_ks"].values()))),
        "power spectrum log10 MAE": distances["psd_log10_mae_mean"],
        "cloud spectrum MAE (reflectance)": _or_nan(distances.get("cloud_spectrum_mae")),
        "cloud cover W1 (mean over buckets)": float(np.mean(list(cover.values()))) if cover else float("nan"),
    }
