"""The LuojiaSET-OSFCR torch ``Dataset`` (layout: :mod:`.layout`, split protocol: :mod:`.manifest`).

The real dataset (and the synthetic twin of :mod:`tdpcr_lib.datasets.synthetic.tiles`) is a folder with five
cloud-cover buckets, each holding five modality folders::

    <root>/<bucket>/s1/ROIs_XX_s1_pN.tif                           Sentinel-1 VV, VH (float32 dB)
    <root>/<bucket>/s2/ROIs_XX_s2_pN.tif                           clear Sentinel-2 (uint16 DN)
    <root>/<bucket>/s2_cloudy/ROIs_XX_s2_cloudy_pN.tif             cloudy Sentinel-2 (uint16 DN)
    <root>/<bucket>/land_cover_maps/ROIs_XX_s2_pN.tif              land cover (uint8 codes)
    <root>/<bucket>/cloud_detection_results/ROIs_XX_s2_cloudy_pN.tif   cloud mask (float32 {0,1})

Land-cover maps are named like the clear ``s2`` file and cloud masks like the cloudy one (the real
data's quirk, followed by the first author's loaders).

Split manifests
---------------
A manifest folder holds ``train.csv``, ``val.csv``, ``test.csv`` in the first author's format (no
header; columns ``s2, s2_cloudy, s1, land_cover_maps, cloud_detection_results``; paths relative to
the dataset root), so the author's published CSVs can be dropped in unchanged. Beside them,
``checksums.sha256`` lists a sha256 for every file (``sha256sum -c`` format, run from the root) and
``split_config.json`` records the protocol. :func:`.manifest.write_manifest` implements the author's
protocol: for each bucket in :data:`BUCKETS` order, the name-sorted ``s2`` files (``ROIs_*_s2_p*.tif``)
are shuffled by ONE ``random.Random(42)`` shared across buckets; the first ``int(0.8 n)`` go to
train, the next ``int(0.1 n)`` to val and the rest to test. Samples with a missing modality file are
left out (as the author's indexer does) and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tdpcr_lib.core.legend import Legend
from tdpcr_lib.core.normalisation import Normalisation, load_normalisation
from tdpcr_lib.datasets.base import ManifestDataset
from tdpcr_lib.datasets.containment import Containment
from tdpcr_lib.datasets.errors import DataIntegrityError, DatasetNotFoundError
from tdpcr_lib.datasets.luojiaset.layout import MODALITIES, how_to_get_luojiaset, luojiaset_legend, read_modality
from tdpcr_lib.datasets.luojiaset.manifest import read_split_csv, resolve_manifest_dir
from tdpcr_lib.datasets.manifests import verify_checksums
from tdpcr_lib.datasets.samples import BUCKETS, SPLITS, require_finite, require_same_size


class LuojiaSETOSFCR(ManifestDataset):
    """LuojiaSET-OSFCR (or its synthetic twin) as a torch ``Dataset`` in torchgeo's style.

    Parameters
    ----------
    root : path
        Dataset root holding the five bucket folders.
    split : {"train", "val", "test"}
    manifest : path, optional
        Folder with the split CSVs. Default: ``<root>/manifest/`` if it exists (the synthetic twin
        and ``tdpcr data manifest`` write one there), else ``data_manifests/luojiaset_osfcr/``.
    transforms : callable, optional
        Applied to the sample dict (e.g. :class:`TrainAugment`).
    checksum : bool
        Verify the sha256 of every file of this split against the manifest first (slow).

    Notes
    -----
    A sample is a dict of tensors: ``optical`` (cloudy S2, float32 13×H×W in [0, 1]), ``sar``
    (float32 2×H×W in [0, 1]), ``target`` (clear S2, float32 13×H×W in [0, 1]), ``mask``
    (int64 H×W, codes 0–6, anything else 255 = ignore), ``cloud_mask`` (float32 H×W in {0, 1}),
    plus ``bucket`` and ``id`` strings. Values go through ``tdpcr_lib/resources/normalisation.json``.

    Non-finite values: in the *inputs* (cloudy S2 if stored as float, SAR) NaN/inf become 0 after
    normalisation, as in the first author's loader (S1 swaths carry NaN borders). In the *target*,
    the cloud mask (and labels, which must be integer) they raise :class:`DataIntegrityError`
    because they would silently corrupt losses and metrics. Cloud-mask values must lie in [0, 1];
    they are binarised at 0.5. Land-cover files without a CRS (a quirk of the real data) load.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        manifest: str | Path | None = None,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        checksum: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"dataset root {root} does not exist. " + how_to_get_luojiaset(root))
        if not any((root / bucket).is_dir() for bucket in BUCKETS):
            raise DatasetNotFoundError(
                f"{root} holds none of the bucket folders {BUCKETS}. " + how_to_get_luojiaset(root)
            )
        self.root = root
        self.split = split
        self.manifest_dir = resolve_manifest_dir(root, manifest)
        csv_path = self.manifest_dir / f"{split}.csv"
        if not csv_path.is_file():
            raise DatasetNotFoundError(
                f"split file {csv_path} does not exist; create the split "
                f"manifest with `tdpcr data manifest {root}` (writes "
                f"{root / 'manifest'}; or --out DIR and manifest=DIR)"
            )
        self.records = read_split_csv(csv_path)
        self._check_manifest(read_split_csv, Containment(root))
        self.transforms = transforms
        self.normalisation: Normalisation = load_normalisation()
        self.legend: Legend = luojiaset_legend(root)
        if checksum:
            verify_checksums(root, self.manifest_dir, self.records, containment=self.containment)

    def load_raw(self, index: int) -> dict[str, np.ndarray]:
        """The five arrays of a sample in file units (DN, dB, codes), validated, not normalised."""
        record = self.records[index]
        arrays: dict[str, np.ndarray] = {}
        paths = {m: self.file_path(index, m) for m in MODALITIES}
        for modality in MODALITIES:
            arrays[modality] = read_modality(paths[modality], modality)
        require_same_size(arrays, paths, record.id)
        require_finite(arrays["s2"], paths["s2"], "target (clear Sentinel-2)")
        cloud_path = paths["cloud_detection_results"]
        require_finite(arrays["cloud_detection_results"], cloud_path, "cloud mask")
        cloud = arrays["cloud_detection_results"]
        if cloud.size and (cloud.min() < 0 or cloud.max() > 1):
            raise DataIntegrityError(
                f"{cloud_path}: cloud mask values must lie in [0, 1], found [{cloud.min()}, {cloud.max()}]"
            )
        return arrays

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        raw = self.load_raw(index)
        norm = self.normalisation
        sample: dict[str, Any] = {
            "optical": torch.from_numpy(norm.s2_to_unit(raw["s2_cloudy"])),
            "sar": torch.from_numpy(norm.s1_to_unit(raw["s1"])),
            "target": torch.from_numpy(norm.s2_to_unit(raw["s2"])),
            "mask": torch.from_numpy(
                self.legend.sanitise(raw["land_cover_maps"][0], source=self.root / record.paths["land_cover_maps"])
            ),
            "cloud_mask": torch.from_numpy((raw["cloud_detection_results"][0] >= 0.5).astype(np.float32)),
            "bucket": record.bucket,
            "id": record.id,
        }
        return self._transformed(sample)
