"""The two SEN12MS-CR split protocols: the leak-proof scene split and the peers' leaky one.

Both start from the scene lists of UnCRtainTS (``tdpcr_lib/resources/sen12mscr_split.json``,
copied from PatrickTUM/UnCRtainTS ``data/dataLoader.py``, class ``SEN12MSCR``):

``scene-exact`` (the default)
    A patch belongs to the split whose list names its scene exactly; every scene is in at most
    one split, so no test scene is ever trained on.
``legacy-substring``
    UnCRtainTS's ``get_paths`` keeps a patch in a split when
    ``any(split_roi in path for split_roi in self.splits[split])``, with ``split_roi`` such as
    ``'ROIs1158_spring_s1/s1_1'`` and ``path`` ``'<root>/ROIs1158_spring_s1/s1_106/...'``. The
    substring test also matches scenes 10–19 and 100–199 of a listed scene 1, so training takes
    patches of 6 of the 10 test scenes and 3 validation scenes (EMRDM and DGMR copy the line).
    Reproduced here on request, only to measure how much the leak inflates published numbers;
    a patch may then be in several splits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from tdpcr_lib.core.legend import packaged_resource
from tdpcr_lib.datasets.samples import SPLITS

#: The split protocols of ``tdpcr data manifest --source sen12mscr --split``.
SPLIT_PROTOCOLS: tuple[str, ...] = ("scene-exact", "legacy-substring")
DEFAULT_SPLIT_PROTOCOL = "scene-exact"


class _HasScene(Protocol):
    scene: str


def scene_lists() -> dict[str, list[str]]:
    """``{split: [scene id, ...]}`` of the packaged UnCRtainTS lists (``'ROIs1158_spring/1'``)."""
    spec = packaged_resource("sen12mscr_split.json")
    return {split: list(spec[split]) for split in SPLITS}


def _uncrtaints_roi(scene: str) -> str:
    """``'ROIs1158_spring/1'`` → ``'ROIs1158_spring_s1/s1_1'`` (UnCRtainTS's ``split_roi``)."""
    season, number = scene.split("/")
    return f"{season}_s1/s1_{number}"


def _uncrtaints_path(scene: str) -> str:
    """The part of an s1 patch path UnCRtainTS's substring test sees, with a separator after
    the scene folder (the file name that follows starts with the season, never a digit)."""
    return _uncrtaints_roi(scene) + "/"


def splits_of_scene(
    scene: str, protocol: str = DEFAULT_SPLIT_PROTOCOL, lists: dict[str, list[str]] | None = None
) -> list[str]:
    """The splits a scene's patches go to under ``protocol`` (empty: left out)."""
    lists = scene_lists() if lists is None else lists
    if protocol == "scene-exact":
        return [split for split in SPLITS if scene in lists[split]]
    if protocol == "legacy-substring":
        path = _uncrtaints_path(scene)
        return [split for split in SPLITS if any(_uncrtaints_roi(s) in path for s in lists[split])]
    raise ValueError(f"unknown split protocol {protocol!r}; choose from {', '.join(SPLIT_PROTOCOLS)}")


def assign(
    patches: Iterable[_HasScene], protocol: str = DEFAULT_SPLIT_PROTOCOL
) -> tuple[dict[str, list[Any]], Counter[str]]:
    """``({split: [patch, ...]}, {unassigned scene: patches})`` under ``protocol``."""
    lists = scene_lists()
    cache: dict[str, list[str]] = {}
    out: dict[str, list[Any]] = {s: [] for s in SPLITS}
    unassigned: Counter[str] = Counter()
    for patch in patches:
        splits = cache.setdefault(patch.scene, splits_of_scene(patch.scene, protocol, lists))
        if not splits:
            unassigned[patch.scene] += 1
        for split in splits:
            out[split].append(patch)
    return out, unassigned


def leaking_scenes(lists: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """``{scene: [splits]}`` for every listed scene that ``legacy-substring`` puts in several
    splits (from the scene lists alone)."""
    lists = scene_lists() if lists is None else lists
    scenes = sorted({s for split in SPLITS for s in lists[split]})
    out = {}
    for scene in scenes:
        splits = splits_of_scene(scene, "legacy-substring", lists)
        if len(splits) > 1:
            out[scene] = splits
    return out


def leak_report(assigned: dict[str, Sequence[_HasScene]]) -> dict[str, Any]:
    """What leaked in an assignment: per scene in several splits, its splits and patch count."""
    where: dict[str, set[str]] = {}
    patches: Counter[str] = Counter()
    for split, items in assigned.items():
        counts = Counter(patch.scene for patch in items)
        for scene, n in counts.items():
            where.setdefault(scene, set()).add(split)
            patches[scene] = max(patches[scene], n)  # a scene's patches, counted once
    leaked = {
        scene: {"splits": [s for s in SPLITS if s in splits], "patches": patches[scene]}
        for scene, splits in sorted(where.items())
        if len(splits) > 1
    }
    return {"scenes_in_several_splits": leaked, "leaked_patches": sum(v["patches"] for v in leaked.values())}
