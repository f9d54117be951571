"""Checkpoint writes off the training thread.

Serialising safetensors, hashing, writing and fsync-ing a checkpoint took the training thread
away from its steps for the whole write. :class:`AsyncCheckpointer` instead takes a *snapshot*
on the training thread (the weights and the trainer state copied to CPU memory: one memory copy,
the only part the next step must not overlap, since the optimizer updates its tensors in place)
and hands it to one background thread, which runs the same
:func:`tdpcr_lib.models.checkpoint.save_checkpoint`: staging folder, ``config.json`` last, one
atomic swap. So a SIGKILL at any moment of an asynchronous save leaves the previous checkpoint
in place and valid (``tests/training/test_async_checkpoint.py`` kills a run mid-save to prove it).

At most one save is in flight: a new one first waits for the previous one (bounded memory: one
snapshot), saves are written in the order they were asked for, and an error in the writer is
raised on the training thread at the next save or at :meth:`AsyncCheckpointer.wait`.
"""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tdpcr_lib.models.checkpoint import save_checkpoint, unwrap_model


def snapshot(obj: Any) -> Any:
    """A deep copy of a state tree whose tensors are detached CPU clones (arrays copied too)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(snapshot(v) for v in obj)
    return obj


@dataclass
class FrozenModel:
    """What :func:`save_checkpoint` reads from a model, frozen at snapshot time."""

    config: Any
    state: dict[str, torch.Tensor]
    n_parameters: int

    @classmethod
    def of(cls, model: nn.Module) -> FrozenModel:
        model = unwrap_model(model)
        return cls(
            copy.deepcopy(model.config), snapshot(model.state_dict()), int(sum(p.numel() for p in model.parameters()))
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.state

    def parameters(self):  # noqa: ANN201 -- save_checkpoint only counts them
        yield torch.empty(self.n_parameters, device="meta")


class AsyncCheckpointer:
    """Writes checkpoints on one background thread (see the module docstring).

    Parameters
    ----------
    enabled
        ``False`` writes on the calling thread (the synchronous "before" of the benchmark).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="tdpcr-ckpt") if enabled else None
        self._pending: Future | None = None

    def save(self, directory: str | Path, model: nn.Module, **fields: Any) -> None:
        """Snapshot ``model`` and ``fields`` now; write them to ``directory`` in the background."""
        frozen = FrozenModel.of(model)
        fields = snapshot(fields)
        if self._pool is None:
            save_checkpoint(directory, frozen, **fields)  # type: ignore[arg-type]
            return
        self.wait()
        self._pending = self._pool.submit(save_checkpoint, directory, frozen, **fields)

    def wait(self) -> None:
        """Block until the save in flight (if any) is on disk; raise its error, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Finish the save in flight and stop the thread (idempotent)."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
