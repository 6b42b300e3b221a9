"""`gbp`: Guided Backprop through guided ReLUs; `ggcam`: gbp x gcam.

`ggcam` order `processed` ([A]'s code): GBP and GradCAM each post-processed (|.| summed over
channels, 99th-percentile clip, min-max) before the product; `raw`: the product of the 2-D
reductions. Either product is post-processed again by the store.
"""

import numpy as np

from ..domains import OneOf
from .base import Method, register
from .gradcam import gradcam_maps
from ..errors import CxrsalError
from .postprocess import postprocess, reduce_2d

ORDERS = ("processed", "raw")


@register
class GuidedBackprop(Method):
    name = "gbp"
    needs_layers = True
    order = 70
    study = True
    defaults = {}

    def compute(self, adapter, images, cls, rngs):
        return adapter.guided_gradients(images, cls)


@register
class GuidedGradCAM(Method):
    name = "ggcam"
    needs_layers = True
    order = 80
    study = True
    channels = False
    defaults = {"order": "processed"}
    config = {"order": "ggcam.order"}
    domains = {"order": OneOf("processed", "raw")}

    def evaluations(self, params):
        return 2

    def compute(self, adapter, images, cls, rngs, order="processed"):
        if order not in ORDERS:
            raise CxrsalError(f"ggcam.order {order!r}: valid choices: {', '.join(ORDERS)}")
        guided, cam = adapter.guided_gradients(images, cls), gradcam_maps(adapter, images, cls)
        if order == "raw":
            gbp = np.stack([reduce_2d(g, channels=True) for g in guided])
            return (gbp * cam).astype(np.float32)
        gbp = np.stack([postprocess(g, channels=True)[0] for g in guided])
        cam = np.stack([postprocess(c, channels=False)[0] for c in cam])
        return (gbp * cam).astype(np.float32)
