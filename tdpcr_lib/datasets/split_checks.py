"""Checks of a split's rows as a whole: no patch twice, no patch in two splits.

Row-level checks (columns, containment, one patch per row, cover vs bucket) are made where each
CSV is read (:func:`~tdpcr_lib.datasets.luojiaset.manifest.read_split_csv`,
:func:`~tdpcr_lib.datasets.sen12mscr.manifest.read_sen12mscr_csv`). A repeated row silently
weights a patch twice; a test patch appended to ``train.csv`` leaks the test set into training:
both are refused with the file and the patch id.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.samples import SPLITS


def check_split_rows(
    manifest_dir: str | Path, split: str, records: Sequence[Any], read: Callable[[Path], Sequence[Any]]
) -> None:
    """Refuse duplicate patches in ``split`` and patches also listed in another split's CSV.

    ``read`` reads another split's CSV into records (each with an ``.id``).
    """
    manifest_dir = Path(manifest_dir)
    csv_path = manifest_dir / f"{split}.csv"
    counts = Counter(r.id for r in records)
    repeated = sorted(pid for pid, n in counts.items() if n > 1)
    if repeated:
        raise DataIntegrityError(
            f"{csv_path}: {len(repeated)} patch(es) listed more than once, "
            f"e.g. {repeated[:3]}; remove the repeated rows or rewrite the "
            "manifest with `tdpcr data manifest`"
        )
    if _leaky_by_request(manifest_dir):
        return  # the peers' legacy-substring split shares patches on purpose (labelled as leaky)
    for other in SPLITS:
        other_path = manifest_dir / f"{other}.csv"
        if other == split or not other_path.is_file():
            continue
        shared = sorted(set(counts) & {r.id for r in read(other_path)})
        if shared:
            raise DataIntegrityError(
                f"{csv_path}: {len(shared)} patch(es) also listed in "
                f"{other_path}, e.g. {shared[:3]}; a patch belongs to one "
                "split only (rewrite the manifest with `tdpcr data "
                "manifest`)"
            )


def _leaky_by_request(manifest_dir: Path) -> bool:
    """Whether the manifest is SEN12MS-CR's ``legacy-substring`` split, which the user asked for to
    measure the peers' leak: its training CSV holds test and validation patches by design, and
    ``split_config.json`` and every report say so."""
    try:
        config = json.loads((manifest_dir / "split_config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("split_protocol") == "legacy-substring"
