"""SEN12MS-CR (with SEN12MS land cover) as a torch ``Dataset`` with LuojiaSET-OSFCR's sample dict.

Layout: :mod:`tdpcr_lib.datasets.sen12mscr.layout`; split manifest:
:mod:`tdpcr_lib.datasets.sen12mscr.manifest`; cloud mask: :mod:`tdpcr_lib.datasets.sen12mscr.cloudmask`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tdpcr_lib.core.legend import Legend, load_legend, packaged_resource
from tdpcr_lib.core.normalisation import Normalisation, load_normalisation
from tdpcr_lib.datasets.base import ManifestDataset
from tdpcr_lib.datasets.containment import Containment
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.manifests import LOCAL_MANIFEST, read_split_config, verify_checksums
from tdpcr_lib.datasets.samples import SPLITS, bucket_of, read_raster, require_finite, require_same_size
from tdpcr_lib.datasets.sen12mscr.cloudmask import compute_cloud_mask
from tdpcr_lib.datasets.sen12mscr.layout import (
    LAND_COVER,
    MODALITIES,
    SPECS,
    has_sen12mscr_layout,
    how_to_get_sen12mscr,
    modality_dir,
    patch_filename,
)
from tdpcr_lib.datasets.sen12mscr.manifest import mask_cache_path, read_cached_mask, read_sen12mscr_csv

#: The packaged legend and normalisation this dataset uses (names travel in model configs).
LEGEND_NAME = "igbp_simplified"
NORMALISATION_NAME = "sen12mscr"


def igbp_lookup() -> np.ndarray:
    """IGBP code (0..17) → simplified-IGBP class code (0..9; 255 = ignore), from the legend file."""
    spec = packaged_resource("legend_igbp_simplified.json")
    return np.array([255 if c is None else int(c) for c in spec["from_igbp"]], dtype=np.int64)


class SEN12MSCR(ManifestDataset):
    """SEN12MS-CR triplets (+ SEN12MS land cover) in torchgeo's style.

    Parameters
    ----------
    root : path
        The SEN12MS-CR folder (holding ``ROIs1158_spring_s1/`` ...).
    split : {"train", "val", "test"}
        The scene-level split of UnCRtainTS, from the manifest.
    land_cover_root : path, optional
        Where SEN12MS land cover lives (``ROIs1158_spring/lc_1/...``). Default: the land-cover
        paths the manifest recorded (see :func:`write_sen12mscr_manifest`).
    manifest : path, optional
        Manifest folder (default ``<root>/manifest/``).
    transforms : callable, optional
        Applied to the sample dict (e.g. :class:`TrainAugment`).
    checksum : bool
        Verify the sha256 of every file of this split first (slow).

    Notes
    -----
    A sample has the keys of :class:`~tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR`: ``optical``
    (cloudy S2, float32 13×H×W in [0, 1]), ``sar`` (float32 2×H×W in [0, 1]), ``target`` (clear
    S2), ``mask`` (int64 H×W simplified-IGBP codes 0–9 from band 1 of the land cover; 255 =
    ignore, everywhere when the patch has no land cover), ``cloud_mask`` (float32 H×W in {0, 1},
    computed from the cloudy image: SEN12MS-CR ships none), ``bucket`` (cloud-cover bucket of that
    mask) and ``id``. Values go through ``tdpcr_lib/resources/normalisation_sen12mscr.json``.
    NaN/inf in the inputs become 0; in the clear target they raise :class:`DataIntegrityError`, as
    do missing or corrupt files, wrong band counts, dtypes, sizes and differing CRSs.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        land_cover_root: str | Path | None = None,
        manifest: str | Path | None = None,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        checksum: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"dataset root {root} does not exist. " + how_to_get_sen12mscr(root))
        if not has_sen12mscr_layout(root):
            raise DatasetNotFoundError(
                f"{root} holds no SEN12MS-CR season folder (e.g. "
                "ROIs1158_spring_s1/s1_1/). " + how_to_get_sen12mscr(root)
            )
        self.root = root
        self.split = split
        self.land_cover_root = Path(land_cover_root) if land_cover_root is not None else None
        if self.land_cover_root is not None and not self.land_cover_root.is_dir():
            raise DatasetNotFoundError(
                f"land-cover root {self.land_cover_root} does not exist; "
                "give the SEN12MS land-cover folder (holding "
                "ROIs1158_spring/lc_1/...)"
            )
        self.manifest_dir = Path(manifest) if manifest is not None else root / LOCAL_MANIFEST
        csv_path = self.manifest_dir / f"{split}.csv"
        if not csv_path.is_file():
            raise DatasetNotFoundError(
                f"split file {csv_path} does not exist; create the split manifest with `tdpcr "
                f"data manifest {root} --source sen12mscr [--land-cover DIR]` (or notebook 00 "
                "with SOURCE='sen12mscr')"
            )
        self.records, self.cloud_cover = read_sen12mscr_csv(csv_path)
        # manifests written before the s2cloudless default used the rule-based mask
        config = read_split_config(self.manifest_dir) or {}
        self.cloud_mask_method: str = config.get("cloud_mask_method", "rule-based")
        # land cover may lie outside the root: inside the land-cover root the manifest recorded
        recorded = self.split_config.get("land_cover_root")
        lc_root = self.land_cover_root or (Path(recorded) if isinstance(recorded, str) else root)
        self._check_manifest(lambda p: read_sen12mscr_csv(p)[0], Containment(root, [lc_root], ["land_cover"]))
        self.transforms = transforms
        self.normalisation: Normalisation = load_normalisation(name=NORMALISATION_NAME)
        self.legend: Legend = load_legend(name=LEGEND_NAME)
        self._igbp = igbp_lookup()
        if checksum:
            verify_checksums(root, self.manifest_dir, self.records, containment=self.containment)

    @property
    def split_config(self) -> dict[str, Any]:
        return read_split_config(self.manifest_dir)

    def land_cover_path(self, index: int) -> Path | None:
        """The land-cover file of a sample (None: the patch has none)."""
        record = self.records[index]
        if self.land_cover_root is None:
            return None if "land_cover" not in record.paths else self.file_path(index, "land_cover")
        season, _, rest = record.id.rpartition("_p")
        season, scene = season.rsplit("_", 1)
        folder = modality_dir(self.land_cover_root, season, LAND_COVER)
        base = folder if folder is not None else self.land_cover_root / season
        return base / f"lc_{scene}" / patch_filename(season, scene, rest, LAND_COVER)

    def load_raw(self, index: int) -> dict[str, np.ndarray]:
        """The arrays of a sample in file units (DN, dB, IGBP codes), validated, not normalised."""
        record = self.records[index]
        arrays: dict[str, np.ndarray] = {}
        paths = {m: self.file_path(index, m) for m in MODALITIES}
        lc_path = self.land_cover_path(index)
        if lc_path is not None:
            paths[LAND_COVER] = lc_path
        crs = {}
        for modality, path in paths.items():
            arrays[modality], crs[modality] = read_raster(path, SPECS[modality], modality)
        require_same_size(arrays, paths, record.id)
        reference = crs["s2"]
        for modality, value in crs.items():
            # land cover without a CRS is tolerated (it then takes the patch's grid)
            if value != reference and not (modality == LAND_COVER and value is None):
                raise DataIntegrityError(
                    f"{paths[modality]}: CRS {value} differs from the clear "
                    f"Sentinel-2 file's {reference} ({paths['s2'].name})"
                )
        require_finite(arrays["s2"], paths["s2"], "target (clear Sentinel-2)")
        return arrays

    def labels(self, raw: Mapping[str, np.ndarray], index: int) -> np.ndarray:
        """Simplified-IGBP class codes (int64 H×W) of a sample's raw arrays; 255 without land cover."""
        height, width = raw["s2"].shape[-2:]
        if LAND_COVER not in raw:
            return np.full((height, width), self.legend.ignore_index, dtype=np.int64)
        igbp = raw[LAND_COVER][0].astype(np.int64)
        known = (igbp >= 0) & (igbp < self._igbp.size)
        # codes outside IGBP 0..17 stay as they are: sanitise reports them once per file (they
        # are all above the legend's 0..9) and ignores them
        codes = np.where(known, self._igbp[np.clip(igbp, 0, self._igbp.size - 1)], igbp)
        return self.legend.sanitise(codes, source=self.land_cover_path(index))

    def cloud_mask(self, index: int, cloudy_dn: np.ndarray) -> np.ndarray:
        """The cloud mask of a sample with the manifest's method (s2cloudless: its cached copy
        when the manifest wrote one, so the cover, the bucket and the mask agree)."""
        if self.cloud_mask_method == "s2cloudless":
            cached = read_cached_mask(mask_cache_path(self.manifest_dir, self.records[index].id))
            if cached is not None and cached.shape == cloudy_dn.shape[-2:]:
                return cached
        return compute_cloud_mask(cloudy_dn, self.cloud_mask_method)

    def target_clear_mask(self, target: torch.Tensor) -> torch.Tensor:
        """(N, H, W) bool: pixels clear in the (N, 13, H, W) [0, 1] target, by the manifest's
        cloud mask (AllClear scores only those; :mod:`tdpcr_lib.metrics.protocols`)."""
        dn = self.normalisation.s2_to_dn(target.detach().float().cpu().numpy())
        masks = [compute_cloud_mask(image, self.cloud_mask_method) for image in dn]
        return torch.from_numpy(np.stack(masks) < 0.5).to(target.device)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        raw = self.load_raw(index)
        norm = self.normalisation
        clouds = self.cloud_mask(index, raw["s2_cloudy"])
        sample: dict[str, Any] = {
            "optical": torch.from_numpy(norm.s2_to_unit(raw["s2_cloudy"])),
            "sar": torch.from_numpy(norm.s1_to_unit(raw["s1"])),
            "target": torch.from_numpy(norm.s2_to_unit(raw["s2"])),
            "mask": torch.from_numpy(self.labels(raw, index)),
            "cloud_mask": torch.from_numpy(clouds),
            "bucket": bucket_of(float(clouds.mean())),
            "id": record.id,
        }
        return self._transformed(sample)
