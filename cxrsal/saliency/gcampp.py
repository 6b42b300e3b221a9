"""`gcampp`: GradCAM++ (Chattopadhay et al., WACV 2018) through tf-keras-vis, on the `features` map.

Not one of the study's methods: computed when named or with `--methods all`. tf-keras-vis
weights each channel by its positive gradients times the closed-form alphas of exp(score) and
upsamples the grid bilinearly (scipy zoom, order 1); the store post-processes it as GradCAM.
"""

import numpy as np

from .adapter import pad_batch
from .base import Method, register


@register
class GradCAMPlusPlus(Method):
    name = "gcampp"
    needs_layers = True
    order = 55
    channels = False
    defaults = {}

    def compute(self, adapter, images, cls, rngs):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # its scipy.ndimage.interpolation import
            from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

        cam = GradcamPlusPlus(adapter.logits_model(), clone=False)
        x, cls, b = adapter.own_input(images), np.asarray(cls, np.int32), adapter.batch_size
        out = []
        for start in range(0, len(x), b):
            # chunks padded to the full batch, as the adapter's: the same map whatever the batch
            xb, cb, n = pad_batch(x[start:start + b], cls[start:start + b], b)
            maps = cam(lambda logits, cb=cb: adapter.explained(logits, cb), xb, penultimate_layer="features",
                       seek_penultimate_conv_layer=False, normalize_cam=False)
            out.append(np.asarray(maps, np.float32).reshape(b, *images.shape[1:3])[:n])
        return np.concatenate(out)
