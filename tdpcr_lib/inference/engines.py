"""Inference engines: the torch model itself, or its ONNX export run by a fusing runtime.

TDP-CR is memory-bound on a CPU; a runtime that fuses the graph (ONNX Runtime, OpenVINO) runs
the same function faster (``docs/engines.md`` has the measurements). :func:`engine_model` turns a
checkpoint folder or a model into something with the torch model's interface
(``model(optical, sar) -> {"reconstruction", ["segmentation"], ["prompts"]}``, ``.config``,
``.pad_multiple``), so scene prediction, evaluation and the viewer take any engine unchanged.

* ``torch``: the model as trained (any device, autocast).
* ``onnxruntime``: the declared dependency, chosen by measurement (fastest on the 2-core CPU).
* ``openvino``: optional (``pip install openvino``).
* ``auto``: torch on CUDA; on a CPU the fastest engine installed, in :data:`CPU_PREFERENCE` order.

The exported graph is cached beside the checkpoint, in the hidden folder
``.<checkpoint>.engine/`` (``runs/phase2/.best.engine/tdpcr-<sha256[:16]>.onnx``), keyed by the
sha256 of the checkpoint's weights: new weights (a new save into the same folder) get a new
export, and stale exports are removed. An in-memory model is exported once per process into a
temporary folder, keyed the same way.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# ``engine`` values of ``predict_scene``, ``evaluate``, the viewer and the CLI (ENGINES)
from tdpcr_lib.core.engine_names import ENGINES
from tdpcr_lib.core.runtime import resolve_device
from tdpcr_lib.inference.export import checkpoint_weights_sha256, export_onnx, read_metadata, weights_sha256
from tdpcr_lib.models.blocks import crop_to, pad_to_multiple
from tdpcr_lib.models.checkpoint import load_model, read_meta, resolve_checkpoint_dir, unwrap_model
from tdpcr_lib.models.config import ModelConfig

#: Fastest first, as measured on the project's 2-core CPU (full-size TDP-CR, 4 tiles of 256²:
#: ONNX Runtime 1.63x torch, OpenVINO 1.12x; docs/engines.md).
CPU_PREFERENCE = ("onnxruntime", "openvino", "torch")
#: Python module of each runtime and how to install it.
_MODULES = {"onnxruntime": ("onnxruntime", "pip install onnxruntime"), "openvino": ("openvino", "pip install openvino")}


class EngineError(ValueError):
    """An engine cannot be used (not installed, or not on this device)."""


def engine_available(engine: str) -> bool:
    """Whether ``engine``'s runtime is installed (torch always is)."""
    if engine == "torch":
        return True
    return importlib.util.find_spec(_MODULES[engine][0]) is not None


def resolve_engine(engine: str, device: torch.device | str = "cpu") -> str:
    """The concrete engine for ``engine`` on ``device``.

    Raises
    ------
    EngineError
        Unknown name, a runtime that is not installed, or an exported engine on CUDA.
    """
    if engine not in ENGINES:
        raise EngineError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    device = torch.device(device)
    if engine == "auto":
        if device.type != "cpu":
            return "torch"  # the GPU path is torch with bf16 autocast
        return next(e for e in CPU_PREFERENCE if engine_available(e))
    if engine != "torch" and device.type != "cpu":
        raise EngineError(f"engine {engine!r} runs on the CPU only; use --engine torch (or auto) on {device}")
    if not engine_available(engine):
        raise EngineError(f"engine {engine!r} is not installed ({_MODULES[engine][1]})")
    return engine


# --------------------------------------------------------------------------------------------
# Exported-graph cache
# --------------------------------------------------------------------------------------------
def cache_dir(checkpoint: str | Path) -> Path:
    """``<parent>/.<name>.engine``: beside the checkpoint folder, which a save replaces whole."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent / f".{checkpoint.name}.engine"


def cached_export(checkpoint: str | Path) -> Path:
    """The ONNX export of ``checkpoint``'s current weights, built (atomically) if missing."""
    checkpoint = Path(checkpoint)
    resolve_checkpoint_dir(checkpoint)
    sha = checkpoint_weights_sha256(checkpoint)
    folder = cache_dir(checkpoint)
    path = folder / f"tdpcr-{sha[:16]}.onnx"
    if not (path.is_file() and _matches(path, sha)):
        export_onnx(checkpoint, path)
    for stale in folder.glob("tdpcr-*.onnx"):  # exports of weights this folder no longer has
        if stale != path:
            stale.unlink(missing_ok=True)
    return path


def _matches(path: Path, sha: str) -> bool:
    try:
        return read_metadata(path).get("weights_sha256") == sha
    except Exception:  # a damaged cache file is rebuilt, not an error  # noqa: BLE001
        return False


_MEMORY_EXPORTS: dict[str, Path] = {}
_MEMORY_DIR: tempfile.TemporaryDirectory | None = None


def _memory_export(model: nn.Module) -> Path:
    """The export of an in-memory model, once per process and weights."""
    global _MEMORY_DIR
    sha = weights_sha256(model)
    if sha not in _MEMORY_EXPORTS or not _MEMORY_EXPORTS[sha].is_file():
        if _MEMORY_DIR is None:
            _MEMORY_DIR = tempfile.TemporaryDirectory(prefix="tdpcr-engine-")
        path = Path(_MEMORY_DIR.name) / f"tdpcr-{sha[:16]}.onnx"
        export_onnx(model, path)
        _MEMORY_EXPORTS[sha] = path
    return _MEMORY_EXPORTS[sha]


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------
def _session(path: Path, engine: str, threads: int) -> Any:
    """A callable ``(optical, sar) -> list of arrays`` in the graph's output order."""
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spin-waiting between operators: spinning threads took the cores that scene
        # prediction's reader and writer threads need (2 cores, full-size model, 1024² scene:
        # 0.107 -> 0.122 Mpx/s, 0.85 -> 0.88 of the bare tile bound; benchmarks.engine_scene).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda optical, sar: session.run(None, {"optical": optical, "sar": sar})
    import openvino as ov

    compiled = ov.Core().compile_model(
        str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    )
    return lambda optical, sar: list(compiled([optical, sar]).values())


class ExportedModel(nn.Module):
    """An exported graph behind the torch model's interface (CPU, float32, no autocast).

    Pads inputs to the graph's ``spatial_multiple`` by reflection and crops the outputs, as the
    torch model does internally, so the outputs match it for any image size.
    """

    def __init__(self, path: str | Path, engine: str, threads: int | None = None) -> None:
        super().__init__()
        self.path, self.engine = Path(path), engine
        meta = read_metadata(self.path)
        self.metadata = meta
        self.pad_multiple = int(meta.get("spatial_multiple", 1))
        self.output_names = [o["name"] for o in meta["outputs"]]
        self.config = ModelConfig.from_dict(meta["model_config"]) if meta.get("model_config") else None
        self._run = _session(self.path, engine, threads or max(1, torch.get_num_threads()))

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> dict[str, Any]:
        if optical.device.type != "cpu":
            raise EngineError(f"engine {self.engine!r} runs on the CPU; got {optical.device}")
        x, size = pad_to_multiple(optical.float(), self.pad_multiple)
        s, _ = pad_to_multiple(sar.float(), self.pad_multiple)
        arrays = self._run(np.ascontiguousarray(x.numpy()), np.ascontiguousarray(s.numpy()))
        named = dict(zip(self.output_names, arrays, strict=True))
        out: dict[str, Any] = {"reconstruction": crop_to(torch.from_numpy(named["reconstruction"]), size)}
        if "segmentation" in named:
            out["segmentation"] = crop_to(torch.from_numpy(named["segmentation"]), size)
        prompts = [named[n] for n in self.output_names if n.startswith("prompt_")]
        if prompts:
            out["prompts"] = [
                crop_to(torch.from_numpy(p), (-(-size[0] // 2**lv), -(-size[1] // 2**lv)))
                for lv, p in enumerate(prompts)
            ]
        return out

    def extra_repr(self) -> str:
        return f"engine={self.engine}, path={self.path}"


def engine_model(
    checkpoint_or_model: str | Path | nn.Module, engine: str = "auto", device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any], str]:
    """The model to run with ``engine``: ``(model, checkpoint meta, concrete engine)``.

    ``torch`` loads the checkpoint (or uses the module) on ``device``; the exported engines use
    the cached export of the checkpoint's weights (built on first use) or of the module's.
    """
    device = resolve_device(device)
    chosen = resolve_engine(engine, device)
    if isinstance(checkpoint_or_model, nn.Module):
        if chosen == "torch":
            return checkpoint_or_model.to(device), {}, chosen
        model = unwrap_model(checkpoint_or_model)
        return ExportedModel(_memory_export(model), chosen), {}, chosen
    if chosen == "torch":
        model, meta = load_model(checkpoint_or_model, device=device)
        return model, dict(meta), chosen
    meta = dict(read_meta(checkpoint_or_model))
    return ExportedModel(cached_export(checkpoint_or_model), chosen), meta, chosen
