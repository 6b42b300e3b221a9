"""Saliency method registry and the seeded noise every smoothed method draws."""

import numpy as np

from ..registry import Registry

METHODS = Registry("saliency method")
ORDER = ("grad", "sg", "ig", "sig", "gcam", "xrai", "gbp", "ggcam", "wildcat")


class Method:
    """A saliency method: `compute` takes a batch of images and returns raw maps.

    `channels`: True when raw maps keep the input's channels ([N, H, W, C]; post-processing
    sums their absolute values), False for 2-D maps ([N, H, W]; no abs).
    `defaults`: every parameter, so a run records all of them.
    `grid`: True when the map is the feature map's grid upsampled (GradCAM, WILDCAT), so its
    cells sit at the receptive-field centres of the feature map (pointwise detection).
    """

    name = ""
    channels = True
    grid = False
    defaults = {}

    def resolve(self, params):
        unknown = set(params) - set(self.defaults)
        if unknown:
            from ..errors import CxrsalError

            raise CxrsalError(f"method {self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                              f"valid: {', '.join(sorted(self.defaults)) or 'none'}")
        return {**self.defaults, **params}

    def compute(self, adapter, images, cls, rngs, **params):
        raise NotImplementedError

    def evaluations(self, params):
        """Model evaluations (forward + gradient) per map."""
        return 1

    def extras(self, adapter, images):
        """Arrays stored beside each map ({name: [N, ...]}), e.g. WILDCAT's native class map."""
        return {}

    def start(self, adapter, images, cls, rngs, executor=None, **params):
        """Begin computing; returns a zero-argument callable giving the raw maps. Methods with
        CPU-side work (XRAI's segmentation) run it on `executor` while the next batch's
        gradients are computed."""
        raw = self.compute(adapter, images, cls, rngs, **params)
        return lambda: raw


def register(cls):
    """Class decorator: the registry holds one instance of each method, under `cls.name`."""
    METHODS.register(cls.name)(cls())
    return cls


def noise_rng(seed, index):
    """The generator of image `index` (global position in the run): the same noise for it
    whatever the batching, sharding or resumption."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def image_noise(rng, image, samples, noise):
    """`samples` Gaussian draws of sigma = noise * (max - min of the image) (SmoothGrad)."""
    sigma = noise * (float(np.max(image)) - float(np.min(image)))
    return rng.normal(0.0, sigma, size=(samples, *image.shape)).astype(np.float32)
