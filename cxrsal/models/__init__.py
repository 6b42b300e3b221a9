"""Models: backbone registry, classification and WILDCAT heads, one flat functional graph."""

from .backbones import BACKBONES
from .factory import backbone_blocks, build_model, class_map_model, feature_model, logit_model
from .heads import HEADS
from .layers import ClassWisePool, GrayToBackbone, WildcatPool2d

__all__ = ["BACKBONES", "HEADS", "build_model", "logit_model", "feature_model", "class_map_model",
           "backbone_blocks", "ClassWisePool", "WildcatPool2d", "GrayToBackbone"]
