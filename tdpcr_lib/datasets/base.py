"""What every manifest-backed dataset shares: records from split CSVs, buckets, plot(), the
header check and the read-speed measurement of notebook 00."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from tdpcr_lib.core.legend import Legend
from tdpcr_lib.datasets.manifests import manifest_hash
from tdpcr_lib.datasets.plot import plot_sample
from tdpcr_lib.datasets.samples import ModalitySpec


class ManifestDataset(Dataset):
    """Base of :class:`~tdpcr_lib.datasets.luojiaset.dataset.LuojiaSETOSFCR` and
    :class:`~tdpcr_lib.datasets.sen12mscr.dataset.SEN12MSCR`.

    A subclass sets ``root``, ``split``, ``manifest_dir``, ``records`` (each with ``.bucket`` and
    ``.id``), ``legend`` and ``transforms`` in its constructor, and implements ``__getitem__``
    (ending with :meth:`_transformed`).
    """

    root: Path
    split: str
    manifest_dir: Path
    records: list[Any]
    legend: Legend
    transforms: Callable[[dict[str, Any]], dict[str, Any]] | None

    @property
    def manifest_hash(self) -> str:
        """sha256 of the split CSVs in use (stored in checkpoints)."""
        return manifest_hash(self.manifest_dir)

    @property
    def buckets(self) -> list[str]:
        """Bucket of every sample, in index order (from the manifest, no file access)."""
        return [r.bucket for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"n={len(self)}, manifest={str(self.manifest_dir)!r})"
        )

    def _transformed(self, sample: dict[str, Any]) -> dict[str, Any]:
        return self.transforms(sample) if self.transforms is not None else sample

    def plot(
        self, sample: Mapping[str, Any], prediction: Any = None, show_titles: bool = True, suptitle: str | None = None
    ):
        """Plot a sample (and optionally a prediction); see :func:`plot_sample`."""
        return plot_sample(sample, prediction, legend=self.legend, show_titles=show_titles, suptitle=suptitle)


class HeaderReport:
    """Collects header problems (the first ``max_problems`` messages, and how many in all)."""

    def __init__(self, max_problems: int = 20) -> None:
        self.max_problems = max_problems
        self.problems: list[str] = []
        self.n_problems = self.checked = 0

    def report(self, message: str) -> None:
        self.n_problems += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(message)

    def check_sample(self, sample_id: str, files: Iterable[tuple[Path, ModalitySpec]]) -> None:
        """Open each file of one sample: band count, dtype, readable; sizes must agree."""
        import rasterio
        from rasterio.errors import RasterioError

        sizes = set()
        for path, spec in files:
            self.checked += 1
            if not path.is_file():
                self.report(f"{path}: missing {spec.description} file")
                continue
            try:
                with rasterio.open(path) as src:
                    if src.count != spec.bands:
                        self.report(f"{path}: {src.count} band(s), expected {spec.bands}")
                    if src.dtypes[0] not in spec.dtypes:
                        self.report(f"{path}: dtype {src.dtypes[0]}, expected {' or '.join(spec.dtypes)}")
                    sizes.add((src.height, src.width))
            except RasterioError as err:
                self.report(f"{path}: unreadable or corrupt GeoTIFF ({err})")
        if len(sizes) > 1:
            self.report(f"sample {sample_id}: modalities differ in size {sorted(sizes)}")

    def result(self) -> dict[str, Any]:
        return {"checked": self.checked, "n_problems": self.n_problems, "problems": self.problems}


def measure_read_speed(dataset: Dataset, n: int = 32) -> float:
    """Mean milliseconds to load one sample (first ``n`` samples, single process)."""
    import time

    n = min(n, len(dataset))
    if n == 0:
        return float("nan")
    started = time.perf_counter()
    for index in range(n):
        dataset[index]
    return 1000 * (time.perf_counter() - started) / n
