"""The files of a checkpoint folder on disk: names, hashes, the staged swap and crash recovery.

A checkpoint is written complete into a hidden staging sibling ``.<name>.tmp-<id>`` (its
``config.json``, holding the sha256 of every other file, is written last) and swapped in with two
renames through ``.<name>.old``. Whatever a crash leaves behind, :func:`recover_checkpoint` turns
it back into one folder: the newest *complete and verified* version (staging, current or
``.old``) becomes ``<name>``; everything else of ours (incomplete staging folders, a superseded
``.old``) is removed. Only these three kinds of names are ever deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tdpcr_lib.core.io import sha256_file

MODEL_FILE = "model.safetensors"


CONFIG_FILE = "config.json"


STATE_TENSORS_FILE = "trainer_state.safetensors"


STATE_JSON_FILE = "trainer_state.json"


#: ``config.json`` field: ``{file name: sha256}`` of the folder's other files (since tdpcr 0.x;
#: checkpoints written before it have none and are still read, unverified).
HASHES_FIELD = "sha256"


def staging_dir(directory: Path) -> Path:
    """A fresh hidden sibling of ``directory`` to write a new version into."""
    return directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"


def old_dir(directory: Path) -> Path:
    """Where the previous version waits during a swap."""
    return directory.parent / f".{directory.name}.old"


def staging_dirs(directory: Path) -> list[Path]:
    """Staging folders of ``directory`` left by interrupted saves (any state)."""
    if not directory.parent.is_dir():
        return []
    return sorted(p for p in directory.parent.glob(f".{directory.name}.tmp-*") if p.is_dir())


class DigestMemo:
    """The sha256 of the bytes last written under each file name.

    A trainer saves the same weights into ``best/`` and ``last/``, and the same weights and
    optimizer state before and after an epoch's validation; hashing them again costs more than
    writing them (sha256 runs at a few hundred MB/s on a busy CPU). Bytes equal to the remembered
    ones (compared in full, so a change can never reuse a digest) get the remembered digest.
    Holds one buffer per file name; a trainer keeps one memo for its run.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[bytes, str]] = {}

    def sha256(self, name: str, data: bytes) -> str:
        """Hex sha256 of ``data`` (the remembered one when ``data`` equals the last ``name``)."""
        previous = self._last.get(name)
        if previous is not None and previous[0] == data:
            return previous[1]
        digest = hashlib.sha256(data).hexdigest()
        self._last[name] = (data, digest)
        return digest


def verify_file(folder: Path, name: str, meta: dict[str, Any]) -> str | None:
    """Why ``folder/name`` does not match the hash ``config.json`` records (None: it does).

    Checkpoints without recorded hashes (written before they were added) pass unverified.
    """
    path = folder / name
    if not path.is_file():
        return f"{path}: file missing"
    expected = (meta.get(HASHES_FIELD) or {}).get(name) if isinstance(meta, dict) else None
    if expected is None:
        return None
    actual = sha256_file(path)
    if actual != expected:
        return (
            f"{path}: contents do not match the sha256 recorded in {CONFIG_FILE} "
            f"(recorded {expected[:12]}…, file {actual[:12]}…): the file is corrupt or was "
            "modified; re-copy the checkpoint or retrain"
        )
    return None


def _complete(folder: Path) -> dict[str, Any] | None:
    """``config.json`` of a folder whose files are all present and verified, else None."""
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    names = set(meta.get(HASHES_FIELD) or {}) | {MODEL_FILE}
    if any(verify_file(folder, name, meta) for name in names):
        return None
    return meta


def swap_in(staging: Path, directory: Path) -> None:
    """Replace ``directory`` by the complete ``staging`` folder (two renames)."""
    previous = old_dir(directory)
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        directory.rename(previous)
    staging.rename(directory)
    shutil.rmtree(previous, ignore_errors=True)


def recover_checkpoint(directory: str | Path) -> list[str]:
    """Repair what an interrupted save left around ``directory``; returns what was done.

    The newest complete, verified version among ``directory``, its ``.old`` sibling and its
    staging folders (newest = highest ``step``, then staging before current before ``.old``)
    becomes ``directory``; incomplete staging folders and a superseded ``.old`` are removed.
    Nothing else is touched. Idempotent; call it before reading a run folder that a killed
    process may have been writing (one writer per folder).
    """
    directory = Path(directory)
    actions: list[str] = []
    candidates: list[tuple[int, int, float, Path]] = []
    for rank, folder in [(1, directory), (0, old_dir(directory))] + [(2, s) for s in staging_dirs(directory)]:
        meta = _complete(folder) if folder.is_dir() else None
        if meta is not None:
            step = meta.get("step")
            candidates.append(
                (step if isinstance(step, int) else -1, rank, os.path.getmtime(folder / CONFIG_FILE), folder)
            )
        elif rank == 2:
            shutil.rmtree(folder, ignore_errors=True)
            actions.append(f"removed the incomplete staging folder {folder.name}")
    if not candidates:
        return actions
    best = max(candidates)[3]
    if best != directory:
        if best == old_dir(directory):
            if directory.exists():  # present but incomplete: ours, half-written by a swap
                shutil.rmtree(directory)
            best.rename(directory)
        else:
            swap_in(best, directory)
        actions.append(f"promoted the complete checkpoint {best.name} to {directory.name}")
    for _, _, _, folder in candidates:
        if folder != best and folder.exists() and folder != directory:
            shutil.rmtree(folder, ignore_errors=True)
            actions.append(f"removed the superseded {folder.name}")
    return actions


def flatten_state(obj: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested Python/tensor structure into JSON-able data and a flat tensor dict.

    Tensors become ``{"__tensor__": key}``; tuples ``{"__tuple__": [...]}``; dicts whose keys are
    not all strings ``{"__items__": [[k, v], ...]}``; NumPy arrays ``{"__ndarray__": key}``.
    :func:`unflatten_state` inverts it exactly (dtypes, key types and tuple-ness preserved).
    """
    tensors: dict[str, torch.Tensor] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = value.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            key = f"t{len(tensors)}"
            tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
            return {"__ndarray__": key}
        if isinstance(value, tuple):
            return {"__tuple__": [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value) and not any(k.startswith("__") for k in value):
                return {k: encode(v) for k, v in value.items()}
            return {"__items__": [[encode(k), encode(v)] for k, v in value.items()]}
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, bool | int | float | str):
            if isinstance(value, float) and not np.isfinite(value):
                return {"__float__": repr(value)}
            return value
        raise TypeError(
            f"cannot serialise {type(value).__name__} into a checkpoint without "
            "pickling; convert it to tensors/numbers/strings first"
        )

    return encode(obj), tensors


def unflatten_state(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(data, list):
        return [unflatten_state(v, tensors) for v in data]
    if isinstance(data, dict):
        if "__tensor__" in data:
            return tensors[data["__tensor__"]]
        if "__ndarray__" in data:
            return tensors[data["__ndarray__"]].numpy()
        if "__tuple__" in data:
            return tuple(unflatten_state(v, tensors) for v in data["__tuple__"])
        if "__items__" in data:
            return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in data["__items__"]}
        if "__float__" in data:
            return float(data["__float__"])
        return {k: unflatten_state(v, tensors) for k, v in data.items()}
    return data


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------
