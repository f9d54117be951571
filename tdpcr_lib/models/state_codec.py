"""Pickle-free serialisation of nested state (optimizer / scheduler / RNG state dicts): JSON-able
data plus a flat tensor dict, for safetensors checkpoints."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


# --------------------------------------------------------------------------------------------
# Pickle-free serialisation of nested state (optimizer / scheduler / RNG state dicts)
# --------------------------------------------------------------------------------------------
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
