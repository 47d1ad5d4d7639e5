"""Design spaces: RegNet X/Y/Z, EfficientNet and ResNet specs, generation, exact analytic
complexity, the regime sampler and (in `spaces.build`, which imports torch) the PyTorch modules.

Importing `spaces` is cheap: numpy only.
"""

from spaces.complexity import Complexity, complexity, regnet_complexity_batch
from spaces.errors import FastscaleError
from spaces.io import load_specs, resolve_spec, resolve_specs, save_specs, spec_record
from spaces.registry import Spec, get_model, is_model, list_models
from spaces.resnet import ResNetSpec
from spaces.sampler import DesignSpace, Range, sample
from spaces.specs import EfficientNetSpec, RegNetSpec, SpecError, StageSpec, spec_from_dict
from spaces.units import format_quantity, parse_quantity

__all__ = [
    "Complexity",
    "DesignSpace",
    "EfficientNetSpec",
    "FastscaleError",
    "Range",
    "RegNetSpec",
    "ResNetSpec",
    "Spec",
    "SpecError",
    "StageSpec",
    "complexity",
    "format_quantity",
    "get_model",
    "is_model",
    "list_models",
    "load_specs",
    "parse_quantity",
    "regnet_complexity_batch",
    "resolve_spec",
    "resolve_specs",
    "sample",
    "save_specs",
    "spec_from_dict",
    "spec_record",
]
