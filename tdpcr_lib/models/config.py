"""The one configuration object for every network in the package.

A :class:`ModelConfig` says which architecture to build (``arch``), how TDP-CR fuses SAR into the
optical stream (``fusion``), and the sizes. It is stored in every checkpoint's ``config.json``, so it
must round-trip through JSON exactly: :meth:`ModelConfig.to_dict` gives plain JSON types and
:meth:`ModelConfig.from_dict` rejects unknown keys and invalid values with a message that names them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from tdpcr_lib.core.legend import PACKAGED_LEGENDS, class_scheme
from tdpcr_lib.models.presets import preset_fields

ARCHES: tuple[str, ...] = ("tdpcr", "dsen2cr", "multitask_unet")
FUSIONS: tuple[str, ...] = ("pgf", "pgf_no_prompt", "concat", "optical_only")

#: Fields that hold a tuple of ints (JSON has only lists, so they are converted back on load).
_TUPLE_FIELDS = ("widths", "sar_widths", "encoder_depths", "decoder_depths", "unet_widths")


class ModelConfigError(ValueError):
    """A model configuration has an unknown key or an invalid value."""


@dataclass
class ModelConfig:
    """Architecture and sizes of a model; ``build_model(config)`` turns it into an ``nn.Module``.

    Parameters
    ----------
    arch
        ``"tdpcr"`` (the paper's network), ``"dsen2cr"`` (Meraner et al. 2020 baseline) or
        ``"multitask_unet"`` (CloudSeg-style multi-task competitor).
    fusion
        TDP-CR only. ``"pgf"``: prompt-guided fusion (the paper); ``"pgf_no_prompt"``: the same
        gated fusion without the prompt (ablation); ``"concat"``: SAR features concatenated and
        mixed by a 1×1 conv, no gate; ``"optical_only"``: no SAR at all.
    in_optical, in_sar
        Input bands (13 Sentinel-2 L1C bands, 2 Sentinel-1 bands).
    num_classes
        Land-cover classes of the segmentation output (7: codes 0..6); training sets it from the
        dataset's legend.
    legend
        Name of the packaged land-cover legend the classes follow (``"luojiaset"``: 7 classes;
        ``"igbp_simplified"``: the 10 SEN12MS classes), so predictions are coloured and named
        right; see :data:`tdpcr_lib.core.legend.PACKAGED_LEGENDS`.
    with_seg_decoder
        TDP-CR: whether the phase-2 segmentation decoder is attached. ``None`` means the arch's
        default: ``False`` for TDP-CR (phase 1 starts without it), ``False`` for DSen2-CR (it never
        segments), ``True`` for the multi-task U-Net (it always segments).
    widths
        Optical-encoder / shared-decoder channels at the four scales (full, 1/2, 1/4, 1/8).
    sar_widths
        SAR-encoder channels at the four scales; ``None`` means half of ``widths`` (SAR has two
        bands and is the auxiliary stream, so it gets a thinner encoder).
    encoder_depths, decoder_depths
        Number of residual blocks per scale in each encoder and in the shared decoder.
    expansion
        Hidden-channel multiplier inside a residual block.
    prompt_channels
        Channels of the degradation prompt at every scale.
    prompt_components
        Number of learnable prompt components mixed per image (PromptIR-style bank).
    pgf_reduction
        Reduction of the squeeze-excitation MLP in the PGF global channel context.
    pgf_hidden
        Channels of the PGF local spatial-bias branch.
    seg_width
        Channels of the segmentation decoder (all-MLP / FPN-style).
    residual
        TDP-CR: predict a residual added to the cloudy input (``True``) or the image directly.
    dsen2cr_features, dsen2cr_blocks, dsen2cr_res_scale
        DSen2-CR width (256), number of residual blocks (16) and residual scaling (0.1).
    unet_widths
        Multi-task U-Net channels at its five scales.
    """

    arch: str = "tdpcr"
    fusion: str = "pgf"
    in_optical: int = 13
    in_sar: int = 2
    num_classes: int = 7
    legend: str = "luojiaset"
    with_seg_decoder: bool | None = None
    # --- TDP-CR sizes -------------------------------------------------------------------------
    widths: tuple[int, ...] = (32, 64, 128, 256)
    sar_widths: tuple[int, ...] | None = None
    encoder_depths: tuple[int, ...] = (2, 2, 3, 3)
    decoder_depths: tuple[int, ...] = (2, 2, 1, 1)
    expansion: float = 2.0
    prompt_channels: int = 16
    prompt_components: int = 4
    pgf_reduction: int = 4
    pgf_hidden: int = 16
    seg_width: int = 64
    residual: bool = True
    # --- DSen2-CR -----------------------------------------------------------------------------
    dsen2cr_features: int = 256
    dsen2cr_blocks: int = 16
    dsen2cr_res_scale: float = 0.1
    # --- multi-task U-Net ---------------------------------------------------------------------
    unet_widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    #: Free-form note (e.g. which ablation this is); ignored by the builders.
    name: str = field(default="")

    def __post_init__(self) -> None:
        for key in _TUPLE_FIELDS:
            value = getattr(self, key)
            if value is not None and not isinstance(value, tuple):
                if isinstance(value, str) or not hasattr(value, "__iter__"):
                    raise ModelConfigError(f"ModelConfig.{key} must be a sequence of ints, got {value!r}")
                setattr(self, key, tuple(value))
        if self.with_seg_decoder is None:
            self.with_seg_decoder = self.arch == "multitask_unet"
        self.validate()

    # ------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ModelConfigError` naming the first invalid field."""
        if self.arch not in ARCHES:
            raise ModelConfigError(f"ModelConfig.arch={self.arch!r} is unknown; choose one of {ARCHES}")
        if self.fusion not in FUSIONS:
            raise ModelConfigError(f"ModelConfig.fusion={self.fusion!r} is unknown; choose one of {FUSIONS}")
        for key in (
            "in_optical",
            "in_sar",
            "num_classes",
            "prompt_channels",
            "prompt_components",
            "pgf_reduction",
            "pgf_hidden",
            "seg_width",
            "dsen2cr_features",
            "dsen2cr_blocks",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelConfigError(f"ModelConfig.{key} must be a positive int, got {value!r}")
        if not isinstance(self.with_seg_decoder, bool):
            raise ModelConfigError(f"ModelConfig.with_seg_decoder must be true/false, got {self.with_seg_decoder!r}")
        if not isinstance(self.residual, bool):
            raise ModelConfigError(f"ModelConfig.residual must be true/false, got {self.residual!r}")
        for key in ("expansion", "dsen2cr_res_scale"):
            value = getattr(self, key)
            # ``not value > 0`` also refuses NaN; inf would build no network
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or value == float("inf"):
                raise ModelConfigError(f"ModelConfig.{key} must be a positive number (finite), got {value!r}")
        lengths = {"widths": 4, "encoder_depths": 4, "decoder_depths": 4, "unet_widths": 5}
        if self.sar_widths is not None:
            lengths["sar_widths"] = 4
        for key, n in lengths.items():
            value = getattr(self, key)
            if len(value) != n or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
                raise ModelConfigError(f"ModelConfig.{key} must be {n} ints, got {value!r}")
            minimum = 0 if key.endswith("depths") else 1
            if any(v < minimum for v in value):
                raise ModelConfigError(f"ModelConfig.{key} values must be >= {minimum}, got {value!r}")
        if self.arch == "dsen2cr" and self.with_seg_decoder:
            raise ModelConfigError(
                "ModelConfig: arch='dsen2cr' has no segmentation decoder; set with_seg_decoder=false"
            )
        if self.arch == "multitask_unet" and not self.with_seg_decoder:
            raise ModelConfigError(
                "ModelConfig: arch='multitask_unet' always segments; set with_seg_decoder=true (or leave it null)"
            )
        if self.legend not in PACKAGED_LEGENDS:
            raise ModelConfigError(
                f"ModelConfig.legend={self.legend!r} is unknown; choose one of {sorted(PACKAGED_LEGENDS)}"
            )
        if not isinstance(self.name, str):
            raise ModelConfigError(f"ModelConfig.name must be a string, got {self.name!r}")

    @property
    def resolved_sar_widths(self) -> tuple[int, ...]:
        """SAR-encoder widths (half the optical widths, at least 4, when not given)."""
        if self.sar_widths is not None:
            return self.sar_widths
        return tuple(max(4, w // 2) for w in self.widths)

    # ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary (tuples become lists); ``from_dict`` inverts it exactly."""
        out = dataclasses.asdict(self)
        for key in _TUPLE_FIELDS:
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build a config from ``to_dict()`` output; unknown keys are an error (not silently dropped).

        Raises
        ------
        ModelConfigError
            If ``data`` is not a mapping, has keys that are not fields, or has invalid values.
        """
        if not isinstance(data, dict):
            raise ModelConfigError(f"ModelConfig.from_dict expects a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelConfigError(f"ModelConfig: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as err:  # e.g. a list where an int was expected, caught by validate()
            raise ModelConfigError(f"ModelConfig: invalid value ({err})") from err

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> ModelConfig:
        """A validated copy with some fields changed.

        Changing ``arch`` without giving ``with_seg_decoder`` re-resolves the latter to the new
        arch's default (so ``ModelConfig().replace(arch="multitask_unet")`` just works).
        """
        if changes.get("arch", self.arch) != self.arch and "with_seg_decoder" not in changes:
            changes["with_seg_decoder"] = None
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, size: str, **overrides: Any) -> ModelConfig:
        """The config of a named size (:data:`tdpcr_lib.models.presets.MODEL_PRESETS`).

        ``overrides`` (any field, e.g. ``arch="dsen2cr"``) are applied on top.
        """
        return cls(**{**preset_fields(size), **overrides})

    @classmethod
    def small(cls, **overrides: Any) -> ModelConfig:
        """The ``"small"`` preset: the same topology, for tests and smoke runs (CPU, seconds).

        Every architecture is shrunk (TDP-CR widths (8, 16, 32, 64), a 16-wide 2-block DSen2-CR,
        an (8 … 128) U-Net); ``overrides`` are applied on top (e.g. ``arch="dsen2cr"``).
        """
        return cls.preset("small", **overrides)


def named_configs(small: bool = False, size: str | None = None) -> dict[str, ModelConfig]:
    """The models compared in the paper's claims and ablations, by name.

    ``tdpcr`` is the full model (with the phase-2 segmentation decoder), ``tdpcr_phase1`` the same
    network before the decoder is attached, then the three fusion ablations and the two baselines.
    ``size`` names a preset (:data:`tdpcr_lib.models.presets.MODEL_PRESETS`); ``small=True`` is
    ``size="small"``; the default is ``"full"`` (the paper's sizes).
    """
    size = size or ("small" if small else "full")

    def make(**fields: Any) -> ModelConfig:
        return ModelConfig.preset(size, **fields)

    return {
        "tdpcr": make(arch="tdpcr", fusion="pgf", with_seg_decoder=True, name="tdpcr"),
        "tdpcr_phase1": make(arch="tdpcr", fusion="pgf", with_seg_decoder=False, name="tdpcr_phase1"),
        "tdpcr_pgf_no_prompt": make(
            arch="tdpcr", fusion="pgf_no_prompt", with_seg_decoder=True, name="tdpcr_pgf_no_prompt"
        ),
        "tdpcr_concat": make(arch="tdpcr", fusion="concat", with_seg_decoder=True, name="tdpcr_concat"),
        "tdpcr_optical_only": make(
            arch="tdpcr", fusion="optical_only", with_seg_decoder=True, name="tdpcr_optical_only"
        ),
        "dsen2cr": make(arch="dsen2cr", name="dsen2cr"),
        "multitask_unet": make(arch="multitask_unet", name="multitask_unet"),
    }


def config_differences(
    stored: Mapping[str, Any], current: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> list[str]:
    """Human-readable ``field: checkpoint=… vs requested=…`` lines for differing fields.

    The one comparison of a stored config with the current one: loading a checkpoint into a
    model (model configs), resuming a run (:func:`tdpcr_lib.training.resume.resume_problems`: train
    and model configs) both use it. Fields in ``ignore`` may differ (e.g. the train-config fields
    a resumed run may change). Legends differing only in names (the twin's and LuojiaSET-OSFCR's,
    :func:`~tdpcr_lib.core.legend.class_scheme`) are the same classes.
    """
    keys = sorted((set(stored) | set(current)) - set(ignore))

    def same(key: str) -> bool:
        if key == "legend" and None not in (stored.get(key), current.get(key)):
            return class_scheme(stored[key]) == class_scheme(current[key])
        return stored.get(key) == current.get(key)

    return [
        f"{k}: checkpoint={stored.get(k, '<absent>')!r} vs requested={current.get(k, '<absent>')!r}"
        for k in keys
        if not same(k)
    ]
