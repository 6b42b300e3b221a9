"""`wildcat`: the WILDCAT positive-class map, bilinear-upsampled to the input size."""

import numpy as np

from .base import Method, register


@register
class WildcatMap(Method):
    name = "wildcat"
    order = 90
    study = True
    needs_wildcat = True
    channels = False
    grid = True
    defaults = {}

    def extras(self, adapter, images):
        # the class map at its own resolution: pointwise detection takes its arg-max cell
        return {"native": adapter.class_maps(images)[..., -1]}

    def compute(self, adapter, images, cls, rngs):
        import tensorflow as tf

        maps = adapter.class_maps(images)[..., -1:]          # the positive class (last map)
        h, w = images.shape[1:3]
        return np.asarray(tf.image.resize(maps, (h, w), method="bilinear"))[..., 0].astype(np.float32)
