"""Fingerprints of an architecture: a short hash of its parameter names and shapes.

Checkpoints record it (``parameter_names_hash``) and the ablation grid keys its runs on it, so a
change of architecture in the code is noticed (weights of the old one would no longer load).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch
from torch import nn

from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.config import ModelConfig


def parameter_fingerprint(state: Mapping[str, torch.Tensor] | nn.Module) -> str:
    """sha256 (first 16 hex digits) of the sorted ``name:shape`` lines of a state dict.

    ``state`` may be a module (its ``state_dict()`` is used). Only names and shapes count, so
    it identifies the architecture, not the weights.
    """
    if isinstance(state, nn.Module):
        state = state.state_dict()
    text = "\n".join(f"{name}:{tuple(tensor.shape)}" for name, tensor in sorted(state.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def architecture_fingerprint(config: ModelConfig) -> str:
    """:func:`parameter_fingerprint` of the model ``config`` builds.

    Built on the ``meta`` device: no memory is allocated and it takes milliseconds.
    """
    with torch.device("meta"):
        model = build_model(config)
    return parameter_fingerprint(model)
