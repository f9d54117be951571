"""Runtime helpers: devices, seeding, RNG state (the git revision is :mod:`tdpcr_lib.core.revision`)."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


class DeviceError(ValueError):
    """A requested device is unknown or not present on this machine."""


def available_devices() -> list[str]:
    """The devices this machine can run on, e.g. ``["cpu", "cuda:0 (NVIDIA H200)"]``."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA if available, else CPU; anything else is checked and passed on.

    Raises
    ------
    DeviceError
        The name is not a device (``"banana"``) or the device is absent (``"cuda"`` without a
        GPU, ``"cuda:3"`` on a machine with one GPU); the message lists the devices there are.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    here = ", ".join(available_devices())
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(
            f"device {device!r} is not a device name; use auto, cpu, cuda or cuda:N (this machine has: {here})"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {device!r} was requested but there is no usable CUDA GPU "
                f"here (torch {torch.__version__}); available: {here}"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} does not exist; available: {here}")
    elif dev.type == "mps" and "mps" not in here:
        raise DeviceError(f"device {device!r} is not available here; available: {here}")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        raise DeviceError(f"device {device!r} is not supported by tdpcr; available: {here}")
    return dev


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    parameter = next(iter(model.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- third-party code may use the legacy global RNG
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def device_description(device: torch.device) -> str:
    """Human-readable device name (the GPU model on CUDA)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu ({os.cpu_count()} cores, torch {torch.__version__})"


# --------------------------------------------------------------------------------------------
# RNG state (for the model's own randomness, e.g. dropout)
# --------------------------------------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), NumPy and Python RNG states in a pickle-free form."""
    numpy_state = np.random.get_state()  # noqa: NPY002 (the legacy global RNG is what we save/restore)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": numpy_state[0],
            "keys": numpy_state[1].astype(np.int64),
            "pos": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002 (the legacy global RNG is what we save/restore)
        (
            numpy_state["name"],
            numpy_state["keys"].astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    internal, version, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
