"""Backbone registry: feature extractors applied inside one flat functional graph.

Each backbone declares its preprocessing, smallest legal input, feature channels, the ImageNet
weights file Keras would use, its blocks from the top down and how its layers fall into them
(cascading randomization), and the blocks randomization leaves out unless asked: what is
particular to one backbone is a field here, never a test of its name elsewhere.
"""

import re
from dataclasses import dataclass
from typing import Callable, Optional

from ..registry import Registry

BACKBONES = Registry("architecture")
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class Backbone:
    name: str
    apply: Callable            # (tensor of 3 channels, weights) -> feature tensor; same graph
    preprocess: str            # GrayToBackbone mode
    min_size: int              # smallest input side Keras accepts
    channels: int              # channels of the feature map
    weights_file: Optional[str]  # ImageNet "notop" file in the Keras cache, or None
    # layer name -> block name, or None (inherit the previous layer's); None: `block_groups`
    group: Optional[Callable]
    block_order: tuple         # blocks from the top (next to the head) down
    output_strides: tuple = (32,)  # strides of the last map `apply` can build (dilated variants)
    widths: bool = False           # `apply` takes `width` (a channel multiplier, model.width)
    # the layers' names in graph order -> {layer: block}, where a layer's name alone cannot say
    # its block (InceptionV3); None: `group`, layer by layer
    block_groups: Optional[Callable] = None
    # blocks cascading randomization leaves out unless randomization.all_blocks ([A] randomized
    # neither the stem nor InceptionV3's first inception block)
    randomization_skips: tuple = ("stem",)

    @property
    def weights_url(self):
        return None if self.weights_file is None else KERAS_WEIGHTS_URL + self.weights_file

    def groups(self, layer_names):
        """{layer: block} of the backbone's layers, given their names in graph order; a layer
        `group` does not name belongs to the previous layer's block (the lowest block first)."""
        if self.block_groups is not None:
            return self.block_groups(layer_names)
        groups, current = {}, self.block_order[-1]
        for n in layer_names:
            current = self.group(n) or current
            groups[n] = current
        return groups


def _keras_app(constructor, cut=None):
    def apply(x, weights, output_stride=None):
        import keras

        base = getattr(keras.applications, constructor)(include_top=False, weights=weights, input_tensor=x)
        return base.get_layer(cut).output if cut else base.output
    return apply


def _vgg_grouper(name):
    m = re.match(r"^(block[1-5])_", name)
    return m.group(1) if m else None


def _register(name, **kw):
    BACKBONES.register(name)(Backbone(name=name, **kw))


# ResNets (Keras applications' and ours share the layer naming)
_RESNET_BLOCKS = ("conv5", "conv4", "conv3", "conv2", "stem")


def _resnet_grouper(name):
    m = re.match(r"^(conv[2-5])_", name)
    if m:
        return m.group(1)
    if name.startswith(("conv1_", "pool1_")):
        return "stem"
    return None


def _resnet_basic_apply(depth):
    def apply(x, weights, output_stride=32, width=1.0):
        import keras

        from .resnet_basic import resnet_basic

        out = resnet_basic(x, depth, output_stride, width)
        if weights is not None:
            # the sub-model shares its layers with the model being built: loading fills both
            keras.Model(keras.utils.get_source_inputs(x), out).load_weights(weights)
        return out
    return apply


for _depth in ("resnet18", "resnet34"):
    _register(_depth, apply=_resnet_basic_apply(_depth), preprocess="torch", min_size=32, channels=512,
              weights_file=None, group=_resnet_grouper, block_order=_RESNET_BLOCKS, output_strides=(32, 16, 8),
              widths=True)

for _name, _ctor in (("resnet50", "ResNet50"), ("resnet101", "ResNet101"), ("resnet152", "ResNet152")):
    _register(_name, apply=_keras_app(_ctor), preprocess="caffe", min_size=32, channels=2048,
              weights_file=f"resnet/{_name}_weights_tf_dim_ordering_tf_kernels_notop.h5",
              group=_resnet_grouper, block_order=_RESNET_BLOCKS)

# DenseNets: dense blocks conv2..conv5 and transitions pool2..pool4
_DENSE_BLOCKS = ("conv5", "pool4", "conv4", "pool3", "conv3", "pool2", "conv2", "stem")


def _dense_grouper(name):
    m = re.match(r"^(conv[2-5]|pool[2-4])_", name)
    if m:
        return m.group(1)
    if name.startswith(("conv1", "pool1")):
        return "stem"
    if name in ("bn", "relu"):
        return "conv5"
    return None


for _name, _ctor, _ch in (("densenet121", "DenseNet121", 1024), ("densenet169", "DenseNet169", 1664)):
    _register(_name, apply=_keras_app(_ctor), preprocess="torch", min_size=32, channels=_ch,
              weights_file=f"densenet/{_name}_weights_tf_dim_ordering_tf_kernels_notop.h5",
              group=_dense_grouper, block_order=_DENSE_BLOCKS)

# VGG-19 up to its last convolution (block5_conv4): GradCAM and WILDCAT want the 1/16 map
_register("vgg19", apply=_keras_app("VGG19", cut="block5_conv4"), preprocess="caffe", min_size=32,
          channels=512, weights_file="vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
          group=_vgg_grouper, block_order=("block5", "block4", "block3", "block2", "block1"), randomization_skips=())


# InceptionV3: Keras names only the mixed0..mixed10 concatenations; every layer belongs to the
# next mixed layer after it, and the stem is what precedes mixed0's branches.
_INCEPTION_BLOCKS = tuple(f"mixed{i}" for i in range(10, -1, -1)) + ("stem",)


def inception_groups(layer_names):
    """Block of each layer name, given the backbone's layers in graph order."""
    groups = {}
    pending = []
    first_mixed = next(i for i, n in enumerate(layer_names) if n == "mixed0")
    # the stem ends at the last max pooling before mixed0
    stem_end = max(i for i, n in enumerate(layer_names[:first_mixed]) if n.startswith("max_pooling2d"))
    for i, n in enumerate(layer_names):
        if i <= stem_end:
            groups[n] = "stem"
            continue
        pending.append(n)
        if re.fullmatch(r"mixed\d+", n):
            for p in pending:
                groups[p] = n
            pending = []
    for p in pending:
        groups[p] = "mixed10"
    return groups


_register("inceptionv3", apply=_keras_app("InceptionV3"), preprocess="tf", min_size=75, channels=2048,
          weights_file="inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
          group=None, block_groups=inception_groups, block_order=_INCEPTION_BLOCKS,
          randomization_skips=("stem", "mixed0"))


def randomization_skips(arch):
    """The blocks cascading randomization of `arch` leaves out unless randomization.all_blocks:
    its backbone's, or the stem of a user's model (`external-*`, blocks named by its card)."""
    return BACKBONES.get(arch).randomization_skips if arch in BACKBONES else Backbone.randomization_skips
