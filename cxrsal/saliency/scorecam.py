"""`scorecam`: Score-CAM (Wang et al., CVPR-W 2020) through tf-keras-vis, batched.

Each channel of the `features` map, upsampled and min-max scaled, masks the input; the
softmax probability of the explained class on the masked images (a sigmoid head's logit z as
the two classes [0, z]) weights that channel. The masked images go through the model
`saliency.batch_size` at a time. `max_n` > 0: only the N channels of largest spatial standard
deviation (Faster-Score-CAM). Gradient-free; not one of the study's methods.
"""

import numpy as np

from ..domains import Number
from .base import Method, register


@register
class ScoreCAM(Method):
    name = "scorecam"
    needs_layers = True
    order = 57
    channels = False
    defaults = {"max_n": 0}           # 0: every channel
    config = {"max_n": "saliency.scorecam_max_n"}
    domains = {"max_n": Number(lo=0, integer=True)}

    def evaluations(self, params):
        # one forward pass per channel (the feature map's width is unknown here: 512 for ResNet-18)
        return int(params["max_n"]) or 512

    def compute(self, adapter, images, cls, rngs, max_n=0):
        import functools
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # its scipy.ndimage.interpolation import
            from tf_keras_vis.scorecam import Scorecam

        model = adapter.logits_model(two_class=True)
        model.predict = functools.partial(model.predict, verbose=0)   # no Keras progress bar per call
        score_cam = Scorecam(model, clone=False)
        maps = []
        # one image at a time (its masked copies batched by saliency.batch_size): a map does not
        # depend on the images computed with it
        for image, c in zip(adapter.own_input(images), np.asarray(cls, np.int32)):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The structure of `inputs`")   # Keras, on tf-keras-vis' call
                m = score_cam(lambda p, c=int(c): p[:, c], image[None], penultimate_layer="features",
                              seek_penultimate_conv_layer=False, batch_size=adapter.batch_size,
                              max_N=int(max_n) or None, normalize_cam=False)
            maps.append(np.asarray(m, np.float32).reshape(images.shape[1:3]))
        return np.stack(maps)
