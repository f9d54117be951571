"""What every source's split manifest shares: its folder name beside the data, the sha256 table
of every file and its verification, the hash identifying a split, ``split_config.json``.

Each source writes its own CSVs (:mod:`~tdpcr_lib.datasets.luojiaset.manifest`,
:mod:`~tdpcr_lib.datasets.sen12mscr.manifest`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tdpcr_lib.core.io import atomic_write_text, sha256_file
from tdpcr_lib.core.paths import MANIFEST_DIR
from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.samples import SPLITS, SampleRecord

#: Folder name of a dataset's own manifest: ``<root>/manifest/`` (the default of
#: :func:`write_manifest` and ``tdpcr data manifest``; found by ``LuojiaSETOSFCR(root)``).
LOCAL_MANIFEST = "manifest"


CHECKSUM_FILE = "checksums.sha256"


def write_checksums(root: Path, relpaths: Iterable[str], out: Path, enabled: bool = True, workers: int = 4) -> None:
    """Write ``out/checksums.sha256`` (sha256 of every file, ``sha256sum -c`` format, paths
    relative to ``root``), or remove a stale one when ``enabled`` is false."""
    if not enabled:
        (out / CHECKSUM_FILE).unlink(missing_ok=True)
        return
    relpaths = sorted(set(relpaths))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        digests = list(pool.map(lambda rel: sha256_file(root / rel), relpaths))
    atomic_write_text(out / CHECKSUM_FILE, "".join(f"{d}  {rel}\n" for d, rel in zip(digests, relpaths, strict=True)))


def read_checksums(path: str | Path) -> dict[str, str]:
    """Read a ``sha256sum``-style file into ``{relative path: hex digest}``."""
    table: dict[str, str] = {}
    for line_no, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise DataIntegrityError(f"{path}:{line_no}: not a '<sha256>  <path>' line: {line!r}")
        table[rel.strip()] = digest
    return table


def manifest_hash(manifest_dir: str | Path) -> str:
    """sha256 over the split CSVs present (line endings normalised), identifying a split."""
    digest = hashlib.sha256()
    for split in SPLITS:
        path = Path(manifest_dir) / f"{split}.csv"
        if path.is_file():
            text = path.read_text().replace("\r\n", "\n")
            digest.update(f"{split}\n".encode() + text.encode())
    return digest.hexdigest()


def verify_checksums(
    root: str | Path, manifest_dir: str | Path, records: Iterable[SampleRecord], workers: int = 4
) -> None:
    """Compare every file of ``records`` against ``checksums.sha256``; the first bad file raises."""
    root, manifest_dir = Path(root), Path(manifest_dir)
    table_path = manifest_dir / CHECKSUM_FILE
    if not table_path.is_file():
        # never advise writing into the package's own manifest folder: point beside the data
        where = (
            f"`tdpcr data manifest {root}` (writes {root / LOCAL_MANIFEST})"
            if Path(manifest_dir).resolve().is_relative_to(MANIFEST_DIR.resolve())
            else f"`tdpcr data manifest {root} --out {manifest_dir}`"
        )
        raise DataIntegrityError(f"checksum=True but {table_path} does not exist; run {where} to create it")
    table = read_checksums(table_path)
    relpaths = [p for r in records for p in r.paths.values()]
    for rel in relpaths:
        if rel not in table:
            raise DataIntegrityError(f"{root / rel}: no checksum recorded in {table_path}")
        if not (root / rel).is_file():
            raise DataIntegrityError(f"{root / rel}: missing file (listed in {table_path})")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        digests = pool.map(lambda rel: sha256_file(root / rel), relpaths)
        for rel, digest in zip(relpaths, digests, strict=True):
            if digest != table[rel]:
                raise DataIntegrityError(
                    f"{root / rel}: checksum mismatch (sha256 {digest}, "
                    f"expected {table[rel]} from {table_path}); the file is "
                    "corrupted or was changed"
                )


def read_split_config(manifest_dir: str | Path) -> dict[str, Any]:
    """``split_config.json`` of a manifest folder (empty dict if absent)."""
    path = Path(manifest_dir) / "split_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}
