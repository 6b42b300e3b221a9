"""Smoothing as a wrapper over any method instance (Captum's NoiseTunnel): `sg` = Smooth(Grad()),
`sig` = Smooth(IG()).

Every image draws its own seeded noise (base.noise_rng); the noisy copies of a batch are
handed to the wrapped method as one stack, in pieces small enough for memory.
"""

import numpy as np

from .base import Method, register, image_noise
from .gradients import Grad
from .integrated import IG

# noisy inputs per call of the wrapped method (times its evaluations per input)
EVALS_PER_PIECE = 1024
SMOOTHING = {"samples": 25, "noise": 0.15, "magnitude": True}
# samples: noisy copies; noise: sigma as a fraction of (max - min) of the image; magnitude:
# average squared maps (SmoothGrad's "squared" variant, [A])
SMOOTHING_CONFIG = {"samples": "saliency.samples", "noise": "saliency.noise", "magnitude": "saliency.magnitude"}


class Smooth(Method):
    """`base` averaged over `samples` noisy copies of each image; its parameters are the
    smoothing ones plus the base method's."""

    def __init__(self, base, name, *, order, study=False):
        self.base, self.name, self.order, self.study = base, name, order, study
        self.channels, self.grid, self.needs_wildcat = base.channels, base.grid, base.needs_wildcat
        self.defaults = {**SMOOTHING, **base.defaults}
        self.config = {**SMOOTHING_CONFIG, **base.config}

    def _split(self, params):
        return {k: v for k, v in params.items() if k not in SMOOTHING}

    def evaluations(self, params):
        base_params = self.base.resolve(self._split(params))
        return int(params["samples"]) * self.base.evaluations(base_params)

    def compute(self, adapter, images, cls, rngs, samples=25, noise=0.15, magnitude=True, **base_params):
        base_params = self.base.resolve(base_params)
        n = len(images)
        noise_draws = np.stack([image_noise(rng, img, samples, noise) for rng, img in zip(rngs, images)], axis=1)
        total = None
        per_piece = max(1, EVALS_PER_PIECE // (self.base.evaluations(base_params) * n))
        for start in range(0, samples, per_piece):
            chunk = noise_draws[start:start + per_piece]                   # [s, N, H, W, C]
            noisy = (images[None] + chunk).reshape(-1, *images.shape[1:])
            maps = np.asarray(self.base.compute(adapter, noisy, np.tile(cls, len(chunk)), None, **base_params))
            maps = maps.reshape(len(chunk), n, *maps.shape[1:]).astype(np.float64)
            for m in maps:     # sample by sample, in order: the sum does not depend on the pieces
                m = m * m if magnitude else m
                total = m if total is None else total + m
        return (total / samples).astype(np.float32)


register(Smooth(Grad(), "sg", order=20, study=True))
register(Smooth(IG(), "sig", order=40, study=True))
