"""`gcam`: GradCAM on the last convolutional map (PAIR GradCam), gradients batched."""

import numpy as np

from .base import Method, register


def gradcam_maps(adapter, images, cls):
    from saliency.core import GradCam
    from saliency.core import base as pair

    _, feats, grads = adapter.conv_gradients(images, cls)
    maps = []
    for i, image in enumerate(images):
        # one batched model call above; PAIR's GradCam formula per image on its slice:
        # weights = spatial mean of gradients, ReLU, / max (0 if max is 0), bilinear resize
        def lookup(x, call_model_args=None, expected_keys=None, i=i):
            return {pair.CONVOLUTION_LAYER_VALUES: feats[i:i + 1], pair.CONVOLUTION_OUTPUT_GRADIENTS: grads[i:i + 1]}
        maps.append(GradCam().GetMask(image, lookup, should_resize=True, three_dims=False))
    return np.stack(maps).astype(np.float32)


@register
class GradCAM(Method):
    name = "gcam"
    needs_layers = True
    order = 50
    study = True
    channels = False
    grid = True
    defaults = {}

    def compute(self, adapter, images, cls, rngs):
        return gradcam_maps(adapter, images, cls)
