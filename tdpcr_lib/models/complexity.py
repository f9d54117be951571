"""Model size and cost: parameters (total, trainable, per part) and FLOPs per tile.

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` (no extra dependency).
It counts **2 FLOPs per multiply-add** of convolutions, transposed convolutions and matrix
products (so FLOPs = 2 × MACs); element-wise work (activations, normalisation, additions,
interpolation, pooling) is not counted — the same convention for every model in the table. The
forward pass is run on PyTorch's ``meta`` device, so counting a 1.2 TMAC DSen2-CR at 256×256
takes milliseconds and allocates no tensor memory.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

# torch has no public home for these yet; FlopCounterMode itself is built on them
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: PLC2701
from torch.utils._pytree import tree_leaves  # noqa: PLC2701
from torch.utils.flop_counter import FlopCounterMode

from tdpcr_lib.core.io import atomic_write_json
from tdpcr_lib.core.runtime import model_device
from tdpcr_lib.models import ModelConfig, build_model, named_configs


def count_parameters(model: nn.Module) -> dict[str, Any]:
    """Count parameters.

    Returns
    -------
    dict
        ``total`` and ``trainable`` (ints) and ``per_group``: ``{name: total}`` over
        ``model.module_groups()`` when the model has it, else over its top-level children.
    """
    groups = model.module_groups() if hasattr(model, "module_groups") else dict(model.named_children())
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "per_group": {name: sum(p.numel() for p in part.parameters()) for name, part in groups.items()},
    }


def flops_per_tile(model: nn.Module, size: int = 256, batch_size: int = 1, on_meta: bool = True) -> int:
    """FLOPs (2 per multiply-add) of one forward pass on ``batch_size`` tiles of ``size``×``size``.

    Parameters
    ----------
    model
        Any model of this package (``model.config`` gives the band counts).
    size
        Tile height and width.
    on_meta
        Count on a ``meta``-device copy (fast, no memory). ``False`` runs the real model on its
        device (used by the tests to check that both agree).
    """
    config = model.config
    if on_meta:
        model = copy.deepcopy(model).to(device="meta")
    device = model_device(model)
    optical = torch.zeros(batch_size, config.in_optical, size, size, device=device)
    sar = torch.zeros(batch_size, config.in_sar, size, size, device=device)
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            model(optical, sar)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // batch_size


class _TrafficCounter(TorchDispatchMode):
    """Sums the bytes every ATen operator reads (its tensor arguments) and writes (its results).

    Views (results that alias an input without writing it) move no data and are skipped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        if returns and all(r.alias_info is not None and not r.alias_info.is_write for r in returns):
            return out
        self.bytes += sum(
            t.numel() * t.element_size() for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)
        )
        return out


def bytes_moved_per_tile(model: nn.Module, size: int = 256, dtype: torch.dtype = torch.float32) -> int:
    """Memory traffic of one forward pass on a ``size``×``size`` tile, in bytes.

    The model of the roofline argument in ``docs/performance.md`` § Inference speed: every operator
    reads each of its tensor arguments and writes each result once from/to memory (no cache
    reuse *between* operators, perfect reuse *inside* one). Counted on a ``meta`` copy, as
    :func:`flops_per_tile`; the ratio of the two is the arithmetic intensity (FLOP per byte).
    """
    config = model.config
    model = copy.deepcopy(model).to(device="meta", dtype=dtype).eval()
    optical = torch.zeros(1, config.in_optical, size, size, device="meta", dtype=dtype)
    sar = torch.zeros(1, config.in_sar, size, size, device="meta", dtype=dtype)
    counter = _TrafficCounter()
    with torch.no_grad(), counter:
        model(optical, sar)
    return counter.bytes


def measure_throughput(
    model: nn.Module,
    size: int = 256,
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    iterations: int = 3,
    warmup: int = 1,
    channels_last: bool = False,
    clock: str = "wall",
) -> float:
    """Inference speed in tiles per second (no gradients, eval mode, fixed random inputs).

    ``clock="wall"`` measures elapsed time (what a user waits); ``clock="process"`` measures this
    process's CPU time, which is robust to other jobs sharing the machine (CPU only; use it with
    ``torch.set_num_threads(1)``: with several threads it sums their time, including OpenMP
    spin-waiting when the machine is busy).
    """
    if clock not in ("wall", "process"):
        raise ValueError(f"clock must be 'wall' or 'process', got {clock!r}")
    timer = time.perf_counter if clock == "wall" else time.process_time
    device = torch.device(device)
    model = model.to(device).eval()
    config = model.config
    optical = torch.rand(batch_size, config.in_optical, size, size, device=device)
    sar = torch.rand(batch_size, config.in_sar, size, size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        optical = optical.contiguous(memory_format=torch.channels_last)
        sar = sar.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(warmup):
            model(optical, sar)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = timer()
        for _ in range(iterations):
            model(optical, sar)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return iterations * batch_size / (timer() - start)


def complexity_table(
    configs: Mapping[str, ModelConfig] | None = None, size: int = 256, reference: str | None = "dsen2cr"
) -> pd.DataFrame:
    """One row per model: parameters (total, trainable, per part), GFLOPs per tile, ratios.

    Parameters
    ----------
    configs
        ``{name: ModelConfig}``; default: :func:`tdpcr_lib.models.named_configs` (TDP-CR, its
        phase-1 form, the three fusion ablations, DSen2-CR and the multi-task U-Net).
    size
        Tile size for the FLOP count (256 = a LuojiaSET-OSFCR tile).
    reference
        Row whose parameters/FLOPs the ``*_ratio`` columns divide by (``None``: no ratios).

    Returns
    -------
    pandas.DataFrame
        Indexed by name; columns ``arch, fusion, with_seg_decoder, params, trainable_params,
        params_M, gflops, gmacs, params_ratio, flops_ratio`` and ``params.<part>`` per part.
    """
    configs = dict(configs) if configs is not None else named_configs()
    rows = []
    for name, config in configs.items():
        with torch.device("meta"):
            model = build_model(config)
        counts = count_parameters(model)
        flops = flops_per_tile(model, size=size)
        row = {
            "name": name,
            "arch": config.arch,
            "fusion": config.fusion if config.arch == "tdpcr" else "",
            "with_seg_decoder": bool(config.with_seg_decoder),
            "tile": size,
            "params": counts["total"],
            "trainable_params": counts["trainable"],
            "params_M": counts["total"] / 1e6,
            "gflops": flops / 1e9,
            "gmacs": flops / 2e9,
        }
        row.update({f"params.{part}": n for part, n in counts["per_group"].items()})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("name")
    if reference is not None and reference in table.index:
        table["params_ratio"] = table["params"] / table.loc[reference, "params"]
        table["flops_ratio"] = table["gflops"] / table.loc[reference, "gflops"]
    return table


def complexity_records(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The table as ``{name: {column: value}}`` with JSON types (missing parts dropped)."""
    records: dict[str, dict[str, Any]] = {}
    for name, row in table.iterrows():
        clean = {}
        for key, value in row.items():
            if pd.isna(value):
                continue
            clean[key] = value.item() if hasattr(value, "item") else value
        records[str(name)] = clean
    return records


def write_complexity_json(table: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`complexity_records` of ``table`` atomically as JSON, with the FLOP convention."""
    payload = {
        "flop_convention": "FLOPs = 2 x multiply-adds of conv/linear/matmul, counted by "
        "torch.utils.flop_counter; element-wise ops not counted",
        "models": complexity_records(table),
    }
    return atomic_write_json(path, payload)
