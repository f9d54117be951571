"""Checkpoints as folders of safetensors + JSON (no pickles anywhere).

A checkpoint is a folder::

    <dir>/model.safetensors        weights (``model.state_dict()``)
    <dir>/config.json              model config, train config, phase, epoch, step, metrics,
                                   data-manifest hash, tdpcr version, git SHA, format version
    <dir>/trainer_state.safetensors  optimizer/scheduler/RNG tensors  (only for resumable ones)
    <dir>/trainer_state.json         the rest of that state, tensors replaced by references
    <dir>/MODEL_CARD.md             data, size, budget, metrics, legend, use and limits

The folder is written complete into a hidden sibling and swapped in with two renames; if a crash
happens between them the previous version is still found under ``.<name>.old`` and used
(:func:`resolve_checkpoint_dir`); :func:`~tdpcr_lib.models.checkpoint_files.recover_checkpoint`
(run by training before it reads a run folder) promotes a complete staging folder and removes
incomplete ones. ``config.json`` records the sha256 of every other file (also ``MODEL_CARD.md``);
loading verifies it. Loading never calls ``torch.load``: a checkpoint can carry no code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn

from tdpcr_lib import __version__
from tdpcr_lib.core.io import atomic_path, atomic_write_json, sha256_file
from tdpcr_lib.core.revision import git_sha
from tdpcr_lib.core.runtime import model_device, resolve_device
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint_files import (
    CONFIG_FILE,
    HASHES_FIELD,
    MODEL_FILE,
    STATE_JSON_FILE,
    STATE_TENSORS_FILE,
    DigestMemo,
    staging_dir,
    swap_in,
    verify_file,
)
from tdpcr_lib.models.config import ModelConfig, config_differences
from tdpcr_lib.models.fingerprint import parameter_fingerprint
from tdpcr_lib.models.state_codec import flatten_state as flatten_state
from tdpcr_lib.models.state_codec import unflatten_state as unflatten_state

#: Bumped when the folder layout or the meaning of a field changes.
CHECKPOINT_FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, or does not match what is asked of it."""


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------
def resolve_checkpoint_dir(directory: str | Path) -> Path:
    """The folder to read: ``directory`` or, after a crash mid-swap, its ``.old`` sibling."""
    directory = Path(directory)
    if (directory / CONFIG_FILE).is_file():
        return directory
    previous = directory.parent / f".{directory.name}.old"
    if (previous / CONFIG_FILE).is_file():
        return previous
    if directory.exists():
        raise CheckpointError(f"{directory}: not a tdpcr checkpoint (no {CONFIG_FILE})")
    raise CheckpointError(f"{directory}: checkpoint folder does not exist")


def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    *,
    phase: str,
    epoch: int,
    step: int,
    train_config: dict[str, Any] | None = None,
    metrics: list[dict[str, Any]] | dict[str, Any] | None = None,
    manifest_hash: str | None = None,
    trainer_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    digests: DigestMemo | None = None,
    code_version: str | None = None,
    model_card: Callable[[dict[str, Any], int], str] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (see the module docstring for the layout).

    Parameters
    ----------
    directory
        The checkpoint folder (replaced if it exists).
    model
        A tdpcr model (has ``.config`` with ``to_dict()``); a DDP wrapper is unwrapped.
    phase, epoch, step
        Where in training it was taken (``epoch``: completed epochs, ``step``: optimizer steps).
    train_config
        The :class:`tdpcr_lib.training.config.TrainConfig` as a dict.
    metrics
        Validation metrics: the result frame's JSON rows (``metrics.results.to_records``).
    manifest_hash
        ``dataset.manifest_hash`` of the training data.
    trainer_state
        Optimizer/scheduler/RNG/progress state for exact resume (nested tensors, arrays, ...).
    extra
        More JSON-able fields for ``config.json``.
    digests, code_version
        A ``DigestMemo`` kept across saves (equal bytes are not hashed again); the ``git_sha``.
    model_card
        ``model_card(meta, weights_bytes) -> markdown``, written as ``MODEL_CARD.md`` (hashed).
    """
    directory, model = Path(directory), unwrap_model(model)
    if not hasattr(model, "config"):
        raise TypeError("save_checkpoint needs a tdpcr model with a .config (ModelConfig)")
    staging = staging_dir(directory)
    staging.mkdir(parents=True)
    try:
        digests = digests if digests is not None else DigestMemo()
        hashes: dict[str, str] = {}

        def write(name: str, data: bytes) -> None:  # hashed in memory, not read back
            with atomic_path(staging / name) as tmp:
                tmp.write_bytes(data)
            hashes[name] = digests.sha256(name, data)

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        write(MODEL_FILE, weights := save(state, metadata={"tdpcr": __version__}))
        if trainer_state is not None:
            data, tensors = flatten_state(trainer_state)
            write(STATE_TENSORS_FILE, save(tensors))
            atomic_write_json(staging / STATE_JSON_FILE, data, indent=None)  # hashed from file
            hashes[STATE_JSON_FILE] = sha256_file(staging / STATE_JSON_FILE)
        meta = {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "tdpcr_version": __version__,
            "git_sha": git_sha() if code_version is None else code_version,
            "model_config": model.config.to_dict(),
            "train_config": train_config,
            "phase": phase,
            "epoch": int(epoch),
            "step": int(step),
            "metrics": metrics if metrics is not None else [],
            "manifest_hash": manifest_hash,
            "num_parameters": int(sum(p.numel() for p in model.parameters())),
            "parameter_names_hash": parameter_fingerprint(state),
            **(extra or {}),
            # verified on load: a flipped byte in the weights is an error, not silent garbage
            HASHES_FIELD: hashes,
        }
        if model_card is not None:  # rendered from this record, inside the atomic folder
            write("MODEL_CARD.md", model_card(meta, len(weights)).encode("utf-8"))
        atomic_write_json(staging / CONFIG_FILE, meta)  # written last: marks the folder complete
        swap_in(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP / ``torch.compile`` wrapper."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def read_meta(directory: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint, validated for the format version."""
    directory = resolve_checkpoint_dir(directory)
    path = directory / CONFIG_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise CheckpointError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); the checkpoint is corrupt"
        ) from err
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path}: expected a JSON object, found a JSON {type(meta).__name__}; the checkpoint is corrupt"
        )
    version = meta.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}, this tdpcr reads version {CHECKPOINT_FORMAT_VERSION}"
        )
    for key in ("model_config", "phase", "epoch", "step"):
        if key not in meta:
            raise CheckpointError(f"{path}: missing field {key!r}")
    return meta


def load_state_dict_file(directory: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The raw weights of a checkpoint (safetensors only), verified against ``config.json``.

    The file's sha256 must equal the one recorded in ``config.json`` when it was saved; a
    mismatch raises :class:`CheckpointError` naming the file. Checkpoints written before
    hashes were recorded (no ``sha256`` field) still load, unverified.
    """
    folder = resolve_checkpoint_dir(directory)
    path = folder / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file missing")
    try:
        state = load_file(str(path), device=str(device))
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: cannot read weights ({err})") from err
    problem = verify_file(folder, MODEL_FILE, read_meta(folder))  # same length, flipped bytes
    if problem:
        raise CheckpointError(problem)
    return state


def load_weights_into(model: nn.Module, directory: str | Path, check_config: bool = True) -> dict[str, Any]:
    """Load a checkpoint's weights into an existing model, refusing any mismatch.

    Parameters
    ----------
    model
        The model to fill (DDP wrappers are unwrapped).
    directory
        The checkpoint folder.
    check_config
        Compare ``model.config`` with the stored model config first and raise a
        :class:`CheckpointError` listing the differing fields.

    Returns
    -------
    dict
        The checkpoint's ``config.json``.
    """
    meta = read_meta(directory)
    model = unwrap_model(model)
    if check_config:
        differences = config_differences(meta["model_config"], model.config.to_dict())
        if differences:
            raise CheckpointError(
                f"{resolve_checkpoint_dir(directory)}: model config does not match the "
                f"checkpoint ({'; '.join(differences)})"
            )
    state = load_state_dict_file(directory, model_device(model))
    _check_state_matches(model, state, resolve_checkpoint_dir(directory))
    model.load_state_dict(state, strict=True)
    return meta


def _check_state_matches(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensors (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:3]})")
        raise CheckpointError(f"{where}: weights do not fit the architecture: " + "; ".join(parts))


def load_model(
    directory: str | Path,
    device: str | torch.device = "cpu",
    expected_config: ModelConfig | Mapping[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint folder and load its weights.

    Parameters
    ----------
    directory
        Checkpoint folder (e.g. ``runs/phase2/best``).
    device
        Where to put the model (``"auto"`` allowed).
    expected_config
        If given, the :class:`ModelConfig` (or a partial model-config dict) the checkpoint
        must match; any differing field raises :class:`CheckpointError` naming the fields.

    Returns
    -------
    model, meta
        The model in eval mode and the checkpoint's ``config.json`` contents.
    """
    meta = read_meta(directory)
    stored = meta["model_config"]
    if isinstance(expected_config, ModelConfig):
        expected_config = expected_config.to_dict()  # compared in its serialised (stored) form
    if expected_config is not None:
        differences = config_differences({k: stored.get(k, "<absent>") for k in expected_config}, dict(expected_config))
        if differences:
            raise CheckpointError(
                f"{resolve_checkpoint_dir(directory)}: checkpoint does not "
                f"match the expected model config ({'; '.join(differences)})"
            )
    try:
        config = ModelConfig.from_dict(stored)
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"{resolve_checkpoint_dir(directory)}/{CONFIG_FILE}: model config "
            f"cannot be rebuilt with this tdpcr version ({err})"
        ) from err
    model = build_model(config).to(resolve_device(device))
    load_weights_into(model, directory, check_config=False)
    model.eval()
    return model, meta


def load_trainer_state(directory: str | Path) -> dict[str, Any]:
    """The resumable trainer state (optimizer, scheduler, RNG, progress) of a checkpoint."""
    directory = resolve_checkpoint_dir(directory)
    json_path, tensor_path = directory / STATE_JSON_FILE, directory / STATE_TENSORS_FILE
    if not json_path.is_file() or not tensor_path.is_file():
        raise CheckpointError(
            f"{directory}: no trainer state (a weights-only checkpoint such as "
            "'best' cannot be resumed; resume from 'last')"
        )
    meta = read_meta(directory)
    for name in (STATE_JSON_FILE, STATE_TENSORS_FILE):
        problem = verify_file(directory, name, meta)
        if problem:
            raise CheckpointError(problem)
    try:
        data = json.loads(json_path.read_text())
        tensors = load_file(str(tensor_path))
    except Exception as err:
        raise CheckpointError(f"{directory}: cannot read trainer state ({err})") from err
    return unflatten_state(data, tensors)
