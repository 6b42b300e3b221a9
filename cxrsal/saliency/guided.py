"""`gbp`: Guided Backprop through guided ReLUs; `ggcam`: gbp x gcam, both reduced to 2-D."""

import numpy as np

from .base import Method, register
from .gradcam import gradcam_maps
from .postprocess import reduce_2d


@register
class GuidedBackprop(Method):
    name = "gbp"
    defaults = {}

    def compute(self, adapter, images, cls, rngs):
        return adapter.guided_gradients(images, cls)


@register
class GuidedGradCAM(Method):
    name = "ggcam"
    channels = False
    defaults = {}

    def evaluations(self, params):
        return 2

    def compute(self, adapter, images, cls, rngs):
        gbp = np.stack([reduce_2d(g, channels=True) for g in adapter.guided_gradients(images, cls)])
        return (gbp * gradcam_maps(adapter, images, cls)).astype(np.float32)
