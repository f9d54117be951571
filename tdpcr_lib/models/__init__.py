"""TDP-CR and the comparison models behind one config object and one builder.

>>> from tdpcr_lib.models import ModelConfig, build_model
>>> model = build_model(ModelConfig(arch="tdpcr", fusion="pgf", with_seg_decoder=True))
"""

from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.config import ARCHES, FUSIONS, ModelConfig, ModelConfigError, named_configs
from tdpcr_lib.models.tdpcr import TDPCR

__all__ = ["ARCHES", "FUSIONS", "ModelConfig", "ModelConfigError", "TDPCR", "build_model", "named_configs"]
