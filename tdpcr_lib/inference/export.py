"""Exporting a trained model to ONNX: one file any ONNX runtime can run, with what it needs to know.

:func:`export_onnx` traces the model with ``torch.onnx.export(..., dynamo=True)`` at opset
:data:`OPSET` (the legacy TorchScript tracer fails on ``LayerNorm2d``'s channels-last view). The
graph takes ``optical (N, 13, H, W)`` and ``sar (N, 2, H, W)`` in network units ([0, 1], see
the ``normalisation`` metadata) with a dynamic batch ``N`` and dynamic ``H, W`` that are
multiples of the model's ``pad_multiple`` (the metadata's ``spatial_multiple``): the model's own
reflection padding would otherwise be traced for the sample size only. tdpcr's engines pad and
crop around the graph exactly as the torch model does (:mod:`tdpcr_lib.inference.engines`).

The file's ``metadata_props`` carry, as JSON strings: ``legend`` (codes, names, colours, ignore
index), ``normalisation``, ``band_order``, ``inputs``/``outputs`` (names and symbolic shapes),
``weights_sha256`` (of the checkpoint's ``model.safetensors``), ``opset``, ``model_config`` and
``tdpcr_version``. The file is written to a temporary name, verified against the torch model on
fixed inputs (:data:`VERIFY_ATOL`) with ONNX Runtime, and only then renamed onto its name.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save
from torch import nn

from tdpcr_lib import __version__
from tdpcr_lib.core.bands import S1_BANDS, S2_BANDS
from tdpcr_lib.core.io import atomic_path, sha256_file
from tdpcr_lib.core.legend import legend_of
from tdpcr_lib.core.normalisation import PACKAGED_NORMALISATIONS, load_normalisation
from tdpcr_lib.models.checkpoint import load_model, resolve_checkpoint_dir, unwrap_model
from tdpcr_lib.models.checkpoint_files import HASHES_FIELD, MODEL_FILE

#: ONNX opset of the exported graph (the dynamo exporter's well-supported range).
OPSET = 18
#: Format tag in the metadata; bumped when the graph's interface changes.
EXPORT_FORMAT = "tdpcr-onnx/1"
#: Largest |ONNX - torch| allowed on the verification inputs, in network units ([0, 1]) for the
#: reconstruction and in logits for segmentation. Measured differences are ~1e-6 (float32
#: summation order); 1e-4 is 1 DN at the 1/10000 reflectance scale.
VERIFY_ATOL = 1e-4
#: Prompt levels of TDP-CR (outputs ``prompt_0`` … ``prompt_3``).
PROMPT_LEVELS = 4


class ExportError(RuntimeError):
    """The export failed or the exported graph does not reproduce the torch model."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and how closely it matches torch."""

    path: Path
    weights_sha256: str
    outputs: tuple[str, ...]
    max_abs_diff: dict[str, float]
    metadata: dict[str, str]


class _TupleOutputs(nn.Module):
    """The model with its dict outputs flattened into the fixed tuple ONNX needs."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, optical: torch.Tensor, sar: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(optical, sar)
        flat = {"reconstruction": out["reconstruction"], "segmentation": out.get("segmentation")}
        for level, prompt in enumerate(out.get("prompts") or []):
            flat[f"prompt_{level}"] = prompt
        return tuple(flat[name] for name in self.names)


def output_names(model: nn.Module) -> tuple[str, ...]:
    """The graph's outputs for ``model``: reconstruction, [segmentation], [prompt_0..3]."""
    align = int(getattr(model, "pad_multiple", 1))
    probe = torch.zeros(1, len(S2_BANDS), 2 * align, 2 * align)
    with torch.inference_mode():
        out = model(probe, torch.zeros(1, len(S1_BANDS), 2 * align, 2 * align))
    names = ["reconstruction"]
    if out.get("segmentation") is not None:
        names.append("segmentation")
    names += [f"prompt_{level}" for level in range(len(out.get("prompts") or []))]
    return tuple(names)


def weights_sha256(model: nn.Module) -> str:
    """sha256 of ``model``'s weights as a checkpoint stores them (the safetensors bytes)."""
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap_model(model).state_dict().items()}
    return hashlib.sha256(save(state)).hexdigest()


def checkpoint_weights_sha256(directory: str | Path) -> str:
    """sha256 of a checkpoint's ``model.safetensors`` (the recorded one when there is one)."""
    directory = resolve_checkpoint_dir(directory)
    meta = json.loads((directory / "config.json").read_text())
    recorded = (meta.get(HASHES_FIELD) or {}).get(MODEL_FILE)
    return recorded or sha256_file(directory / MODEL_FILE)


def _normalisation_name(legend_name: str) -> str:
    # the dataset a legend belongs to names its normalisation (both packaged ones today)
    return legend_name if legend_name in PACKAGED_NORMALISATIONS else "sen12mscr"


def build_metadata(
    model: nn.Module, names: tuple[str, ...], sha256: str, extra: dict[str, Any] | None = None
) -> dict[str, str]:
    """The ``metadata_props`` of the exported file (every value a JSON string)."""
    legend = legend_of(model)
    norm = load_normalisation(name=_normalisation_name(legend.name))
    config = getattr(model, "config", None)
    symbolic = {
        "optical": ["batch", len(S2_BANDS), "height", "width"],
        "sar": ["batch", len(S1_BANDS), "height", "width"],
    }
    out_shapes = {
        "reconstruction": ["batch", len(S2_BANDS), "height", "width"],
        "segmentation": ["batch", legend.num_classes, "height", "width"],
    }
    for level in range(PROMPT_LEVELS):
        out_shapes[f"prompt_{level}"] = ["batch", 1, f"height/{2**level}", f"width/{2**level}"]
    fields: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "tdpcr_version": __version__,
        "opset": OPSET,
        "weights_sha256": sha256,
        "spatial_multiple": int(getattr(model, "pad_multiple", 1)),
        "legend": {
            "name": legend.name,
            "codes": list(legend.codes),
            "names": list(legend.names),
            "colours": [list(c) for c in legend.colours],
            "ignore_index": legend.ignore_index,
        },
        "normalisation": {"name": _normalisation_name(legend.name), **dataclasses.asdict(norm)},
        "band_order": {"optical": list(S2_BANDS), "sar": list(S1_BANDS)},
        "inputs": [{"name": k, "shape": v, "dtype": "float32"} for k, v in symbolic.items()],
        "outputs": [{"name": n, "shape": out_shapes[n], "dtype": "float32"} for n in names],
        "model_config": config.to_dict() if hasattr(config, "to_dict") else None,
        **(extra or {}),
    }
    return {key: json.dumps(value) for key, value in fields.items()}


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The tdpcr metadata of an exported file, JSON-decoded (``{}`` for a foreign ONNX file)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in proto.metadata_props}


@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter prints progress lines and warnings a user cannot act on."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        level = logging.getLogger("torch").level
        logging.getLogger("torch").setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.getLogger("torch").setLevel(level)


def export_onnx(
    model_or_checkpoint: nn.Module | str | Path,
    out: str | Path,
    verify: bool = True,
    extra: dict[str, Any] | None = None,
) -> ExportReport:
    """Export a model or a checkpoint folder to an ONNX file at ``out`` (atomically).

    Parameters
    ----------
    model_or_checkpoint
        A checkpoint folder (``runs/phase2/best``; phase 1 or 2, any legend) or a tdpcr model.
    out
        The ``.onnx`` file to write (replaced only once the new one is complete and verified).
    verify
        Compare ONNX Runtime's outputs with torch's on fixed inputs (:data:`VERIFY_ATOL`).
    extra
        More metadata fields (JSON-able).

    Raises
    ------
    ExportError
        The exporter failed, or the graph's outputs differ from torch's beyond the tolerance.
    """
    if isinstance(model_or_checkpoint, nn.Module):
        model = copy.deepcopy(unwrap_model(model_or_checkpoint)).cpu().float().eval()
        sha = weights_sha256(model)
        source: dict[str, Any] = {}
    else:
        model, meta = load_model(model_or_checkpoint, device="cpu")
        sha = checkpoint_weights_sha256(model_or_checkpoint)
        source = {"checkpoint_phase": meta.get("phase"), "checkpoint_step": meta.get("step")}
    names = output_names(model)
    align = int(getattr(model, "pad_multiple", 1))
    # batch 2 and 4 aligned blocks: a size of 1 would be specialised by torch.export
    sample = (
        torch.rand(2, len(S2_BANDS), 4 * align, 4 * align, generator=torch.Generator().manual_seed(0)),
        torch.rand(2, len(S1_BANDS), 4 * align, 4 * align, generator=torch.Generator().manual_seed(1)),
    )
    dims = {
        0: torch.export.Dim("batch", min=1, max=4096),
        2: align * torch.export.Dim("height_blocks", min=1, max=8192 // align),
        3: align * torch.export.Dim("width_blocks", min=1, max=8192 // align),
    }
    metadata = build_metadata(model, names, sha, {**source, **(extra or {})})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        try:
            with _quiet_exporter(), torch.no_grad():
                program = torch.onnx.export(
                    _TupleOutputs(model, names).eval(),
                    sample,
                    dynamo=True,
                    opset_version=OPSET,
                    input_names=["optical", "sar"],
                    output_names=list(names),
                    dynamic_shapes=(dims, dims),
                    optimize=True,
                    verbose=False,
                )
        except Exception as err:  # the exporter raises many kinds; one clear line
            raise ExportError(
                f"torch.onnx.export failed for {type(model).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
            ) from err
        proto = program.model_proto
        del proto.metadata_props[:]
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        import onnx

        onnx.save(proto, str(tmp))
        diffs = verify_against_torch(tmp, model, names) if verify else {}
    return ExportReport(out, sha, names, diffs, metadata)


def verification_inputs(align: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed inputs for the check: batch 3, a non-square size unlike the trace's sample."""
    rng = np.random.default_rng(2025)
    height, width = 5 * align, 3 * align
    return (
        rng.random((3, len(S2_BANDS), height, width), dtype=np.float32),
        rng.random((3, len(S1_BANDS), height, width), dtype=np.float32),
    )


def verify_against_torch(path: str | Path, model: nn.Module, names: tuple[str, ...]) -> dict[str, float]:
    """Max |ONNX Runtime − torch| per output on :func:`verification_inputs`; raises if too big."""
    import onnxruntime as ort

    optical, sar = verification_inputs(int(getattr(model, "pad_multiple", 1)))
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = dict(zip(names, session.run(list(names), {"optical": optical, "sar": sar}), strict=True))
    with torch.inference_mode():
        want = _TupleOutputs(model, names)(torch.from_numpy(optical), torch.from_numpy(sar))
    diffs = {}
    for name, expected in zip(names, want, strict=True):
        diffs[name] = float(np.abs(got[name] - expected.float().numpy()).max())
    bad = {k: v for k, v in diffs.items() if not v <= VERIFY_ATOL}
    if bad:
        raise ExportError(
            f"{path}: the exported graph differs from the torch model by {bad} (> {VERIFY_ATOL}); not written"
        )
    return diffs


def default_export_path(checkpoint: str | Path) -> Path:
    """``<checkpoint>.onnx`` beside the checkpoint folder (``runs/phase2/best.onnx``)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent / f"{checkpoint.name}.onnx"


__all__ = [
    "OPSET",
    "VERIFY_ATOL",
    "ExportError",
    "ExportReport",
    "export_onnx",
    "read_metadata",
    "default_export_path",
    "checkpoint_weights_sha256",
    "weights_sha256",
]
