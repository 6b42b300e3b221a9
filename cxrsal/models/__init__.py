"""Models: backbone registry, classification and WILDCAT heads, one flat functional graph.

Importing the package imports no Keras (the registries are read by `cxrsal --help`); the Keras
layers load with `cxrsal.models.layers`, which building or loading a model imports.
"""

from .backbones import BACKBONES
from .factory import backbone_blocks, build_model, class_map_model, feature_model, logit_model
from .heads import HEADS

LAYERS = ("ClassWisePool", "WildcatPool2d", "GrayToBackbone")

__all__ = ["BACKBONES", "HEADS", "build_model", "logit_model", "feature_model", "class_map_model",
           "backbone_blocks", *LAYERS]


def __getattr__(name):
    if name in LAYERS:
        from . import layers

        return getattr(layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
